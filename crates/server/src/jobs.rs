//! Batch jobs in PostgreSQL: an encrypted batch stored with its model, key id and tenant
//! (`POST /v1/jobs`), claimed by any worker (`unseen worker`, or a server's own worker threads)
//! with `FOR UPDATE SKIP LOCKED` and a lease the worker renews while it computes. A job whose
//! lease ran out (its worker died) is claimed again, up to its attempt limit; its result is
//! stored exactly once, by the holder of the lease, in the same transaction that marks it done.
//! Idle workers wait on `LISTEN unseen_jobs` and a submission wakes them with `NOTIFY`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use r2d2_postgres::postgres::{self, fallible_iterator::FallibleIterator};
use serde::Serialize;

use crate::db::{Pool, CHUNK};
use crate::ApiError;

/// Parts of a job kept in `unseen_job_chunks`.
const INPUT: i16 = 0;
const RESULT: i16 = 1;

/// The notification channel idle workers listen on.
const CHANNEL: &str = "unseen_jobs";

/// What can go wrong with jobs. The queue knows nothing of HTTP; [`ApiError`] maps these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Not a job id.
    #[error("a job id is 32 lowercase hex digits (POST /v1/jobs returns it)")]
    BadId,
    /// No such job for this tenant.
    #[error("no job with id {0}")]
    Unknown(String),
    /// The job has no result (yet, or it failed).
    #[error("job {id} is {state}, it has no result")]
    NotDone {
        /// The job.
        id: String,
        /// Its state.
        state: String,
    },
    /// The database could not be reached or failed (details in the server log).
    #[error("the job queue's database is unavailable; retry shortly")]
    Unavailable,
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match &e {
            JobError::BadId => ApiError::new(StatusCode::BAD_REQUEST, "bad_job_id", e.to_string()),
            JobError::Unknown(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "unknown_job", e.to_string())
            }
            JobError::NotDone { .. } => {
                ApiError::new(StatusCode::CONFLICT, "job_not_done", e.to_string())
            }
            JobError::Unavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "queue_unavailable",
                e.to_string(),
            )
            .retry_after(1),
        }
    }
}

fn unavailable(e: impl std::fmt::Display) -> JobError {
    tracing::error!("job queue database: {e}");
    JobError::Unavailable
}

/// Whether `id` looks like a job id (32 lowercase hex digits).
pub fn valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// How workers hold and retry jobs.
#[derive(Debug, Clone, Copy)]
pub struct QueuePolicy {
    /// How long a claim lasts without renewal; a worker renews it every third of this.
    pub lease: Duration,
    /// Claims of one job before it is failed for good (its worker died each time).
    pub max_attempts: i32,
    /// How long a done or failed job (and its result) is kept; `None`: until deleted by hand.
    pub retention: Option<Duration>,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        Self {
            lease: Duration::from_secs(30),
            max_attempts: 3,
            retention: Some(Duration::from_secs(7 * 24 * 3600)),
        }
    }
}

/// A job as `GET /v1/jobs/{id}` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobStatus {
    /// Its id.
    pub job_id: String,
    /// The model it runs.
    pub model: String,
    /// `queued`, `running`, `done` or `failed`.
    pub state: String,
    /// Claims so far.
    pub attempts: i32,
    /// Claims allowed.
    pub max_attempts: i32,
    /// Bytes of the encrypted batch.
    pub input_bytes: i64,
    /// Bytes of the encrypted result, once done.
    pub result_bytes: Option<i64>,
    /// Why it failed.
    pub error: Option<JobFailure>,
    /// Seconds since it was submitted.
    pub age_s: f64,
    /// Seconds it took from its last claim to its end, once ended.
    pub run_s: Option<f64>,
}

/// Why a job failed: a code and a sentence, as in every error reply.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JobFailure {
    /// Stable code.
    pub code: String,
    /// What went wrong.
    pub message: String,
}

/// A job a worker holds.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Its id.
    pub id: String,
    /// Who submitted it.
    pub tenant: String,
    /// The model to run.
    pub model: String,
    /// The evaluation keys to run it with.
    pub key_id: String,
    /// This claim's number (1 for the first).
    pub attempt: i32,
}

