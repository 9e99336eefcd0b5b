//! Clients' CKKS evaluation keys: content-addressed (the id is the SHA-256 of the bundle),
//! owned by tenants, kept parsed in memory for the most recently used ones, and stored by a
//! [`BundleStorage`]: a folder on this machine ([`disk::DiskStorage`], the default) or a
//! PostgreSQL database that every replica shares ([`postgres::PgStorage`]). Keys survive a
//! restart either way.
//!
//! Each bundle records its owners (the tenants that uploaded it) and when each last used it. A
//! tenant sees only its own bundles, and its bundles count against its quota: an upload past
//! the quota evicts that tenant's least recently used bundles, never another tenant's. A bundle
//! goes once no tenant owns it. When the whole store is full, an upload is refused (`507`)
//! rather than evicting someone else's keys. That policy is [`plan_upload`], the same for every
//! storage.

pub mod disk;
pub mod postgres;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::SystemTime;

use axum::http::StatusCode;
use sha2::{Digest, Sha256};
use unseen_circuits::EvaluationKeys;
use unseen_ckks::{KeyDigits, Parameters};

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
    #[error("these are not the evaluation keys of a served model: upload exactly the rotation keys, at the levels, and the relinearisation key that GET /v1/models/{{name}} lists, with its key_digits and hoisted_rotations (keys made for an earlier spec of the model are refused: make new ones, e.g. unseen keygen ckks --server URL --model NAME)")]
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
    /// The database could not be reached or failed (details in the server log).
    #[error("the key store's database is unavailable; retry shortly")]
    Unavailable,
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
            StoreError::Unavailable => {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    e.to_string(),
                )
                .retry_after(1)
            }
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
    /// Digit layout of the relinearisation key.
    pub relin_digits: KeyDigits,
    /// `(step, level, digits)` of every Galois key.
    pub rotations: Vec<(i64, usize, KeyDigits)>,
}

impl KeyShape {
    /// Whether `keys` are exactly these.
    pub fn matches(&self, keys: &EvaluationKeys) -> bool {
        keys.relin.params().same_as(&self.params)
            && keys.relin.level() == self.relin_level
            && keys.relin.digits_are(self.relin_digits)
            && keys.galois.galois_elements().len() == self.rotations.len()
            && self.rotations.iter().all(|&(step, level, digits)| {
                keys.galois.rotation_level(step) == Some(level)
                    && keys.galois.rotation_digits_are(step, digits)
            })
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

/// A bundle the uploading tenant already owns, as the eviction policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// Its id.
    pub id: String,
    /// When the tenant last used it (milliseconds since 1970).
    pub used: u64,
    /// Its size.
    pub bytes: u64,
    /// Whether the tenant is its only owner (evicting it frees its bytes).
    pub sole: bool,
}

/// The eviction policy of every storage: which of the tenant's own bundles (`held`, the new one
/// not among them) go so that a new bundle of `size` bytes fits in its `quota`, least recently
/// used first; refused when the store (`total` bytes now, the new bundle already stored if
/// `exists`) would then exceed `max_total`.
pub fn plan_upload(
    mut held: Vec<Held>,
    total: u64,
    exists: bool,
    size: u64,
    quota: u64,
    max_total: u64,
) -> Result<Vec<String>, StoreError> {
    held.sort_by(|a, b| (a.used, &a.id).cmp(&(b.used, &b.id)));
    let mut usage: u64 = held.iter().map(|h| h.bytes).sum();
    let (mut freed, mut evict) = (0, Vec::new());
    for h in held {
        if usage.saturating_add(size) <= quota {
            break;
        }
        usage -= h.bytes;
        if h.sole {
            freed += h.bytes;
        }
        evict.push(h.id);
    }
    let after = total.saturating_sub(freed) + if exists { 0 } else { size };
    if after > max_total {
        return Err(StoreError::Full {
            total: total.saturating_sub(freed),
            max: max_total,
        });
    }
    Ok(evict)
}

/// Where bundles and their owners are kept. Every method may block (disk or network): the
/// server calls them off its async runtime. Implementations make [`BundleStorage::put`] atomic
/// against concurrent uploads, in this process and in every other replica sharing the storage.
pub trait BundleStorage: Send + Sync + std::fmt::Debug {
    /// Stores the bundle `id` of `bytes` bytes, read from the file `staged` (already validated),
    /// for `tenant`, after evicting what [`plan_upload`] decides with the given `quota` and
    /// `max_total`. Returns the ids taken from the tenant.
    fn put(
        &self,
        id: &str,
        staged: &Path,
        bytes: u64,
        tenant: &str,
        quota: u64,
        max_total: u64,
    ) -> Result<Vec<String>, StoreError>;

