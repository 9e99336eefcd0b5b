//! The HTTP JSON API.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_http::timeout::TimeoutLayer;
use unseen_ml::linear::LinearModel;
use unseen_wire::salary::PredictRequest;

use crate::predict::{model, predict_async};
use crate::{ApiError, AppState};

/// The OpenAPI 3 description of this API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The router, apart from any listener, so tests can drive it directly.
pub fn app(state: Arc<AppState>) -> Router {
    let timeout = state.limits.idle_timeout;
    Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{name}", get(get_model))
        .route("/v1/models/{name}/predict", post(predict_handler))
        .fallback(not_found)
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .with_state(state)
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
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|_| {
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
