#![no_main]
//! Paillier key and ciphertext files: keys.json, phe's JWK, phe's encrypted numbers.
use libfuzzer_sys::fuzz_target;
use unseen_paillier::formats;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(keys) = formats::read_keys_json(text) {
        let _ = formats::read_encrypted_number(text, keys.public_key());
    }
    let _ = formats::read_public_jwk(text);
    let _ = formats::read_private_jwk(text);
});