/// The queue in one database.
#[derive(Debug, Clone)]
pub struct JobQueue {
    pool: Pool,
    url: String,
    policy: QueuePolicy,
}

impl JobQueue {
    /// The queue in the database behind `pool` (its schema made by [`crate::db::connect`]);
    /// `url` is for the listening connection of idle workers.
    pub fn new(pool: Pool, url: &str, policy: QueuePolicy) -> Self {
        Self {
            pool,
            url: url.to_string(),
            policy,
        }
    }

    fn conn(
        &self,
    ) -> Result<
        r2d2::PooledConnection<r2d2_postgres::PostgresConnectionManager<postgres::NoTls>>,
        JobError,
    > {
        self.pool.get().map_err(unavailable)
    }

    /// Stores a batch (already checked against its model) as a queued job and wakes a worker.
    pub fn submit(
        &self,
        tenant: &str,
        model: &str,
        key_id: &str,
        input: &[u8],
    ) -> Result<JobStatus, JobError> {
        let mut nonce = [0u8; 16];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let id: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(unavailable)?;
        tx.execute(
            "INSERT INTO unseen_jobs (id, tenant, model, key_id, state, max_attempts, input_bytes)
             VALUES ($1, $2, $3, $4, 'queued', $5, $6)",
            &[
                &id,
                &tenant,
                &model,
                &key_id,
                &self.policy.max_attempts,
                &(input.len() as i64),
            ],
        )
        .map_err(unavailable)?;
        put_chunks(&mut tx, &id, INPUT, input)?;
        tx.execute(&format!("NOTIFY {CHANNEL}"), &[])
            .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        self.status(&id, tenant)
    }

    /// The job `id` of `tenant`.
    pub fn status(&self, id: &str, tenant: &str) -> Result<JobStatus, JobError> {
        if !valid_id(id) {
            return Err(JobError::BadId);
        }
        let row = self
            .conn()?
            .query_opt(
                "SELECT model, state, attempts, max_attempts, input_bytes, result_bytes,
                        error_code, error,
                        extract(epoch FROM clock_timestamp() - created)::float8,
                        extract(epoch FROM finished - started)::float8
                 FROM unseen_jobs WHERE id = $1 AND tenant = $2",
                &[&id, &tenant],
            )
            .map_err(unavailable)?
            .ok_or_else(|| JobError::Unknown(id.to_string()))?;
        let error = match (row.get::<_, Option<String>>(6), row.get(7)) {
            (Some(code), Some(message)) => Some(JobFailure { code, message }),
            _ => None,
        };
        Ok(JobStatus {
            job_id: id.to_string(),
            model: row.get(0),
            state: row.get(1),
            attempts: row.get(2),
            max_attempts: row.get(3),
            input_bytes: row.get(4),
            result_bytes: row.get(5),
            error,
            age_s: row.get(8),
            run_s: row.get(9),
        })
    }

    /// The encrypted result of a done job.
    pub fn result(&self, id: &str, tenant: &str) -> Result<Vec<u8>, JobError> {
        let status = self.status(id, tenant)?;
        if status.state != "done" {
            return Err(JobError::NotDone {
                id: id.to_string(),
                state: status.state,
            });
        }
        read_chunks(&mut *self.conn()?, id, RESULT)
    }

