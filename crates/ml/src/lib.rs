//! Plaintext machine learning for unseen: data loading, training and metrics.
//!
//! * [`table`]: numeric CSV tables with a header.
//! * [`linear`]: ordinary least squares with intercept, train/test split, RMSE and R^2,
//!   and the model file that the server loads.

mod error;
pub mod linear;
pub mod table;

pub use error::Error;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
