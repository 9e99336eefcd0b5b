//! The HTTP JSON API.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde_json::json;
use unseen_model::linear::LinearModel;
use unseen_wire::salary::PredictRequest;

use crate::body;
use crate::keystore::Owner;
use crate::predict::{model, predict_async};
use crate::{ApiError, AppState};

/// The OpenAPI 3 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The `{name}` of a model route; a name that is not UTF-8 gets a JSON `400 bad_path`.
pub struct ModelName(pub String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ModelName {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(name)) => Ok(Self(name)),
            Err(e) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_path",
                format!(
                    "the model name in the path is unreadable: {}",
                    e.body_text()
                ),
            )),
        }
    }
}

/// The router, apart from any listener, so tests can drive it directly.
pub fn app(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{name}", get(get_model))
        .route("/v1/models/{name}/predict", post(predict_handler))
        .route("/v1/models/{name}/infer", post(infer_handler))
        .route("/v1/keys", post(register_keys))
        .route("/v1/jobs", post(submit_job))
        .route("/v1/jobs/{id}", get(job_status))
        .route("/v1/jobs/{id}/result", get(job_result))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ));
    Router::new()
        .route("/", get(web_index))
        .route("/assets/{*file}", get(web_asset))
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .merge(api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

/// Records every request in the metrics: route template, status, latency, sizes, error code.
async fn observe(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let started = std::time::Instant::now();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let length = |h: &axum::http::HeaderMap| {
        h.get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let bytes_in = length(request.headers());
    let response = next.run(request).await;
    let code = response.extensions().get::<crate::ErrorCode>().map(|c| c.0);
    let (status, seconds, bytes_out) = (
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
        axum::body::HttpBody::size_hint(response.body())
            .exact()
            .unwrap_or_else(|| length(response.headers())),
    );
    state
        .metrics
        .record(&route, status, seconds, bytes_in, bytes_out, code);
    // one line per request: the route template, never the path's names, keys or bodies
    tracing::info!(
        route = %route,
        status,
        ms = seconds * 1e3,
        bytes_in,
        bytes_out,
        error = code.unwrap_or(""),
        "request"
    );
    response
}

/// `GET /metrics`: the Prometheus text format.
async fn metrics(State(state): State<Arc<AppState>>) -> Result<impl IntoResponse, ApiError> {
    // with a database, the store's size and the jobs are asked of it: off the async runtime
    let text = tokio::task::spawn_blocking(move || {
        state
            .metrics
            .render(state.eval_keys.as_ref(), state.jobs.as_ref())
    })
    .await
    .map_err(|_| task_error())?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    ))
}

/// The client address of a connection, set by [`serve`] on every request.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

/// With tokens configured, a `/v1/...` request needs `Authorization: Bearer <token>` with the
/// route's scope: `keys` to register keys, `infer` to predict or infer, any valid token to read
/// the model list. Missing or unknown tokens get 401, a token without the scope 403. Then the
/// client (its tenant, or its address without tokens) must be within its request rate, or gets
/// 429. The handler finds the tenant as a [`crate::keystore::Owner`] extension.
async fn require_token(
    State(state): State<Arc<AppState>>,
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, ApiError> {
    let admitted = admit(&state, &request);
    match admitted {
        Ok(owner) => {
            request.extensions_mut().insert(owner);
            Ok(next.run(request).await)
        }
        Err(e) => {
            // A client that sends its whole request before reading the reply would see this
            // refusal as a broken pipe: read (and drop) a small body first, briefly.
            let body = request.into_body();
            let _ = tokio::time::timeout(
                std::time::Duration::from_secs(2),
                axum::body::to_bytes(body, REFUSAL_DRAIN),
            )
            .await;
            Err(e)
        }
    }
}

/// Bytes of a refused request's body read before the refusal is sent.
const REFUSAL_DRAIN: usize = 1 << 20;

/// The request's tenant, if its token (when tokens are configured) and its client's rate allow
/// it in.
fn admit(
    state: &AppState,
    request: &axum::extract::Request,
) -> Result<crate::keystore::Owner, ApiError> {
    let (owner, client) = match &state.tokens {
        None => {
            let ip = request
                .extensions()
                .get::<Peer>()
                .map(|p| p.0.ip().to_string())
                .unwrap_or_else(|| "local".into());
            (crate::keystore::Owner::open(), ip)
        }
        Some(tokens) => {
            let entry = authenticate(tokens, request)?;
            let owner = crate::keystore::Owner {
                tenant: entry.tenant.clone(),
                quota: entry.quota_bytes,
            };
            (owner, format!("tenant:{}", entry.tenant))
        }
    };
    state.rate.admit(&client).map_err(|wait| {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests from this client; slow down",
        )
        .retry_after(wait)
    })?;
    Ok(owner)
}

