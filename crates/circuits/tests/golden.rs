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
    ("circuits_eval_keys/no-rotations", "9f27cc7eac3eebca01e579d9a43f5b30aea3bdc83291ae89cd67db146145b91f"),
    ("circuits_eval_keys/two-rotations", "791e34c6a647389b7fbf144322c1875e6877e6a3f4531b03442edf09ff0193df"),
    ("circuits_eval_keys/bad-short-relin-length", "4a3bff78af2c30f190988f7a3f9383a6bc6a67b29990146db93c59f3ff2f6ee8"),
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
