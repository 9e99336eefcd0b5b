//! API tokens: who may use the HTTP API, and for what.
//!
//! A token file lists one entry per token, with the token's SHA-256 (the token itself is never
//! stored), its tenant and its scopes:
//!
//! ```json
//! [{"tenant": "acme", "sha256": "<64 hex digits>", "scopes": ["infer", "keys"],
//!   "quota_bytes": 1073741824}]
//! ```
//!
//! `quota_bytes` (optional) is the tenant's share of the key store; without it the server's
//! `--tenant-quota` applies. `expires` (optional, seconds since 1970) ends the token's validity:
//! after it the token gets `401 token_expired`.
//!
//! Clients send `Authorization: Bearer <token>`. The presented token is hashed and compared with
//! every entry in constant time, so neither the timing nor an early exit tells how much of a
//! guess was right. `unseen token new` makes a token and its entry.

use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Predictions and encrypted inference.
    Infer,
    /// Registering evaluation keys.
    Keys,
    /// Everything.
    Admin,
}

/// One token's entry in the token file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Who holds it.
    pub tenant: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// What it allows.
    pub scopes: Vec<Scope>,
    /// The tenant's key-store quota in bytes (`None`: the server's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quota_bytes: Option<u64>,
    /// When the token stops being valid, in seconds since 1970 (`None`: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

/// The tokens a server accepts.
#[derive(Clone)]
pub struct Tokens {
    entries: Vec<([u8; 32], TokenEntry)>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("entries", &self.entries.len())
            .finish()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Hex SHA-256 of a token, as the token file stores it.
pub fn token_sha256(token: &str) -> String {
    digest(token).iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token (256 bits from the OS CSPRNG, hex, prefixed `unseen_`).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("unseen_{hex}")
}

fn parse_hex(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Tokens {
    /// Parses a token file (a JSON list of [`TokenEntry`]).
    pub fn parse(text: &str) -> Result<Self, String> {
        let list: Vec<TokenEntry> =
            serde_json::from_str(text).map_err(|e| format!("not a token list: {e}"))?;
        if list.is_empty() {
            return Err("the token list is empty".into());
        }
        let mut entries = Vec::with_capacity(list.len());
        for (i, e) in list.into_iter().enumerate() {
            let hash = parse_hex(&e.sha256.to_ascii_lowercase())
                .ok_or_else(|| format!("entry {i}: sha256 must be 64 hex digits"))?;
            if e.tenant.trim().is_empty() || e.scopes.is_empty() {
                return Err(format!(
                    "entry {i}: a tenant and at least one scope are needed"
                ));
            }
            entries.push((hash, e));
        }
        Ok(Self { entries })
    }

    /// The entry of `token`, if any: every entry is compared, in constant time.
    pub fn check(&self, token: &str) -> Option<&TokenEntry> {
        let presented = digest(token);
        let mut found = None;
        for (hash, entry) in &self.entries {
            let diff = hash
                .iter()
                .zip(&presented)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            // no branch on secret data beyond the final, whole-hash comparison
            if std::hint::black_box(diff) == 0 {
                found = Some(entry);
            }
        }
        found
    }
}

impl TokenEntry {
    /// Whether the token's validity has ended.
    pub fn expired(&self) -> bool {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(u64::MAX);
        self.expires.is_some_and(|t| now >= t)
    }

    /// Whether the token allows `scope`.
    pub fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_by_hash_and_scope() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(a.starts_with("unseen_") && a.len() == 71);
        let file = format!(
            "[{{\"tenant\": \"acme\", \"sha256\": \"{}\", \"scopes\": [\"infer\"]}},
              {{\"tenant\": \"ops\", \"sha256\": \"{}\", \"scopes\": [\"admin\"]}}]",
            token_sha256(&a),
            token_sha256(&b).to_uppercase()
        );
        let tokens = Tokens::parse(&file).expect("parse");
        let acme = tokens.check(&a).expect("a is known");
        assert_eq!(acme.tenant, "acme");
        assert!(acme.allows(Scope::Infer) && !acme.allows(Scope::Keys));
        assert!(tokens.check(&b).expect("b").allows(Scope::Keys));
        assert!(tokens.check("unseen_guess").is_none());
        assert!(tokens.check(&a[..a.len() - 1]).is_none());
        assert!(!format!("{tokens:?}").contains(&token_sha256(&a)));
        for bad in [
            "",
            "[]",
            "[{\"tenant\": \"x\", \"sha256\": \"12\", \"scopes\": [\"infer\"]}]",
            &format!(
                "[{{\"tenant\": \"x\", \"sha256\": \"{}\", \"scopes\": []}}]",
                token_sha256(&a)
            ),
            "[{\"tenant\": \"x\", \"sha256\": \"00\", \"scopes\": [\"root\"]}]",
        ] {
            assert!(Tokens::parse(bad).is_err(), "{bad}");
        }
    }
}