/// The token entry of a request, if its token is known and has the route's scope.
fn authenticate<'t>(
    tokens: &'t crate::auth::Tokens,
    request: &axum::extract::Request,
) -> Result<&'t crate::auth::TokenEntry, ApiError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            // the scheme name is case-insensitive (RFC 9110, 11.1)
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then_some(token)
        })
        .map(str::trim);
    let entry = presented.and_then(|t| tokens.check(t)).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this server needs an API token: send Authorization: Bearer <token>",
        )
    })?;
    if entry.expired() {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "token_expired",
            "this API token has expired: ask the operator for a new one",
        ));
    }
    let path = request.uri().path();
    let needed = if request.method() == axum::http::Method::POST {
        Some(if path == "/v1/keys" {
            crate::auth::Scope::Keys
        } else {
            crate::auth::Scope::Infer
        })
    } else {
        None
    };
    if let Some(scope) = needed {
        if !entry.allows(scope) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "the token of tenant '{}' does not allow {}",
                    entry.tenant,
                    match scope {
                        crate::auth::Scope::Keys => "registering keys",
                        _ => "inference",
                    }
                ),
            ));
        }
    }
    Ok(entry)
}

/// Open connections per client address.
#[derive(Clone)]
struct PerClient {
    open: Arc<std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>>,
    cap: usize,
}

/// A connection counted against its address until dropped.
struct ClientSlot {
    table: PerClient,
    ip: std::net::IpAddr,
}

impl PerClient {
    fn new(cap: usize) -> Self {
        Self {
            open: Default::default(),
            cap,
        }
    }

    /// A slot for one more connection from `ip`, or `None` at the cap.
    fn enter(&self, ip: std::net::IpAddr) -> Option<ClientSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(ClientSlot {
            table: self.clone(),
            ip,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Answers a connection over its address's cap with `429` and a JSON error, then closes it.
async fn refuse_connection<S: tokio::io::AsyncWrite + Unpin>(mut socket: S) {
    use tokio::io::AsyncWriteExt;
    let body = r#"{"error":{"code":"too_many_connections","message":"too many open connections from this address; close some and retry"}}"#;
    let reply = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        socket.write_all(reply.as_bytes()),
    )
    .await;
    let _ = socket.shutdown().await;
}

/// Serves `app` on `listener` (HTTPS with `tls`) until `stop` turns true, then lets open
/// requests finish.
///
/// Each connection must complete its TLS handshake and deliver its request headers within
/// `limits.idle_timeout` (no slow clients holding sockets forever), and at most
/// `limits.max_connections` connections are served at once (more wait in the listen queue).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<crate::tls::TlsConfig>,
    state: Arc<AppState>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let limits = &state.limits;
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let header_timeout = limits.idle_timeout;
    let per_client = PerClient::new(limits.max_connections_per_client.max(1));
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    loop {
        let permit = tokio::select! {
            _ = crate::stopped(&mut stop) => break,
            p = permits.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (socket, peer) = tokio::select! {
            _ = crate::stopped(&mut stop) => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let slot = per_client.enter(peer.ip());
        if slot.is_none() {
            state.metrics.refused_connection();
        }
        let (app, graceful, acceptor) = (app.clone(), graceful.watcher(), acceptor.clone());
        tokio::spawn(async move {
            let Some(acceptor) = acceptor else {
                match slot {
                    Some(slot) => {
                        serve_connection(socket, peer, app, header_timeout, graceful, slot).await
                    }
                    None => refuse_connection(socket).await,
                }
                drop(permit);
                return;
            };
            // the handshake counts against the same deadline as the headers
            match tokio::time::timeout(header_timeout, acceptor.accept(socket)).await {
                Ok(Ok(stream)) => match slot {
                    Some(slot) => {
                        serve_connection(stream, peer, app, header_timeout, graceful, slot).await
                    }
                    None => refuse_connection(stream).await,
                },
                Ok(Err(e)) => tracing::debug!(%peer, "TLS handshake failed: {e}"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
            drop(permit);
        });
    }
    // Let requests in flight finish, within a bound.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
}

/// Serves one connection's requests, with its client address on each.
async fn serve_connection<I>(
    io: I,
    peer: std::net::SocketAddr,
    app: Router,
    header_timeout: std::time::Duration,
    graceful: hyper_util::server::graceful::Watcher,
    slot: ClientSlot,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let service = TowerToHyperService::new(tower::util::MapRequest::new(
        app,
        move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(Peer(peer));
            request
        },
    ));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = graceful.watch(conn).await {
        tracing::debug!(%peer, "HTTP connection ended: {e}");
    }
    drop(slot);
}

/// `GET /healthz`: `200 ok`, or `503 draining` once the server is stopping (a load balancer
/// then sends new requests to other replicas while this one finishes its own).
async fn healthz(State(state): State<Arc<AppState>>) -> (StatusCode, Json<serde_json::Value>) {
    let models = state.models.len() + state.cnn_models.len();
    if state.draining.load(std::sync::atomic::Ordering::Relaxed) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "draining", "models": models})),
        );
    }
    (
        StatusCode::OK,
        Json(json!({"status": "ok", "models": models})),
    )
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}

