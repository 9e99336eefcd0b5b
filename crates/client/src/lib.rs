//! The unseen client: holds the private key, encrypts features, talks to a server, decrypts.
//!
//! * [`keyfile`]: reading and writing key files (`keys.json` layout or phe's JWK).
//! * [`salary`]: one encrypted linear prediction over HTTP or the legacy TCP protocol.
//! * [`cnn`]: encrypted image classification: key folders, images in, classes out.

pub mod cnn;
pub mod keyfile;
pub mod salary;

/// Environment variable with the API token sent (as `Authorization: Bearer`) to servers that
/// require one.
pub const TOKEN_ENV: &str = "UNSEEN_TOKEN";

/// `request` with the token of [`TOKEN_ENV`], when it is set.
pub(crate) fn authorized<B>(request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
    match std::env::var(TOKEN_ENV) {
        Ok(token) if !token.trim().is_empty() => {
            request.header("authorization", format!("Bearer {}", token.trim()))
        }
        _ => request,
    }
}

/// Client-side failures, each one readable line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key file problem.
    #[error("{path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// Paillier failure (encoding overflow, wrong key, ...).
    #[error(transparent)]
    Paillier(#[from] unseen_paillier::Error),
    /// The server could not be reached or the connection failed.
    #[error("cannot talk to {server}: {message}")]
    Connection {
        /// The server address.
        server: String,
        /// What happened.
        message: String,
    },
    /// The server answered with an error.
    #[error("server error ({code}): {message}")]
    Server {
        /// The server's error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// CKKS failure (corrupt reply, parameters mismatch, ...).
    #[error(transparent)]
    Ckks(#[from] unseen_ckks::Error),
    /// Bad command-line input (feature list, address).
    #[error("{0}")]
    Input(String),
}
