//! Bundles in one folder of this machine: `<id>.keys` written atomically (a staged file renamed
//! into place), and beside it `<id>.owners`, a small JSON map from each owning tenant to when it
//! last used the bundle. An index of both is kept in memory; only this process may use the
//! folder.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use super::{io, plan_upload, valid_id, BundleStorage, Held, StoreError, OPEN_TENANT};

/// One stored bundle: its size and, per owner, when it last used it (milliseconds since 1970).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct Entry {
    #[serde(skip)]
    bytes: u64,
    owners: BTreeMap<String, u64>,
}

/// Bundles in a folder.
#[derive(Debug)]
pub struct DiskStorage {
    dir: PathBuf,
    index: Mutex<HashMap<String, Entry>>,
}

impl DiskStorage {
    /// Opens (creating) the folder, removing leftovers of interrupted writes and reading every
    /// bundle's owners (bundles without an owners file belong to [`OPEN_TENANT`]).
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let mut index = HashMap::new();
        for entry in std::fs::read_dir(dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.ends_with(".tmp") {
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
        for entry in std::fs::read_dir(dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".owners") {
                if !index.contains_key(id) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            index: Mutex::new(index),
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

    /// Takes `tenant` off a bundle's owners, removing the bundle once nobody owns it.
    fn disown(&self, index: &mut HashMap<String, Entry>, id: &str, tenant: &str) {
        let Some(entry) = index.get_mut(id) else {
            return;
        };
        entry.owners.remove(tenant);
        if entry.owners.is_empty() {
            let _ = std::fs::remove_file(self.path(id));
            let _ = std::fs::remove_file(self.dir.join(format!("{id}.owners")));
            index.remove(id);
        } else {
            let _ = self.save_owners(id, entry);
        }
    }
}

impl BundleStorage for DiskStorage {
    fn put(
        &self,
        id: &str,
        staged: &Path,
        bytes: u64,
        tenant: &str,
        quota: u64,
        max_total: u64,
    ) -> Result<Vec<String>, StoreError> {
        let mut index = self.lock();
        let held = index
            .iter()
            .filter(|(other, _)| other.as_str() != id)
            .filter_map(|(other, e)| {
                Some(Held {
                    id: other.clone(),
                    used: *e.owners.get(tenant)?,
                    bytes: e.bytes,
                    sole: e.owners.len() == 1,
                })
            })
            .collect();
        let total = index.values().map(|e| e.bytes).sum();
        let exists = index.contains_key(id);
        let evict = plan_upload(held, total, exists, bytes, quota, max_total)?;
        for other in &evict {
            self.disown(&mut index, other, tenant);
        }
        if !exists {
            // the staged file is in this folder (the store receives uploads here)
            std::fs::rename(staged, self.path(id)).map_err(io)?;
        }
        let entry = index.entry(id.to_string()).or_default();
        entry.bytes = bytes;
        entry.owners.insert(tenant.to_string(), super::now_ms());
        self.save_owners(id, entry)?;
        if let Ok(dir) = std::fs::File::open(&self.dir) {
            let _ = dir.sync_all();
        }
        Ok(evict)
    }

    fn touch(&self, id: &str, tenant: &str, now: u64) -> Result<(), StoreError> {
        let mut index = self.lock();
        let entry = index
            .get_mut(id)
            .filter(|e| e.owners.contains_key(tenant))
            .ok_or_else(|| StoreError::Unknown(id.to_string()))?;
        let last = entry.owners.insert(tenant.to_string(), now).unwrap_or(0);
        // the order of use survives a restart to within a minute, without a write per request
        if now.saturating_sub(last) > 60_000 {
            let _ = self.save_owners(id, entry);
        }
        Ok(())
    }

    fn read(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        match std::fs::read(self.path(id)) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::Unknown(id.to_string()))
            }
            Err(e) => Err(io(e)),
        }
    }

    fn stored_bytes(&self) -> Result<u64, StoreError> {
        Ok(self.lock().values().map(|e| e.bytes).sum())
    }

    fn tenant_bytes(&self, tenant: &str) -> Result<u64, StoreError> {
        Ok(self
            .lock()
            .values()
            .filter(|e| e.owners.contains_key(tenant))
            .map(|e| e.bytes)
            .sum())
    }
}
