//! A small thread-safe least-recently-used map of shared values, for the caches of client keys.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};

/// At most `capacity` entries; using or inserting an entry makes it the most recent, and an
/// insertion past the capacity drops the least recent.
#[derive(Debug)]
pub struct Lru<K, V> {
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

#[derive(Debug)]
struct Inner<K, V> {
    tick: u64,
    map: HashMap<K, (Arc<V>, u64)>,
}

impl<K: Eq + Hash + Clone, V> Lru<K, V> {
    /// An empty map holding at most `capacity` entries (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                tick: 0,
                map: HashMap::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The value for `key`, now the most recently used.
    pub fn get(&self, key: &K) -> Option<Arc<V>> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        inner.map.get_mut(key).map(|entry| {
            entry.1 = tick;
            entry.0.clone()
        })
    }

    /// Inserts `value` unless `key` is present; returns the value now stored for `key`.
    pub fn insert(&self, key: K, value: Arc<V>) -> Arc<V> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if inner.map.len() >= self.capacity && !inner.map.contains_key(&key) {
            if let Some(oldest) = inner
                .map
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            {
                inner.map.remove(&oldest);
            }
        }
        let entry = inner.map.entry(key).or_insert((value, tick));
        entry.1 = tick;
        entry.0.clone()
    }

    /// Drops `key`.
    pub fn remove(&self, key: &K) {
        self.lock().map.remove(key);
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recently_used() {
        let lru = Lru::new(2);
        lru.insert(1, Arc::new("a"));
        lru.insert(2, Arc::new("b"));
        assert_eq!(lru.get(&1).as_deref(), Some(&"a"));
        lru.insert(3, Arc::new("c"));
        assert!(lru.get(&2).is_none());
        assert_eq!(lru.len(), 2);
        // an existing entry is kept, not replaced
        assert_eq!(*lru.insert(1, Arc::new("z")), "a");
        lru.remove(&1);
        assert!(lru.get(&1).is_none());
        assert!(!lru.is_empty());
    }
}
