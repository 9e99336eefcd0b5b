//! A compiled network evaluated on CKKS ciphertexts against the plaintext network.

use rand::SeedableRng;
use std::sync::Arc;

use unseen_circuits::{compile_single, CkksBackend, CkksPlan, EvaluationKeys, Prepared};
use unseen_ckks::{Encoder, GaloisKeys, Parameters, Preset, RelinKey, SecretKey};
use unseen_model::{Architecture, Network};

#[test]
fn ciphernet_on_ciphertexts_matches_the_network() {
    let params = Parameters::preset(Preset::Cnn8192).expect("preset");
    let net = Network::init(
        Architecture::named("ciphernet").expect("arch"),
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(5),
    )
    .expect("init");
    let program = compile_single(&net, params.slots()).expect("compile");
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(77);
    let sk = SecretKey::generate(&params, &mut rng);
    let plan = CkksPlan::new(&params, &program).expect("plan");
    assert_eq!(plan.start_level, program.depth());
    let keys = plan.make_keys(&sk, &mut rng);
    let key_bytes = keys.to_bytes().len();
    println!(
        "evaluation keys {key_bytes} B ({} rotation keys)",
        keys.galois.galois_elements().len()
    );
    assert!(key_bytes <= 24_000_000, "evaluation keys of {key_bytes} B");
    let keys = EvaluationKeys::from_bytes(&keys.to_bytes(), &params).expect("bundle");
    let keyless = CkksBackend::new(&params, &program).expect("backend");
    // keys below the level the plan needs, or missing a rotation, are refused
    let low = EvaluationKeys {
        relin: RelinKey::generate_for_level(&sk, 0, &mut rng),
        galois: keys.galois.clone(),
    };
    assert!(matches!(
        keyless.with_keys(Arc::new(low)),
        Err(unseen_ckks::Error::LevelTooLow(_))
    ));
    let first = keys.galois.galois_elements()[0];
    let missing = EvaluationKeys {
        relin: keys.relin.clone(),
        galois: keys
            .galois
            .subset(&[keys.galois.step_of(first).expect("rotation")], false)
            .expect("subset"),
    };
    assert!(matches!(
        keyless.with_keys(Arc::new(missing)),
        Err(unseen_ckks::Error::MissingGaloisKey(_))
    ));
    // full-level keys for every step also do
    let full = EvaluationKeys {
        relin: RelinKey::generate(&sk, &mut rng),
        galois: GaloisKeys::generate(
            &sk,
            &program
                .rotation_steps()
                .into_iter()
                .map(|s| s as i64)
                .collect::<Vec<_>>(),
            false,
            &mut rng,
        ),
    };
    assert!(keyless.with_keys(Arc::new(full)).is_ok());
    // a keyless backend prepares the plaintexts; any keyed one runs them
    let prepared = Prepared::new(&keyless, &program).expect("prepare");
    let backend = keyless
        .with_keys(Arc::new(keys))
        .expect("keys cover the plan");
    let encoder = Encoder::new(&params);
    let mut worst = 0.0f64;
    for seed in 0..2u64 {
        let image: Vec<f32> = (0..784)
            .map(|i| (((i as u64 * 7919 + seed * 104_729) % 255) as f32 / 255.0 - 0.13) / 0.31)
            .collect();
        let expected = net.logits(&image, 1);
        let vectors =
            program.encode_inputs(&image.iter().map(|v| f64::from(*v)).collect::<Vec<_>>());
        let ct: Vec<_> = vectors
            .iter()
            .map(|v| {
                let pt = encoder
                    .encode_real(v, plan.start_level, backend.input_scale())
                    .expect("encode");
                sk.encrypt(&pt, &mut rng).expect("encrypt")
            })
            .collect();
        let out = prepared.run(&backend, &ct).expect("run");
        // the giant steps of a linear map run in parallel: the result must not depend on the
        // thread count (exact arithmetic modulo q, summed in a fixed order)
        let one_thread = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool")
            .install(|| prepared.run(&backend, &ct).expect("run"));
        assert_eq!(out.to_bytes(), one_thread.to_bytes());
        let decoded = encoder
            .decode_real(&sk.decrypt(&out).expect("decrypt"))
            .expect("decode");
        let logits = program.decode_output(&decoded);
        for (a, b) in logits.iter().zip(&expected) {
            worst = worst.max((a - f64::from(*b)).abs());
        }
    }
    println!("worst logit error {worst:.4}");
    assert!(worst < 0.05, "worst logit error {worst}");
}

