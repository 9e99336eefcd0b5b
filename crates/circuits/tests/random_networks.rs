//! Property test: random networks from the supported layer set, with random weights, compile
//! to single-image and batch programs whose exact (f64) evaluation equals the network's
//! forward pass; a sample runs on CKKS ciphertexts within the plan's precision.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use unseen_circuits::backend::Prepared;
use unseen_circuits::{compile_batch, compile_single, lower, PlainBackend};
use unseen_model::layers::{AvgPool2d, BatchNorm, Poly};
use unseen_model::{Architecture, Layer, Network, Shape};

fn activation(rng: &mut ChaCha8Rng) -> Layer {
    match rng.gen_range(0..4) {
        0 => Layer::Square,
        d => {
            let degree = d + 1;
            let mut coefficients: Vec<f64> =
                (0..=degree).map(|_| rng.gen_range(-0.5..0.5)).collect();
            coefficients[degree] =
                rng.gen_range(0.1..0.5) * if rng.gen_bool(0.5) { 1.0 } else { -1.0 };
            Layer::Poly(Poly { coefficients })
        }
    }
}

/// A random architecture whose shapes chain.
fn random_arch(rng: &mut ChaCha8Rng) -> Architecture {
    let mut layers = Vec::new();
    let input = if rng.gen_bool(0.75) {
        let (c, h) = (rng.gen_range(1..=3), rng.gen_range(5..=9));
        let mut shape = Shape::Image(c, h, h);
        for _ in 0..rng.gen_range(1..=2) {
            let Shape::Image(c, h, _) = shape else { break };
            let k = rng.gen_range(1..=3).min(h);
            let (s, p, o) = (
                rng.gen_range(1..=2),
                rng.gen_range(0..=1),
                rng.gen_range(1..=3),
            );
            layers.push(Layer::conv(c, o, k, s, p));
            shape = layers
                .last()
                .expect("layer")
                .ops()
                .output_shape(shape)
                .expect("fits");
            if rng.gen_bool(0.3) {
                layers.push(Layer::BatchNorm(BatchNorm { features: o }));
            }
            layers.push(activation(rng));
            if let Shape::Image(_, h, _) = shape {
                if h >= 2 && rng.gen_bool(0.5) {
                    layers.push(Layer::AvgPool2d(AvgPool2d {
                        kernel: 2,
                        stride: 2,
                    }));
                    shape = layers
                        .last()
                        .expect("layer")
                        .ops()
                        .output_shape(shape)
                        .expect("fits");
                }
            }
        }
        if rng.gen_bool(0.3) {
            layers.push(Layer::GlobalAvgPool);
        }
        layers.push(Layer::Flatten);
        Shape::Image(c, h, h)
    } else {
        Shape::Vector(rng.gen_range(3..=30))
    };
    let mut arch = Architecture {
        name: "random".into(),
        input,
        layers,
    };
    let mut n = arch.shapes().expect("chain").last().expect("shape").len();
    for _ in 0..rng.gen_range(0..=1) {
        let m = rng.gen_range(2..=12);
        arch.layers.push(Layer::linear(n, m));
        arch.layers.push(activation(rng));
        n = m;
    }
    arch.layers.push(Layer::linear(n, rng.gen_range(2..=5)));
    arch
}

