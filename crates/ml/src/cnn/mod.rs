//! HE-friendly convolutional networks: polynomial activations only (x^2), so that a CKKS
//! circuit can evaluate them exactly as trained.
//!
//! * [`arch`]: layer specifications and the named architectures.
//! * [`network`]: parameters and plaintext inference.
//! * [`train`]: back-propagation, Adam and the training loop.
//! * [`files`]: model folders (safetensors weights plus a JSON description), PyTorch import.

pub mod arch;
pub mod files;
pub mod network;
pub mod train;

pub use arch::{Architecture, Layer};
pub use network::Network;
