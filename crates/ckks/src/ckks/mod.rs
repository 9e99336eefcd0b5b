//! CKKS scheme layer: encoder, encryption and decryption of plaintexts, evaluator, noise
//! flooding.

pub mod encoder;
mod encrypt;
pub mod evaluator;
pub mod flooding;
