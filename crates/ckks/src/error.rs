//! The crate-wide error type.

/// Errors returned by every fallible operation of this crate.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The parameters do not reach 128-bit security and were not marked insecure.
    #[error("insecure parameters: {0}")]
    InsecureParameters(String),
    /// The parameters are malformed (unsupported ring degree, prime sizes, ...).
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),
    /// Two operands (or an operand and a key) were built for different parameters.
    #[error("operands belong to different parameter sets")]
    ParametersMismatch,
    /// Two operands are at different levels.
    #[error("level mismatch: {left} vs {right} (drop the higher one to the lower level first)")]
    LevelMismatch {
        /// Level of the left operand.
        left: usize,
        /// Level of the right operand.
        right: usize,
    },
    /// Two operands have scales that differ.
    #[error("scale mismatch: 2^{left_log2:.4} vs 2^{right_log2:.4}")]
    ScaleMismatch {
        /// log2 of the left scale.
        left_log2: f64,
        /// log2 of the right scale.
        right_log2: f64,
    },
    /// The operation needs a level the ciphertext no longer has.
    #[error("level too low: {0}")]
    LevelTooLow(String),
    /// No Galois key was generated for the requested rotation.
    #[error("missing Galois key for {0}")]
    MissingGaloisKey(String),
    /// A value cannot be encoded (too long, not finite, too large for the modulus).
    #[error("encoding error: {0}")]
    Encoding(String),
    /// An argument is out of its allowed range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Serialized input is truncated, corrupt, of another version or another parameter set.
    #[error("deserialization error: {0}")]
    Deserialize(String),
}

/// Result alias with the crate [`enum@Error`].
pub type Result<T> = std::result::Result<T, Error>;