fn random_net(rng: &mut ChaCha8Rng) -> Network {
    let arch = random_arch(rng);
    let mut net = Network::init(arch, rng).expect("init");
    for p in net.params.iter_mut().filter(|p| !p.running.is_empty()) {
        let f = p.weight.len();
        for i in 0..f {
            p.weight[i] = rng.gen_range(0.5..1.5);
            p.bias[i] = rng.gen_range(-0.3..0.3);
            p.running[i] = rng.gen_range(-0.3..0.3);
            p.running[f + i] = rng.gen_range(0.5..2.0);
        }
    }
    net
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

#[test]
fn random_networks_compile_to_programs_equal_to_their_forward_pass() {
    let mut rng = ChaCha8Rng::seed_from_u64(2026);
    let slots = 2048;
    for case in 0..60 {
        let net = random_net(&mut rng);
        let what = format!("case {case}: {:?} {:?}", net.arch.input, net.arch.layers);
        let lowered = lower(&net).expect("lower");
        assert_eq!(lowered.depth(), net.arch.depth(), "{what}");
        let program = compile_single(&net, slots).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(program.depth(), net.arch.depth(), "{what}");
        let batch = compile_batch(&net).expect("batch");
        assert_eq!(batch.depth(), net.arch.depth(), "{what}");
        let backend = PlainBackend { slots };
        let prepared = Prepared::new(&backend, &program).expect("prepare");
        for _ in 0..2 {
            let x: Vec<f64> = (0..net.inputs())
                .map(|_| rng.gen_range(-1.0..1.0))
                .collect();
            let want = net.logits_f64(&x);
            let f32_logits = net.logits(&x.iter().map(|v| *v as f32).collect::<Vec<_>>(), 1);
            let got = program.decode_output(
                &prepared
                    .run(&backend, &program.encode_inputs(&x))
                    .expect("run"),
            );
            let got_batch = batch.run_plain(&x);
            for o in 0..want.len() {
                assert!(
                    close(got[o], want[o], 1e-9),
                    "{what}: single {} vs {}",
                    got[o],
                    want[o]
                );
                assert!(
                    close(got_batch[o], want[o], 1e-9),
                    "{what}: batch {} vs {}",
                    got_batch[o],
                    want[o]
                );
                assert!(
                    close(want[o], f64::from(f32_logits[o]), 1e-3),
                    "{what}: f32 {} vs {}",
                    f32_logits[o],
                    want[o]
                );
            }
        }
    }
}

/// Relative precision, in bits of the output bound, that every CKKS evaluation keeps: the
/// plan gives the outputs [`unseen_circuits::OUTPUT_MARGIN`] times their bound of room below
/// the last modulus, and the 30-bit scales leave well over this much after the noise.
const CKKS_PRECISION_BITS: i32 = 12;

#[test]
fn a_sample_of_random_networks_runs_on_ckks_within_the_plan_precision() {
    use std::sync::Arc;
    use unseen_circuits::{compile_model, CkksBackend};
    use unseen_ckks::{Encoder, SecretKey};
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut key_rng = rand_chacha::ChaCha20Rng::seed_from_u64(11);
    for case in 0..4 {
        let net = random_net(&mut rng);
        let what = format!("case {case}: {:?} {:?}", net.arch.input, net.arch.layers);
        let inputs: Vec<Vec<f64>> = (0..3)
            .map(|_| {
                (0..net.inputs())
                    .map(|_| rng.gen_range(-1.0..1.0))
                    .collect()
            })
            .collect();
        let bound = inputs
            .iter()
            .flat_map(|x| net.logits_f64(x))
            .fold(0.0f64, |m, v| m.max(v.abs()));
        let compiled =
            compile_model(&net, Some(bound), None).unwrap_or_else(|e| panic!("{what}: {e}"));
        let (params, program, plan) = (&compiled.params, &compiled.program, &compiled.plan);
        let sk = SecretKey::generate(params, &mut key_rng);
        let keys = plan.make_keys(&sk, &mut key_rng);
        let keyless = CkksBackend::new(params, program).expect("backend");
        let prepared = Prepared::new(&keyless, program).expect("prepare");
        let backend = keyless.with_keys(Arc::new(keys)).expect("keys");
        let encoder = Encoder::new(params);
        let tolerance = bound.max(1.0) * 2f64.powi(-CKKS_PRECISION_BITS);
        for x in &inputs {
            let ct: Vec<_> = program
                .encode_inputs(x)
                .iter()
                .map(|v| {
                    let pt = encoder
                        .encode_real(v, plan.start_level, backend.input_scale())
                        .expect("encode");
                    sk.encrypt(&pt, &mut key_rng).expect("encrypt")
                })
                .collect();
            let out = prepared.run(&backend, &ct).expect("run");
            let got = program.decode_output(
                &encoder
                    .decode_real(&sk.decrypt(&out).expect("decrypt"))
                    .expect("decode"),
            );
            let want = net.logits_f64(x);
            let worst = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f64, f64::max);
            eprintln!(
                "{what}: preset {}, bound {bound:.3}, error {worst:.2e} (tolerance {tolerance:.2e})",
                params.name()
            );
            assert!(
                worst <= tolerance,
                "{what}: error {worst} above {tolerance}"
            );
        }
    }
}