fn describe(m: &LinearModel) -> serde_json::Value {
    json!({
        "name": m.name,
        "kind": "linear",
        "scheme": "paillier",
        "target": m.target,
        "features": m.features,
        "metrics": m.metrics,
    })
}

async fn list_models(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let mut all: Vec<serde_json::Value> = state.models.values().map(|m| describe(m)).collect();
    all.extend(state.cnn_models.values().map(|m| m.describe()));
    Json(json!({ "models": all }))
}

async fn get_model(
    State(state): State<Arc<AppState>>,
    ModelName(name): ModelName,
) -> Result<Json<serde_json::Value>, ApiError> {
    if let Some(m) = state.cnn_models.get(&name) {
        return Ok(Json(m.describe()));
    }
    let m = model(&state, &name)?;
    Ok(Json(describe(&m)))
}

fn task_error() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the computation failed",
    )
}

fn key_store(state: &AppState) -> Result<&crate::keystore::KeyStore, ApiError> {
    state.eval_keys.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_encrypted_models",
            "this server serves no encrypted CNN model, so it takes no evaluation keys",
        )
    })
}

/// Reads a body of up to `max_batch_body` bytes. Past `max(max_body, 4 MiB)` (declared or
/// received) it needs one of the few large-body slots, shared with key uploads, so that
/// concurrent batches cannot exhaust memory; when none is free the answer is an immediate 503.
async fn read_large_body<'a>(
    state: &'a Arc<AppState>,
    headers: &axum::http::HeaderMap,
    body: Body,
) -> Result<(Vec<u8>, Option<tokio::sync::SemaphorePermit<'a>>), ApiError> {
    let small = state.limits.max_body.max(4 << 20) as u64;
    let limit = (state.limits.max_batch_body as u64).max(small);
    let declared = body::declared_length(headers, limit)?;
    let mut permit = match declared {
        Some(n) if n > small => Some(body::large_slot(state)?),
        _ => None,
    };
    let mut reader = body::Reader::new(state, body, limit);
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0).min(small) as usize);
    while let Some(data) = reader.next().await? {
        if reader.received() > small && permit.is_none() {
            permit = Some(body::large_slot(state)?);
        }
        bytes.extend_from_slice(&data);
    }
    Ok((bytes, permit))
}

