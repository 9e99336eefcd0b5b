/// Errors of model files and descriptions.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Parameters or an architecture that do not fit together.
    #[error("{0}")]
    Invalid(String),
    /// A model file that is not valid.
    #[error("invalid model file {path}: {message}")]
    Model {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
}
