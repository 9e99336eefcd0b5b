//! Compiled programs, run exactly on f64 vectors, against the networks themselves.

use rand::SeedableRng;
use unseen_circuits::backend::Prepared;
use unseen_circuits::{compile_single, PlainBackend};
use unseen_model::{Architecture, Network};

fn check(arch: &str, slots: usize) -> unseen_circuits::Program {
    check_arch(Architecture::named(arch).expect("arch"), slots)
}

fn check_arch(arch: Architecture, slots: usize) -> unseen_circuits::Program {
    let net =
        Network::init(arch.clone(), &mut rand_chacha::ChaCha8Rng::seed_from_u64(9)).expect("init");
    let arch = arch.name.as_str();
    let program = compile_single(&net, slots).expect("compile");
    let backend = PlainBackend { slots };
    let prepared = Prepared::new(&backend, &program).expect("prepare");
    for seed in 0..3u64 {
        let image: Vec<f32> = (0..784)
            .map(|i| (((i as u64 * 7919 + seed * 104_729) % 255) as f32 / 255.0 - 0.13) / 0.31)
            .collect();
        let expected = net.logits(&image, 1);
        let input = program.encode_inputs(&image.iter().map(|v| f64::from(*v)).collect::<Vec<_>>());
        let out = program.decode_output(&prepared.run(&backend, &input).expect("run"));
        assert_eq!(out.len(), 10);
        for (a, b) in out.iter().zip(&expected) {
            assert!(
                (a - f64::from(*b)).abs() <= 1e-3 * (1.0 + a.abs()),
                "{arch}: {a} vs {b}"
            );
        }
    }
    program
}

#[test]
fn ciphernet_packs_into_four_vectors_of_4096_slots() {
    let p = check("ciphernet", 4096);
    assert_eq!(p.depth(), 5);
    // the first convolution's patches replicated over 4 vectors: cheaper than one vector's 42
    assert_eq!(p.input_vectors(), 4);
    assert!(matches!(p.ops[0], unseen_circuits::Op::Gather(_)));
    assert_eq!(p.rotation_count(), 28);
    // run on another number of vectors, it refuses
    let backend = PlainBackend { slots: 4096 };
    let prepared = Prepared::new(&backend, &p).expect("prepare");
    let vectors = p.encode_inputs(&vec![0.5; 784]);
    for n in [0, 1, 3, 5] {
        let inputs: Vec<Vec<f64>> = vectors.iter().cycle().take(n).cloned().collect();
        let err = prepared.run(&backend, &inputs).expect_err("wrong count");
        assert!(
            matches!(err, unseen_circuits::Error::WrongInput(_)),
            "{n}: {err}"
        );
    }
    println!(
        "ciphernet: {} rotations, {} plaintext multiplications, steps {:?}",
        p.rotation_count(),
        p.plain_mul_count(),
        p.rotation_steps()
    );
    assert!(p.rotation_count() <= 45, "{}", p.rotation_count());
}

#[test]
fn ciphernet_wide_packs_into_one_vector_of_4096_slots() {
    let p = check("ciphernet-wide", 4096);
    assert_eq!(p.depth(), 5);
    println!(
        "ciphernet-wide: {} rotations, {} plaintext multiplications",
        p.rotation_count(),
        p.plain_mul_count()
    );
}

#[test]
fn many_channels_use_the_offset_major_layout() {
    use unseen_model::{Layer, Shape};
    let arch = Architecture {
        name: "conv3x3-32".into(),
        input: Shape::Image(1, 28, 28),
        layers: vec![
            Layer::conv(1, 32, 3, 3, 0),
            Layer::Square,
            Layer::Flatten,
            Layer::linear(32 * 81, 16),
            Layer::Square,
            Layer::linear(16, 10),
        ],
    };
    let p = check_arch(arch, 4096);
    // Diagonals at multiples of the 128-slot position block.
    let by_depth = p.rotation_steps_by_depth();
    assert!(
        by_depth
            .iter()
            .filter(|(_, d)| **d == 0)
            .all(|(s, _)| s % 128 == 0),
        "{by_depth:?}"
    );
}

#[test]
fn too_few_slots_is_an_error() {
    let net = Network::init(
        Architecture::named("ciphernet-wide").expect("arch"),
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(1),
    )
    .expect("init");
    assert!(compile_single(&net, 2048).is_err());
    assert!(compile_single(&net, 3000).is_err());
}

#[test]
fn ciphernet_top_level_rotations_are_few() {
    let p = check("ciphernet", 4096);
    let by_depth = p.rotation_steps_by_depth();
    let top = by_depth.values().filter(|d| **d == 0).count();
    println!("ciphernet rotation steps by first depth: {by_depth:?}");
    // The convolution's steps (k - c for the position-major im2col) are all the full-level keys.
    assert!(top <= 16, "{by_depth:?}");
}

/// LeNet-5's second convolution (after pooling) writes its channels in its input's geometry,
/// filling the gaps the stride leaves: 772 diagonals instead of the 2,048 of one channel per
/// block, and the program is still exact.
#[test]
fn a_second_convolution_keeps_its_input_geometry() {
    use unseen_model::layers::AvgPool2d;
    use unseen_model::{Layer, Shape};
    let pool = || {
        Layer::AvgPool2d(AvgPool2d {
            kernel: 2,
            stride: 2,
        })
    };
    let arch = Architecture {
        name: "lenet5".into(),
        input: Shape::Image(1, 28, 28),
        layers: vec![
            Layer::conv(1, 6, 5, 1, 2),
            Layer::Square,
            pool(),
            Layer::conv(6, 16, 5, 1, 0),
            Layer::Square,
            pool(),
            Layer::Flatten,
            Layer::linear(400, 120),
            Layer::Square,
            Layer::linear(120, 84),
            Layer::Square,
            Layer::linear(84, 10),
        ],
    };
    let p = check_arch(arch, 8192);
    let maps: Vec<&unseen_circuits::program::LinearMap> = p
        .ops
        .iter()
        .filter_map(|op| match op {
            unseen_circuits::Op::Linear(m) => Some(m),
            _ => None,
        })
        .collect();
    let diagonals: Vec<usize> = maps.iter().map(|m| m.diagonals.len()).collect();
    let rotations: Vec<usize> = maps.iter().map(|m| m.rotation_count()).collect();
    println!(
        "lenet5: {} rotations ({rotations:?} per map), diagonals per map {diagonals:?}",
        p.rotation_count()
    );
    assert!(diagonals[1] < 1000, "{diagonals:?}");
    assert!(p.rotation_count() <= 145, "{}", p.rotation_count());
}
