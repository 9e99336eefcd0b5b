/// Everything that can go wrong in Paillier key handling, encoding and arithmetic.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key size that is not supported.
    #[error("unsupported key size {bits} bits: {reason}")]
    KeySize {
        /// The requested size.
        bits: u32,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A public or private key that is not well formed.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The value does not fit the encoding range `[-max_int, max_int]`.
    #[error("value out of range: |{value}| exceeds the largest encodable integer (about n/3, {max_bits} bits)")]
    EncodeOverflow {
        /// Decimal form of the offending integer representation (shortened when long).
        value: String,
        /// Bit length of `max_int`.
        max_bits: u32,
    },
    /// NaN or an infinity cannot be encoded.
    #[error("cannot encode a non-finite number ({0})")]
    NotFinite(f64),
    /// An invalid encoding precision.
    #[error("invalid precision {0}: it must be a positive finite number")]
    InvalidPrecision(f64),
    /// The decrypted number lies in the overflow band (n/3, 2n/3).
    #[error("overflow detected in decrypted number")]
    DecodeOverflow,
    /// The decrypted number is too large to be represented as a float.
    #[error("decoded result too large for a float")]
    FloatOverflow,
    /// An encoding outside `[0, n)`.
    #[error("attempted to decode corrupted number (encoding not below n)")]
    CorruptedEncoding,
    /// A ciphertext outside `Z*_{n^2}`.
    #[error("invalid ciphertext: {0}")]
    InvalidCiphertext(&'static str),
    /// Operands encrypted or encoded under different public keys.
    #[error("operands belong to different public keys")]
    KeyMismatch,
    /// An exponent change that would lose information.
    #[error("cannot raise the exponent from {from} to {to}")]
    ExponentIncrease {
        /// The current exponent.
        from: i32,
        /// The requested exponent.
        to: i32,
    },
    /// An exponent outside the supported range.
    #[error("exponent {0} is outside the supported range [-{max}, {max}]", max = crate::encoding::MAX_ABS_EXPONENT)]
    ExponentRange(i64),
    /// Lengths of two argument lists differ.
    #[error("length mismatch: {0} values but {1} weights")]
    LengthMismatch(usize, usize),
    /// A key or ciphertext file in the wrong format.
    #[error("format error: {0}")]
    Format(String),
}