    /// Records that `tenant` used bundle `id` at `now` (milliseconds since 1970);
    /// [`StoreError::Unknown`] when the tenant does not own it.
    fn touch(&self, id: &str, tenant: &str, now: u64) -> Result<(), StoreError>;

    /// The bundle's bytes.
    fn read(&self, id: &str) -> Result<Vec<u8>, StoreError>;

    /// Bytes of every stored bundle.
    fn stored_bytes(&self) -> Result<u64, StoreError>;

    /// Bytes of the bundles `tenant` owns.
    fn tenant_bytes(&self, tenant: &str) -> Result<u64, StoreError>;
}

/// The key store of one server: a storage, the parsed key sets in memory in front of it, and
/// what uploads must be.
pub struct KeyStore {
    storage: Box<dyn BundleStorage>,
    /// Where uploads are received before they are validated and stored.
    staging: PathBuf,
    limits: StoreLimits,
    /// Parameter sets keys may be made for (those of the served models).
    params: Vec<Arc<Parameters>>,
    /// The exact key sets the served models need (empty: any bundle for `params`).
    shapes: Vec<KeyShape>,
    /// Bytes stored after the last change, and bundles evicted so far.
    stored: AtomicU64,
    evictions: AtomicU64,
    loaded: Lru<String, EvaluationKeys>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("storage", &self.storage)
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
pub(crate) fn now_ms() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let wall = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let prev = LAST
        .fetch_update(Relaxed, Relaxed, |p| Some(wall.max(p + 1)))
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
    /// The store in the folder `data_dir/keys` (created), the single-machine default.
    pub fn open(
        data_dir: &Path,
        params: Vec<Arc<Parameters>>,
        limits: StoreLimits,
    ) -> std::io::Result<Self> {
        let dir = data_dir.join("keys");
        let storage = disk::DiskStorage::open(&dir)?;
        Self::with_storage(Box::new(storage), dir, params, limits)
    }

    /// The store kept by `storage`, receiving uploads in the folder `staging` (created; files
    /// left there by interrupted uploads are removed).
    pub fn with_storage(
        storage: Box<dyn BundleStorage>,
        staging: PathBuf,
        params: Vec<Arc<Parameters>>,
        limits: StoreLimits,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&staging)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", staging.display())))?;
        for entry in std::fs::read_dir(&staging)?.flatten() {
            if entry.file_name().to_string_lossy().ends_with(".part") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let stored = storage
            .stored_bytes()
            .map_err(|e| std::io::Error::other(format!("reading the key store: {e}")))?;
        Ok(Self {
            storage,
            staging,
            limits,
            params,
            shapes: Vec::new(),
            stored: stored.into(),
            evictions: Default::default(),
            loaded: Lru::new(limits.loaded),
        })
    }

    /// Bytes of stored bundles and bundles evicted since the start.
    pub fn usage(&self) -> (u64, u64) {
        (self.stored.load(Relaxed), self.evictions.load(Relaxed))
    }

    /// Reads the stored bytes again from the storage (other replicas change a shared one).
    pub fn refresh_usage(&self) {
        if let Ok(total) = self.storage.stored_bytes() {
            self.stored.store(total, Relaxed);
        }
    }

    /// Bytes of the bundles `tenant` owns.
    pub fn tenant_usage(&self, tenant: &str) -> Result<u64, StoreError> {
        self.storage.tenant_bytes(tenant)
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
            .staging
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
        let evicted = self.storage.put(
            &id,
            &upload.tmp,
            size,
            &owner.tenant,
            self.quota(owner),
            self.limits.max_total_bytes,
        )?;
        for other in &evicted {
            tracing::info!(key_id = %other, tenant = %owner.tenant, "evicted evaluation keys (tenant quota)");
            self.loaded.remove(other);
        }
        self.evictions.fetch_add(evicted.len() as u64, Relaxed);
        if let Ok(total) = self.storage.stored_bytes() {
            self.stored.store(total, Relaxed);
        }
        self.loaded.insert(id.clone(), keys.clone());
        Ok((id, size, keys))
    }

