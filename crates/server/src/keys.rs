//! A bounded cache of client public keys, so that the fixed-base table used to re-randomise
//! results is built once per client key rather than once per request.

use std::sync::Arc;

use unseen_paillier::{Integer, PublicKey};

use crate::lru::Lru;

/// Least-recently-used map from modulus to validated public key.
#[derive(Debug)]
pub struct KeyCache {
    keys: Lru<Integer, PublicKey>,
}

impl KeyCache {
    /// A cache holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            keys: Lru::new(capacity),
        }
    }

    /// The validated key for modulus `n`, from the cache or newly checked: at least `min_bits`
    /// and at most `max_bits` bits (a huge fresh modulus per request would make every request
    /// build a costly table and flush the cache).
    pub fn get_or_insert(
        &self,
        n: Integer,
        min_bits: u32,
        max_bits: u32,
    ) -> Result<Arc<PublicKey>, unseen_paillier::Error> {
        if let Some(key) = self.keys.get(&n) {
            return Ok(key);
        }
        if n.significant_bits() > max_bits {
            return Err(unseen_paillier::Error::InvalidKey(format!(
                "a {}-bit modulus is above this server's limit of {max_bits} bits",
                n.significant_bits()
            )));
        }
        let key = Arc::new(PublicKey::from_n(n.clone(), min_bits)?);
        Ok(self.keys.insert(n, key))
    }

    /// Keys currently cached.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
