#![no_main]
//! Fuzzes `Parameters::from_bytes` (both with and without insecure sets allowed).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = unseen_ckks::Parameters::from_bytes(data, false);
    let _ = unseen_ckks::Parameters::from_bytes(data, true);
});
