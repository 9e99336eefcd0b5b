//! From a trained HE-friendly network to a program over vectors of slots, as a CKKS ciphertext
//! holds them, and its evaluation on any [`Backend`].
//!
//! * [`program`]: the operations (diagonal linear maps evaluated baby-step/giant-step, each with
//!   an optional rotate-and-sum; bias; square), the rotation steps and the depth a program needs.
//! * [`lower`]: a network as affine stages (consecutive linear layers composed, so pooling and
//!   batch normalisation cost no level) and activations in a canonical, minimal-depth form.
//! * [`compile`]: single-image packing of any lowered network: each affine stage is one
//!   generalised-diagonal linear map between replicated layouts; a first convolution takes its
//!   input unfolded into patches (im2col).
//! * [`backend`]: the slot-vector operations a program uses, with an exact `f64` backend that
//!   checks packings against the network itself.
//! * [`batch`]: the CryptoNets-style layout (one image per slot, one ciphertext per feature) for
//!   throughput, with no rotation at all.
//! * [`plan`]: where a program runs on a CKKS parameter set: its start level, the scale of every
//!   level, and the level each evaluation key is needed at.
//! * [`model`]: the smallest CKKS preset a network's circuit fits, with both programs.
//! * [`keys`]: the evaluation keys a client makes for a circuit, sent once as one object.
//! * [`ckks_backend`]: the same operations on CKKS ciphertexts, following that plan.

pub mod backend;
pub mod batch;
pub mod ckks_backend;
pub mod compile;
pub mod keys;
pub mod lower;
pub mod model;
pub mod plan;
pub mod program;

pub use backend::{Backend, PlainBackend, Prepared};
pub use batch::{compile_batch, compile_batch_lowered, BatchProgram, BatchRun, STREAM_CHUNK};
pub use ckks_backend::CkksBackend;
pub use compile::{compile_lowered, compile_single, MAX_INPUT_VECTORS};
pub use keys::EvaluationKeys;
pub use lower::{lower, Activation, LoweredNet, Stage};
pub use model::{compile_card, compile_model, CompiledModel};
pub use plan::{
    output_headroom_bits, CkksPlan, KeyLayout, DEFAULT_OUTPUT_HEADROOM_BITS, OUTPUT_MARGIN,
};
pub use program::{sum_stages, Gather, LinearMap, Op, Program};
/// The digit layout of one evaluation key ([`KeyLayout`] gives each key's).
pub use unseen_ckks::KeyDigits;

/// Why a network cannot be compiled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A layer or shape this compiler does not support.
    #[error("unsupported network: {0}")]
    Unsupported(String),
    /// The circuit does not fit the chosen CKKS parameters.
    #[error("the circuit does not fit the parameters: {0}")]
    DoesNotFit(String),
    /// A program run on the wrong number of input vectors.
    #[error("{0}")]
    WrongInput(String),
    /// The packed data does not fit the available slots.
    #[error("does not fit {slots} slots: {what}")]
    TooLarge {
        /// Slots available.
        slots: usize,
        /// What does not fit.
        what: String,
    },
}

impl From<Error> for unseen_ckks::Error {
    fn from(e: Error) -> Self {
        unseen_ckks::Error::InvalidArgument(e.to_string())
    }
}
