#![no_main]
//! Fuzzes `RelinKey::from_bytes` against the reference preset. Seed the corpus
//! with a few valid objects (e.g. from the crate's tests) so that the
//! fuzzer gets past the parameter fingerprint.

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use unseen_ckks::{Parameters, Preset, RelinKey};

fn params() -> &'static Arc<Parameters> {
    static P: OnceLock<Arc<Parameters>> = OnceLock::new();
    P.get_or_init(|| Parameters::preset(Preset::Cnn8192).expect("reference preset"))
}

fuzz_target!(|data: &[u8]| {
    let _ = RelinKey::from_bytes(data, params());
});
