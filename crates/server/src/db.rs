//! The PostgreSQL database replicas share: a pool of connections and the schema of the key
//! store and of the batch jobs, created (once, whoever starts first) on connection.

use std::time::Duration;

use r2d2_postgres::postgres::{self, NoTls};
use r2d2_postgres::PostgresConnectionManager;

/// A pool of connections to one database.
pub type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

/// Version of the schema below, recorded in `unseen_schema`.
const SCHEMA_VERSION: i32 = 1;

/// Tables, created if missing. Bundles and job bodies are stored in chunks of at most
/// [`CHUNK`] bytes, so that no statement moves a whole bundle or batch in one value.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS unseen_schema (version integer NOT NULL);
CREATE TABLE IF NOT EXISTS unseen_key_bundles (
    id text PRIMARY KEY,
    bytes bigint NOT NULL,
    stored_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS unseen_key_chunks (
    id text NOT NULL REFERENCES unseen_key_bundles (id) ON DELETE CASCADE,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (id, seq)
);
CREATE TABLE IF NOT EXISTS unseen_key_owners (
    id text NOT NULL REFERENCES unseen_key_bundles (id) ON DELETE CASCADE,
    tenant text NOT NULL,
    last_used bigint NOT NULL,
    PRIMARY KEY (id, tenant)
);
CREATE INDEX IF NOT EXISTS unseen_key_owners_tenant ON unseen_key_owners (tenant, last_used);
CREATE TABLE IF NOT EXISTS unseen_jobs (
    id text PRIMARY KEY,
    tenant text NOT NULL,
    model text NOT NULL,
    key_id text NOT NULL,
    state text NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    lease_owner text,
    lease_until timestamptz,
    input_bytes bigint NOT NULL,
    result_bytes bigint,
    error_code text,
    error text,
    created timestamptz NOT NULL DEFAULT clock_timestamp(),
    started timestamptz,
    finished timestamptz
);
CREATE INDEX IF NOT EXISTS unseen_jobs_claimable ON unseen_jobs (created)
    WHERE state IN ('queued', 'running');
CREATE TABLE IF NOT EXISTS unseen_job_chunks (
    job text NOT NULL REFERENCES unseen_jobs (id) ON DELETE CASCADE,
    part smallint NOT NULL,
    seq integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (job, part, seq)
);
";

/// Largest value one row of a chunk table holds.
pub const CHUNK: usize = 1 << 20;

/// Connects to `url` (`postgres://user@host:port/db`), at most `size` connections, and makes
/// sure the schema exists. The URL (it may hold a password) is never logged.
pub fn connect(url: &str, size: u32) -> Result<Pool, String> {
    let config: postgres::Config = url
        .parse()
        .map_err(|e| format!("not a PostgreSQL URL: {e}"))?;
    let manager = PostgresConnectionManager::new(config, NoTls);
    let pool = r2d2::Pool::builder()
        .max_size(size.max(1))
        .min_idle(Some(1))
        .connection_timeout(Duration::from_secs(10))
        .error_handler(Box::new(LogErrors))
        .build(manager)
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    let mut conn = pool
        .get()
        .map_err(|e| format!("cannot connect to the database: {e}"))?;
    migrate(&mut conn).map_err(|e| format!("cannot create the database schema: {e}"))?;
    Ok(pool)
}

fn migrate(conn: &mut postgres::Client) -> Result<(), postgres::Error> {
    let mut tx = conn.transaction()?;
    // replicas starting together create the tables one at a time
    tx.execute("SELECT pg_advisory_xact_lock(7285746311)", &[])?;
    tx.batch_execute(SCHEMA)?;
    let versions = tx.query("SELECT version FROM unseen_schema", &[])?;
    if versions.is_empty() {
        tx.execute(
            "INSERT INTO unseen_schema (version) VALUES ($1)",
            &[&SCHEMA_VERSION],
        )?;
    }
    tx.commit()
}

/// The `bytea` column of the rows `query` selects with `params`, in order, concatenated: read
/// through a portal a few rows at a time, so no reply holds more than a few chunks.
pub(crate) fn read_chunks(
    tx: &mut postgres::Transaction<'_>,
    query: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
    capacity: usize,
) -> Result<Vec<u8>, postgres::Error> {
    let portal = tx.bind(query, params)?;
    let mut out = Vec::with_capacity(capacity);
    loop {
        let rows = tx.query_portal(&portal, 4)?;
        if rows.is_empty() {
            return Ok(out);
        }
        for r in rows {
            out.extend_from_slice(r.get::<_, &[u8]>(0));
        }
    }
}

/// Connection errors go to the log (once per failure), not to clients.
#[derive(Debug)]
struct LogErrors;

impl r2d2::HandleError<postgres::Error> for LogErrors {
    fn handle_error(&self, error: postgres::Error) {
        tracing::warn!("database connection: {error}");
    }
}

/// A database of its own for one test, made on the server `UNSEEN_TEST_DATABASE_URL` names
/// and dropped afterwards. Without that variable the test is skipped (with a line saying so),
/// unless `UNSEEN_REQUIRE_DATABASE` is set, as in CI, where it fails.
#[cfg(test)]
pub(crate) mod scratch {
    use super::postgres::{Client, NoTls};

    /// The database's URL while it lives.
    pub(crate) struct Scratch {
        admin: String,
        name: String,
        /// Its URL.
        pub url: String,
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            if let Ok(mut c) = Client::connect(&self.admin, NoTls) {
                let _ = c.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ));
            }
        }
    }

    /// A fresh empty database, or `None` (skip) when no server is given.
    pub(crate) fn database(test: &str) -> Option<Scratch> {
        let Ok(admin) = std::env::var("UNSEEN_TEST_DATABASE_URL") else {
            assert!(
                std::env::var_os("UNSEEN_REQUIRE_DATABASE").is_none(),
                "UNSEEN_REQUIRE_DATABASE is set but UNSEEN_TEST_DATABASE_URL is not"
            );
            eprintln!("{test}: skipped, no PostgreSQL (set UNSEEN_TEST_DATABASE_URL; scripts/pg.sh starts one)");
            return None;
        };
        let mut nonce = [0u8; 6];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let name = format!(
            "unseen_test_{}",
            nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let mut c = Client::connect(&admin, NoTls).expect("connect to UNSEEN_TEST_DATABASE_URL");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let mut config: super::postgres::Config = admin.parse().expect("URL");
        config.dbname(&name);
        let url = to_url(&config);
        Some(Scratch { admin, name, url })
    }

    fn to_url(c: &super::postgres::Config) -> String {
        let host = match c.get_hosts().first() {
            Some(super::postgres::config::Host::Tcp(h)) => h.clone(),
            _ => "127.0.0.1".into(),
        };
        let port = c.get_ports().first().copied().unwrap_or(5432);
        format!(
            "postgres://{}@{host}:{port}/{}",
            c.get_user().unwrap_or("postgres"),
            c.get_dbname().unwrap_or("postgres")
        )
    }
}
