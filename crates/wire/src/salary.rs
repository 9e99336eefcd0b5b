//! The encrypted linear prediction: request and replies.
//!
//! Request (legacy TCP and HTTP alike), as python-paillier clients build it:
//! `{"public_key": {"n": N}, "values": [["<ciphertext>", <exponent>], ...]}`; `N` and the
//! ciphertexts may be JSON numbers or decimal strings, and a value may also be phe's
//! `{"v": "<ciphertext>", "e": <exponent>}`.
//!
//! Legacy reply: `{"pubkey": {"n": N}, "values": ["<ciphertext>", <exponent>]}` with no trailing
//! newline (the original client stops reading at the closing `]}`).
//! HTTP reply: `{"model": NAME, "value": {"v": "<ciphertext>", "e": <exponent>}}`.

use serde::Deserialize;
use serde_json::value::RawValue;
use unseen_paillier::formats::parse_json_integer;
use unseen_paillier::{EncryptedNumber, Integer};

use crate::WireError;

/// Most values accepted in one request.
pub const MAX_VALUES: usize = 10_000;

/// A parsed prediction request: the client's modulus and its encrypted features.
#[derive(Debug, Clone, PartialEq)]
pub struct PredictRequest {
    /// The client's public modulus `n`.
    pub n: Integer,
    /// `(ciphertext, exponent)` per feature.
    pub values: Vec<(Integer, i32)>,
}

#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(borrow)]
    public_key: RawKey<'a>,
    #[serde(borrow)]
    values: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawKey<'a> {
    #[serde(borrow)]
    n: &'a RawValue,
}

#[derive(Deserialize)]
struct RawObjectItem<'a> {
    #[serde(borrow)]
    v: &'a RawValue,
    e: i64,
}

fn bad(code: &'static str, message: impl Into<String>) -> WireError {
    WireError::new(code, message)
}

impl PredictRequest {
    /// Parses a request body.
    pub fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let raw: RawRequest = serde_json::from_slice(bytes).map_err(|e| {
            let what = if e.is_syntax() || e.is_eof() { "malformed JSON" } else { "wrong request shape" };
            bad("bad_request", format!("{what}: {e} (expected {{\"public_key\": {{\"n\": N}}, \"values\": [[\"<ciphertext>\", <exponent>], ...]}})"))
        })?;
        let n = parse_json_integer(raw.public_key.n, "public_key.n")
            .map_err(|e| bad("bad_key", e.to_string()))?;
        if raw.values.is_empty() {
            return Err(bad("bad_request", "values is empty"));
        }
        if raw.values.len() > MAX_VALUES {
            return Err(bad(
                "too_large",
                format!("{} values, at most {MAX_VALUES} accepted", raw.values.len()),
            ));
        }
        let mut values = Vec::with_capacity(raw.values.len());
        for (i, item) in raw.values.iter().enumerate() {
            let text = item.get();
            let pair = serde_json::from_str::<(&RawValue, i64)>(text).ok();
            let object = || {
                serde_json::from_str::<RawObjectItem>(text)
                    .ok()
                    .map(|o| (o.v, o.e))
            };
            let (v, e) = pair.or_else(object).ok_or_else(|| {
                bad("bad_request", format!("values[{i}] must be [\"<ciphertext>\", <exponent>] or {{\"v\": ..., \"e\": ...}}"))
            })?;
            let c = parse_json_integer(v, &format!("values[{i}] ciphertext"))
                .map_err(|e| bad("bad_ciphertext", e.to_string()))?;
            let e = i32::try_from(e).map_err(|_| {
                bad(
                    "bad_ciphertext",
                    format!("values[{i}] exponent {e} is out of range"),
                )
            })?;
            values.push((c, e));
        }
        Ok(Self { n, values })
    }

    /// The request body a client sends for encrypted features (python's `json.dumps` layout).
    pub fn to_json(values: &[EncryptedNumber]) -> String {
        let n = values
            .first()
            .map(|v| v.public_key().n().to_string())
            .unwrap_or_default();
        let items: Vec<String> = values
            .iter()
            .map(|v| format!("[\"{}\", {}]", v.ciphertext(), v.exponent()))
            .collect();
        format!(
            "{{\"public_key\": {{\"n\": {n}}}, \"values\": [{}]}}",
            items.join(", ")
        )
    }
}

