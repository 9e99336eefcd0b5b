//! Golden hashes of the Paillier text formats (`keys.json`, public and private JWK,
//! encrypted-number JSON): what the writers make of a throw-away key from a fixed seed, and of
//! numbers encrypted with a fixed seed, is pinned by its SHA-256, so that any change of a byte
//! fails this test. The writers' output must also be canonical: exactly its own re-encoding.
//!
//! Changing a format on purpose (mind python-paillier compatibility): run `cargo test -p
//! unseen-paillier --test golden`, paste the table it prints over [`GOLDEN`], and rewrite the
//! seed corpus of the `paillier_*` fuzz targets (these objects) with `UNSEEN_WRITE_CORPUS=1
//! cargo test -p unseen-paillier --test golden`; commit both. The shared machinery is
//! `fuzz/support/golden.rs`.
//!
//! Encryptions use `Randomness::Standard`: with `Randomness::FixedBase` (the default), the
//! key's fixed base is drawn from the OS on first use, whatever RNG the caller passes, so those
//! ciphertexts cannot be reproduced from a seed.

mod roundtrip;

#[path = "../../../fuzz/support/golden.rs"]
mod golden;

use golden::Object;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use roundtrip::{fixture_key, KID};
use unseen_paillier::{formats, EncryptedNumber, Integer, Randomness, Scalar};

/// Seed of the encryption randomness.
const SEED: u64 = 0x6e75_6d62_6572; // "number"

/// `(target/name, SHA-256 of the bytes)`; see the module documentation to update.
#[rustfmt::skip]
const GOLDEN: &[(&str, &str)] = &[
    ("paillier_keys_json/private", "919b06dbd15ad5cf0d9b47c40efd4988dea88f3e5eaff09af9a6ef8774ccea18"),
    ("paillier_keys_json/public", "92c4ba5b7ac6c99f4ddb23ea194bbf5cbadffb2616c2d8f1029cf8a91d4f8123"),
    ("paillier_keys_json/lenient-strings", "ef790c83dec633c1c517ae29079f45a929fef5285d323829ca80f325ea3943f9"),
    ("paillier_public_jwk/public", "3a210c780966e5a8bbe8be641a64cd81343e26612f9f8df787730349303c5617"),
    ("paillier_public_jwk/lenient-padded", "274fc72cc2c4e1f22850d2922f3a149dc2632a80c0dd47f9acd84dade88f75a3"),
    ("paillier_private_jwk/private", "787618da3be3e99231b1f75d4163f3eb9afd502cd00e7e82a6ca211098d00023"),
    ("paillier_private_jwk/lenient-swapped", "6a6086ca51d48a1ee68061d7d17ff630f41b5dfd5c70e355a76569a4fa3bdeb8"),
    ("paillier_encrypted_number/int", "7178999d35cd740e16cae484d8224759c73ac1178d6fea00f9cd548da966c508"),
    ("paillier_encrypted_number/float", "6d4b113b071d4483d734f5e45d2e96c9ae96f866edabf32a0cea7bcea8bc492c"),
    ("paillier_encrypted_number/big-negative", "57fcb95ae2f9175935fe4295807f9e836604f00045c47a88d82a706df28e957f"),
    ("paillier_encrypted_number/lenient-number", "3de1e3a1c16a3b1247330cc3ef7df797e1b64438e64980b8293a75414fafa957"),
];

/// Objects named `lenient-*` are accepted but not canonical (decimal strings, other key order,
/// whitespace, padding, unknown fields): seeds for the fuzzer's slack paths.
fn objects() -> Vec<Object> {
    let sk = fixture_key();
    let pk = sk.public_key();
    let (n, p, q) = (pk.n(), sk.p(), sk.q());
    let b64 = |x: &Integer| formats::int_to_base64(x);
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    let mut encrypt = |x: Scalar| {
        formats::write_encrypted_number(
            &EncryptedNumber::encrypt(pk, &x, Randomness::Standard, &mut rng).expect("encrypt"),
        )
    };
    let int = encrypt(Scalar::from(42));
    let float = encrypt(Scalar::Float(-1.25));
    let big = encrypt(Scalar::Int(Integer::from(-1) << 100u32));
    vec![
        Object::new("paillier_keys_json", "private", formats::write_keys_json(sk)),
        Object::new(
            "paillier_keys_json",
            "public",
            formats::write_public_keys_json(pk),
        ),
        Object::new(
            "paillier_keys_json",
            "lenient-strings",
            format!(
                "{{ \"private_key\" : {{\"q\": \"{p}\", \"p\": \"00{q}\"}},\n \"public_key\": {{\"n\": \"{n}\", \"x\": 1}} }}"
            ),
        ),
        Object::new(
            "paillier_public_jwk",
            "public",
            formats::public_jwk(pk, KID).to_string(),
        ),
        Object::new(
            "paillier_public_jwk",
            "lenient-padded",
            format!(
                "{{\"n\": \"{}==\", \"alg\": \"PAI-GN1\", \"kty\": \"DAJ\"}}",
                b64(n)
            ),
        ),
        Object::new(
            "paillier_private_jwk",
            "private",
            formats::private_jwk(sk, KID),
        ),
        Object::new(
            "paillier_private_jwk",
            "lenient-swapped",
            format!(
                "{{\"kty\": \"DAJ\", \"p\": \"{}\", \"q\": \"{}\", \"pub\": {{\"kty\": \"DAJ\", \"alg\": \"PAI-GN1\", \"n\": \"{}\"}}}}",
                b64(q),
                b64(p),
                b64(n)
            ),
        ),
        Object::new("paillier_encrypted_number", "int", int),
        Object::new("paillier_encrypted_number", "float", float.clone()),
        Object::new("paillier_encrypted_number", "big-negative", big),
        Object::new(
            "paillier_encrypted_number",
            "lenient-number",
            float.replace("\"v\": \"", "\"v\": ").replace("\", \"e\"", ", \"e\""),
        ),
    ]
}

#[test]
fn serialized_bytes_match_golden_hashes() {
    let objects = objects();
    golden::check(
        env!("CARGO_MANIFEST_DIR"),
        &objects,
        GOLDEN,
        roundtrip::TARGETS,
    );
    for o in &objects {
        let again = roundtrip::reencode(o.target, &o.bytes).expect("accepted");
        let canonical = again.as_bytes() == o.bytes;
        assert_eq!(
            canonical,
            !o.name.starts_with("lenient-"),
            "{}/{}: canonical = {canonical}\n{}\n{again}",
            o.target,
            o.name,
            String::from_utf8_lossy(&o.bytes)
        );
    }
}
