//! File and message formats shared with python-paillier and the original salary service.
//!
//! * `keys.json`: `{"public_key": {"n": N}, "private_key": {"p": P, "q": Q}}` with the integers
//!   as JSON numbers (decimal strings are accepted on input).
//! * phe's JWK keys (`pheutil genpkey`/`extract`): `kty` "DAJ", `alg` "PAI-GN1", integers in
//!   unpadded base64url of their big-endian bytes.
//! * phe's encrypted-number JSON (`pheutil encrypt`): `{"v": "<ciphertext>", "e": exponent}`.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rug::integer::Order;
use rug::Integer;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::ciphertext::EncryptedNumber;
use crate::keys::{PrivateKey, PublicKey};
use crate::{Error, Result};

/// Largest decimal integer accepted from JSON (enough for an 8192-bit `n^2`).
const MAX_DIGITS: usize = 5000;

/// Parses a JSON value that holds a non-negative integer, as a number or a decimal string.
pub fn parse_json_integer(raw: &RawValue, what: &str) -> Result<Integer> {
    let text = raw.get().trim();
    let digits = if let Some(inner) = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
        inner
    } else {
        text
    };
    parse_decimal(digits, what)
}

/// Parses a non-negative decimal integer of bounded length.
pub fn parse_decimal(digits: &str, what: &str) -> Result<Integer> {
    if digits.is_empty() || digits.len() > MAX_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Error::Format(format!(
            "{what} must be a non-negative decimal integer of at most {MAX_DIGITS} digits"
        )));
    }
    Integer::from_str_radix(digits, 10).map_err(|e| Error::Format(format!("{what}: {e}")))
}

#[derive(Deserialize)]
struct KeysJson<'a> {
    #[serde(borrow)]
    public_key: NJson<'a>,
    #[serde(borrow)]
    private_key: Option<PqJson<'a>>,
}
#[derive(Deserialize)]
struct NJson<'a> {
    #[serde(borrow)]
    n: &'a RawValue,
}
#[derive(Deserialize)]
struct PqJson<'a> {
    #[serde(borrow)]
    p: &'a RawValue,
    #[serde(borrow)]
    q: &'a RawValue,
}

/// The content of a `keys.json` file: a public key and, when present, the private key.
#[derive(Debug)]
pub enum KeyFile {
    /// Only `public_key`.
    Public(Arc<PublicKey>),
    /// Both halves.
    Private(Box<PrivateKey>),
}

impl KeyFile {
    /// The public key in either case.
    pub fn public_key(&self) -> &Arc<PublicKey> {
        match self {
            KeyFile::Public(pk) => pk,
            KeyFile::Private(sk) => sk.public_key(),
        }
    }
}

/// Reads the `keys.json` layout of the original salary service.
pub fn read_keys_json(text: &str) -> Result<KeyFile> {
    let parsed: KeysJson = serde_json::from_str(text)
        .map_err(|e| Error::Format(format!("not a keys.json file ({{\"public_key\": {{\"n\": N}}, \"private_key\": {{\"p\": P, \"q\": Q}}}}): {e}")))?;
    let n = parse_json_integer(parsed.public_key.n, "public_key.n")?;
    let pk = Arc::new(PublicKey::from_n(n, 16)?);
    match parsed.private_key {
        None => Ok(KeyFile::Public(pk)),
        Some(pq) => {
            let p = parse_json_integer(pq.p, "private_key.p")?;
            let q = parse_json_integer(pq.q, "private_key.q")?;
            Ok(KeyFile::Private(Box::new(PrivateKey::with_public(
                pk, p, q,
            )?)))
        }
    }
}

/// Writes the `keys.json` layout (integers as JSON numbers, like Python's `json.dump`).
pub fn write_keys_json(sk: &PrivateKey) -> String {
    format!(
        "{{\"public_key\": {{\"n\": {}}}, \"private_key\": {{\"p\": {}, \"q\": {}}}}}",
        sk.public_key().n(),
        sk.p(),
        sk.q()
    )
}

/// Writes only the public half in the `keys.json` layout.
pub fn write_public_keys_json(pk: &PublicKey) -> String {
    format!("{{\"public_key\": {{\"n\": {}}}}}", pk.n())
}

/// phe's `int_to_base64`: unpadded base64url of the big-endian bytes.
pub fn int_to_base64(x: &Integer) -> String {
    URL_SAFE_NO_PAD.encode(x.to_digits::<u8>(Order::Msf))
}

