#![no_main]
//! Fuzzes `serialize::ciphertexts_from_bytes` (batch requests and replies) against the
//! reference preset, with at most 784 ciphertexts (a 28x28 batch).

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use unseen_ckks::{serialize::ciphertexts_from_bytes, Parameters, Preset};

fn params() -> &'static Arc<Parameters> {
    static P: OnceLock<Arc<Parameters>> = OnceLock::new();
    P.get_or_init(|| Parameters::preset(Preset::Cnn8192).expect("reference preset"))
}

fuzz_target!(|data: &[u8]| {
    let _ = ciphertexts_from_bytes(data, params(), 784);
});
