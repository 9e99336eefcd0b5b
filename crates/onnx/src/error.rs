//! Why a model could not be imported. Every message is one line and names the node, tensor or
//! attribute at fault.

/// An import error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The bytes are not a protobuf `ModelProto`.
    #[error("not an ONNX model: {0}")]
    NotOnnx(String),
    /// The model holds no graph, or a graph without nodes.
    #[error("the ONNX model has an empty graph")]
    EmptyGraph,
    /// Something about the graph's inputs.
    #[error("graph input: {0}")]
    Input(String),
    /// Something about the graph's outputs.
    #[error("graph output: {0}")]
    Output(String),
    /// An operator this importer does not map to a layer.
    #[error("unsupported ONNX node '{node}' ({op_type})")]
    Unsupported {
        /// Node name (its first output when unnamed).
        node: String,
        /// Operator, prefixed by its domain outside the default one.
        op_type: String,
    },
    /// A non-polynomial activation met without `approximate_activations`.
    #[error(
        "node '{node}' ({op_type}): not a polynomial; retrain with x*x or a polynomial activation, \
         or pass --approximate-activations to replace it by a fitted polynomial"
    )]
    NotPolynomial {
        /// Node name.
        node: String,
        /// Operator.
        op_type: String,
    },
    /// A supported operator used in a way that is not (an attribute, an input, a shape).
    #[error("node '{node}' ({op_type}): {reason}")]
    Node {
        /// Node name.
        node: String,
        /// Operator.
        op_type: String,
        /// What is wrong.
        reason: String,
    },
    /// A constant tensor that cannot be read (type, size, external data).
    #[error("tensor '{name}': {reason}")]
    Tensor {
        /// Tensor name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The layers do not make a valid network (shapes or parameters).
    #[error("invalid network: {0}")]
    Network(String),
    /// Calibration of the approximated activations failed.
    #[error("calibration: {0}")]
    Calibration(String),
}
