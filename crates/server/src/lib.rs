//! The unseen server: runs models on ciphertexts it cannot read.
//!
//! * [`http`]: the axum router (`/healthz`, `/v1/models`, `/v1/models/{name}/predict`,
//!   `/openapi.json`).
//! * [`legacy`]: the TCP protocol of the original python-paillier salary service.
//! * [`predict`]: the encrypted linear prediction shared by both.
//! * [`keys`]: a bounded cache of clients' public keys with their precomputed tables.
//! * [`cnn`]: encrypted image classification with CKKS (`/v1/models/{name}/infer`).
//! * [`keystore`]: clients' CKKS evaluation keys on disk (`/v1/keys`).

pub mod auth;
mod body;
pub mod cnn;
pub mod db;
mod error;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod keystore;
pub mod legacy;
mod lru;
pub mod metrics;
pub mod predict;
pub mod rate;
pub mod tls;
pub mod web;

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

pub use error::{ApiError, ErrorCode};
use tokio::net::TcpListener;
use unseen_model::linear::LinearModel;
use unseen_paillier::Randomness;

/// Limits and policies of a server.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body or legacy frame, in bytes.
    pub max_body: usize,
    /// Largest encrypted batch (one ciphertext per pixel), in bytes; bodies over `max_body`
    /// are read at most two at a time.
    pub max_batch_body: usize,
    /// Smallest client modulus accepted, in bits.
    pub min_key_bits: u32,
    /// Largest client modulus accepted, in bits.
    pub max_key_bits: u32,
    /// A client that sends nothing for this long is disconnected (legacy) or gets 408 (HTTP).
    pub idle_timeout: Duration,
    /// After the first `idle_timeout`, an HTTP body must arrive at least this fast on average
    /// (bytes per second; 0: no floor), or the request gets 408 `too_slow`.
    pub min_body_rate: u64,
    /// Large bodies (key uploads, batches) received at once; more get an immediate 503 with
    /// `Retry-After`.
    pub large_bodies: usize,
    /// Most simultaneous connections, per protocol.
    pub max_connections: usize,
    /// Most simultaneous HTTP connections from one client address; more get `429` at once.
    pub max_connections_per_client: usize,
    /// Requests per second one client (tenant, or address without tokens) may make on
    /// average (0: no limit); more get `429` with `Retry-After`.
    pub rate_limit: f64,
    /// Requests one client may make in a burst above `rate_limit`.
    pub rate_burst: u32,
    /// Client public keys kept with their precomputed randomizer tables.
    pub key_cache: usize,
    /// How results are re-randomised before they leave.
    pub randomness: Randomness,
    /// After a stop signal, how long `/healthz` answers `503 draining` while requests are still
    /// served, so that a load balancer sends new ones elsewhere before the listener closes.
    pub drain: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body: 1 << 20,
            max_batch_body: 256 << 20,
            min_key_bits: 2048,
            max_key_bits: 4096,
            idle_timeout: Duration::from_secs(30),
            min_body_rate: 128 << 10,
            large_bodies: 2,
            max_connections: 256,
            max_connections_per_client: 32,
            rate_limit: 100.0,
            rate_burst: 200,
            key_cache: 256,
            randomness: Randomness::FixedBase,
            drain: Duration::ZERO,
        }
    }
}

/// What every handler shares: the models, the key cache and the limits.
#[derive(Debug)]
pub struct AppState {
    /// Published linear (Paillier) models by name.
    pub models: BTreeMap<String, Arc<LinearModel>>,
    /// Published encrypted CNN (CKKS) models by name.
    pub cnn_models: BTreeMap<String, Arc<cnn::CnnModel>>,
    /// Clients' evaluation keys (present when CNN models are served).
    pub eval_keys: Option<keystore::KeyStore>,
    /// The model the legacy protocol serves (it has no model name): the first one given.
    pub legacy_model: Option<Arc<LinearModel>>,
    /// Cache of client public keys.
    pub keys: keys::KeyCache,
    /// Limits in force.
    pub limits: Limits,
    /// Bounds the CPU-heavy work running at once.
    pub compute: tokio::sync::Semaphore,
    /// Bounds the large (batch) bodies held in memory at once.
    pub large_bodies: tokio::sync::Semaphore,
    /// API tokens required on `/v1/...` (`None`: the API is open to whoever reaches it).
    pub tokens: Option<auth::Tokens>,
    /// What `/metrics` reports.
    pub metrics: metrics::Metrics,
    /// Requests per client.
    pub rate: rate::RateLimiter,
    /// The browser client's page (`--web`), served at `/`.
    pub web: Option<web::Site>,
    /// Batch jobs (`/v1/jobs`), when the server shares a database with its workers.
    pub jobs: Option<jobs::JobQueue>,
    /// Set once the server is stopping: `/healthz` answers `503`.
    pub draining: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// State for the given linear models (names must be unique).
    pub fn new(models: Vec<LinearModel>, limits: Limits) -> Result<Arc<Self>, String> {
        Self::with_cnn(models, Vec::new(), None, limits)
    }

    /// State for linear and CNN models; CNN models need a key store. Names must be unique
    /// across both kinds.
    pub fn with_cnn(
        models: Vec<LinearModel>,
        cnn_models: Vec<cnn::CnnModel>,
        eval_keys: Option<keystore::KeyStore>,
        limits: Limits,
    ) -> Result<Arc<Self>, String> {
        Self::with_tokens(models, cnn_models, eval_keys, limits, None)
    }