    /// Whether `tenant` owns the keys with this id (recording the use), without loading them.
    pub fn check_owner(&self, id: &str, tenant: &str) -> Result<(), StoreError> {
        if !valid_id(id) {
            return Err(StoreError::BadId);
        }
        self.storage.touch(id, tenant, now_ms())
    }

    /// The keys with this id, if `tenant` owns them, from memory or the storage (blocking).
    /// Ownership is asked of the storage every time, so a bundle another replica evicted is
    /// not served from this one's memory.
    pub fn get(&self, id: &str, tenant: &str) -> Result<Arc<EvaluationKeys>, StoreError> {
        self.check_owner(id, tenant)?;
        if let Some(keys) = self.loaded.get(&id.to_string()) {
            return Ok(keys);
        }
        let bytes = self.storage.read(id)?;
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

    /// Where a test's bundles go: the folder (`None`) or a scratch database.
    type Db = Option<crate::db::scratch::Scratch>;

    fn open_store(
        db: &Db,
        dir: &Path,
        params: Vec<Arc<Parameters>>,
        limits: StoreLimits,
    ) -> KeyStore {
        match db {
            None => KeyStore::open(dir, params, limits).expect("open"),
            Some(db) => {
                let pool = crate::db::connect(&db.url, 2).expect("connect");
                KeyStore::with_storage(
                    Box::new(postgres::PgStorage::new(pool)),
                    dir.join("staging"),
                    params,
                    limits,
                )
                .expect("open")
            }
        }
    }

    #[test]
    fn content_addressed_bounded_and_persistent_on_disk() {
        content_addressed_bounded_and_persistent(None);
    }

    #[test]
    fn content_addressed_bounded_and_persistent_in_postgres() {
        if let Some(db) = crate::db::scratch::database("keystore") {
            content_addressed_bounded_and_persistent(Some(db));
        }
    }

    #[test]
    fn a_tenant_never_evicts_or_uses_another_tenants_keys_on_disk() {
        a_tenant_never_evicts_or_uses_another_tenants_keys(None);
    }

    #[test]
    fn a_tenant_never_evicts_or_uses_another_tenants_keys_in_postgres() {
        if let Some(db) = crate::db::scratch::database("tenants") {
            a_tenant_never_evicts_or_uses_another_tenants_keys(Some(db));
        }
    }

    fn content_addressed_bounded_and_persistent(db: Db) {
        let dir = temp(if db.is_some() {
            "keystore-pg"
        } else {
            "keystore"
        });
        let params = Parameters::preset(Preset::Small4096).expect("preset");
        let (a, b) = (bundle(&params), bundle(&params));
        let limits = StoreLimits {
            max_key_bytes: a.len() as u64 + 10,
            max_total_bytes: a.len() as u64 * 3 / 2,
            tenant_bytes: a.len() as u64 * 3 / 2,
            loaded: 1,
        };
        let open = Owner::open();
        let store = open_store(&db, &dir, vec![params.clone()], limits);
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
        if db.is_none() {
            assert_eq!(files(&dir), 2, "the bundle and its owners");
        }
        // a new store on the same folder or database finds the keys and their owner
        drop(store);
        let store = open_store(&db, &dir, vec![params], limits);
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

    fn a_tenant_never_evicts_or_uses_another_tenants_keys(db: Db) {
        let dir = temp(if db.is_some() {
            "tenants-pg"
        } else {
            "tenants"
        });
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
        let store = open_store(&db, &dir, vec![params.clone()], limits);
        let a0 = put(&store, &bundles[0], &acme).expect("a0");
        // another tenant does not see acme's keys, even knowing the id
        assert!(matches!(
            store.get(&a0, "evil"),
            Err(StoreError::Unknown(_))
        ));
        // the same bundle uploaded by both is owned by both
        assert_eq!(put(&store, &bundles[0], &evil).expect("shared"), a0);
        let e1 = put(&store, &bundles[1], &evil).expect("e1");
        assert_eq!(store.tenant_usage("evil").expect("usage"), 2 * one);
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
        let store = open_store(&db, &dir, vec![params], limits);
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
