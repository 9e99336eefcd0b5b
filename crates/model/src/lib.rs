//! The description of a model, apart from any training: its architecture (a list of layers over
//! an input shape), its weights, and its model card (class names, input normalisation, the CKKS
//! preset chosen for it). The compiler, the client and the server depend on this crate only;
//! training, data loaders and plots live in `unseen-ml`.
//!
//! * [`shape`]: activation shapes (`C x H x W` images or vectors).
//! * [`layers`]: every layer in one module of its own (shape rule, plaintext forward and
//!   backward pass, and its lowering to an affine map or a polynomial for the compiler), behind
//!   the [`layers::LayerOps`] trait.
//! * [`affine`]: sparse affine maps, the form every linear layer lowers to and in which
//!   consecutive ones compose (pooling and batch normalisation folded into their neighbours).
//! * [`network`]: an architecture with its parameters; plaintext inference.
//! * [`linear`]: the linear model file the Paillier server evaluates.
//! * [`card`]: `model.json`; [`folder`]: model folders (safetensors weights and the card).

pub mod affine;
pub mod card;
mod error;
pub mod folder;
pub mod layers;
pub(crate) mod linalg;
pub mod linear;
pub mod network;
pub mod shape;

pub use affine::SparseAffine;
pub use card::{Compiled, ModelCard, Normalization, PerChannel};
pub use error::Error;
pub use layers::{Architecture, Layer, LayerOps, Lowered};
pub use network::{argmax, LayerParams, Network};
pub use shape::Shape;

/// Result type of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
