//! Bundles in a PostgreSQL database every replica shares (`unseen serve --key-store
//! postgres://...`): each bundle in rows of at most 1 MiB (`unseen_key_chunks`), its owners and
//! their last use in `unseen_key_owners`. Uploads are serialised across replicas by a
//! transaction-scoped advisory lock, so quotas and the store's size hold cluster-wide.

use std::io::Read;
use std::path::Path;

use r2d2_postgres::postgres;

use super::{plan_upload, BundleStorage, Held, StoreError};
use crate::db::{Pool, CHUNK};

/// Bundles in a database.
#[derive(Debug, Clone)]
pub struct PgStorage {
    pool: Pool,
}

/// A database failure: logged, and `503` for the client (it may retry).
fn unavailable(e: impl std::fmt::Display) -> StoreError {
    tracing::error!("key store database: {e}");
    StoreError::Unavailable
}

impl PgStorage {
    /// Bundles in the database behind `pool` (see [`crate::db::connect`]).
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    fn conn(
        &self,
    ) -> Result<
        r2d2::PooledConnection<r2d2_postgres::PostgresConnectionManager<postgres::NoTls>>,
        StoreError,
    > {
        self.pool.get().map_err(unavailable)
    }
}

fn bytes_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl BundleStorage for PgStorage {
    fn put(
        &self,
        id: &str,
        staged: &Path,
        bytes: u64,
        tenant: &str,
        quota: u64,
        max_total: u64,
    ) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(unavailable)?;
        tx.execute("SELECT pg_advisory_xact_lock(7285746312)", &[])
            .map_err(unavailable)?;
        let held = tx
            .query(
                "SELECT o.id, o.last_used, b.bytes,
                        (SELECT count(*) FROM unseen_key_owners x WHERE x.id = o.id) = 1
                 FROM unseen_key_owners o JOIN unseen_key_bundles b USING (id)
                 WHERE o.tenant = $1 AND o.id <> $2",
                &[&tenant, &id],
            )
            .map_err(unavailable)?
            .iter()
            .map(|r| Held {
                id: r.get(0),
                used: r.get::<_, i64>(1).max(0) as u64,
                bytes: r.get::<_, i64>(2).max(0) as u64,
                sole: r.get(3),
            })
            .collect();
        let total: i64 = tx
            .query_one(
                "SELECT coalesce(sum(bytes), 0)::bigint FROM unseen_key_bundles",
                &[],
            )
            .map_err(unavailable)?
            .get(0);
        let exists = !tx
            .query("SELECT 1 FROM unseen_key_bundles WHERE id = $1", &[&id])
            .map_err(unavailable)?
            .is_empty();
        let evict = plan_upload(held, total.max(0) as u64, exists, bytes, quota, max_total)?;
        if !evict.is_empty() {
            tx.execute(
                "DELETE FROM unseen_key_owners WHERE tenant = $1 AND id = ANY($2)",
                &[&tenant, &evict],
            )
            .map_err(unavailable)?;
            tx.execute(
                "DELETE FROM unseen_key_bundles b WHERE b.id = ANY($1)
                 AND NOT EXISTS (SELECT 1 FROM unseen_key_owners o WHERE o.id = b.id)",
                &[&evict],
            )
            .map_err(unavailable)?;
        }
        if !exists {
            tx.execute(
                "INSERT INTO unseen_key_bundles (id, bytes) VALUES ($1, $2)",
                &[&id, &bytes_i64(bytes)],
            )
            .map_err(unavailable)?;
            let mut file = std::fs::File::open(staged).map_err(super::io)?;
            let insert = tx
                .prepare("INSERT INTO unseen_key_chunks (id, seq, data) VALUES ($1, $2, $3)")
                .map_err(unavailable)?;
            let mut buf = vec![0u8; CHUNK];
            for seq in 0i32.. {
                let n = read_full(&mut file, &mut buf).map_err(super::io)?;
                if n == 0 {
                    break;
                }
                tx.execute(&insert, &[&id, &seq, &&buf[..n]])
                    .map_err(unavailable)?;
            }
        }
        tx.execute(
            "INSERT INTO unseen_key_owners (id, tenant, last_used) VALUES ($1, $2, $3)
             ON CONFLICT (id, tenant) DO UPDATE SET last_used = EXCLUDED.last_used",
            &[&id, &tenant, &bytes_i64(super::now_ms())],
        )
        .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        Ok(evict)
    }

    fn touch(&self, id: &str, tenant: &str, now: u64) -> Result<(), StoreError> {
        // ownership is read on every request; the last use is written at most once a minute
        // (as the folder store does), so inference does not write to the database each time
        let owned: bool = self
            .conn()?
            .query_one(
                "WITH used AS (
                     UPDATE unseen_key_owners SET last_used = $3::bigint
                     WHERE id = $1 AND tenant = $2 AND last_used < $3::bigint - 60000)
                 SELECT EXISTS (SELECT 1 FROM unseen_key_owners WHERE id = $1 AND tenant = $2)",
                &[&id, &tenant, &bytes_i64(now)],
            )
            .map_err(unavailable)?
            .get(0);
        if !owned {
            return Err(StoreError::Unknown(id.to_string()));
        }
        Ok(())
    }

    fn read(&self, id: &str) -> Result<Vec<u8>, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn
            .build_transaction()
            .read_only(true)
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .start()
            .map_err(unavailable)?;
        let size: i64 = tx
            .query_opt("SELECT bytes FROM unseen_key_bundles WHERE id = $1", &[&id])
            .map_err(unavailable)?
            .ok_or_else(|| StoreError::Unknown(id.to_string()))?
            .get(0);
        let out = crate::db::read_chunks(
            &mut tx,
            "SELECT data FROM unseen_key_chunks WHERE id = $1 ORDER BY seq",
            &[&id],
            size.max(0) as usize,
        )
        .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        if out.len() as i64 != size {
            return Err(super::io(format!(
                "bundle {id} has {} bytes in its chunks, {size} recorded",
                out.len()
            )));
        }
        Ok(out)
    }

    fn stored_bytes(&self) -> Result<u64, StoreError> {
        let total: i64 = self
            .conn()?
            .query_one(
                "SELECT coalesce(sum(bytes), 0)::bigint FROM unseen_key_bundles",
                &[],
            )
            .map_err(unavailable)?
            .get(0);
        Ok(total.max(0) as u64)
    }

    fn tenant_bytes(&self, tenant: &str) -> Result<u64, StoreError> {
        let total: i64 = self
            .conn()?
            .query_one(
                "SELECT coalesce(sum(b.bytes), 0)::bigint
                 FROM unseen_key_owners o JOIN unseen_key_bundles b USING (id)
                 WHERE o.tenant = $1",
                &[&tenant],
            )
            .map_err(unavailable)?
            .get(0);
        Ok(total.max(0) as u64)
    }
}

/// Fills `buf` from `r` as far as it goes; the bytes read (0 at the end).
pub(crate) fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