    /// Claims the oldest claimable job for `worker`: a queued one, or a running one whose
    /// lease ran out. Jobs whose lease ran out on their last allowed attempt are failed first.
    pub fn claim(&self, worker: &str) -> Result<Option<(Claimed, Vec<u8>)>, JobError> {
        let mut conn = self.conn()?;
        conn.execute(
            "UPDATE unseen_jobs SET state = 'failed', finished = clock_timestamp(),
                    lease_owner = NULL, error_code = 'worker_lost',
                    error = 'its worker stopped before finishing, on every one of '
                            || attempts || ' attempts'
             WHERE state = 'running' AND lease_until < clock_timestamp()
               AND attempts >= max_attempts",
            &[],
        )
        .map_err(unavailable)?;
        let lease_ms = self.policy.lease.as_millis() as f64;
        let row = conn
            .query_opt(
                "UPDATE unseen_jobs SET state = 'running', attempts = attempts + 1,
                        lease_owner = $1,
                        lease_until = clock_timestamp() + $2 * interval '1 millisecond',
                        started = clock_timestamp()
                 WHERE id = (
                     SELECT id FROM unseen_jobs
                     WHERE (state = 'queued'
                            OR (state = 'running' AND lease_until < clock_timestamp()))
                       AND attempts < max_attempts
                     ORDER BY created
                     FOR UPDATE SKIP LOCKED
                     LIMIT 1)
                 RETURNING id, tenant, model, key_id, attempts",
                &[&worker, &lease_ms],
            )
            .map_err(unavailable)?;
        let Some(row) = row else {
            return Ok(None);
        };
        let job = Claimed {
            id: row.get(0),
            tenant: row.get(1),
            model: row.get(2),
            key_id: row.get(3),
            attempt: row.get(4),
        };
        let input = read_chunks(&mut conn, &job.id, INPUT)?;
        Ok(Some((job, input)))
    }

    /// Extends `worker`'s lease on `id`; `false` when the worker no longer holds it.
    pub fn renew(&self, id: &str, worker: &str) -> Result<bool, JobError> {
        let lease_ms = self.policy.lease.as_millis() as f64;
        let n = self
            .conn()?
            .execute(
                "UPDATE unseen_jobs
                 SET lease_until = clock_timestamp() + $3 * interval '1 millisecond'
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                &[&id, &worker, &lease_ms],
            )
            .map_err(unavailable)?;
        Ok(n == 1)
    }

    /// Stores the result and marks the job done, if `worker` still holds it; `false` (and
    /// nothing stored) otherwise. Done exactly once: the check and the write are one
    /// transaction.
    pub fn complete(&self, id: &str, worker: &str, result: &[u8]) -> Result<bool, JobError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(unavailable)?;
        let n = tx
            .execute(
                "UPDATE unseen_jobs SET state = 'done', finished = clock_timestamp(),
                        lease_owner = NULL, lease_until = NULL, result_bytes = $3
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                &[&id, &worker, &(result.len() as i64)],
            )
            .map_err(unavailable)?;
        if n != 1 {
            return Ok(false);
        }
        put_chunks(&mut tx, id, RESULT, result)?;
        // the batch is no longer needed
        tx.execute(
            "DELETE FROM unseen_job_chunks WHERE job = $1 AND part = $2",
            &[&id, &INPUT],
        )
        .map_err(unavailable)?;
        tx.commit().map_err(unavailable)?;
        Ok(true)
    }

    /// Fails the job for good (a bad batch or keys: retrying cannot help), if `worker` holds it.
    pub fn fail(
        &self,
        id: &str,
        worker: &str,
        code: &str,
        message: &str,
    ) -> Result<bool, JobError> {
        let n = self
            .conn()?
            .execute(
                "UPDATE unseen_jobs SET state = 'failed', finished = clock_timestamp(),
                        lease_owner = NULL, lease_until = NULL, error_code = $3, error = $4
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                &[&id, &worker, &code, &message],
            )
            .map_err(unavailable)?;
        Ok(n == 1)
    }

    /// Gives a held job back to the queue without counting the attempt (it could not run for
    /// a reason of the server's, not the job's); `false` when `worker` no longer holds it.
    pub fn release(&self, id: &str, worker: &str) -> Result<bool, JobError> {
        let n = self
            .conn()?
            .execute(
                "UPDATE unseen_jobs SET state = 'queued', attempts = attempts - 1,
                        lease_owner = NULL, lease_until = NULL
                 WHERE id = $1 AND lease_owner = $2 AND state = 'running'",
                &[&id, &worker],
            )
            .map_err(unavailable)?;
        Ok(n == 1)
    }

    /// Deletes the jobs that ended longer than the retention ago; how many.
    pub fn purge(&self) -> Result<u64, JobError> {
        let Some(keep) = self.policy.retention else {
            return Ok(0);
        };
        self.conn()?
            .execute(
                "DELETE FROM unseen_jobs WHERE state IN ('done', 'failed')
                 AND finished < clock_timestamp() - $1 * interval '1 millisecond'",
                &[&(keep.as_millis() as f64)],
            )
            .map_err(unavailable)
    }

    /// Jobs per state, for `/metrics` and tests.
    pub fn counts(&self) -> Result<Vec<(String, i64)>, JobError> {
        Ok(self
            .conn()?
            .query(
                "SELECT state, count(*) FROM unseen_jobs GROUP BY state ORDER BY state",
                &[],
            )
            .map_err(unavailable)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }
}

