//! Levels, scales and key levels planned for the shipped architectures.

use rand::SeedableRng;
use unseen_circuits::{
    compile_single, output_headroom_bits, sum_stages, CkksPlan, Op, DEFAULT_OUTPUT_HEADROOM_BITS,
};
use unseen_ckks::{Parameters, Preset};
use unseen_model::{Architecture, Network};

fn program(arch: &str, slots: usize) -> unseen_circuits::Program {
    let net = Network::init(
        Architecture::named(arch).expect("arch"),
        &mut rand_chacha::ChaCha8Rng::seed_from_u64(1),
    )
    .expect("init");
    compile_single(&net, slots).expect("compile")
}

#[test]
fn ciphernet_starts_as_low_as_its_depth_and_keeps_output_headroom() {
    let params = Parameters::preset(Preset::Cnn8192).expect("preset");
    for arch in ["ciphernet", "ciphernet-wide"] {
        let p = program(arch, params.slots());
        let plan = CkksPlan::new(&params, &p).expect("plan");
        assert_eq!(plan.start_level, p.depth(), "{arch}");
        assert!(plan.start_level < params.max_level(), "{arch}");
        // the first square is the second level-consuming op
        assert_eq!(plan.relin_level, Some(plan.start_level - 1), "{arch}");
        // every key is needed at or below the start level, conv keys exactly there
        assert!(plan.rotation_keys.values().all(|l| *l <= plan.start_level));
        let first = p.ops[0].rotation_steps(params.slots());
        assert!(!first.is_empty(), "{arch}");
        for s in &first {
            assert_eq!(plan.rotation_keys[s], plan.start_level, "{arch} step {s}");
        }
        // outputs fit the last prime with the promised headroom, at a useful scale
        let end = plan.scales[p.depth()].log2();
        assert!(
            end + f64::from(DEFAULT_OUTPUT_HEADROOM_BITS) + 1.0 <= params.log_q_at(0),
            "{arch}: output scale 2^{end}"
        );
        assert!(end >= 16.0, "{arch}: output scale 2^{end}");
        assert_eq!(plan.input_scale(), params.default_scale());
    }
}

#[test]
fn circuits_that_do_not_fit_are_refused_before_any_key() {
    let small = Parameters::preset(Preset::Small4096).expect("preset");
    let cnn = Parameters::preset(Preset::Cnn8192).expect("preset");
    // packed for other slots
    let p = program("ciphernet", cnn.slots());
    assert!(matches!(
        CkksPlan::new(&small, &p),
        Err(unseen_circuits::Error::DoesNotFit(_))
    ));
    // deeper than the preset
    let mut deep = p.clone();
    for _ in 0..cnn.max_level() {
        deep.ops.push(Op::Square);
    }
    let err = CkksPlan::new(&cnn, &deep).expect_err("too deep");
    assert!(err.to_string().contains("levels"), "{err}");
}

#[test]
fn a_calibrated_output_bound_buys_precision() {
    let params = Parameters::preset(Preset::Cnn8192).expect("preset");
    let mut p = program("ciphernet", params.slots());
    let default = CkksPlan::new(&params, &p).expect("plan");
    // logits of at most 50 need 8 bits of headroom (4x margin): two bits more output scale
    p.output_bound = Some(50.0);
    assert_eq!(output_headroom_bits(p.output_bound), 8);
    let calibrated = CkksPlan::new(&params, &p).expect("plan");
    let d = p.depth();
    let gained = (calibrated.scales[d] / default.scales[d]).log2();
    assert!((gained - 2.0).abs() < 1e-9, "{gained}");
    assert!(calibrated.scales[d].log2() + 8.0 + 1.0 <= params.log_q_at(0));
    // nonsense bounds fall back to the default
    for b in [f64::NAN, -1.0, 0.0, f64::INFINITY] {
        assert_eq!(output_headroom_bits(Some(b)), DEFAULT_OUTPUT_HEADROOM_BITS);
    }
    // a bound too large for the last prime at a useful scale is refused
    p.output_bound = Some(1e6);
    assert!(CkksPlan::new(&params, &p).is_err());
}

