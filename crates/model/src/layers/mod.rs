//! Layers. Each layer kind lives in a module of its own and implements [`LayerOps`]: its shape
//! rule, its parameters, its plaintext forward and backward passes, and its lowering for the
//! compiler (an affine map, a polynomial, or a reshape). [`Layer`] only dispatches, so adding a
//! layer touches its own module and one line of [`Layer::ops`].

mod conv;
mod flatten;
mod linear;
mod norm;
mod poly;
mod pool;

use rand::RngCore;
use serde::{Deserialize, Serialize};

pub use conv::Conv2d;
pub use flatten::Flatten;
pub use linear::Linear;
pub use norm::{batch_stats, BatchNorm, BN_EPS};
pub use poly::{Poly, Square, MAX_DEGREE};
pub use pool::{AvgPool2d, GlobalAvgPool};

use crate::affine::SparseAffine;
use crate::network::LayerParams;
use crate::shape::Shape;

/// Where a layer runs: its input and output shapes and the batch size.
#[derive(Debug, Clone, Copy)]
pub struct Io {
    /// Shape of one input sample.
    pub input: Shape,
    /// Shape of one output sample.
    pub output: Shape,
    /// Samples in the batch.
    pub batch: usize,
}

/// What a layer is to the compiler.
#[derive(Debug, Clone, PartialEq)]
pub enum Lowered {
    /// An affine map on the flattened sample (costs one level, shared with its affine
    /// neighbours).
    Affine(SparseAffine),
    /// `sum_k c[k] x^k` on every value.
    Polynomial(Vec<f64>),
    /// The values are unchanged (only the shape is).
    Reshape,
}

/// Tensor shapes of a layer's parameters, in PyTorch's layouts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ParamShapes {
    /// Weight (empty for a layer without parameters).
    pub weight: Vec<usize>,
    /// Bias.
    pub bias: Vec<usize>,
    /// Running statistics, stored after the weight and bias (batch normalisation: mean then
    /// variance, each of this shape).
    pub running: Vec<usize>,
}

/// Size of a tensor of shape `s` (0 for no tensor).
pub(crate) fn numel(s: &[usize]) -> usize {
    if s.is_empty() {
        0
    } else {
        s.iter().product()
    }
}

/// One kind of layer.
pub trait LayerOps {
    /// Name as in `model.json` (`conv2d`, `square`, ...).
    fn kind(&self) -> &'static str;
    /// Output shape for an input shape, or why the input does not fit.
    fn output_shape(&self, input: Shape) -> Result<Shape, String>;
    /// Shapes of the parameters (none by default).
    fn param_shapes(&self) -> ParamShapes {
        ParamShapes::default()
    }
    /// Fresh parameters (PyTorch's default initialisation: uniform in `+-1/sqrt(fan_in)`).
    fn init(&self, rng: &mut dyn RngCore) -> LayerParams {
        let s = self.param_shapes();
        let (w, b) = (numel(&s.weight), numel(&s.bias));
        let fan_in = if s.weight.is_empty() {
            1
        } else {
            (w / s.weight[0].max(1)).max(1)
        };
        let bound = 1.0 / (fan_in as f32).sqrt();
        let mut uniform = || {
            let u = (rng.next_u32() >> 8) as f32 / (1u32 << 24) as f32;
            (2.0 * u - 1.0) * bound
        };
        LayerParams {
            weight: (0..w).map(|_| uniform()).collect(),
            bias: (0..b).map(|_| uniform()).collect(),
            running: Vec::new(),
        }
    }
    /// Plaintext forward pass on a batch (`train`: batch statistics where a layer has them).
    fn forward(&self, p: &LayerParams, io: Io, x: &[f32], train: bool) -> Vec<f32>;
    /// Backward pass: adds the parameter gradients to `grad` and returns the input gradient
    /// (empty when `need_dx` is false).
    fn backward(
        &self,
        p: &LayerParams,
        io: Io,
        x: &[f32],
        dy: Vec<f32>,
        need_dx: bool,
        grad: &mut LayerParams,
    ) -> Vec<f32>;
    /// The layer as the compiler sees it.
    fn lower(&self, p: &LayerParams, io: Io) -> Lowered;
    /// Whether the layer's parameters are trained (batch normalisation's running statistics
    /// are not gradients).
    fn trainable(&self) -> bool {
        true
    }
}