/// The legacy reply, byte-compatible with the original server's `json.dumps` output.
pub fn legacy_reply(result: &EncryptedNumber) -> String {
    format!(
        "{{\"pubkey\": {{\"n\": {}}}, \"values\": [\"{}\", {}]}}",
        result.public_key().n(),
        result.ciphertext(),
        result.exponent()
    )
}

/// A legacy error reply (the connection is closed after it).
pub fn legacy_error(err: &WireError) -> String {
    serde_json::json!({"error": {"code": err.code, "message": err.message}}).to_string()
}

/// Parses a legacy reply into `(n, ciphertext, exponent)`.
pub fn parse_legacy_reply(bytes: &[u8]) -> Result<(Integer, Integer, i32), WireError> {
    #[derive(Deserialize)]
    struct Reply<'a> {
        #[serde(borrow)]
        pubkey: RawKey<'a>,
        #[serde(borrow)]
        values: (&'a RawValue, i64),
    }
    #[derive(Deserialize)]
    struct ErrorReply {
        error: ErrorBody,
    }
    #[derive(Deserialize)]
    struct ErrorBody {
        message: String,
    }
    if let Ok(err) = serde_json::from_slice::<ErrorReply>(bytes) {
        return Err(bad(
            "server_error",
            format!("server refused the request: {}", err.error.message),
        ));
    }
    let r: Reply = serde_json::from_slice(bytes)
        .map_err(|e| bad("bad_reply", format!("unexpected reply: {e}")))?;
    let n =
        parse_json_integer(r.pubkey.n, "pubkey.n").map_err(|e| bad("bad_reply", e.to_string()))?;
    let c = parse_json_integer(r.values.0, "reply ciphertext")
        .map_err(|e| bad("bad_reply", e.to_string()))?;
    let e =
        i32::try_from(r.values.1).map_err(|_| bad("bad_reply", "reply exponent out of range"))?;
    Ok((n, c, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_phe_client_layouts() {
        let r = PredictRequest::parse(
            br#"{"public_key": {"n": 77}, "values": [["123", 0], ["5", -13]]}"#,
        )
        .expect("parse");
        assert_eq!(r.n, 77);
        assert_eq!(
            r.values,
            vec![(Integer::from(123), 0), (Integer::from(5), -13)]
        );
        let r = PredictRequest::parse(
            br#"{"public_key": {"n": "77"}, "values": [{"v": "9", "e": 2}]}"#,
        )
        .expect("parse");
        assert_eq!(r.values, vec![(Integer::from(9), 2)]);
    }

    #[test]
    fn rejects_bad_requests_with_codes() {
        let cases: &[(&[u8], &str)] = &[
            (b"not json", "bad_request"),
            (br#"{"public_key": {"n": 77}}"#, "bad_request"),
            (
                br#"{"public_key": {"n": -77}, "values": [["1", 0]]}"#,
                "bad_key",
            ),
            (
                br#"{"public_key": {"n": 7.5}, "values": [["1", 0]]}"#,
                "bad_key",
            ),
            (br#"{"public_key": {"n": 77}, "values": []}"#, "bad_request"),
            (
                br#"{"public_key": {"n": 77}, "values": [["x", 0]]}"#,
                "bad_ciphertext",
            ),
            (
                br#"{"public_key": {"n": 77}, "values": [["1", 99999999999]]}"#,
                "bad_ciphertext",
            ),
            (
                br#"{"public_key": {"n": 77}, "values": [["1", 1e400]]}"#,
                "bad_request",
            ),
            (
                br#"{"public_key": {"n": 77}, "values": [[1, 2, 3]]}"#,
                "bad_request",
            ),
            (
                br#"{"public_key": {"n": 77}, "values": "abc"}"#,
                "bad_request",
            ),
        ];
        for (body, code) in cases {
            let got = PredictRequest::parse(body).map(|_| ()).map_err(|e| e.code);
            assert_eq!(got, Err(*code), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn legacy_reply_ends_with_bracket_brace() {
        let err = legacy_error(&WireError::new("bad_json", "x"));
        assert!(err.starts_with("{\"error\""));
        assert!(parse_legacy_reply(err.as_bytes()).is_err());
        let (n, c, e) =
            parse_legacy_reply(br#"{"pubkey": {"n": 77}, "values": ["12", -3]}"#).expect("parse");
        assert_eq!((n, c, e), (Integer::from(77), Integer::from(12), -3));
    }
}