/// `POST /v1/keys`: streams a key bundle to disk while hashing it, validates it, stores it under
/// its SHA-256 and answers `{"key_id", "bytes", "rotation_keys"}`.
async fn register_keys(
    State(state): State<Arc<AppState>>,
    Extension(owner): Extension<Owner>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let store = key_store(&state)?;
    if let Some(n) = body::declared_length(&headers, store.max_key_bytes())? {
        store.check_size(&owner, n)?;
    }
    // key uploads are large: like batches, a few at a time, and never a queue of them
    let _large = body::large_slot(&state)?;
    let mut upload = store.begin()?;
    let mut reader = body::Reader::new(&state, body, store.max_key_bytes());
    while let Some(data) = reader.next().await? {
        upload.push(&data)?;
    }
    let _permit = crate::compute_slot(&state).await?;
    let st = state.clone();
    let tenant = owner.tenant.clone();
    let (id, bytes, keys) = tokio::task::spawn_blocking(move || {
        Ok::<_, ApiError>(key_store(&st)?.commit(upload, &owner)?)
    })
    .await
    .map_err(|_| task_error())??;
    tracing::info!(key_id = %id, bytes, tenant = %tenant, "evaluation keys registered");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "key_id": id,
            "bytes": bytes,
            "rotation_keys": keys.galois.galois_elements().len(),
        })),
    ))
}

/// The served encrypted model `name`, or a `404` listing them.
fn cnn_model(state: &AppState, name: &str) -> Result<Arc<crate::cnn::CnnModel>, ApiError> {
    state.cnn_models.get(name).cloned().ok_or_else(|| {
        let known: Vec<&str> = state.cnn_models.keys().map(String::as_str).collect();
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_model",
            format!(
                "no encrypted CNN model named '{name}' (models: {})",
                known.join(", ")
            ),
        )
    })
}

/// The `unseen-key-id` header. A malformed key id is refused before the (possibly large) body
/// is read; an unknown one only after it, because clients read the 404 to register their keys
/// and retry, and a reply sent while they are still sending reaches them as a broken pipe.
fn key_id_header(headers: &axum::http::HeaderMap) -> Result<String, ApiError> {
    let key_id = headers
        .get("unseen-key-id")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "missing_key_id",
                "give the evaluation keys' id in the unseen-key-id header (POST /v1/keys returns it)",
            )
        })?;
    if !crate::keystore::valid_id(key_id) {
        return Err(crate::keystore::StoreError::BadId.into());
    }
    Ok(key_id.to_string())
}

/// `POST /v1/models/{name}/infer`: one encrypted image (body) with the key id in the
/// `unseen-key-id` header; answers the encrypted logits, with the server time in
/// `unseen-server-ms`.
async fn infer_handler(
    State(state): State<Arc<AppState>>,
    Extension(owner): Extension<Owner>,
    ModelName(name): ModelName,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<axum::response::Response, ApiError> {
    let m = cnn_model(&state, &name)?;
    let key_id = key_id_header(&headers)?;
    let (bytes, _large) = read_large_body(&state, &headers, body).await?;
    let _permit = crate::compute_slot(&state).await?;
    let st = state.clone();
    let (reply, ms) = tokio::task::spawn_blocking(move || {
        let keys = key_store(&st)?.get(&key_id, &owner.tenant)?;
        let t = std::time::Instant::now();
        let reply = m.infer(keys, &bytes)?;
        Ok::<_, ApiError>((reply, t.elapsed().as_secs_f64() * 1e3))
    })
    .await
    .map_err(|_| task_error())??;
    tracing::debug!(model = %name, ms, "encrypted inference served");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::HeaderName::from_static("unseen-server-ms"),
                format!("{ms:.3}"),
            ),
        ],
        reply,
    )
        .into_response())
}

fn job_queue(state: &AppState) -> Result<&crate::jobs::JobQueue, ApiError> {
    state.jobs.as_ref().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_job_queue",
            "this server takes no batch jobs (they need a shared database: unseen serve --key-store postgres://...)",
        )
    })
}

/// Runs `f` on the job queue (`404 no_job_queue` without one) off the async runtime.
async fn on_queue<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&crate::jobs::JobQueue) -> Result<T, crate::jobs::JobError> + Send + 'static,
) -> Result<T, ApiError> {
    job_queue(state)?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || Ok(f(job_queue(&st)?)?))
        .await
        .map_err(|_| task_error())?
}

