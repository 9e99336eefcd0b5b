#![no_main]
//! `EvaluationKeys::from_bytes` -> `to_bytes` (the bundle a server receives on `POST /v1/keys`),
//! at the smallest preset: whatever decodes must re-encode to exactly the input bytes. The check
//! is `crates/circuits/tests/roundtrip/mod.rs`, which the stable test
//! `crates/circuits/tests/fuzz_corpus.rs` runs on the committed corpus.

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/circuits/tests/roundtrip/mod.rs"]
mod roundtrip;

fuzz_target!(|data: &[u8]| {
    roundtrip::check_eval_keys(data);
});
