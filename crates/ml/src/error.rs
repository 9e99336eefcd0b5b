/// Errors of data loading and model fitting.
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
    /// A malformed CSV file.
    #[error("{path}, line {line}: {message}")]
    Csv {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A column that the header does not have.
    #[error("column '{0}' not found (columns: {1})")]
    MissingColumn(String, String),
    /// Not enough rows, a singular design, a bad fraction, and the like.
    #[error("{0}")]
    Invalid(String),
    /// A model description or file (from unseen-model).
    #[error(transparent)]
    Model(#[from] unseen_model::Error),
}
