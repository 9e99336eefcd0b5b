//! Clients' CKKS evaluation keys on disk: content-addressed (the id is the SHA-256 of the
//! bundle), written atomically, bounded in total size with least-recently-used eviction, and
//! kept parsed in memory for the most recently used ones. Keys survive a restart.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use unseen_circuits::EvaluationKeys;
use unseen_ckks::Parameters;

use crate::lru::Lru;
use crate::ApiError;

/// The evaluation keys one served model needs: its parameters, the relinearisation key's level
/// and each rotation step with its key's level.
#[derive(Debug, Clone)]
pub struct KeyShape {
    /// Parameters of the model's circuit.
    pub params: Arc<Parameters>,
    /// Level of the relinearisation key.
    pub relin_level: usize,
    /// `(step, level)` of every Galois key.
    pub rotations: Vec<(i64, usize)>,
}

impl KeyShape {
    /// Whether `keys` are exactly these.
    pub fn matches(&self, keys: &EvaluationKeys) -> bool {
        keys.relin.params().same_as(&self.params)
            && keys.relin.level() == self.relin_level
            && keys.galois.galois_elements().len() == self.rotations.len()
            && self
                .rotations
                .iter()
                .all(|(step, level)| keys.galois.rotation_level(*step) == Some(*level))
    }
}

/// Sizes the store keeps to.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Largest key bundle accepted.
    pub max_key_bytes: u64,
    /// Total bytes of stored bundles; the least recently used go beyond that.
    pub max_total_bytes: u64,
    /// Parsed key sets kept in memory.
    pub loaded: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 1 << 30,
            max_total_bytes: 4 << 30,
            loaded: 8,
        }
    }
}

/// The key store of one server.
pub struct KeyStore {
    dir: PathBuf,
    limits: StoreLimits,
    /// Parameter sets keys may be made for (those of the served models).
    params: Vec<Arc<Parameters>>,
    /// The exact key sets the served models need (empty: any bundle for `params`).
    shapes: Vec<KeyShape>,
    /// Bytes stored after the last commit or eviction, and bundles evicted so far.
    stored: std::sync::atomic::AtomicU64,
    evictions: std::sync::atomic::AtomicU64,
    loaded: Lru<String, EvaluationKeys>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("dir", &self.dir)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Whether `id` looks like a key id (64 lowercase hex digits).
pub fn valid_id(id: &str) -> bool {
    id.len() == 64
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    tracing::error!("key store: {e}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "storage",
        "the key store failed (see the server log)",
    )
}

/// A bundle being received: a temporary file, its hash and its size so far.
pub struct Upload {
    tmp: PathBuf,
    file: std::fs::File,
    hash: Sha256,
    bytes: u64,
    max: u64,
}

impl Upload {
    /// Appends a chunk; refuses to grow past the size limit.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), ApiError> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.max {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("evaluation keys larger than {} bytes", self.max),
            ));
        }
        self.hash.update(chunk);
        self.file.write_all(chunk).map_err(internal)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // an upload that was not committed leaves nothing behind
        let _ = std::fs::remove_file(&self.tmp);
    }
}

impl KeyStore {
    /// Opens (creating) the store under `data_dir/keys`, removing leftovers of interrupted
    /// uploads.
    pub fn open(
        data_dir: &Path,
        params: Vec<Arc<Parameters>>,
        limits: StoreLimits,
    ) -> std::io::Result<Self> {
        let dir = data_dir.join("keys");
        std::fs::create_dir_all(&dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        for entry in std::fs::read_dir(&dir)?.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Self {
            dir,
            limits,
            params,
            shapes: Vec::new(),
            stored: Default::default(),
            evictions: Default::default(),
            loaded: Lru::new(limits.loaded),
        })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.keys"))
    }

