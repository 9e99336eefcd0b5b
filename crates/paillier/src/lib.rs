//! Paillier encryption (g = n + 1) compatible with python-paillier (`phe`).
//!
//! * [`keys`]: key generation, CRT decryption and CRT encryption with the private key.
//! * [`encoding`]: phe's `EncodedNumber` (BASE 16, exponent, wrap-around negatives, overflow).
//! * [`ciphertext`]: encrypted numbers and their homomorphic operations.
//! * [`randomizer`]: the `r^n` factor of encryption and re-randomisation, plain or through a
//!   fixed-base table (Damgard-Jurik-Nielsen).
//! * [`formats`]: `keys.json`, phe's JWK keys and its encrypted-number JSON.
//!
//! Results of homomorphic operations are *not* re-randomised implicitly: call
//! [`EncryptedNumber::rerandomize`] once before a result leaves the party that computed it.

pub mod ciphertext;
pub mod encoding;
mod error;
pub mod formats;
pub mod keys;
mod math;
pub mod randomizer;
mod secret;

pub use ciphertext::EncryptedNumber;
pub use encoding::{Decoded, EncodedNumber, Scalar, BASE};
pub use error::Error;
pub use keys::{PrivateKey, PublicKey, DEFAULT_KEY_BITS};
pub use randomizer::Randomness;
pub use rug::Integer;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