fn put_chunks(
    tx: &mut postgres::Transaction<'_>,
    id: &str,
    part: i16,
    data: &[u8],
) -> Result<(), JobError> {
    let insert = tx
        .prepare("INSERT INTO unseen_job_chunks (job, part, seq, data) VALUES ($1, $2, $3, $4)")
        .map_err(unavailable)?;
    for (seq, chunk) in data.chunks(CHUNK).enumerate() {
        tx.execute(&insert, &[&id, &part, &(seq as i32), &chunk])
            .map_err(unavailable)?;
    }
    Ok(())
}

fn read_chunks(conn: &mut postgres::Client, id: &str, part: i16) -> Result<Vec<u8>, JobError> {
    let mut tx = conn
        .build_transaction()
        .read_only(true)
        .start()
        .map_err(unavailable)?;
    let out = crate::db::read_chunks(
        &mut tx,
        "SELECT data FROM unseen_job_chunks WHERE job = $1 AND part = $2 ORDER BY seq",
        &[&id, &part],
        0,
    )
    .map_err(unavailable)?;
    tx.commit().map_err(unavailable)?;
    Ok(out)
}

/// Runs one job: the encrypted result, or an error. A `503` (the key store's database away)
/// gives the job back to the queue; any other error (a bad batch, unknown or unsuitable keys)
/// fails it for good, with the error's code and message.
pub type Runner = dyn Fn(&Claimed, &[u8]) -> Result<Vec<u8>, ApiError> + Send + Sync;

/// A worker's loop until `stop` is set: claim, run while renewing the lease, complete; when
/// there is nothing to claim, wait for a notification (or a second, to see expired leases).
/// Database failures are logged and retried: a job whose result could not be stored is claimed
/// again once its lease runs out.
pub fn work<F>(queue: &JobQueue, worker: &str, run: &F, stop: &AtomicBool)
where
    F: Fn(&Claimed, &[u8]) -> Result<Vec<u8>, ApiError> + Sync + ?Sized,
{
    let mut listener: Option<postgres::Client> = None;
    let mut purged: Option<std::time::Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        if purged.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
            purged = Some(std::time::Instant::now());
            if let Ok(n @ 1..) = queue.purge() {
                tracing::info!(jobs = n, worker, "deleted jobs past their retention");
            }
        }
        match queue.claim(worker) {
            Ok(Some((job, input))) => {
                tracing::info!(job = %job.id, model = %job.model, attempt = job.attempt, worker, "job claimed");
                let started = std::time::Instant::now();
                let outcome = with_lease(queue, &job.id, worker, || run(&job, &input));
                drop(input);
                let again =
                    matches!(&outcome, Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE);
                finish(queue, &job, worker, outcome, started.elapsed(), stop);
                if again {
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            Ok(None) => wait(queue, &mut listener, Duration::from_secs(1)),
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

/// Runs `f` while a thread renews the lease every third of its length.
fn with_lease<T>(queue: &JobQueue, id: &str, worker: &str, f: impl FnOnce() -> T) -> T {
    let done = AtomicBool::new(false);
    let every = queue.policy.lease / 3;
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut last = std::time::Instant::now();
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
                if last.elapsed() >= every {
                    match queue.renew(id, worker) {
                        Ok(true) => last = std::time::Instant::now(),
                        Ok(false) => {
                            tracing::warn!(job = %id, worker, "lease lost: another worker took the job");
                            return;
                        }
                        Err(_) => {}
                    }
                }
            }
        });
        let out = f();
        done.store(true, Ordering::Relaxed);
        out
    })
}

