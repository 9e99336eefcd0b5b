//! Request bodies read fairly: a declared `Content-Length` over the limit is refused before
//! anything else happens, the few slots for large bodies are taken without waiting (a full
//! server answers `503` with `Retry-After` at once), and every body must keep arriving: each
//! chunk within the idle timeout, and after that grace period at least `min_body_rate` bytes per
//! second on average, so that slow clients cannot hold a slot for ever.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, StatusCode};
use tokio::sync::SemaphorePermit;
use tokio::time::Instant;

use crate::{ApiError, AppState};

/// Seconds a client is told to wait when every large-body slot is taken.
pub const RETRY_AFTER_SECONDS: u32 = 2;

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!("request body larger than {limit} bytes"),
    )
}

/// The declared `Content-Length`, refused when it is over `limit` (or unreadable).
pub(crate) fn declared_length(headers: &HeaderMap, limit: u64) -> Result<Option<u64>, ApiError> {
    let Some(v) = headers.get(header::CONTENT_LENGTH) else {
        return Ok(None);
    };
    let n: u64 = v
        .to_str()
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_body",
                "the Content-Length header is not a number",
            )
        })?;
    if n > limit {
        return Err(too_large(limit));
    }
    Ok(Some(n))
}

/// One of the large-body slots, or a `503` with `Retry-After` when all are taken.
pub(crate) fn large_slot(state: &AppState) -> Result<SemaphorePermit<'_>, ApiError> {
    state.large_bodies.try_acquire().map_err(|e| match e {
        tokio::sync::TryAcquireError::Closed => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is shutting down",
        ),
        tokio::sync::TryAcquireError::NoPermits => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "every slot for large uploads is taken; retry shortly",
        )
        .retry_after(RETRY_AFTER_SECONDS),
    })
}

/// A body being read under the idle timeout and the minimum average rate.
pub(crate) struct Reader {
    body: Body,
    started: Instant,
    received: u64,
    limit: u64,
    idle: Duration,
    min_rate: u64,
}

impl Reader {
    /// Starts reading `body`, of at most `limit` bytes.
    pub(crate) fn new(state: &AppState, body: Body, limit: u64) -> Self {
        Self {
            body,
            started: Instant::now(),
            received: 0,
            limit,
            idle: state.limits.idle_timeout,
            min_rate: state.limits.min_body_rate,
        }
    }

    /// Bytes received so far.
    pub(crate) fn received(&self) -> u64 {
        self.received
    }

    /// The next chunk of data, `None` at the end; `408` when the client stalls or falls below
    /// the minimum rate, `413` past the limit.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>, ApiError> {
        use http_body_util::BodyExt;
        loop {
            let now = Instant::now();
            let mut deadline = now + self.idle;
            if self.min_rate > 0 {
                // by `started + idle + received / rate`, more must have arrived
                let owed = Duration::from_secs_f64(self.received as f64 / self.min_rate as f64);
                deadline = deadline.min(self.started + self.idle + owed);
            }
            let frame = match tokio::time::timeout_at(deadline, self.body.frame()).await {
                Ok(f) => f,
                Err(_) if deadline < now + self.idle => {
                    return Err(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "too_slow",
                        format!(
                            "the request body arrived slower than {} bytes per second",
                            self.min_rate
                        ),
                    ))
                }
                Err(_) => {
                    return Err(ApiError::new(
                        StatusCode::REQUEST_TIMEOUT,
                        "timeout",
                        "the request body did not arrive within the timeout",
                    ))
                }
            };
            let Some(frame) = frame else { return Ok(None) };
            let frame = frame.map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_body",
                    format!("reading the request: {e}"),
                )
            })?;
            if let Ok(data) = frame.into_data() {
                self.received += data.len() as u64;
                if self.received > self.limit {
                    return Err(too_large(self.limit));
                }
                return Ok(Some(data));
            }
        }
    }
}
