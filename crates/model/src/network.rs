//! An architecture with its parameters: plaintext inference and the chain rule over layers.

use rand::RngCore;

use crate::layers::{numel, Architecture, Io, Layer, Lowered};
use crate::shape::Shape;

/// Parameters of one layer (empty for layers without any).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerParams {
    /// Weights in PyTorch's layout (conv `out x in x k x k`, dense `out x in`, batch norm gamma).
    pub weight: Vec<f32>,
    /// One per output channel or feature (batch norm: beta).
    pub bias: Vec<f32>,
    /// Batch normalisation only: running mean then running variance.
    pub running: Vec<f32>,
}

impl LayerParams {
    /// Zero weights and biases of the same sizes (gradients, optimiser moments).
    pub fn zeros_like(&self) -> Self {
        Self {
            weight: vec![0.0; self.weight.len()],
            bias: vec![0.0; self.bias.len()],
            running: Vec::new(),
        }
    }
}

/// A network: an architecture with its parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Network {
    /// The layers.
    pub arch: Architecture,
    /// Activation shapes, `shapes[0]` the input.
    pub shapes: Vec<Shape>,
    /// One entry per layer.
    pub params: Vec<LayerParams>,
}

/// Index of the largest value (the first on ties).
pub fn argmax(v: &[f32]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

impl Network {
    /// A network with fresh parameters (PyTorch's default initialisation).
    pub fn init(arch: Architecture, rng: &mut dyn RngCore) -> Result<Self, String> {
        let shapes = arch.shapes()?;
        let params = arch.layers.iter().map(|l| l.ops().init(rng)).collect();
        Ok(Self {
            arch,
            shapes,
            params,
        })
    }

    /// A network from given parameters, checking their sizes and that they are finite.
    pub fn from_params(arch: Architecture, params: Vec<LayerParams>) -> Result<Self, String> {
        let shapes = arch.shapes()?;
        if params.len() != arch.layers.len() {
            return Err(format!(
                "{} parameter sets for {} layers",
                params.len(),
                arch.layers.len()
            ));
        }
        for (i, (l, p)) in arch.layers.iter().zip(&params).enumerate() {
            let s = l.ops().param_shapes();
            let (w, b, r) = (numel(&s.weight), numel(&s.bias), 2 * numel(&s.running));
            if p.weight.len() != w || p.bias.len() != b || p.running.len() != r {
                return Err(format!(
                    "layer {i} ({}): {} weights, {} biases and {} running statistics, expected {w}, {b} and {r}",
                    l.ops().kind(),
                    p.weight.len(),
                    p.bias.len(),
                    p.running.len()
                ));
            }
            if p.weight
                .iter()
                .chain(&p.bias)
                .chain(&p.running)
                .any(|v| !v.is_finite())
            {
                return Err(format!(
                    "layer {i} ({}): parameters must be finite",
                    l.ops().kind()
                ));
            }
            if let Layer::BatchNorm(_) = l {
                if p.running[b..].iter().any(|v| *v < 0.0) {
                    return Err(format!("layer {i} (batch_norm): negative running variance"));
                }
            }
        }
        Ok(Self {
            arch,
            shapes,
            params,
        })
    }

    /// Number of inputs of one sample.
    pub fn inputs(&self) -> usize {
        self.shapes.first().map(|s| s.len()).unwrap_or(0)
    }

    /// Number of classes (outputs).
    pub fn outputs(&self) -> usize {
        self.shapes.last().map(|s| s.len()).unwrap_or(0)
    }

    fn io(&self, i: usize, batch: usize) -> Io {
        Io {
            input: self.shapes[i],
            output: self.shapes[i + 1],
            batch,
        }
    }

    /// Runs a training batch (batch normalisation on batch statistics); returns the input of
    /// every layer and the output (`len = layers + 1`).
    pub fn forward_train(&self, input: &[f32], batch: usize) -> Vec<Vec<f32>> {
        let mut acts = Vec::with_capacity(self.arch.layers.len() + 1);
        acts.push(input.to_vec());
        for (i, layer) in self.arch.layers.iter().enumerate() {
            let y = layer
                .ops()
                .forward(&self.params[i], self.io(i, batch), &acts[i], true);
            acts.push(y);
        }
        acts
    }

    /// Back-propagates `dy` (the gradient of the loss at the outputs) through the layers whose
    /// inputs `acts` holds (from [`Network::forward_train`]); returns each layer's gradients.
    pub fn backward(&self, acts: &[Vec<f32>], mut dy: Vec<f32>, batch: usize) -> Vec<LayerParams> {
        let mut grads: Vec<LayerParams> = self.params.iter().map(LayerParams::zeros_like).collect();
        for (i, layer) in self.arch.layers.iter().enumerate().rev() {
            dy = layer.ops().backward(
                &self.params[i],
                self.io(i, batch),
                &acts[i],
                dy,
                i > 0,
                &mut grads[i],
            );
        }
        grads
    }

    /// Logits for a batch of normalised inputs.
    pub fn logits(&self, input: &[f32], batch: usize) -> Vec<f32> {
        let mut x = input.to_vec();
        for i in 0..self.arch.layers.len() {
            x = self.layer_forward(i, &x, batch);
        }
        x
    }

    /// Layer `i` alone (inference) on a batch of its inputs.
    ///
    /// # Panics
    /// If `i` is not a layer index.
    pub fn layer_forward(&self, i: usize, x: &[f32], batch: usize) -> Vec<f32> {
        self.arch.layers[i]
            .ops()
            .forward(&self.params[i], self.io(i, batch), x, false)
    }

    /// Logits for one input, computed in `f64` (the reference the compiled circuits are
    /// checked against).
    pub fn logits_f64(&self, input: &[f64]) -> Vec<f64> {
        let mut x = input.to_vec();
        for (i, layer) in self.arch.layers.iter().enumerate() {
            x = match layer.ops().lower(&self.params[i], self.io(i, 1)) {
                Lowered::Affine(a) => a.apply(&x),
                Lowered::Polynomial(c) => x
                    .iter()
                    .map(|v| c.iter().rev().fold(0.0, |acc, k| acc * v + k))
                    .collect(),
                Lowered::Reshape => x,
            };
        }
        x
    }

    /// Predicted class of each sample in a batch.
    pub fn predict(&self, input: &[f32], batch: usize) -> Vec<usize> {
        let logits = self.logits(input, batch);
        logits.chunks(self.outputs().max(1)).map(argmax).collect()
    }

    /// Every layer as the compiler sees it, with its input and output shapes.
    pub fn lowered(&self) -> Vec<(Lowered, Shape, Shape)> {
        self.arch
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| {
                (
                    l.ops().lower(&self.params[i], self.io(i, 1)),
                    self.shapes[i],
                    self.shapes[i + 1],
                )
            })
            .collect()
    }

    /// The same function without batch normalisation layers that follow a convolution or a
    /// dense layer: each is folded into it (`w' = w * g / sqrt(var + eps)`,
    /// `b' = (b - mean) * g / sqrt(var + eps) + beta`). Others stay (the compiler composes them
    /// with their neighbours).
    pub fn fold_batch_norm(&self) -> Result<Self, String> {
        let mut layers: Vec<Layer> = Vec::new();
        let mut params: Vec<LayerParams> = Vec::new();
        for (layer, p) in self.arch.layers.iter().zip(&self.params) {
            let Layer::BatchNorm(bn) = layer else {
                layers.push(layer.clone());
                params.push(p.clone());
                continue;
            };
            let foldable = matches!(layers.last(), Some(Layer::Conv2d(_) | Layer::Linear(_)))
                && params.last().is_some_and(|q| q.bias.len() == bn.features);
            let prev = match params.last_mut() {
                Some(prev) if foldable => prev,
                _ => {
                    layers.push(layer.clone());
                    params.push(p.clone());
                    continue;
                }
            };
            let (scale, shift) = bn.affine_terms(p);
            let per_out = prev.weight.len() / bn.features;
            for o in 0..bn.features {
                for w in &mut prev.weight[o * per_out..(o + 1) * per_out] {
                    *w = (f64::from(*w) * scale[o]) as f32;
                }
                prev.bias[o] = (f64::from(prev.bias[o]) * scale[o] + shift[o]) as f32;
            }
        }
        let arch = Architecture {
            name: self.arch.name.clone(),
            input: self.arch.input,
            layers,
        };
        Network::from_params(arch, params)
    }
}