/// phe's `base64_to_int` (padding optional).
pub fn base64_to_int(s: &str, what: &str) -> Result<Integer> {
    let trimmed = s.trim_end_matches('=');
    if trimmed.len() > MAX_DIGITS * 2 {
        return Err(Error::Format(format!("{what} is too long")));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|e| Error::Format(format!("{what} is not base64url: {e}")))?;
    Ok(Integer::from_digits(&bytes, Order::Msf))
}

#[derive(Deserialize)]
struct JwkPublic {
    kty: String,
    alg: Option<String>,
    n: String,
}

#[derive(Deserialize)]
struct JwkPrivate {
    kty: String,
    p: String,
    q: String,
    #[serde(rename = "pub")]
    public: JwkPublic,
}

fn check_kty(kty: &str) -> Result<()> {
    if kty != "DAJ" {
        return Err(Error::Format(format!(
            "JWK kty is '{kty}', expected 'DAJ' (a Paillier key)"
        )));
    }
    Ok(())
}

/// Reads a phe public JWK (`{"kty": "DAJ", "alg": "PAI-GN1", "n": ...}`).
pub fn read_public_jwk(text: &str) -> Result<Arc<PublicKey>> {
    let jwk: JwkPublic = serde_json::from_str(text)
        .map_err(|e| Error::Format(format!("not a Paillier public JWK: {e}")))?;
    public_from_jwk(&jwk)
}

fn public_from_jwk(jwk: &JwkPublic) -> Result<Arc<PublicKey>> {
    check_kty(&jwk.kty)?;
    if jwk.alg.as_deref() != Some("PAI-GN1") {
        return Err(Error::Format(
            "JWK alg must be 'PAI-GN1' (Paillier with g = n + 1)".into(),
        ));
    }
    Ok(Arc::new(PublicKey::from_n(
        base64_to_int(&jwk.n, "n")?,
        16,
    )?))
}

/// Reads a phe private JWK (`{"kty": "DAJ", "p": ..., "q": ..., "pub": {...}}`).
pub fn read_private_jwk(text: &str) -> Result<PrivateKey> {
    let jwk: JwkPrivate = serde_json::from_str(text)
        .map_err(|e| Error::Format(format!("not a Paillier private JWK: {e}")))?;
    check_kty(&jwk.kty)?;
    let pk = public_from_jwk(&jwk.public)?;
    PrivateKey::with_public(pk, base64_to_int(&jwk.p, "p")?, base64_to_int(&jwk.q, "q")?)
}

/// A phe public JWK for `pk` with the given key id.
pub fn public_jwk(pk: &PublicKey, kid: &str) -> serde_json::Value {
    serde_json::json!({
        "kty": "DAJ",
        "alg": "PAI-GN1",
        "key_ops": ["encrypt"],
        "n": int_to_base64(pk.n()),
        "kid": kid,
    })
}

/// A phe private JWK (with the public JWK under `pub`), as `pheutil genpkey` writes it.
pub fn private_jwk(sk: &PrivateKey, kid: &str) -> String {
    let value = serde_json::json!({
        "kty": "DAJ",
        "key_ops": ["decrypt"],
        "p": int_to_base64(sk.p()),
        "q": int_to_base64(sk.q()),
        "pub": public_jwk(sk.public_key(), kid),
        "kid": kid,
    });
    value.to_string()
}

#[derive(Deserialize)]
struct EncryptedJson<'a> {
    #[serde(borrow)]
    v: &'a RawValue,
    e: i64,
}

/// Reads phe's encrypted-number JSON `{"v": "<ciphertext>", "e": exponent}`.
pub fn read_encrypted_number(text: &str, pk: &Arc<PublicKey>) -> Result<EncryptedNumber> {
    let parsed: EncryptedJson = serde_json::from_str(text).map_err(|e| {
        Error::Format(format!(
            "not an encrypted number ({{\"v\": ..., \"e\": ...}}): {e}"
        ))
    })?;
    let c = parse_json_integer(parsed.v, "v")?;
    let e = i32::try_from(parsed.e).map_err(|_| Error::ExponentRange(parsed.e))?;
    EncryptedNumber::new(pk.clone(), c, e)
}

/// Writes phe's encrypted-number JSON (the same text `pheutil` writes).
pub fn write_encrypted_number(x: &EncryptedNumber) -> String {
    format!("{{\"v\": \"{}\", \"e\": {}}}", x.ciphertext(), x.exponent())
}