/// One layer of an HE-friendly network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Layer {
    /// 2-D convolution with bias.
    Conv2d(Conv2d),
    /// Element-wise `x^2`.
    Square,
    /// Element-wise polynomial `a0 + a1 x + ... + ad x^d` (`d <= 4`).
    Poly(Poly),
    /// Average pooling with a square window.
    AvgPool2d(AvgPool2d),
    /// Mean of each channel: `C x H x W` to `C x 1 x 1`.
    GlobalAvgPool,
    /// Flattens `C x H x W` to a vector in PyTorch's order (channel-major).
    Flatten,
    /// Batch normalisation per channel (images) or feature (vectors).
    BatchNorm(BatchNorm),
    /// Fully connected layer with bias.
    Linear(Linear),
}

impl Layer {
    /// The layer's operations.
    pub fn ops(&self) -> &dyn LayerOps {
        match self {
            Layer::Conv2d(l) => l,
            Layer::Square => &Square,
            Layer::Poly(l) => l,
            Layer::AvgPool2d(l) => l,
            Layer::GlobalAvgPool => &GlobalAvgPool,
            Layer::Flatten => &Flatten,
            Layer::BatchNorm(l) => l,
            Layer::Linear(l) => l,
        }
    }

    /// A convolution.
    pub fn conv(
        in_channels: usize,
        out_channels: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Self {
        Layer::Conv2d(Conv2d {
            in_channels,
            out_channels,
            kernel,
            stride,
            padding,
        })
    }

    /// A dense layer.
    pub fn linear(in_features: usize, out_features: usize) -> Self {
        Layer::Linear(Linear {
            in_features,
            out_features,
        })
    }

    /// Degree of the layer's polynomial activation, if it is one.
    pub fn activation_degree(&self) -> Option<usize> {
        match self {
            Layer::Square => Some(2),
            Layer::Poly(p) => Some(p.degree()),
            _ => None,
        }
    }

    /// Whether the layer is an affine map (it composes with its affine neighbours).
    pub fn is_affine(&self) -> bool {
        matches!(
            self,
            Layer::Conv2d(_)
                | Layer::AvgPool2d(_)
                | Layer::GlobalAvgPool
                | Layer::BatchNorm(_)
                | Layer::Linear(_)
        )
    }
}

/// Levels a polynomial activation of degree `d` costs when it follows an affine map: `x^2` and
/// any quadratic 1, cubics and quartics 2 (the affine map before absorbs a shift and a scale).
pub fn activation_depth(degree: usize) -> usize {
    match degree {
        0 | 1 => 0,
        2 => 1,
        _ => 2,
    }
}

/// A sequence of layers over an input shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// Name (`ciphernet`, `lenet5`, a file's stem, ...).
    pub name: String,
    /// Input shape.
    pub input: Shape,
    /// The layers in order.
    pub layers: Vec<Layer>,
}

/// Names of the built-in architectures.
pub const ARCHITECTURES: [&str; 2] = ["ciphernet", "ciphernet-wide"];

impl Architecture {
    /// A built-in architecture by name.
    pub fn named(name: &str) -> Option<Self> {
        let layers = match name {
            // The reference network: conv 7x7 stride 3 (4 channels) -> x^2 -> 256 -> 64 -> x^2 -> 10.
            "ciphernet" => vec![
                Layer::conv(1, 4, 7, 3, 0),
                Layer::Square,
                Layer::Flatten,
                Layer::linear(256, 64),
                Layer::Square,
                Layer::linear(64, 10),
            ],
            // Wider: 64 channels of the same convolution (4096 values, exactly the slots of one
            // CKKS ciphertext at N = 8192) and 256 hidden units; same depth as ciphernet.
            "ciphernet-wide" => vec![
                Layer::conv(1, 64, 7, 3, 0),
                Layer::Square,
                Layer::Flatten,
                Layer::linear(4096, 256),
                Layer::Square,
                Layer::linear(256, 10),
            ],
            _ => return None,
        };
        Some(Self {
            name: name.to_string(),
            input: Shape::Image(1, 28, 28),
            layers,
        })
    }

