//! ONNX import: turns a model exported by `torch.onnx.export` (the TorchScript exporter at
//! opset 13 or later, or the dynamo exporter at opset 18) into an [`unseen_model::Network`].
//!
//! The graph must be a chain from one input to one output of the operators unseen's layers
//! cover:
//!
//! | ONNX | layer |
//! |---|---|
//! | `Conv` (square kernel, equal strides, equal pads, no groups or dilation) | `conv2d` |
//! | `Gemm`, `MatMul` by a constant matrix (with a following `Add` of a constant vector) | `linear` |
//! | `AveragePool` (square window, no padding), `GlobalAveragePool` | `avg_pool2d`, `global_avg_pool` |
//! | `Flatten` (axis 1), `Reshape` to `[batch, features]` | `flatten` |
//! | `BatchNormalization` (inference) | `batch_norm` |
//! | `Add`, `Sub`, `Mul`, `Div`, `Pow`, `Neg` of the activation and scalar constants | `square`, `poly` |
//! | `Identity`, `Dropout` | nothing |
//!
//! Element-wise arithmetic is evaluated symbolically, so `x * x` becomes a `square` layer and the
//! six nodes of `0.1 + 0.5 * x + 0.25 * x ** 2` one `poly` layer (degree 4 at most).
//! `Relu`, `Sigmoid`, `Tanh`, `Gelu` and the `Erf`/`Sigmoid` patterns of GELU and SiLU are refused
//! unless [`ImportOptions::approximate_activations`] is set; then each becomes a placeholder
//! least-squares quadratic on `[-1, 1]` listed in [`Imported::replaced`], for the caller to refit
//! with [`fit_activation`] on the range its data reaches.
//!
//! Parsing uses prost code generated from ONNX's `onnx.proto` ([`onnx_proto`]).

mod activation;
mod calibrate;
mod error;
mod expr;
mod graph;
#[allow(clippy::all, missing_docs)]
#[rustfmt::skip]
pub mod onnx_proto;
mod tensor;

use prost::Message;

pub use activation::{
    activation_fn, erf, fit_activation, gelu, gelu_tanh, sigmoid, ACTIVATIONS, PLACEHOLDER_DEGREE,
    PLACEHOLDER_RANGE,
};
pub use calibrate::{calibrate, exact_logits, Fitted, CALIBRATION_MARGIN};
pub use error::Error;

/// How to import.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportOptions {
    /// Replace non-polynomial activations (ReLU, sigmoid, tanh, SiLU, GELU) by a placeholder
    /// polynomial instead of refusing the model (see [`Imported::replaced`]). Calibrating the
    /// polynomial on real inputs is the caller's job.
    pub approximate_activations: bool,
}

/// An imported model.
#[derive(Debug, Clone, PartialEq)]
pub struct Imported {
    /// The network (architecture named after the ONNX graph, or `onnx`).
    pub network: unseen_model::Network,
    /// Activations replaced by a placeholder polynomial, in layer order.
    pub replaced: Vec<Replaced>,
    /// Opset version of the default ONNX domain.
    pub opset: i64,
    /// Producer name and version (`pytorch 2.5.0`).
    pub producer: String,
}

/// A non-polynomial activation replaced by a placeholder polynomial
/// ([`fit_activation`]`(op_type, -1, 1, 2)`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    /// The ONNX node computing it (for GELU and SiLU spelt out over several nodes, the first
    /// non-polynomial one: the `Erf` or `Sigmoid`).
    pub node: String,
    /// The activation recognised, as named in [`ACTIVATIONS`] (`Relu`, `Sigmoid`, `Tanh`, `Silu`,
    /// `Gelu`, `GeluTanh`); pass it to [`fit_activation`] to refit.
    pub op_type: String,
    /// Index of the `poly` layer standing for it in the network's layers.
    pub layer_index: usize,
}

/// Imports an ONNX model from its serialised bytes.
pub fn import(bytes: &[u8], options: &ImportOptions) -> Result<Imported, Error> {
    let model = onnx_proto::ModelProto::decode(bytes).map_err(|e| Error::NotOnnx(e.to_string()))?;
    import_model(&model, options)
}

/// Imports a decoded ONNX model.
pub fn import_model(
    model: &onnx_proto::ModelProto,
    options: &ImportOptions,
) -> Result<Imported, Error> {
    graph::build(model, options)
}