/// The `{id}` of a job route; one that is not UTF-8 gets a JSON `400 bad_job_id`.
fn job_id(
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<String, ApiError> {
    match id {
        Ok(Path(id)) if crate::jobs::valid_id(&id) => Ok(id),
        _ => Err(crate::jobs::JobError::BadId.into()),
    }
}

/// The `model` of `POST /v1/jobs?model=NAME`.
#[derive(serde::Deserialize)]
struct JobTarget {
    model: Option<String>,
}

/// `POST /v1/jobs?model=NAME`: an encrypted batch (the body, as for `/infer`) with the key id in
/// the `unseen-key-id` header, checked and queued; answers `202` with the job's status at once.
async fn submit_job(
    State(state): State<Arc<AppState>>,
    Extension(owner): Extension<Owner>,
    query: Result<axum::extract::Query<JobTarget>, axum::extract::rejection::QueryRejection>,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    job_queue(&state)?;
    let name = query.ok().and_then(|q| q.0.model).ok_or_else(|| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_model",
            "name the model in the query: POST /v1/jobs?model=NAME",
        )
    })?;
    let m = cnn_model(&state, &name)?;
    let key_id = key_id_header(&headers)?;
    let (bytes, _large) = read_large_body(&state, &headers, body).await?;
    let _permit = crate::compute_slot(&state).await?;
    let st = state.clone();
    let status = tokio::task::spawn_blocking(move || {
        // the keys must be the tenant's before the job is accepted; the worker loads them
        key_store(&st)?.check_owner(&key_id, &owner.tenant)?;
        m.check_batch(&bytes)?;
        Ok::<_, ApiError>(job_queue(&st)?.submit(&owner.tenant, &m.name, &key_id, &bytes)?)
    })
    .await
    .map_err(|_| task_error())??;
    tracing::info!(job = %status.job_id, model = %status.model, bytes = status.input_bytes, "job queued");
    Ok((StatusCode::ACCEPTED, Json(json!(status))))
}

/// `GET /v1/jobs/{id}`: the job's state, attempts, sizes and error, for its tenant only.
async fn job_status(
    State(state): State<Arc<AppState>>,
    Extension(owner): Extension<Owner>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = job_id(id)?;
    let status = on_queue(&state, move |q| q.status(&id, &owner.tenant)).await?;
    Ok(Json(json!(status)))
}

/// `GET /v1/jobs/{id}/result`: the encrypted logits of a done job (`409` before).
async fn job_result(
    State(state): State<Arc<AppState>>,
    Extension(owner): Extension<Owner>,
    id: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Result<axum::response::Response, ApiError> {
    let id = job_id(id)?;
    let bytes = on_queue(&state, move |q| q.result(&id, &owner.tenant)).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

async fn predict_handler(
    State(state): State<Arc<AppState>>,
    ModelName(name): ModelName,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let m = model(&state, &name)?;
    // a declared length over the limit is refused before anything is read; a body arrives
    // within the idle timeout per chunk and the minimum rate overall
    let limit = state.limits.max_body as u64;
    let declared = body::declared_length(&headers, limit)?;
    let mut reader = body::Reader::new(&state, body, limit);
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(data) = reader.next().await? {
        bytes.extend_from_slice(&data);
    }
    let request = PredictRequest::parse(&bytes)?;
    let result = predict_async(state.clone(), m.clone(), request).await?;
    tracing::debug!(model = %m.name, "prediction served");
    Ok(Json(json!({
        "model": m.name,
        "value": {"v": result.ciphertext().to_string(), "e": result.exponent()},
    })))
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method (see /openapi.json)",
    )
}

/// `GET /`: the browser client's page, when the server has one (`--web`).
async fn web_index(State(state): State<Arc<AppState>>) -> axum::response::Response {
    web_file(&state, "index.html")
}

/// `GET /assets/{file}`: the page's scripts, styles and WebAssembly module.
async fn web_asset(
    State(state): State<Arc<AppState>>,
    file: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> axum::response::Response {
    match file {
        Ok(Path(file)) => web_file(&state, &file),
        Err(_) => not_found_error().into_response(),
    }
}

fn web_file(state: &AppState, name: &str) -> axum::response::Response {
    match state.web.as_ref().and_then(|site| site.reply(name)) {
        Some(reply) => reply,
        None if state.web.is_none() => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "this server has no browser page (unseen serve --web DIR; see /openapi.json for the API)",
        )
        .into_response(),
        None => not_found_error().into_response(),
    }
}

fn not_found_error() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route (see /openapi.json)",
    )
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route (see /openapi.json)",
    )
}
