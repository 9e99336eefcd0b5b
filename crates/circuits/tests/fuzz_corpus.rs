//! The `circuits_eval_keys` fuzz target's check on stable: every committed seed of
//! `fuzz/corpus/circuits_eval_keys/` and a few thousand seeded mutations of each go through the
//! same check function as the cargo-fuzz target (`tests/roundtrip/mod.rs`): decoding never
//! panics, and whatever decodes re-encodes to the same bytes. Regenerate the seeds with
//! `UNSEEN_WRITE_CORPUS=1 cargo test -p unseen-circuits --test golden`.

mod roundtrip;

#[path = "../../../fuzz/support/replay.rs"]
mod replay;

#[test]
fn eval_keys() {
    for (target, check) in roundtrip::TARGETS {
        let (seeds, accepted) = replay::replay(env!("CARGO_MANIFEST_DIR"), target, *check, 2000);
        println!("{target}: {seeds} seeds, 2000 mutations of each good seed, {accepted} accepted");
    }
}