/// ciphernet's rotate-and-sums in hoisted stages where the keys hold their shortcut steps, and
/// as chains where they do not (keys made before the shortcuts, or with paired digits): the
/// same keys with and without the shortcuts are both accepted, take the two paths (their
/// results differ in the rounding of the key switches) and both match the network.
#[test]
fn rotate_and_sums_run_hoisted_or_chained_as_the_keys_allow() {
    let params = Parameters::preset(Preset::Cnn8192).expect("preset");
    let net = Network::init(
        Architecture::named("ciphernet").expect("arch"),
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(6),
    )
    .expect("init");
    let program = compile_single(&net, params.slots()).expect("compile");
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(78);
    let sk = SecretKey::generate(&params, &mut rng);
    let mut plan = CkksPlan::new(&params, &program).expect("plan");
    plan.key_layout = unseen_circuits::KeyLayout::PerPrime;
    let keys = plan.make_keys(&sk, &mut rng);
    let shortcuts: Vec<i64> = plan
        .sum_shortcuts
        .keys()
        .filter(|s| !plan.rotation_keys.contains_key(s))
        .map(|&s| s as i64)
        .collect();
    assert_eq!(shortcuts.len(), 3, "{shortcuts:?}");
    assert!(shortcuts.iter().all(|s| keys.galois.has_rotation(*s)));
    let required: Vec<i64> = plan.rotation_keys.keys().map(|&s| s as i64).collect();
    let chain_only = EvaluationKeys {
        relin: keys.relin.clone(),
        galois: keys.galois.subset(&required, false).expect("subset"),
    };
    assert!(shortcuts
        .iter()
        .all(|s| !chain_only.galois.has_rotation(*s)));
    let keyless = CkksBackend::new(&params, &program).expect("backend");
    let prepared = Prepared::new(&keyless, &program).expect("prepare");
    let hoisted = keyless.with_keys(Arc::new(keys)).expect("all keys");
    let chained = keyless
        .with_keys(Arc::new(chain_only))
        .expect("required keys");
    let encoder = Encoder::new(&params);
    let image: Vec<f32> = (0..784)
        .map(|i| (((i as u64 * 7907) % 255) as f32 / 255.0 - 0.13) / 0.31)
        .collect();
    let expected = net.logits(&image, 1);
    let vectors = program.encode_inputs(&image.iter().map(|v| f64::from(*v)).collect::<Vec<_>>());
    let ct: Vec<_> = vectors
        .iter()
        .map(|v| {
            let pt = encoder
                .encode_real(v, plan.start_level, hoisted.input_scale())
                .expect("encode");
            sk.encrypt(&pt, &mut rng).expect("encrypt")
        })
        .collect();
    let outs: Vec<_> = [&hoisted, &chained]
        .iter()
        .map(|b| prepared.run(b, &ct).expect("run"))
        .collect();
    assert_ne!(outs[0].to_bytes(), outs[1].to_bytes(), "the two paths");
    for (out, path) in outs.iter().zip(["hoisted", "chained"]) {
        let decoded = encoder
            .decode_real(&sk.decrypt(out).expect("decrypt"))
            .expect("decode");
        let logits = program.decode_output(&decoded);
        let worst = logits
            .iter()
            .zip(&expected)
            .map(|(a, b)| (a - f64::from(*b)).abs())
            .fold(0.0f64, f64::max);
        println!("{path}: worst logit error {worst:.4}");
        assert!(worst < 0.05, "{path}: worst logit error {worst}");
    }
}

#[test]
fn batch_program_on_ciphertexts_matches_the_network() {
    use unseen_circuits::{compile_batch, BatchRun};
    use unseen_model::{Layer, Shape};
    let params = Parameters::preset(Preset::Cnn8192).expect("preset");
    // A small network of the same kind (conv, square, dense, square, dense) on 10x10 inputs.
    let arch = Architecture {
        name: "small".into(),
        input: Shape::Image(1, 10, 10),
        layers: vec![
            Layer::conv(1, 2, 4, 3, 0),
            Layer::Square,
            Layer::Flatten,
            Layer::linear(18, 6),
            Layer::Square,
            Layer::linear(6, 3),
        ],
    };
    let net = Network::init(arch, &mut rand_chacha::ChaCha8Rng::seed_from_u64(3)).expect("init");
    let program = compile_batch(&net).expect("compile");
    assert_eq!(program.depth(), 5);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(8);
    let sk = SecretKey::generate(&params, &mut rng);
    let rlk = RelinKey::generate_for_level(&sk, program.start_level() - 1, &mut rng);
    let encoder = Encoder::new(&params);
    // Three images in slots 0, 1, 2 of every feature ciphertext.
    let images: Vec<Vec<f64>> = (0..3)
        .map(|k| {
            (0..100)
                .map(|i| ((i * 31 + k * 17) % 23) as f64 / 11.5 - 1.0)
                .collect()
        })
        .collect();
    let inputs = (0..100)
        .map(|f| {
            let slots: Vec<f64> = images.iter().map(|im| im[f]).collect();
            let pt = encoder
                .encode_real(&slots, program.start_level(), params.default_scale())
                .expect("encode");
            sk.encrypt(&pt, &mut rng).expect("encrypt")
        })
        .collect::<Vec<_>>();
    let outputs = program.run(&params, &rlk, inputs.clone()).expect("run");
    // fed in parts of any size, the run gives the same residues
    for part in [1, 7, 100] {
        let mut run = BatchRun::new(&program, &params, &rlk).expect("run");
        for p in inputs.chunks(part) {
            run.push(p.to_vec()).expect("push");
        }
        assert!(run.finish().expect("finish") == outputs, "parts of {part}");
    }
    // too few or too many inputs, or a part at another level, are refused
    let mut run = BatchRun::new(&program, &params, &rlk).expect("run");
    run.push(inputs[..50].to_vec()).expect("push");
    let ev = unseen_ckks::Evaluator::new(&params);
    let lower = ev
        .drop_to_level(&inputs[50], program.start_level() - 1)
        .expect("drop");
    assert!(run.push(vec![lower]).is_err());
    assert!(run.finish().is_err());
    let mut run = BatchRun::new(&program, &params, &rlk).expect("run");
    assert!(run
        .push([inputs.clone(), inputs[..1].to_vec()].concat())
        .is_err());
    for (k, image) in images.iter().enumerate() {
        let expected = net.logits(&image.iter().map(|v| *v as f32).collect::<Vec<_>>(), 1);
        let plain = program.run_plain(image);
        for (o, ct) in outputs.iter().enumerate() {
            let got = encoder
                .decode_real(&sk.decrypt(ct).expect("decrypt"))
                .expect("decode")[k];
            assert!(
                (got - plain[o]).abs() < 0.05,
                "image {k} output {o}: {got} vs {}",
                plain[o]
            );
            assert!((plain[o] - f64::from(expected[o])).abs() < 1e-3 * (1.0 + plain[o].abs()));
        }
    }
}
