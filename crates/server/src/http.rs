//! The HTTP JSON API.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use unseen_ml::linear::LinearModel;
use unseen_wire::salary::PredictRequest;

use crate::predict::{model, predict_async};
use crate::{ApiError, AppState};

/// The OpenAPI 3 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The router, apart from any listener, so tests can drive it directly.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{name}", get(get_model))
        .route("/v1/models/{name}/predict", post(predict_handler))
        .fallback(not_found)
        .with_state(state)
}

/// Serves `app` on `listener` until `stop` turns true, then lets open requests finish.
///
/// Each connection must deliver its request headers within `limits.idle_timeout` (no
/// slow-header clients holding sockets forever), and at most `limits.max_connections`
/// connections are served at once (more wait in the listen queue).
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    limits: &crate::Limits,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let header_timeout = limits.idle_timeout;
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
        let service = TowerToHyperService::new(app.clone());
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(socket), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, "HTTP connection ended: {e}");
            }
            drop(permit);
        });
    }
    // Let requests in flight finish, within a bound.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await;
    Ok(())
}

async fn healthz(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    Json(json!({"status": "ok", "models": state.models.len()}))
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
    Json(json!({"models": state.models.values().map(|m| describe(m)).collect::<Vec<_>>()}))
}

async fn get_model(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let m = model(&state, &name)?;
    Ok(Json(describe(&m)))
}

async fn predict_handler(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<serde_json::Value>, ApiError> {
    let m = model(&state, &name)?;
    let limit = state.limits.max_body;
    let read = tokio::time::timeout(state.limits.idle_timeout, axum::body::to_bytes(body, limit));
    let bytes = read
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "the request body did not arrive within the timeout",
            )
        })?
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request body larger than {limit} bytes (or unreadable)"),
            )
        })?;
    let request = PredictRequest::parse(&bytes)?;
    let result = predict_async(state.clone(), m.clone(), request).await?;
    tracing::debug!(model = %m.name, "prediction served");
    Ok(Json(json!({
        "model": m.name,
        "value": {"v": result.ciphertext().to_string(), "e": result.exponent()},
    })))
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route (see /openapi.json)",
    )
}