/// Stores the outcome, retrying while the database is away (until the lease would have run
/// out, after which another worker has the job).
fn finish(
    queue: &JobQueue,
    job: &Claimed,
    worker: &str,
    outcome: Result<Vec<u8>, ApiError>,
    took: Duration,
    stop: &AtomicBool,
) {
    let deadline = std::time::Instant::now() + queue.policy.lease;
    loop {
        let stored = match &outcome {
            Ok(result) => queue.complete(&job.id, worker, result),
            Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => queue.release(&job.id, worker),
            Err(e) => queue.fail(&job.id, worker, e.code, &e.message),
        };
        match stored {
            Ok(true) => {
                let state = match &outcome {
                    Ok(_) => "done",
                    Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => "queued again",
                    Err(_) => "failed",
                };
                tracing::info!(job = %job.id, state, ms = took.as_secs_f64() * 1e3, worker, "job finished");
                return;
            }
            Ok(false) => {
                tracing::warn!(job = %job.id, worker, "job finished after its lease was lost; result dropped");
                return;
            }
            Err(_) if std::time::Instant::now() < deadline && !stop.load(Ordering::Relaxed) => {
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(_) => return,
        }
    }
}

/// Waits up to `timeout` for a notification of new work (a listening connection is made, or
/// made again, as needed).
fn wait(queue: &JobQueue, listener: &mut Option<postgres::Client>, timeout: Duration) {
    if listener.is_none() {
        *listener = postgres::Client::connect(&queue.url, postgres::NoTls)
            .and_then(|mut c| c.batch_execute(&format!("LISTEN {CHANNEL}")).map(|_| c))
            .ok();
    }
    let Some(client) = listener.as_mut() else {
        std::thread::sleep(timeout);
        return;
    };
    let broken = client.notifications().timeout_iter(timeout).next().is_err();
    if broken {
        *listener = None;
    }
}

/// A name for a worker: host, process and thread index, so leases say who holds them.
pub fn worker_name(index: usize) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}:{index}", std::process::id())
}

