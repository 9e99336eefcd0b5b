#![no_main]
//! Fuzzes `EvaluationKeys::from_bytes` (the bundle a server receives on `POST /v1/keys`)
//! against the reference preset.

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use unseen_circuits::EvaluationKeys;
use unseen_ckks::{Parameters, Preset};

fn params() -> &'static Arc<Parameters> {
    static P: OnceLock<Arc<Parameters>> = OnceLock::new();
    P.get_or_init(|| Parameters::preset(Preset::Cnn8192).expect("reference preset"))
}

fuzz_target!(|data: &[u8]| {
    let _ = EvaluationKeys::from_bytes(data, params());
});
