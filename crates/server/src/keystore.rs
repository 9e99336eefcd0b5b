//! Clients' CKKS evaluation keys on disk: content-addressed (the id is the SHA-256 of the
//! bundle), written atomically, kept parsed in memory for the most recently used ones, and
//! owned by tenants. Keys survive a restart.
//!
//! Each bundle records its owners (the tenants that uploaded it) and when each last used it, in
//! a small `<id>.owners` file beside it. A tenant sees only its own bundles, and its bundles
//! count against its quota: an upload past the quota evicts that tenant's least recently used
//! bundles, never another tenant's. A bundle's file goes once no tenant owns it. When the whole
//! store is full, an upload is refused (`507`) rather than evicting someone else's keys.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use unseen_circuits::EvaluationKeys;
use unseen_ckks::Parameters;

use crate::lru::Lru;
use crate::ApiError;

/// What can go wrong in the key store. Storage knows nothing of HTTP; [`ApiError`] maps these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The bundle is larger than any accepted.
    #[error("evaluation keys larger than {max} bytes")]
    TooLarge {
        /// The largest bundle accepted.
        max: u64,
    },
    /// The bundle does not fit in the tenant's quota even after evicting its other bundles.
    #[error("evaluation keys of {bytes} bytes do not fit in tenant '{tenant}''s key-store quota of {quota} bytes")]
    OverQuota {
        /// Who uploaded.
        tenant: String,
        /// The bundle's size.
        bytes: u64,
        /// The tenant's quota.
        quota: u64,
    },
    /// The store as a whole is full of other tenants' keys.
    #[error("the key store is full ({total} of {max} bytes in use by other bundles); try later or ask the operator")]
    Full {
        /// Bytes in use.
        total: u64,
        /// The store's size.
        max: u64,
    },
    /// Not a key bundle for any served parameters.
    #[error("{0}")]
    BadKeys(String),
    /// Keys, but not the exact set a served model needs.
    #[error("these are not the evaluation keys of a served model: upload exactly the rotation keys, at the levels, and the relinearisation key that GET /v1/models/{{name}} lists")]
    Mismatch,
    /// Not a key id.
    #[error("a key id is 64 lowercase hex digits (the SHA-256 of the key bundle)")]
    BadId,
    /// No bundle with this id owned by the tenant.
    #[error("no evaluation keys with id {0}: register them with POST /v1/keys")]
    Unknown(String),
    /// The disk failed (details in the server log, not in the reply).
    #[error("the key store failed (see the server log)")]
    Io,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let (status, code) = match &e {
            StoreError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            StoreError::OverQuota { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "over_quota"),
            StoreError::Full { .. } => (StatusCode::INSUFFICIENT_STORAGE, "store_full"),
            StoreError::BadKeys(_) => (StatusCode::BAD_REQUEST, "bad_keys"),
            StoreError::Mismatch => (StatusCode::BAD_REQUEST, "keys_mismatch"),
            StoreError::BadId => (StatusCode::BAD_REQUEST, "bad_key_id"),
            StoreError::Unknown(_) => (StatusCode::NOT_FOUND, "unknown_key"),
            StoreError::Io => (StatusCode::INTERNAL_SERVER_ERROR, "storage"),
        };
        ApiError::new(status, code, e.to_string())
    }
}

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
    /// Total bytes of stored bundles; uploads beyond it are refused.
    pub max_total_bytes: u64,
    /// Bytes of bundles one tenant may own, unless its token entry says otherwise; its least
    /// recently used bundles go beyond that.
    pub tenant_bytes: u64,
    /// Parsed key sets kept in memory.
    pub loaded: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            max_key_bytes: 1 << 30,
            max_total_bytes: 4 << 30,
            tenant_bytes: 2 << 30,
            loaded: 8,
        }
    }
}

/// Who stores or uses keys: a tenant's name and its quota (`None`: the store's default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    /// The tenant.
    pub tenant: String,
    /// Its key-store quota in bytes.
    pub quota: Option<u64>,
}

