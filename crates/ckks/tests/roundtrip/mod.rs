//! Decode -> encode round-trip checks of every CKKS binary format, shared by the cargo-fuzz
//! targets (`fuzz/fuzz_targets/ckks_*.rs` include this file with `#[path]`) and the stable
//! replay of the committed seed corpus (`tests/fuzz_corpus.rs`), so that both run the same code.
//!
//! Every check decodes arbitrary bytes and returns whether they were accepted. It panics (a
//! finding for the fuzzer, a failure for the test) when an accepted input does not re-encode to
//! exactly the same bytes. The format has no canonical-form slack, so the check is the strict
//! one: fixed-width little-endian integers, polynomials packed at the exact bit width of each
//! prime with every coefficient checked below its prime (`N * bits` is a multiple of 8, so no
//! padding bits), the scale as raw `f64` bits, flags and the insecure marker restricted to
//! 0/1, no trailing bytes, Galois keys in increasing order of their element. A second decode of
//! the re-encoding is therefore not needed.
//!
//! The objects are checked against [`params`] (`Preset::Small4096`, the smallest preset), the
//! parameters the committed seeds are made for.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use unseen_ckks::serialize::{ciphertexts_from_bytes, ciphertexts_to_bytes};
use unseen_ckks::{Ciphertext, GaloisKeys, Parameters, Preset, PublicKey, RelinKey, SecretKey};

/// The preset every CKKS target decodes against.
pub const PRESET: Preset = Preset::Small4096;

/// Most ciphertexts accepted in a list (a 28x28 batch, what the server accepts).
pub const MAX_LIST: usize = 784;

/// A check: decodes bytes, returns whether they were accepted, panics on a broken round trip.
pub type Check = fn(&[u8]) -> bool;

/// The fuzz targets of this file with their checks, for the corpus replay.
pub const TARGETS: &[(&str, Check)] = &[
    ("ckks_parameters", check_parameters),
    ("ckks_ciphertext", check_ciphertext),
    ("ckks_ciphertext_list", check_ciphertext_list),
    ("ckks_public_key", check_public_key),
    ("ckks_secret_key", check_secret_key),
    ("ckks_relin_key", check_relin_key),
    ("ckks_galois_keys", check_galois_keys),
];

/// [`PRESET`], built once.
pub fn params() -> &'static Arc<Parameters> {
    static P: OnceLock<Arc<Parameters>> = OnceLock::new();
    P.get_or_init(|| Parameters::preset(PRESET).expect("smallest preset"))
}

fn same(what: &str, input: &[u8], reencoded: &[u8]) {
    if input != reencoded {
        let at = input
            .iter()
            .zip(reencoded)
            .position(|(a, b)| a != b)
            .unwrap_or(input.len().min(reencoded.len()));
        panic!(
            "{what}: accepted input of {} bytes re-encodes to {} different bytes (first difference at byte {at})",
            input.len(),
            reencoded.len()
        );
    }
}

/// `Parameters::from_bytes` (insecure sets allowed, to reach every field) -> `to_bytes`.
pub fn check_parameters(data: &[u8]) -> bool {
    let Ok(p) = Parameters::from_bytes(data, true) else {
        return false;
    };
    same("parameters", data, &p.to_bytes());
    true
}

/// `Ciphertext::from_bytes` -> `to_bytes` (seeded or full).
pub fn check_ciphertext(data: &[u8]) -> bool {
    let Ok(ct) = Ciphertext::from_bytes(data, params()) else {
        return false;
    };
    same("ciphertext", data, &ct.to_bytes());
    assert_eq!(ct.serialized_size(), data.len(), "ciphertext size");
    true
}

/// `serialize::ciphertexts_from_bytes` -> `ciphertexts_to_bytes` (image batches, batch replies).
pub fn check_ciphertext_list(data: &[u8]) -> bool {
    let Ok(cts) = ciphertexts_from_bytes(data, params(), MAX_LIST) else {
        return false;
    };
    same("ciphertext list", data, &ciphertexts_to_bytes(&cts));
    true
}

/// `PublicKey::from_bytes` -> `to_bytes`.
pub fn check_public_key(data: &[u8]) -> bool {
    let Ok(pk) = PublicKey::from_bytes(data, params()) else {
        return false;
    };
    same("public key", data, &pk.to_bytes());
    true
}

/// `SecretKey::from_bytes` -> `to_bytes`.
pub fn check_secret_key(data: &[u8]) -> bool {
    let Ok(sk) = SecretKey::from_bytes(data, params()) else {
        return false;
    };
    same("secret key", data, &sk.to_bytes());
    true
}

/// `RelinKey::from_bytes` -> `to_bytes`.
pub fn check_relin_key(data: &[u8]) -> bool {
    let Ok(rlk) = RelinKey::from_bytes(data, params()) else {
        return false;
    };
    same("relinearisation key", data, &rlk.to_bytes());
    true
}

/// `GaloisKeys::from_bytes` -> `to_bytes`, and the per-key sizes add up.
pub fn check_galois_keys(data: &[u8]) -> bool {
    let Ok(gk) = GaloisKeys::from_bytes(data, params()) else {
        return false;
    };
    same("Galois keys", data, &gk.to_bytes());
    let keys: usize = gk.key_sizes().iter().map(|s| s.bytes).sum();
    assert_eq!(keys + 18, data.len(), "Galois key sizes");
    true
}
