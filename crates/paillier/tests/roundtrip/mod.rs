//! Decode -> encode checks of the Paillier text formats (python-paillier's `keys.json`, its
//! public and private JWK, its encrypted-number JSON), shared by the cargo-fuzz targets
//! `fuzz/fuzz_targets/paillier_*.rs` (through `#[path]`) and the stable replay of the committed
//! seed corpus (`tests/fuzz_corpus.rs`).
//!
//! These formats have canonical-form slack, so the check is the weaker one: an accepted input
//! need not re-encode to its own bytes, but its re-encoding must decode to the same values and
//! re-encode to exactly the same bytes again (decode -> encode is a fixed point after one step).
//! The slack: JSON whitespace, key order and unknown fields; integers as JSON numbers or decimal
//! strings, with leading zeros; base64 integers with leading zero bytes or `=` padding; JWK
//! fields that are not kept (`kid`, `key_ops`, `alg` of the private key); the order of `p` and
//! `q`. What the writers produce has no slack: `tests/golden.rs` checks that their output is
//! its own re-encoding ([`reencode`]).
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use unseen_paillier::formats::{self, KeyFile};
use unseen_paillier::{Integer, PrivateKey, PublicKey};

/// `kid` of the JWKs written by the re-encoding (JWK readers drop it).
pub const KID: &str = "unseen";

/// Seed and size of the throw-away key that encrypted numbers are decoded against.
pub const FIXTURE_SEED: u64 = 0x7061_696c_6c69_6572; // "paillier"
/// Far below a secure size: only to keep the inputs short.
pub const FIXTURE_BITS: u32 = 256;

/// A check: decodes bytes, returns whether they were accepted, panics on a broken round trip.
pub type Check = fn(&[u8]) -> bool;

/// The fuzz targets of this file with their checks, for the corpus replay.
pub const TARGETS: &[(&str, Check)] = &[
    ("paillier_keys_json", check_keys_json),
    ("paillier_public_jwk", check_public_jwk),
    ("paillier_private_jwk", check_private_jwk),
    ("paillier_encrypted_number", check_encrypted_number),
];

/// The throw-away key pair, made once from [`FIXTURE_SEED`].
pub fn fixture_key() -> &'static PrivateKey {
    static K: OnceLock<PrivateKey> = OnceLock::new();
    K.get_or_init(|| {
        PrivateKey::generate_insecure(FIXTURE_BITS, &mut ChaCha20Rng::seed_from_u64(FIXTURE_SEED))
            .expect("fixture key")
    })
}

/// Decodes a text and re-encodes it: the decoded values and the canonical text.
type Reencode = fn(&str) -> Option<(Vec<Integer>, String)>;

fn keys_json(text: &str) -> Option<(Vec<Integer>, String)> {
    Some(match formats::read_keys_json(text).ok()? {
        KeyFile::Public(pk) => (vec![pk.n().clone()], formats::write_public_keys_json(&pk)),
        KeyFile::Private(sk) => (private_values(&sk), formats::write_keys_json(&sk)),
    })
}

fn public_jwk(text: &str) -> Option<(Vec<Integer>, String)> {
    let pk: Arc<PublicKey> = formats::read_public_jwk(text).ok()?;
    Some((
        vec![pk.n().clone()],
        formats::public_jwk(&pk, KID).to_string(),
    ))
}

fn private_jwk(text: &str) -> Option<(Vec<Integer>, String)> {
    let sk = formats::read_private_jwk(text).ok()?;
    Some((private_values(&sk), formats::private_jwk(&sk, KID)))
}

fn encrypted_number(text: &str) -> Option<(Vec<Integer>, String)> {
    let x = formats::read_encrypted_number(text, fixture_key().public_key()).ok()?;
    Some((
        vec![x.ciphertext().clone(), Integer::from(x.exponent())],
        formats::write_encrypted_number(&x),
    ))
}

fn private_values(sk: &PrivateKey) -> Vec<Integer> {
    vec![sk.public_key().n().clone(), sk.p().clone(), sk.q().clone()]
}

/// The re-encoding of `data` by `target`'s writer (`None`: rejected).
pub fn reencode(target: &str, data: &[u8]) -> Option<String> {
    let f: Reencode = match target {
        "paillier_keys_json" => keys_json,
        "paillier_public_jwk" => public_jwk,
        "paillier_private_jwk" => private_jwk,
        "paillier_encrypted_number" => encrypted_number,
        other => panic!("unknown target {other}"),
    };
    f(std::str::from_utf8(data).ok()?).map(|(_, text)| text)
}

fn check(what: &str, data: &[u8], f: Reencode) -> bool {
    let Some((values, canonical)) = std::str::from_utf8(data).ok().and_then(f) else {
        return false;
    };
    let Some((again, twice)) = f(&canonical) else {
        panic!("{what}: the re-encoding of an accepted input is rejected: {canonical}");
    };
    assert!(
        again == values,
        "{what}: the re-encoding decodes to other values: {canonical}"
    );
    assert!(
        twice == canonical,
        "{what}: re-encoding is not stable:\n{canonical}\n{twice}"
    );
    true
}

/// `read_keys_json` -> `write_keys_json` (or `write_public_keys_json`).
pub fn check_keys_json(data: &[u8]) -> bool {
    check("keys.json", data, keys_json)
}

/// `read_public_jwk` -> `public_jwk`.
pub fn check_public_jwk(data: &[u8]) -> bool {
    check("public JWK", data, public_jwk)
}

/// `read_private_jwk` -> `private_jwk`.
pub fn check_private_jwk(data: &[u8]) -> bool {
    check("private JWK", data, private_jwk)
}

/// `read_encrypted_number` (under the fixture key) -> `write_encrypted_number`.
pub fn check_encrypted_number(data: &[u8]) -> bool {
    check("encrypted number", data, encrypted_number)
}
