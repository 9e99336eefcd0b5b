//! Decode -> encode round-trip check of the evaluation-key bundle (`EvaluationKeys`, what a
//! server receives on `POST /v1/keys`), shared by the cargo-fuzz target
//! `fuzz/fuzz_targets/circuits_eval_keys.rs` (through `#[path]`) and the stable replay of the
//! committed seed corpus (`tests/fuzz_corpus.rs`).
//!
//! Strict round trip, like the CKKS objects inside the bundle: the bundle adds a magic, a
//! version byte and the relinearisation key's exact length, so an accepted input re-encodes to
//! exactly its bytes. The keys are decoded against the CKKS checks' preset (the smallest one).
#![allow(dead_code)]

#[path = "../../../ckks/tests/roundtrip/mod.rs"]
pub mod ckks;

use unseen_circuits::EvaluationKeys;

/// A check: decodes bytes, returns whether they were accepted, panics on a broken round trip.
pub type Check = fn(&[u8]) -> bool;

/// The fuzz targets of this file with their checks, for the corpus replay.
pub const TARGETS: &[(&str, Check)] = &[("circuits_eval_keys", check_eval_keys)];

/// `EvaluationKeys::from_bytes` -> `to_bytes`.
pub fn check_eval_keys(data: &[u8]) -> bool {
    let Ok(keys) = EvaluationKeys::from_bytes(data, ckks::params()) else {
        return false;
    };
    let again = keys.to_bytes();
    assert!(
        again == data,
        "evaluation keys: accepted input of {} bytes re-encodes to {} different bytes",
        data.len(),
        again.len()
    );
    true
}
