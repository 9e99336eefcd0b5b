//! Plaintext machine learning for unseen: data loading, training and metrics.
//!
//! * [`table`]: numeric CSV tables with a header.
//! * [`idx`] and [`digits`]: the IDX files of MNIST and Fashion-MNIST.
//! * [`cnn`]: HE-friendly convolutional networks, their training and model files.
//! * [`plots`]: PNG plots of training runs.
//! * [`linear`]: ordinary least squares with intercept, train/test split, RMSE and R^2,
//!   and the model file that the server loads.

pub mod cnn;
pub mod digits;
mod error;
pub mod idx;
pub mod linear;
pub mod picture;
pub mod plots;
pub mod table;

pub use error::Error;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