    /// Like [`Self::with_cnn`], with the API tokens every `/v1/...` request must carry.
    pub fn with_tokens(
        models: Vec<LinearModel>,
        cnn_models: Vec<cnn::CnnModel>,
        eval_keys: Option<keystore::KeyStore>,
        limits: Limits,
        tokens: Option<auth::Tokens>,
    ) -> Result<Arc<Self>, String> {
        if !cnn_models.is_empty() && eval_keys.is_none() {
            return Err("CNN models need a key store (--data-dir)".into());
        }
        let mut cnn_map = BTreeMap::new();
        for m in cnn_models {
            if cnn_map.contains_key(&m.name) || models.iter().any(|l| l.name == m.name) {
                return Err(format!("two models are named '{}'", m.name));
            }
            cnn_map.insert(m.name.clone(), Arc::new(m));
        }
        let mut map = BTreeMap::new();
        let mut legacy_model = None;
        for m in models {
            if map.contains_key(&m.name) {
                return Err(format!("two models are named '{}'", m.name));
            }
            let m = Arc::new(m);
            legacy_model.get_or_insert_with(|| m.clone());
            map.insert(m.name.clone(), m);
        }
        let workers = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        Ok(Arc::new(Self {
            models: map,
            cnn_models: cnn_map,
            eval_keys,
            legacy_model,
            keys: keys::KeyCache::new(limits.key_cache),
            compute: tokio::sync::Semaphore::new(workers),
            large_bodies: tokio::sync::Semaphore::new(limits.large_bodies.max(1)),
            rate: rate::RateLimiter::new(limits.rate_limit, limits.rate_burst),
            limits,
            tokens,
            metrics: metrics::Metrics::default(),
            web: None,
            jobs: None,
            draining: Default::default(),
        }))
    }

    /// `state`, just made, serving the browser page `site` at `/`.
    pub fn with_web(mut state: Arc<Self>, site: web::Site) -> Result<Arc<Self>, String> {
        Arc::get_mut(&mut state)
            .ok_or("the server state is already shared")?
            .web = Some(site);
        Ok(state)
    }
}

impl AppState {
    /// `state`, just made, taking batch jobs into `queue`.
    pub fn with_jobs(mut state: Arc<Self>, queue: jobs::JobQueue) -> Result<Arc<Self>, String> {
        Arc::get_mut(&mut state)
            .ok_or("the server state is already shared")?
            .jobs = Some(queue);
        Ok(state)
    }

    /// Runs a claimed batch job on this server's models with its key store: what `unseen
    /// worker` and a server's own worker threads do with each job.
    pub fn job_runner(state: Arc<Self>) -> Arc<jobs::Runner> {
        Arc::new(move |job: &jobs::Claimed, input: &[u8]| {
            let model = state.cnn_models.get(&job.model).ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "unknown_model",
                    format!(
                        "this worker serves no encrypted model named '{}'",
                        job.model
                    ),
                )
            })?;
            let store = state.eval_keys.as_ref().ok_or_else(|| {
                ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "no_encrypted_models",
                    "this worker has no key store",
                )
            })?;
            let keys = store.get(&job.key_id, &job.tenant)?;
            model.infer(keys, input)
        })
    }
}

/// Serves HTTP and/or legacy TCP on already bound listeners until `shutdown` resolves.
pub async fn serve(
    state: Arc<AppState>,
    http: Option<TcpListener>,
    legacy: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_tls(state, http, None, legacy, shutdown).await
}

/// Like [`serve`], with HTTPS instead of HTTP on the `http` listener when `tls` is given.
pub async fn serve_with_tls(
    state: Arc<AppState>,
    http: Option<TcpListener>,
    tls: Option<tls::TlsConfig>,
    legacy: Option<TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(listener) = http {
        let app = http::app(state.clone());
        let rx = rx.clone();
        let state = state.clone();
        tasks.spawn(async move { http::serve(listener, app, tls, state, rx).await });
    }
    if let Some(listener) = legacy {
        let state = state.clone();
        let rx = rx.clone();
        tasks.spawn(async move { legacy::serve(listener, state, rx).await });
    }
    let drain = state.limits.drain;
    let draining = state.clone();
    tokio::spawn(async move {
        shutdown.await;
        draining
            .draining
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if !drain.is_zero() {
            tracing::info!("draining for {} ms before stopping", drain.as_millis());
            tokio::time::sleep(drain).await;
        }
        let _ = tx.send(true);
    });
    while let Some(res) = tasks.join_next().await {
        match res {
            Ok(r) => r?,
            Err(e) => return Err(std::io::Error::other(e)),
        }
    }
    Ok(())
}

/// A compute slot (one per core) for CPU-heavy work, with the wait recorded in the metrics;
/// `503` once the server is shutting down.
pub(crate) async fn compute_slot(
    state: &AppState,
) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
    let started = std::time::Instant::now();
    let permit = state.compute.acquire().await.map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        )
    })?;
    state.metrics.queue_waited(started.elapsed().as_secs_f64());
    Ok(permit)
}

/// Resolves once the stop flag is set (or its sender is gone).
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

/// Binds an address, with the address in the error message.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}
