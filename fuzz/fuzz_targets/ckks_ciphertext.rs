#![no_main]
//! `Ciphertext::from_bytes` -> `to_bytes` (seeded and full ciphertexts; single-image requests
//! and replies), at the smallest preset: whatever decodes must re-encode to exactly the input
//! bytes. The check is `crates/ckks/tests/roundtrip/mod.rs`, which the stable test
//! `crates/ckks/tests/fuzz_corpus.rs` runs on the committed corpus.

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/ckks/tests/roundtrip/mod.rs"]
mod roundtrip;

fuzz_target!(|data: &[u8]| {
    roundtrip::check_ciphertext(data);
});