    /// Shapes after each layer (`shapes[0]` is the input); an error names the first layer whose
    /// input does not fit.
    pub fn shapes(&self) -> Result<Vec<Shape>, String> {
        if self.input.is_empty() {
            return Err(format!("input shape {} holds no value", self.input));
        }
        let mut shapes = vec![self.input];
        for (i, layer) in self.layers.iter().enumerate() {
            let cur = shapes[i];
            let next = layer
                .ops()
                .output_shape(cur)
                .map_err(|e| format!("layer {i} ({}): {e}", layer.ops().kind()))?;
            if next.is_empty() {
                return Err(format!(
                    "layer {i} ({}) has an empty output",
                    layer.ops().kind()
                ));
            }
            shapes.push(next);
        }
        Ok(shapes)
    }

    /// Multiplicative levels a CKKS evaluation needs: one per run of consecutive affine layers
    /// (convolutions, pooling, batch normalisation and dense layers compose) and the depth of
    /// each activation (see [`activation_depth`]).
    pub fn depth(&self) -> usize {
        let mut depth = 0;
        let mut in_affine = false;
        for l in &self.layers {
            if l.is_affine() {
                if !in_affine {
                    depth += 1;
                }
                in_affine = true;
            } else if let Some(d) = l.activation_degree() {
                depth += activation_depth(d);
                in_affine = false;
            }
        }
        depth
    }

    /// The same network with batch normalisation after every convolution and dense layer that
    /// feeds an activation (a training form; folded afterwards).
    pub fn with_batch_norm(&self) -> Self {
        let mut layers = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            layers.push(l.clone());
            let feeds_activation = self
                .layers
                .get(i + 1)
                .is_some_and(|n| n.activation_degree().is_some());
            match l {
                Layer::Conv2d(c) if feeds_activation => layers.push(Layer::BatchNorm(BatchNorm {
                    features: c.out_channels,
                })),
                Layer::Linear(d) if feeds_activation => layers.push(Layer::BatchNorm(BatchNorm {
                    features: d.out_features,
                })),
                _ => {}
            }
        }
        Self {
            name: self.name.clone(),
            input: self.input,
            layers,
        }
    }

    /// Reads an architecture file (`{"name", "input": {"Image": [c, h, w]} | {"Vector": n},
    /// "layers": [...]}`), checking that its shapes chain.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let arch: Architecture = serde_json::from_str(text).map_err(|e| e.to_string())?;
        arch.shapes()?;
        for (i, l) in arch.layers.iter().enumerate() {
            if let Layer::Poly(p) = l {
                p.check().map_err(|e| format!("layer {i} (poly): {e}"))?;
            }
        }
        Ok(arch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_architectures_have_consistent_shapes() {
        for name in ARCHITECTURES {
            let a = Architecture::named(name).expect("known");
            let shapes = a.shapes().expect("consistent");
            assert_eq!(shapes.last(), Some(&Shape::Vector(10)), "{name}");
        }
        let c = Architecture::named("ciphernet").expect("known");
        assert_eq!(c.shapes().expect("ok")[1], Shape::Image(4, 8, 8));
        assert_eq!(c.depth(), 5);
        assert!(Architecture::named("nope").is_none());
    }

    #[test]
    fn layer_json_is_tagged_and_checked() {
        let text = r#"{"name": "t", "input": {"Image": [3, 8, 8]}, "layers": [
            {"type": "conv2d", "in_channels": 3, "out_channels": 2, "kernel": 3, "stride": 1, "padding": 1},
            {"type": "poly", "coefficients": [0.1, 0.5, 0.25]},
            {"type": "avg_pool2d", "kernel": 2, "stride": 2},
            {"type": "batch_norm", "features": 2},
            {"type": "global_avg_pool"}, {"type": "flatten"},
            {"type": "linear", "in_features": 2, "out_features": 3}]}"#;
        let a = Architecture::from_json(text).expect("valid");
        assert_eq!(a.shapes().expect("ok").last(), Some(&Shape::Vector(3)));
        // conv, poly (1), pool+bn+gap+linear (1)
        assert_eq!(a.depth(), 3);
        let back: Architecture =
            serde_json::from_str(&serde_json::to_string(&a).expect("ser")).expect("de");
        assert_eq!(back, a);
        let bad = text.replace("\"in_features\": 2", "\"in_features\": 5");
        let err = Architecture::from_json(&bad).expect_err("shape");
        assert!(err.contains("layer 6 (linear)"), "{err}");
        let deg5 = text.replace("[0.1, 0.5, 0.25]", "[0, 0, 0, 0, 0, 1]");
        assert!(Architecture::from_json(&deg5)
            .expect_err("degree")
            .contains("degree"));
    }
}
