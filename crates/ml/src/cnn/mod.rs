//! Training HE-friendly networks (the model description itself is `unseen-model`'s).
//!
//! * [`train`]: the loss, Adam and the training loop over any architecture.
//! * [`files`]: model cards for the data sets unseen ships (class names, normalisation).

pub mod files;
pub mod train;

pub use unseen_model::{Architecture, Layer, LayerParams, Network, Shape};
