//! Golden hashes of the evaluation-key bundle (`EvaluationKeys`, `POST /v1/keys`): bundles made
//! from a fixed seed at the smallest preset are pinned by their SHA-256, so that any change of a
//! byte (the bundle's header, or the CKKS keys inside it) fails this test. The CKKS formats
//! themselves are pinned in `crates/ckks/tests/golden.rs`.
//!
//! Changing the format on purpose: bump `keys::VERSION` if old bundles no longer load, run
//! `cargo test -p unseen-circuits --test golden`, paste the table it prints over [`GOLDEN`],
//! and rewrite the seed corpus of `circuits_eval_keys` (these bundles) with
//! `UNSEEN_WRITE_CORPUS=1 cargo test -p unseen-circuits --test golden`; commit both. The shared
//! machinery is `fuzz/support/golden.rs`.

mod roundtrip;

#[path = "../../../fuzz/support/golden.rs"]
mod golden;

use golden::Object;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use unseen_circuits::EvaluationKeys;
use unseen_ckks::{GaloisKeys, RelinKey, SecretKey};

/// Seed of the key randomness.
const SEED: u64 = 0x6576_616c_6b65_7973; // "evalkeys"

/// `(target/name, SHA-256 of the bytes)`; see the module documentation to update.
#[rustfmt::skip]
const GOLDEN: &[(&str, &str)] = &[
    ("circuits_eval_keys/no-rotations", "d3253ea67091e66d46fb5e3f803e4c2daff548108a81d96281fabaed8d7c1814"),
    ("circuits_eval_keys/two-rotations", "a88ddeca4ba5486c1c07edb26136d1384e64a789b0ba09f8ff726e7e0d4c2146"),
    ("circuits_eval_keys/bad-short-relin-length", "2a53737b6bbc1597949eb9b3d08887fa1c7b2813061aea5ce25cdc4a5d99c86c"),
];

fn objects() -> Vec<Object> {
    let params = roundtrip::ckks::params();
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let sk = SecretKey::generate(params, &mut rng);
    let relin = RelinKey::generate_for_level(&sk, 0, &mut rng);
    let bundle = |galois: GaloisKeys| {
        EvaluationKeys {
            relin: relin.clone(),
            galois,
        }
        .to_bytes()
    };
    let none = GaloisKeys::generate(&sk, &[], false, &mut rng);
    let two = GaloisKeys::generate_for_levels(&sk, &[(1, 0), (4, 0)], false, &mut rng);
    let no_rotations = bundle(none);
    let mut truncated_relin = no_rotations.clone();
    // the relinearisation key's length field claims one byte less: the key is cut short and its
    // last byte is read as the Galois keys
    let len = u64::from_le_bytes(truncated_relin[5..13].try_into().expect("8 bytes"));
    truncated_relin[5..13].copy_from_slice(&(len - 1).to_le_bytes());
    vec![
        Object::new("circuits_eval_keys", "no-rotations", no_rotations),
        Object::new("circuits_eval_keys", "two-rotations", bundle(two)),
        Object::new(
            "circuits_eval_keys",
            "bad-short-relin-length",
            truncated_relin,
        ),
    ]
}

#[test]
fn serialized_bytes_match_golden_hashes() {
    golden::check(
        env!("CARGO_MANIFEST_DIR"),
        &objects(),
        GOLDEN,
        roundtrip::TARGETS,
    );
}
