//! Layer specifications and the named architectures.

use serde::{Deserialize, Serialize};

/// One layer of an HE-friendly network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Layer {
    /// 2-D convolution with bias, square kernels, zero padding.
    Conv2d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel height and width.
        kernel: usize,
        /// Stride in both directions.
        stride: usize,
        /// Zero padding on each side.
        padding: usize,
    },
    /// Element-wise `x^2`.
    Square,
    /// Average pooling with a square window.
    AvgPool2d {
        /// Window height and width.
        kernel: usize,
        /// Stride in both directions.
        stride: usize,
    },
    /// Flattens `C x H x W` to a vector in PyTorch's order (channel-major).
    Flatten,
    /// Batch normalisation (training only): per channel (images) or feature (vectors), with a
    /// scale and shift; folded into the preceding convolution or dense layer before a model is
    /// saved, so that saved models contain affine layers and squares only.
    BatchNorm {
        /// Channels or features.
        features: usize,
    },
    /// Fully connected layer with bias.
    Linear {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
    },
}

/// Shape of the activations between layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// Channels, height, width.
    Image(usize, usize, usize),
    /// A flat vector.
    Vector(usize),
}

impl Shape {
    /// Number of values.
    pub fn len(self) -> usize {
        match self {
            Shape::Image(c, h, w) => c * h * w,
            Shape::Vector(n) => n,
        }
    }

    /// Whether the shape holds no value.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

/// A named sequence of layers for 28x28 single-channel inputs and 10 classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Architecture {
    /// Name (`ciphernet`, ...).
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
        let conv = |i, o, k, s, p| Layer::Conv2d {
            in_channels: i,
            out_channels: o,
            kernel: k,
            stride: s,
            padding: p,
        };
        let fc = |i, o| Layer::Linear {
            in_features: i,
            out_features: o,
        };
        let layers = match name {
            // The reference network: conv 7x7 stride 3 (4 channels) -> x^2 -> 256 -> 64 -> x^2 -> 10.
            "ciphernet" => vec![
                conv(1, 4, 7, 3, 0),
                Layer::Square,
                Layer::Flatten,
                fc(256, 64),
                Layer::Square,
                fc(64, 10),
            ],
            // Wider: 64 channels of the same convolution (4096 values, exactly the slots of one
            // CKKS ciphertext at N = 8192) and 256 hidden units; same depth as ciphernet.
            "ciphernet-wide" => {
                vec![
                    conv(1, 64, 7, 3, 0),
                    Layer::Square,
                    Layer::Flatten,
                    fc(4096, 256),
                    Layer::Square,
                    fc(256, 10),
                ]
            }
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
        let mut shapes = vec![self.input];
        for (i, layer) in self.layers.iter().enumerate() {
            let cur = *shapes.last().unwrap_or(&self.input);
            let next = match (layer, cur) {
                (
                    Layer::Conv2d {
                        in_channels,
                        out_channels,
                        kernel,
                        stride,
                        padding,
                    },
                    Shape::Image(c, h, w),
                ) => {
                    if c != *in_channels
                        || *kernel == 0
                        || *stride == 0
                        || h + 2 * padding < *kernel
                        || w + 2 * padding < *kernel
                    {
                        return Err(format!("layer {i} (conv2d) does not fit its input {cur:?}"));
                    }
                    Shape::Image(
                        *out_channels,
                        (h + 2 * padding - kernel) / stride + 1,
                        (w + 2 * padding - kernel) / stride + 1,
                    )
                }
                (Layer::AvgPool2d { kernel, stride }, Shape::Image(c, h, w)) => {
                    if *kernel == 0 || *stride == 0 || h < *kernel || w < *kernel {
                        return Err(format!(
                            "layer {i} (avg_pool2d) does not fit its input {cur:?}"
                        ));
                    }
                    Shape::Image(c, (h - kernel) / stride + 1, (w - kernel) / stride + 1)
                }
                (Layer::Square, s) => s,
                (Layer::BatchNorm { features }, s)
                    if matches!(s, Shape::Image(c, _, _) if c == *features)
                        || s == Shape::Vector(*features) =>
                {
                    s
                }
                (Layer::Flatten, s) => Shape::Vector(s.len()),
                (
                    Layer::Linear {
                        in_features,
                        out_features,
                    },
                    Shape::Vector(n),
                ) if n == *in_features => Shape::Vector(*out_features),
                _ => {
                    return Err(format!(
                        "layer {i} ({layer:?}) does not fit its input {cur:?}"
                    ))
                }
            };
            shapes.push(next);
        }
        Ok(shapes)
    }

    /// Number of multiplicative levels a CKKS evaluation needs: one per conv/linear/pool
    /// (plaintext multiplication) and one per square.
    pub fn depth(&self) -> usize {
        self.layers
            .iter()
            .filter(|l| !matches!(l, Layer::Flatten | Layer::BatchNorm { .. }))
            .count()
    }

    /// The same network with batch normalisation after every convolution and dense layer that
    /// feeds a square (the training form; see [`Layer::BatchNorm`]).
    pub fn with_batch_norm(&self) -> Self {
        let mut layers = Vec::new();
        for (i, l) in self.layers.iter().enumerate() {
            layers.push(l.clone());
            let feeds_square = matches!(self.layers.get(i + 1), Some(Layer::Square));
            match l {
                Layer::Conv2d { out_channels, .. } if feeds_square => {
                    layers.push(Layer::BatchNorm {
                        features: *out_channels,
                    })
                }
                Layer::Linear { out_features, .. } if feeds_square => {
                    layers.push(Layer::BatchNorm {
                        features: *out_features,
                    })
                }
                _ => {}
            }
        }
        Self {
            name: self.name.clone(),
            input: self.input,
            layers,
        }
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
}
