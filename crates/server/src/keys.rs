//! A bounded cache of client public keys, so that the fixed-base table used to re-randomise
//! results is built once per client key rather than once per request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use unseen_paillier::{Integer, PublicKey};

/// Least-recently-used map from modulus to validated public key.
#[derive(Debug)]
pub struct KeyCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    tick: u64,
    map: HashMap<Integer, (Arc<PublicKey>, u64)>,
}

impl KeyCache {
    /// A cache holding at most `capacity` keys (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// The validated key for modulus `n`, from the cache or newly checked with `min_bits`.
    pub fn get_or_insert(
        &self,
        n: Integer,
        min_bits: u32,
    ) -> Result<Arc<PublicKey>, unseen_paillier::Error> {
        {
            let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
            inner.tick += 1;
            let tick = inner.tick;
            if let Some(entry) = inner.map.get_mut(&n) {
                entry.1 = tick;
                return Ok(entry.0.clone());
            }
        }
        let key = Arc::new(PublicKey::from_n(n.clone(), min_bits)?);
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner.tick += 1;
        let tick = inner.tick;
        if inner.map.len() >= self.capacity && !inner.map.contains_key(&n) {
            if let Some(oldest) = inner
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                inner.map.remove(&oldest);
            }
        }
        let entry = inner.map.entry(n).or_insert((key, tick));
        Ok(entry.0.clone())
    }

    /// Keys currently cached.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .map
            .len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
