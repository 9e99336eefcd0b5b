//! The fuzz targets' checks on stable: every committed seed of `fuzz/corpus/ckks_*/` and a few
//! thousand seeded mutations of each (bit flips, overwritten fields, truncations, appended,
//! removed and inserted bytes) go through the same check functions as the cargo-fuzz targets
//! (`tests/roundtrip/mod.rs`): decoding never panics, and whatever decodes re-encodes to the same
//! bytes. Regenerate the seeds with `UNSEEN_WRITE_CORPUS=1 cargo test -p unseen-ckks --test
//! golden`.

mod roundtrip;

#[path = "../../../fuzz/support/replay.rs"]
mod replay;

fn run(target: &str, mutations: usize) {
    let (_, check) = roundtrip::TARGETS
        .iter()
        .find(|(t, _)| *t == target)
        .expect("target");
    let (seeds, accepted) = replay::replay(env!("CARGO_MANIFEST_DIR"), target, *check, mutations);
    println!(
        "{target}: {seeds} seeds, {mutations} mutations of each good seed, {accepted} accepted"
    );
}

#[test]
fn parameters() {
    run("ckks_parameters", 2000);
}

#[test]
fn ciphertext() {
    run("ckks_ciphertext", 2000);
}

#[test]
fn ciphertext_list() {
    run("ckks_ciphertext_list", 2000);
}

#[test]
fn public_key() {
    run("ckks_public_key", 2000);
}

#[test]
fn secret_key() {
    run("ckks_secret_key", 2000);
}

#[test]
fn relin_key() {
    run("ckks_relin_key", 2000);
}

#[test]
fn galois_keys() {
    run("ckks_galois_keys", 2000);
}

/// Every target of `roundtrip::TARGETS` has a test above (and a corpus folder).
#[test]
fn every_target_is_replayed() {
    let here = include_str!("fuzz_corpus.rs");
    for (target, _) in roundtrip::TARGETS {
        assert!(
            here.contains(&format!("run(\"{target}\"")),
            "{target} is not replayed"
        );
    }
}
