//! Messages between unseen clients and servers.
//!
//! * [`salary`]: the encrypted linear-prediction request and its replies, in the JSON of the
//!   original python-paillier service (legacy TCP) and of the HTTP API.
//! * [`cnn`]: the client spec of an encrypted CNN (`GET /v1/models/{name}`).
//! * [`framing`]: splitting a TCP byte stream into complete JSON values, with a size cap.

pub mod cnn;
pub mod framing;
#[cfg(feature = "salary")]
pub mod salary;

/// A rejected message: a stable machine-readable code and a readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct WireError {
    /// Machine-readable code, e.g. `bad_json`, `too_large`, `bad_key`.
    pub code: &'static str,
    /// One readable line.
    pub message: String,
}

impl WireError {
    /// Builds an error.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
