//! The unseen client: holds the private key, encrypts features, talks to a server, decrypts.
//!
//! * [`keyfile`]: reading and writing key files (`keys.json` layout or phe's JWK).
//! * [`salary`]: one encrypted linear prediction over HTTP or the legacy TCP protocol.
//! * [`cnn`]: encrypted image classification: key folders, images in, classes out.
//! * [`picture`]: PNG files as model inputs.
//! * [`session`]: many requests to one server over reused connections.

pub mod cnn;
pub mod jobs;
pub mod keyfile;
pub mod picture;
pub mod salary;
pub mod session;

/// Environment variable with the API token sent (as `Authorization: Bearer`) to servers that
/// require one.
pub const TOKEN_ENV: &str = "UNSEEN_TOKEN";

/// Environment variable naming a PEM file of CA certificates: `https://` servers are then
/// trusted only if their certificate chains to one of these (a private CA). Unset, the Mozilla
/// root store (webpki-roots) is used. The CLI's `--ca FILE` sets it.
pub const CA_ENV: &str = "UNSEEN_CA";

/// An HTTP(S) agent with the timeout, replies of every status readable, and the CA roots of
/// [`CA_ENV`] for `https://` (rustls).
pub(crate) fn agent(timeout: std::time::Duration) -> Result<ureq::Agent, Error> {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let roots = match std::env::var_os(CA_ENV) {
        Some(path) if !path.is_empty() => {
            let text = std::fs::read(&path).map_err(|e| Error::KeyFile {
                path: path.to_string_lossy().into_owned(),
                message: format!("cannot read the CA file: {e}"),
            })?;
            let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&text)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<_, _>>()
                .map_err(|e| Error::KeyFile {
                    path: path.to_string_lossy().into_owned(),
                    message: format!("not a PEM certificate file: {e}"),
                })?;
            if certs.is_empty() {
                return Err(Error::KeyFile {
                    path: path.to_string_lossy().into_owned(),
                    message: "no certificate in it".into(),
                });
            }
            RootCerts::new_with_certs(&certs)
        }
        _ => RootCerts::WebPki,
    };
    Ok(ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .build()
        .into())
}

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

impl From<unseen_client_core::Error> for Error {
    fn from(e: unseen_client_core::Error) -> Self {
        match e {
            unseen_client_core::Error::Ckks(e) => Error::Ckks(e),
            other => Error::Input(other.to_string()),
        }
    }
}