impl Owner {
    /// The single tenant of a server without tokens: everyone who reaches it, with the whole
    /// store as quota (so its least recently used bundles make room).
    pub fn open() -> Self {
        Self {
            tenant: OPEN_TENANT.into(),
            quota: Some(u64::MAX),
        }
    }
}

/// The tenant of a server without tokens, and of bundles stored before owners were recorded.
pub const OPEN_TENANT: &str = "open";

/// One stored bundle: its size and, per owner, when it last used it (milliseconds since 1970).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Entry {
    #[serde(skip)]
    bytes: u64,
    owners: BTreeMap<String, u64>,
}

/// The key store of one server.
pub struct KeyStore {
    dir: PathBuf,
    limits: StoreLimits,
    /// Parameter sets keys may be made for (those of the served models).
    params: Vec<Arc<Parameters>>,
    /// The exact key sets the served models need (empty: any bundle for `params`).
    shapes: Vec<KeyShape>,
    /// Every stored bundle by id.
    index: Mutex<HashMap<String, Entry>>,
    /// Bytes stored after the last change, and bundles evicted so far.
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

fn io(e: impl std::fmt::Display) -> StoreError {
    tracing::error!("key store: {e}");
    StoreError::Io
}

/// Milliseconds since 1970, strictly increasing across calls (so uses in the same millisecond
/// keep their order).
fn now_ms() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |p| {
            Some(wall.max(p + 1))
        })
        .unwrap_or(0);
    wall.max(prev + 1)
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
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.bytes += chunk.len() as u64;
        if self.bytes > self.max {
            return Err(StoreError::TooLarge { max: self.max });
        }
        self.hash.update(chunk);
        self.file.write_all(chunk).map_err(io)
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
    /// uploads and reading every bundle's owners (bundles without an owners file belong to
    /// [`OPEN_TENANT`]).
    pub fn open(
        data_dir: &Path,
        params: Vec<Arc<Parameters>>,
        limits: StoreLimits,
    ) -> std::io::Result<Self> {
        let dir = data_dir.join("keys");
        std::fs::create_dir_all(&dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let mut index = HashMap::new();
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".part") || name.ends_with(".tmp") {
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            let Some(id) = name.strip_suffix(".keys").filter(|id| valid_id(id)) else {
                continue;
            };
            let meta = entry.metadata()?;
            let mut e: Entry = std::fs::read(dir.join(format!("{id}.owners")))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            if e.owners.is_empty() {
                let used = meta
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                    .map(|d| d.as_millis() as u64)
                    .unwrap_or(0);
                e.owners.insert(OPEN_TENANT.into(), used);
            }
            e.bytes = meta.len();
            index.insert(id.to_string(), e);
        }
        // owners files whose bundle is gone
        for entry in std::fs::read_dir(&dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".owners") {
                if !index.contains_key(id) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let total: u64 = index.values().map(|e| e.bytes).sum();
        Ok(Self {
            dir,
            limits,
            params,
            shapes: Vec::new(),
            index: Mutex::new(index),
            stored: total.into(),
            evictions: Default::default(),
            loaded: Lru::new(limits.loaded),
        })
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.keys"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes a bundle's owners atomically (temporary file, then rename).
    fn save_owners(&self, id: &str, entry: &Entry) -> Result<(), StoreError> {
        let tmp = self.dir.join(format!("{id}.owners.tmp"));
        let text = serde_json::to_vec(entry).map_err(io)?;
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, self.dir.join(format!("{id}.owners"))).map_err(io)
    }

    /// Bytes of stored bundles and bundles evicted since the start.
    pub fn usage(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (self.stored.load(Relaxed), self.evictions.load(Relaxed))
    }

    /// Bytes of the bundles `tenant` owns.
    pub fn tenant_usage(&self, tenant: &str) -> u64 {
        self.lock()
            .values()
            .filter(|e| e.owners.contains_key(tenant))
            .map(|e| e.bytes)
            .sum()
    }

    /// Key sets parsed in memory.
    pub fn loaded_sets(&self) -> usize {
        self.loaded.len()
    }

    /// Largest bundle accepted, in bytes.
    pub fn max_key_bytes(&self) -> u64 {
        self.limits.max_key_bytes
    }

    /// The quota of `owner`, in bytes.
    pub fn quota(&self, owner: &Owner) -> u64 {
        owner
            .quota
            .unwrap_or(self.limits.tenant_bytes)
            .min(self.limits.max_total_bytes)
    }

    /// Refuses at once a declared upload size that could never be stored for `owner`.
    pub fn check_size(&self, owner: &Owner, bytes: u64) -> Result<(), StoreError> {
        if bytes > self.limits.max_key_bytes {
            return Err(StoreError::TooLarge {
                max: self.limits.max_key_bytes,
            });
        }
        let quota = self.quota(owner);
        if bytes > quota {
            return Err(StoreError::OverQuota {
                tenant: owner.tenant.clone(),
                bytes,
                quota,
            });
        }
        Ok(())
    }

    /// Replaces the accepted bundles by exactly those `shapes` describe: an upload must be the
    /// evaluation keys of one served model, no more and no less.
    pub fn expect_shapes(&mut self, shapes: Vec<KeyShape>) {
        self.shapes = shapes;
    }

    /// Starts receiving a bundle.
    pub fn begin(&self) -> Result<Upload, StoreError> {
        let mut nonce = [0u8; 8];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let tmp = self
            .dir
            .join(format!("upload-{}.part", u64::from_le_bytes(nonce)));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(io)?;
        Ok(Upload {
            tmp,
            file,
            hash: Sha256::new(),
            bytes: 0,
            max: self.limits.max_key_bytes,
        })
    }

    fn parse(&self, bytes: &[u8]) -> Result<EvaluationKeys, StoreError> {
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
        Err(StoreError::BadKeys(last.unwrap_or_else(|| {
            "this server serves no encrypted model".into()
        })))
    }

    /// Validates a received bundle and stores it under its id for `owner` (blocking: parses
    /// the keys). Past the owner's quota its own least recently used bundles go; when the store
    /// is full of other bundles the upload is refused. Returns the id, the size and the keys.
    pub fn commit(
        &self,
        mut upload: Upload,
        owner: &Owner,
    ) -> Result<(String, u64, Arc<EvaluationKeys>), StoreError> {
        upload.file.sync_all().map_err(io)?;
        let id: String = std::mem::take(&mut upload.hash)
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let bytes = std::fs::read(&upload.tmp).map_err(io)?;
        let keys = Arc::new(self.parse(&bytes)?);
        drop(bytes);
        if !self.shapes.is_empty() && !self.shapes.iter().any(|s| s.matches(&keys)) {
            return Err(StoreError::Mismatch);
        }
        let size = upload.bytes;
        self.check_size(owner, size)?;
        let quota = self.quota(owner);
        let tenant = owner.tenant.as_str();
        let mut index = self.lock();
        let exists = index.contains_key(&id);
        // the owner's own bundles, least recently used first, go until the new one fits
        let mut own: Vec<(u64, &String, u64, bool)> = index
            .iter()
            .filter(|(other, _)| **other != id)
            .filter_map(|(other, e)| {
                let used = *e.owners.get(tenant)?;
                Some((used, other, e.bytes, e.owners.len() == 1))
            })
            .collect();
        own.sort();
        let mut usage: u64 = own.iter().map(|o| o.2).sum();
        let mut freed = 0;
        let mut evict = Vec::new();
        for (_, other, len, sole) in own {
            if usage + size <= quota {
                break;
            }
            usage -= len;
            if sole {
                freed += len;
            }
            evict.push(other.clone());
        }
        let total: u64 = index.values().map(|e| e.bytes).sum();
        let after = total - freed + if exists { 0 } else { size };
        if after > self.limits.max_total_bytes {
            return Err(StoreError::Full {
                total: total - freed,
                max: self.limits.max_total_bytes,
            });
        }
        for other in evict {
            self.disown(&mut index, &other, tenant);
        }
        if !exists {
            std::fs::rename(&upload.tmp, self.path(&id)).map_err(io)?;
        }
        let entry = index.entry(id.clone()).or_default();
        entry.bytes = size;
        entry.owners.insert(tenant.to_string(), now_ms());
        self.save_owners(&id, entry)?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        self.stored.store(
            index.values().map(|e| e.bytes).sum(),
            std::sync::atomic::Ordering::Relaxed,
        );
        drop(index);
        self.loaded.insert(id.clone(), keys.clone());
        Ok((id, size, keys))
    }

    /// Takes `tenant` off a bundle's owners, removing the bundle once nobody owns it.
    fn disown(&self, index: &mut HashMap<String, Entry>, id: &str, tenant: &str) {
        let Some(entry) = index.get_mut(id) else {
            return;
        };
        entry.owners.remove(tenant);
        tracing::info!(key_id = %id, tenant, "evicted evaluation keys (tenant quota)");
        self.evictions
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if entry.owners.is_empty() {
            let _ = std::fs::remove_file(self.path(id));
            let _ = std::fs::remove_file(self.dir.join(format!("{id}.owners")));
            index.remove(id);
            self.loaded.remove(&id.to_string());
        } else {
            let _ = self.save_owners(id, entry);
        }
    }

    /// The keys with this id, if `tenant` owns them, from memory or disk (blocking on a miss).
    pub fn get(&self, id: &str, tenant: &str) -> Result<Arc<EvaluationKeys>, StoreError> {
        if !valid_id(id) {
            return Err(StoreError::BadId);
        }
        {
            let mut index = self.lock();
            let entry = index
                .get_mut(id)
                .filter(|e| e.owners.contains_key(tenant))
                .ok_or_else(|| StoreError::Unknown(id.to_string()))?;
            let now = now_ms();
            let last = entry.owners.insert(tenant.to_string(), now).unwrap_or(0);
            // the order of use survives a restart to within a minute, without a write per request
            if now.saturating_sub(last) > 60_000 {
                let _ = self.save_owners(id, entry);
            }
        }
        if let Some(keys) = self.loaded.get(&id.to_string()) {
            return Ok(keys);
        }
        let bytes = match std::fs::read(self.path(id)) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::Unknown(id.to_string()))
            }
            Err(e) => return Err(io(e)),
        };
        let keys = Arc::new(self.parse(&bytes)?);
        self.loaded.insert(id.to_string(), keys.clone());
        Ok(keys)
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

    fn put(store: &KeyStore, bytes: &[u8], owner: &Owner) -> Result<String, StoreError> {
        let mut up = store.begin()?;
        for chunk in bytes.chunks(1000) {
            up.push(chunk)?;
        }
        store.commit(up, owner).map(|(id, _, _)| id)
    }

    fn tenant(name: &str) -> Owner {
        Owner {
            tenant: name.into(),
            quota: None,
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("unseen-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn files(dir: &Path) -> usize {
        std::fs::read_dir(dir.join("keys")).expect("dir").count()
    }

    #[test]
    fn content_addressed_bounded_and_persistent() {
        let dir = temp("keystore");
        let params = Parameters::preset(Preset::Small4096).expect("preset");
        let (a, b) = (bundle(&params), bundle(&params));
        let limits = StoreLimits {
            max_key_bytes: a.len() as u64 + 10,
            max_total_bytes: a.len() as u64 * 3 / 2,
            tenant_bytes: a.len() as u64 * 3 / 2,
            loaded: 1,
        };
        let open = Owner::open();
        let store = KeyStore::open(&dir, vec![params.clone()], limits).expect("open");
        let ida = put(&store, &a, &open).expect("a");
        assert_eq!(ida, unseen_hex_sha256(&a));
        assert!(store.get(&ida, OPEN_TENANT).is_ok());
        // past the quota the tenant's least recently used bundle goes
        let idb = put(&store, &b, &open).expect("b");
        assert!(matches!(
            store.get(&ida, OPEN_TENANT),
            Err(StoreError::Unknown(_))
        ));
        assert!(store.get(&idb, OPEN_TENANT).is_ok());
        // too large, or not keys: refused, nothing left behind
        let mut big = b.clone();
        big.extend_from_slice(&[0u8; 64]);
        assert!(matches!(
            put(&store, &big, &open),
            Err(StoreError::TooLarge { .. })
        ));
        assert!(matches!(
            put(&store, &b[..100], &open),
            Err(StoreError::BadKeys(_))
        ));
        assert_eq!(files(&dir), 2, "the bundle and its owners");
        // a new store on the same folder finds the keys and their owner (from disk)
        drop(store);
        let store = KeyStore::open(&dir, vec![params], limits).expect("reopen");
        assert!(store.get(&idb, OPEN_TENANT).is_ok());
        assert!(matches!(
            store.get(&idb, "acme"),
            Err(StoreError::Unknown(_))
        ));
        assert!(matches!(
            store.get("xyz", OPEN_TENANT),
            Err(StoreError::BadId)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_tenant_never_evicts_or_uses_another_tenants_keys() {
        let dir = temp("tenants");
        let params = Parameters::preset(Preset::Small4096).expect("preset");
        let bundles: Vec<Vec<u8>> = (0..4).map(|_| bundle(&params)).collect();
        let one = bundles[0].len() as u64;
        let limits = StoreLimits {
            max_key_bytes: one,
            max_total_bytes: one * 3,
            tenant_bytes: one * 2,
            loaded: 4,
        };
        let (acme, evil) = (tenant("acme"), tenant("evil"));
        let store = KeyStore::open(&dir, vec![params.clone()], limits).expect("open");
        let a0 = put(&store, &bundles[0], &acme).expect("a0");
        // another tenant does not see acme's keys, even knowing the id
        assert!(matches!(
            store.get(&a0, "evil"),
            Err(StoreError::Unknown(_))
        ));
        // the same bundle uploaded by both is owned by both
        assert_eq!(put(&store, &bundles[0], &evil).expect("shared"), a0);
        let e1 = put(&store, &bundles[1], &evil).expect("e1");
        assert_eq!(store.tenant_usage("evil"), 2 * one);
        // evil's third bundle evicts evil's own least recently used: a0 stays for acme
        store.get(&e1, "evil").expect("touch e1");
        let e2 = put(&store, &bundles[2], &evil).expect("e2");
        assert!(store.get(&a0, "acme").is_ok());
        assert!(matches!(
            store.get(&a0, "evil"),
            Err(StoreError::Unknown(_))
        ));
        assert!(store.get(&e1, "evil").is_ok() && store.get(&e2, "evil").is_ok());
        // the store is full (a0, e1, e2): evil may still cycle its own, a new tenant is refused
        let e3 = put(&store, &bundles[3], &evil).expect("e3 replaces e1");
        assert!(matches!(
            store.get(&e1, "evil"),
            Err(StoreError::Unknown(_))
        ));
        let newcomer = put(&store, &bundles[1], &tenant("new"));
        assert!(
            matches!(newcomer, Err(StoreError::Full { .. })),
            "{newcomer:?}"
        );
        assert!(store.get(&a0, "acme").is_ok() && store.get(&e3, "evil").is_ok());
        // a bundle larger than the quota is refused before anything is evicted
        let small = Owner {
            tenant: "small".into(),
            quota: Some(one - 1),
        };
        assert!(matches!(
            store.check_size(&small, one),
            Err(StoreError::OverQuota { .. })
        ));
        // owners survive a restart
        drop(store);
        let store = KeyStore::open(&dir, vec![params], limits).expect("reopen");
        assert!(store.get(&a0, "acme").is_ok());
        assert!(matches!(
            store.get(&a0, "evil"),
            Err(StoreError::Unknown(_))
        ));
        assert_eq!(store.usage().0, 3 * one);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn unseen_hex_sha256(b: &[u8]) -> String {
        Sha256::digest(b)
            .iter()
            .map(|x| format!("{x:02x}"))
            .collect()
    }
}