/// Worker threads running [`work`].
#[derive(Debug)]
pub struct Workers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Workers {
    /// Starts `count` threads working on `queue` with `run`.
    pub fn spawn(queue: JobQueue, run: Arc<Runner>, count: usize) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for i in 0..count {
            let (queue, run, stop) = (queue.clone(), run.clone(), stop.clone());
            let name = worker_name(i);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("job-worker-{i}"))
                    .spawn(move || work(&queue, &name, &*run, &stop))?,
            );
        }
        Ok(Self { stop, threads })
    }

    /// Asks every thread to stop after its current job and waits for them.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::StoreError;

    fn queue(db: &crate::db::scratch::Scratch, lease_ms: u64, max_attempts: i32) -> JobQueue {
        let pool = crate::db::connect(&db.url, 4).expect("connect");
        JobQueue::new(
            pool,
            &db.url,
            QueuePolicy {
                lease: Duration::from_millis(lease_ms),
                max_attempts,
                retention: Some(Duration::from_millis(500)),
            },
        )
    }

    #[test]
    fn a_job_is_completed_once_by_the_holder_of_its_lease() {
        let Some(db) = crate::db::scratch::database("jobs") else {
            return;
        };
        let q = queue(&db, 300, 2);
        // larger than a chunk, so the batch is stored in several rows
        let input: Vec<u8> = (0..CHUNK + 12_345).map(|i| (i % 251) as u8).collect();
        let job = q
            .submit("acme", "m", &"a".repeat(64), &input)
            .expect("submit");
        assert_eq!((job.state.as_str(), job.attempts), ("queued", 0));
        // other tenants do not see it; malformed ids are refused
        assert_eq!(
            q.status(&job.job_id, "evil"),
            Err(JobError::Unknown(job.job_id.clone()))
        );
        assert_eq!(q.status("nope", "acme"), Err(JobError::BadId));
        assert!(matches!(
            q.result(&job.job_id, "acme"),
            Err(JobError::NotDone { .. })
        ));
        // A claims it and gets the batch back intact; nobody else can claim it meanwhile
        let (a, got) = q.claim("A").expect("claim").expect("a job");
        assert_eq!(
            (a.id.as_str(), a.attempt, a.tenant.as_str()),
            (job.job_id.as_str(), 1, "acme")
        );
        assert_eq!(got, input);
        assert!(q.claim("B").expect("claim").is_none());
        assert!(q.renew(&a.id, "A").expect("renew"));
        // A's lease runs out (A died): B claims it again, and A can no longer finish it
        std::thread::sleep(Duration::from_millis(400));
        let (b, _) = q.claim("B").expect("claim").expect("reclaimed");
        assert_eq!((b.id.as_str(), b.attempt), (job.job_id.as_str(), 2));
        assert!(!q.renew(&a.id, "A").expect("renew"));
        assert!(!q.complete(&a.id, "A", b"stale").expect("complete"));
        assert!(q.complete(&b.id, "B", b"logits").expect("complete"));
        assert!(!q.complete(&b.id, "B", b"twice").expect("complete"));
        let done = q.status(&job.job_id, "acme").expect("status");
        assert_eq!(
            (done.state.as_str(), done.attempts, done.result_bytes),
            ("done", 2, Some(6))
        );
        assert_eq!(q.result(&job.job_id, "acme").expect("result"), b"logits");
        assert!(q.claim("C").expect("claim").is_none());
        // ended jobs go once past their retention, with their rows
        assert_eq!(q.purge().expect("purge"), 0);
        std::thread::sleep(Duration::from_millis(600));
        assert_eq!(q.purge().expect("purge"), 1);
        assert_eq!(
            q.status(&job.job_id, "acme"),
            Err(JobError::Unknown(job.job_id.clone()))
        );
        assert!(q.counts().expect("counts").is_empty());
    }

    #[test]
    fn lost_workers_bad_jobs_and_an_absent_store_end_as_they_should() {
        let Some(db) = crate::db::scratch::database("jobs-fail") else {
            return;
        };
        let q = queue(&db, 200, 1);
        let lost = q.submit("t", "m", &"b".repeat(64), b"x").expect("submit");
        let (j, _) = q.claim("A").expect("claim").expect("job");
        std::thread::sleep(Duration::from_millis(300));
        // its only attempt's worker died: failed for good, not claimed again
        assert!(q.claim("B").expect("claim").is_none());
        let s = q.status(&lost.job_id, "t").expect("status");
        assert_eq!(s.state, "failed");
        assert_eq!(s.error.expect("error").code, "worker_lost");
        assert!(!q.complete(&j.id, "A", b"late").expect("complete"));

        // the worker loop: a bad batch fails with the runner's error, a store that is away
        // gives the job back without counting the attempt
        let q = queue(&db, 5_000, 3);
        let bad = q.submit("t", "m", &"c".repeat(64), b"bad").expect("submit");
        let away = q
            .submit("t", "m", &"d".repeat(64), b"away")
            .expect("submit");
        let good = q
            .submit("t", "m", &"e".repeat(64), b"good")
            .expect("submit");
        let calls = std::sync::Mutex::new(Vec::new());
        let stop = AtomicBool::new(false);
        let run = |job: &Claimed, input: &[u8]| -> Result<Vec<u8>, ApiError> {
            let mut calls = calls.lock().expect("lock");
            calls.push(job.id.clone());
            let seen = calls.iter().filter(|c| **c == job.id).count();
            match input {
                b"bad" => Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "wrong_shape",
                    "not a batch",
                )),
                b"away" if seen == 1 => Err(StoreError::Unavailable.into()),
                _ => {
                    if calls.len() >= 4 {
                        stop.store(true, Ordering::Relaxed);
                    }
                    Ok([b"out-".as_slice(), input].concat())
                }
            }
        };
        work(&q, "W", &run, &stop);
        let s = q.status(&bad.job_id, "t").expect("status");
        assert_eq!((s.state.as_str(), s.attempts), ("failed", 1));
        assert_eq!(s.error.expect("error").code, "wrong_shape");
        let s = q.status(&away.job_id, "t").expect("status");
        assert_eq!((s.state.as_str(), s.attempts), ("done", 1), "{s:?}");
        assert_eq!(q.result(&away.job_id, "t").expect("result"), b"out-away");
        assert_eq!(q.result(&good.job_id, "t").expect("result"), b"out-good");
        assert_eq!(calls.lock().expect("lock").len(), 4);
    }
}