/// The key layouts: the mixed layout (the default) pairs the digits of exactly the keys of the
/// steps no linear map hoists, which makes its keys smaller than one prime per digit and larger
/// than paired digits everywhere.
#[test]
fn the_mixed_layout_pairs_the_keys_no_map_hoists() {
    use unseen_circuits::{KeyDigits, KeyLayout};
    let params = Parameters::preset(Preset::Cnn8192).expect("preset");
    let p = program("ciphernet", params.slots());
    let mut plan = CkksPlan::new(&params, &p).expect("plan");
    assert_eq!(plan.key_layout, KeyLayout::Mixed);
    // hoisted: every map's non-zero baby steps, and nothing else
    let babies = &plan.hoisted_steps;
    assert!(!babies.is_empty());
    for op in &p.ops {
        if let Op::Linear(m) = op {
            assert!(m.baby_steps().iter().all(|b| *b == 0 || babies.contains(b)));
        }
    }
    let is_baby = |s: &usize| {
        p.ops
            .iter()
            .any(|o| matches!(o, Op::Linear(m) if m.baby_steps().contains(s)))
    };
    assert!(babies.iter().all(|s| *s != 0 && is_baby(s)));
    let keys = plan.galois_keys();
    // the required keys only (no rotate-and-sum shortcuts with these digits)
    assert_eq!(keys.len(), plan.rotation_keys.len());
    for &(step, level, digits) in &keys {
        assert_eq!(plan.rotation_keys[&(step as usize)], level);
        let want = if babies.contains(&(step as usize)) {
            KeyDigits::PerPrime
        } else {
            KeyDigits::Paired
        };
        assert_eq!(digits, want, "step {step}");
    }
    // some keys of each kind, among them the first convolution's (not hoisted)
    assert!(keys.iter().any(|k| k.2 == KeyDigits::Paired));
    let first = p.ops[0].rotation_steps(params.slots());
    assert!(first.iter().all(|s| !babies.contains(s)));
    assert_eq!(KeyLayout::Mixed.relin(), KeyDigits::PerPrime);
    for layout in [KeyLayout::PerPrime, KeyLayout::Paired] {
        plan.key_layout = layout;
        let want = if layout == KeyLayout::Paired {
            KeyDigits::Paired
        } else {
            KeyDigits::PerPrime
        };
        assert!(plan.galois_keys().iter().all(|k| k.2 == want));
        assert_eq!(layout.relin(), want);
    }
    // the keys themselves, by their memory
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let sk = unseen_ckks::SecretKey::generate(&params, &mut rng);
    let mut memory = |layout| {
        plan.key_layout = layout;
        let keys = plan.make_keys(&sk, &mut rng);
        keys.relin.memory_bytes() + keys.galois.memory_bytes()
    };
    let (mixed, per_prime, paired) = (
        memory(KeyLayout::Mixed),
        memory(KeyLayout::PerPrime),
        memory(KeyLayout::Paired),
    );
    assert!(
        paired < mixed && mixed < per_prime,
        "{paired} {mixed} {per_prime}"
    );
}

/// A rotate-and-sum in hoisted stages adds exactly the chain's `2^count` rotations (as a
/// multiset of offsets), two doublings per stage.
#[test]
fn hoisted_sum_stages_add_the_chains_rotations() {
    let slots = 4096;
    assert!(sum_stages(16, 0, slots).is_empty());
    assert_eq!(sum_stages(16, 1, slots), vec![vec![16]]);
    assert_eq!(sum_stages(16, 2, slots), vec![vec![16, 32, 48]]);
    assert_eq!(
        sum_stages(256, 4, slots),
        vec![vec![256, 512, 768], vec![1024, 2048, 3072]]
    );
    assert_eq!(
        sum_stages(1024, 3, slots),
        vec![vec![1024, 2048, 3072], vec![0]]
    );
    // offsets reached, with multiplicity: the chain doubles the set of offsets per step
    let offsets = |stages: &[Vec<usize>]| {
        let mut at = vec![0usize];
        for stage in stages {
            let mut next = at.clone();
            for s in stage {
                next.extend(at.iter().map(|a| (a + s) % slots));
            }
            at = next;
        }
        at.sort_unstable();
        at
    };
    for step in [1usize, 3, 64, 256, 1000, 2048] {
        for count in 0..=7 {
            let mut chain: Vec<usize> = (0..1usize << count).map(|k| (k * step) % slots).collect();
            chain.sort_unstable();
            let stages = sum_stages(step, count, slots);
            assert_eq!(offsets(&stages), chain, "step {step} count {count}");
            assert_eq!(stages.len(), count.div_ceil(2));
        }
    }
}

/// The shortcut keys of hoisted rotate-and-sums, by key layout: with one prime per digit every
/// one, each at the level of its stage's other keys (so that one decomposition serves all
/// three); with the other layouts none but those the program needs anyway.
#[test]
fn sum_shortcuts_are_made_as_the_layout_says() {
    use unseen_circuits::KeyLayout;
    let params = Parameters::preset(Preset::Cnn8192).expect("preset");
    let p = program("ciphernet", params.slots());
    let mut plan = CkksPlan::new(&params, &p).expect("plan");
    let start = plan.start_level;
    // ciphernet: its first convolution sums 16 blocks of 256 at the start level, its dense
    // layers 4 chunks of 64 and of 16
    let shortcuts: Vec<(usize, (usize, usize))> =
        plan.sum_shortcuts.iter().map(|(s, p)| (*s, *p)).collect();
    assert_eq!(
        shortcuts,
        vec![
            (48, (16, 32)),
            (192, (64, 128)),
            (768, (256, 512)),
            (3072, (1024, 2048))
        ]
    );
    // each at the level of its stage's keys
    assert_eq!(plan.rotation_keys[&16], plan.rotation_keys[&32]);
    assert_eq!(plan.rotation_keys[&64], start - 2);
    assert_eq!(plan.rotation_keys[&256], start);
    let made = |plan: &CkksPlan| -> Vec<(i64, usize)> {
        plan.galois_key_levels()
            .into_iter()
            .filter(|(s, _)| !plan.rotation_keys.contains_key(&(*s as usize)))
            .collect()
    };
    let level_of = |plan: &CkksPlan, step: i64| {
        plan.galois_key_levels()
            .into_iter()
            .find(|(s, _)| *s == step)
            .map(|(_, l)| l)
    };
    // 48 is required anyway (a giant step), at the level of 16 and 32
    assert_eq!(level_of(&plan, 48), Some(plan.rotation_keys[&16]));
    for layout in [KeyLayout::Mixed, KeyLayout::Paired] {
        plan.key_layout = layout;
        assert!(made(&plan).is_empty(), "{layout:?}");
        assert_eq!(plan.galois_key_levels().len(), plan.rotation_keys.len());
    }
    plan.key_layout = KeyLayout::PerPrime;
    assert_eq!(
        made(&plan),
        vec![(192, start - 2), (768, start), (3072, start)]
    );
}
