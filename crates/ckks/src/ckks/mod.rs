//! CKKS scheme layer: parameters, encoder, evaluator.

pub mod encoder;
pub mod evaluator;
pub mod flooding;
pub mod params;
