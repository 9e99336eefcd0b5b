//! The `paillier_*` fuzz targets' checks on stable: every committed seed of
//! `fuzz/corpus/paillier_*/` and a few thousand seeded mutations of each go through the same
//! check functions as the cargo-fuzz targets (`tests/roundtrip/mod.rs`): decoding never panics,
//! and whatever decodes re-encodes to a canonical text that decodes to the same values and
//! re-encodes to itself. Regenerate the seeds with `UNSEEN_WRITE_CORPUS=1 cargo test -p
//! unseen-paillier --test golden`.

mod roundtrip;

#[path = "../../../fuzz/support/replay.rs"]
mod replay;

#[test]
fn text_formats() {
    for (target, check) in roundtrip::TARGETS {
        let (seeds, accepted) = replay::replay(env!("CARGO_MANIFEST_DIR"), target, *check, 2000);
        println!("{target}: {seeds} seeds, 2000 mutations of each good seed, {accepted} accepted");
    }
}
