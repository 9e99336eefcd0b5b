#![no_main]
//! `formats::read_keys_json` -> `write_keys_json` / `write_public_keys_json`. A text format with
//! canonical-form slack: whatever decodes must re-encode to a text that decodes to the same values
//! and re-encodes to itself. The check is `crates/paillier/tests/roundtrip/mod.rs`, which the
//! stable test `crates/paillier/tests/fuzz_corpus.rs` runs on the committed corpus.

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/paillier/tests/roundtrip/mod.rs"]
mod roundtrip;

fuzz_target!(|data: &[u8]| {
    roundtrip::check_keys_json(data);
});