    /// Bytes of stored bundles (as of the last upload) and bundles evicted since the start.
    pub fn usage(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.stored.load(Relaxed), self.evictions.load(Relaxed))
    }

    /// Key sets parsed in memory.
    pub fn loaded_sets(&self) -> usize {
        self.loaded.len()
    }

    /// Largest bundle accepted, in bytes.
    pub fn max_key_bytes(&self) -> u64 {
        self.limits.max_key_bytes
    }

    /// Replaces the accepted bundles by exactly those `shapes` describe: an upload must be the
    /// evaluation keys of one served model, no more and no less.
    pub fn expect_shapes(&mut self, shapes: Vec<KeyShape>) {
        self.shapes = shapes;
    }

    /// Starts receiving a bundle.
    pub fn begin(&self) -> Result<Upload, ApiError> {
        let mut nonce = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let tmp = self
            .dir
            .join(format!("upload-{}.part", u64::from_le_bytes(nonce)));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(internal)?;
        Ok(Upload {
            tmp,
            file,
            hash: Sha256::new(),
            bytes: 0,
            max: self.limits.max_key_bytes,
        })
    }

    fn parse(&self, bytes: &[u8]) -> Result<EvaluationKeys, ApiError> {
        let mut last = None;
        for p in &self.params {
            match EvaluationKeys::from_bytes(bytes, p) {
                Ok(k) => return Ok(k),
                Err(unseen_ckks::Error::ParametersMismatch) => {
                    last = Some("the keys were made for parameters this server does not use".into())
                }
                Err(e) => last = Some(e.to_string()),
            }
        }
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_keys",
            last.unwrap_or_else(|| "this server serves no encrypted model".into()),
        ))
    }

    /// Validates a received bundle and stores it under its id (blocking: parses the keys).
    /// Returns the id, the size and the keys.
    pub fn commit(
        &self,
        mut upload: Upload,
    ) -> Result<(String, u64, Arc<EvaluationKeys>), ApiError> {
        upload.file.sync_all().map_err(internal)?;
        let id: String = std::mem::take(&mut upload.hash)
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let bytes = std::fs::read(&upload.tmp).map_err(internal)?;
        let keys = Arc::new(self.parse(&bytes)?);
        if !self.shapes.is_empty() && !self.shapes.iter().any(|s| s.matches(&keys)) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "keys_mismatch",
                "these are not the evaluation keys of a served model: upload exactly the rotation keys, at the levels, and the relinearisation key that GET /v1/models/{name} lists",
            ));
        }
        let path = self.path(&id);
        std::fs::rename(&upload.tmp, &path).map_err(internal)?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.remember(&id, keys.clone());
        self.evict(&id);
        Ok((id, upload.bytes, keys))
    }

    /// The keys with this id, from memory or disk (blocking on a miss).
    pub fn get(&self, id: &str) -> Result<Arc<EvaluationKeys>, ApiError> {
        if !valid_id(id) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_key_id",
                "a key id is 64 lowercase hex digits (the SHA-256 of the key bundle)",
            ));
        }
        let path = self.path(id);
        let _ = std::fs::File::options()
            .write(true)
            .open(&path)
            .and_then(|f| f.set_modified(SystemTime::now()));
        if let Some(keys) = self.loaded.get(&id.to_string()) {
            return Ok(keys);
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_key",
                    format!("no evaluation keys with id {id}: register them with POST /v1/keys"),
                ))
            }
            Err(e) => return Err(internal(e)),
        };
        let keys = Arc::new(self.parse(&bytes)?);
        self.remember(id, keys.clone());
        Ok(keys)
    }

    fn remember(&self, id: &str, keys: Arc<EvaluationKeys>) {
        self.loaded.insert(id.to_string(), keys);
    }

    /// Removes the least recently used bundles until the total fits, never `keep`.
    fn evict(&self, keep: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf, String)> = entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_suffix(".keys")?.to_string();
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path(), id))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, len, path, id) in files {
            if total <= self.limits.max_total_bytes {
                break;
            }
            if id == keep {
                continue;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
                self.loaded.remove(&id);
                self.evictions
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(key_id = %id, "evicted evaluation keys");
            }
        }
        self.stored
            .store(total, std::sync::atomic::Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;
    use unseen_ckks::{GaloisKeys, Preset, RelinKey, SecretKey};

    fn bundle(params: &Arc<Parameters>) -> Vec<u8> {
        let sk = SecretKey::generate(params, &mut OsRng);
        EvaluationKeys {
            relin: RelinKey::generate(&sk, &mut OsRng),
            galois: GaloisKeys::generate(&sk, &[1], false, &mut OsRng),
        }
        .to_bytes()
    }

    fn put(store: &KeyStore, bytes: &[u8]) -> Result<String, ApiError> {
        let mut up = store.begin()?;
        for chunk in bytes.chunks(1000) {
            up.push(chunk)?;
        }
        store.commit(up).map(|(id, _, _)| id)
    }

    #[test]
    fn content_addressed_bounded_and_persistent() {
        let dir = std::env::temp_dir().join(format!("unseen-keystore-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let params = Parameters::preset(Preset::Small4096).expect("preset");
        let (a, b) = (bundle(&params), bundle(&params));
        let limits = StoreLimits {
            max_key_bytes: a.len() as u64 + 10,
            max_total_bytes: a.len() as u64 * 3 / 2,
            loaded: 1,
        };
        let store = KeyStore::open(&dir, vec![params.clone()], limits).expect("open");
        let ida = put(&store, &a).expect("a");
        assert_eq!(ida, unseen_hex_sha256(&a));
        assert!(store.get(&ida).is_ok());
        // the total cap evicts the least recently used bundle
        let idb = put(&store, &b).expect("b");
        assert_eq!(store.get(&ida).expect_err("evicted").code, "unknown_key");
        assert!(store.get(&idb).is_ok());
        // too large, or not keys: refused, nothing left behind
        let mut big = b.clone();
        big.extend_from_slice(&[0u8; 64]);
        assert_eq!(put(&store, &big).expect_err("too big").code, "too_large");
        assert_eq!(put(&store, &b[..100]).expect_err("bad").code, "bad_keys");
        let files: Vec<_> = std::fs::read_dir(dir.join("keys")).expect("dir").collect();
        assert_eq!(files.len(), 1);
        // a new store on the same folder finds the keys (from disk, not memory)
        drop(store);
        let store = KeyStore::open(&dir, vec![params], limits).expect("reopen");
        assert!(store.get(&idb).is_ok());
        assert_eq!(store.get("xyz").expect_err("bad id").code, "bad_key_id");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn unseen_hex_sha256(b: &[u8]) -> String {
        Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    }
}
