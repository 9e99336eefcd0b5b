//! Parameters of a network and its plaintext evaluation.

use rand::Rng;

use super::arch::{Architecture, Layer, Shape};
use crate::linalg::{gemm, Layout};

/// Weights and biases of one layer (empty for layers without parameters).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LayerParams {
    /// Conv: `out x in x k x k`; linear: `out x in` (PyTorch layouts).
    pub weight: Vec<f32>,
    /// One per output channel or feature.
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

/// Sizes of a layer's weight and bias, `(0, 0)` for layers without parameters.
pub fn param_sizes(layer: &Layer) -> (usize, usize) {
    match layer {
        Layer::Conv2d {
            in_channels,
            out_channels,
            kernel,
            ..
        } => (out_channels * in_channels * kernel * kernel, *out_channels),
        Layer::Linear {
            in_features,
            out_features,
        } => (in_features * out_features, *out_features),
        Layer::BatchNorm { features } => (*features, *features),
        _ => (0, 0),
    }
}

/// Epsilon of batch normalisation (PyTorch's default).
pub const BN_EPS: f32 = 1e-5;

fn fan_in(layer: &Layer) -> usize {
    match layer {
        Layer::Conv2d {
            in_channels,
            kernel,
            ..
        } => in_channels * kernel * kernel,
        Layer::Linear { in_features, .. } => *in_features,
        _ => 1,
    }
}

impl Network {
    /// A network with PyTorch's default initialisation (uniform in `+-1/sqrt(fan_in)`).
    pub fn init(arch: Architecture, rng: &mut impl Rng) -> Result<Self, String> {
        let shapes = arch.shapes()?;
        let params = arch
            .layers
            .iter()
            .map(|l| {
                let (w, b) = param_sizes(l);
                let bound = 1.0 / (fan_in(l) as f32).sqrt();
                match l {
                    Layer::BatchNorm { features } => LayerParams {
                        weight: vec![1.0; *features],
                        bias: vec![0.0; *features],
                        running: [vec![0.0; *features], vec![1.0; *features]].concat(),
                    },
                    _ => LayerParams {
                        weight: (0..w).map(|_| rng.gen_range(-bound..bound)).collect(),
                        bias: (0..b).map(|_| rng.gen_range(-bound..bound)).collect(),
                        running: Vec::new(),
                    },
                }
            })
            .collect();
        Ok(Self {
            arch,
            shapes,
            params,
        })
    }

    /// A network from given parameters, checking their sizes.
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
            let (w, b) = param_sizes(l);
            if p.weight.len() != w || p.bias.len() != b {
                return Err(format!(
                    "layer {i}: {} weights and {} biases, expected {w} and {b}",
                    p.weight.len(),
                    p.bias.len()
                ));
            }
            if p.weight.iter().chain(&p.bias).any(|v| !v.is_finite()) {
                return Err(format!("layer {i}: parameters must be finite"));
            }
        }
        Ok(Self {
            arch,
            shapes,
            params,
        })
    }

    /// Number of classes (outputs).
    pub fn outputs(&self) -> usize {
        self.shapes.last().map(|s| s.len()).unwrap_or(0)
    }

    /// Runs a training batch (batch normalisation on batch statistics); returns the input of
    /// every layer and the output (`len = layers + 1`).
    pub fn forward_train(&self, input: &[f32], batch: usize) -> Vec<Vec<f32>> {
        let mut acts = Vec::with_capacity(self.arch.layers.len() + 1);
        acts.push(input.to_vec());
        for (i, layer) in self.arch.layers.iter().enumerate() {
            let x = &acts[i];
            let y = layer_forward(
                layer,
                &self.params[i],
                self.shapes[i],
                self.shapes[i + 1],
                x,
                batch,
                true,
            );
            acts.push(y);
        }
        acts
    }

    /// The same function without batch normalisation layers: each one is folded into the
    /// convolution or dense layer before it (`w' = w * g / sqrt(var + eps)`,
    /// `b' = (b - mean) * g / sqrt(var + eps) + beta`).
    pub fn fold_batch_norm(&self) -> Result<Self, String> {
        let mut layers: Vec<Layer> = Vec::new();
        let mut params: Vec<LayerParams> = Vec::new();
        for (layer, p) in self.arch.layers.iter().zip(&self.params) {
            let Layer::BatchNorm { features } = layer else {
                layers.push(layer.clone());
                params.push(p.clone());
                continue;
            };
            let prev = params
                .last_mut()
                .ok_or("batch normalisation cannot come first")?;
            if !matches!(
                layers.last(),
                Some(Layer::Conv2d { .. } | Layer::Linear { .. })
            ) || prev.bias.len() != *features
            {
                return Err("batch normalisation must follow a convolution or dense layer of the same width".into());
            }
            let per_out = prev.weight.len() / features;
            for o in 0..*features {
                let scale = p.weight[o] / (p.running[features + o] + BN_EPS).sqrt();
                for w in &mut prev.weight[o * per_out..(o + 1) * per_out] {
                    *w *= scale;
                }
                prev.bias[o] = (prev.bias[o] - p.running[o]) * scale + p.bias[o];
            }
        }
        let arch = Architecture {
            name: self.arch.name.clone(),
            input: self.arch.input,
            layers,
        };
        Network::from_params(arch, params)
    }

    /// Logits for a batch of normalised inputs.
    pub fn logits(&self, input: &[f32], batch: usize) -> Vec<f32> {
        let mut x = input.to_vec();
        for (i, layer) in self.arch.layers.iter().enumerate() {
            x = layer_forward(
                layer,
                &self.params[i],
                self.shapes[i],
                self.shapes[i + 1],
                &x,
                batch,
                false,
            );
        }
        x
    }

    /// Predicted class of each image in a batch.
    pub fn predict(&self, input: &[f32], batch: usize) -> Vec<usize> {
        let logits = self.logits(input, batch);
        logits.chunks(self.outputs()).map(argmax).collect()
    }
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

/// Unfolds one image (`c x h x w`) into `positions x (c * k * k)` patches.
pub(crate) fn im2col(
    x: &[f32],
    (c, h, w): (usize, usize, usize),
    k: usize,
    stride: usize,
    pad: usize,
    (oh, ow): (usize, usize),
) -> Vec<f32> {
    let kk = c * k * k;
    let mut cols = vec![0.0f32; oh * ow * kk];
    for oy in 0..oh {
        for ox in 0..ow {
            let row = &mut cols[(oy * ow + ox) * kk..(oy * ow + ox + 1) * kk];
            for ci in 0..c {
                for ky in 0..k {
                    let iy = (oy * stride + ky) as isize - pad as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..k {
                        let ix = (ox * stride + kx) as isize - pad as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        row[ci * k * k + ky * k + kx] =
                            x[ci * h * w + iy as usize * w + ix as usize];
                    }
                }
            }
        }
    }
    cols
}

/// Adds patch gradients back onto the image they came from (the adjoint of [`im2col`]).
pub(crate) fn col2im(
    cols: &[f32],
    dx: &mut [f32],
    (c, h, w): (usize, usize, usize),
    k: usize,
    stride: usize,
    pad: usize,
    (oh, ow): (usize, usize),
) {
    let kk = c * k * k;
    for oy in 0..oh {
        for ox in 0..ow {
            let row = &cols[(oy * ow + ox) * kk..(oy * ow + ox + 1) * kk];
            for ci in 0..c {
                for ky in 0..k {
                    let iy = (oy * stride + ky) as isize - pad as isize;
                    if iy < 0 || iy >= h as isize {
                        continue;
                    }
                    for kx in 0..k {
                        let ix = (ox * stride + kx) as isize - pad as isize;
                        if ix < 0 || ix >= w as isize {
                            continue;
                        }
                        dx[ci * h * w + iy as usize * w + ix as usize] +=
                            row[ci * k * k + ky * k + kx];
                    }
                }
            }
        }
    }
}

pub(crate) fn dims(s: Shape) -> (usize, usize, usize) {
    match s {
        Shape::Image(c, h, w) => (c, h, w),
        Shape::Vector(n) => (n, 1, 1),
    }
}

/// Per-feature mean and (biased) variance of a batch, for batch normalisation.
pub(crate) fn batch_stats(x: &[f32], shape: Shape, batch: usize) -> (Vec<f32>, Vec<f32>) {
    let (c, h, w) = dims(shape);
    let area = h * w;
    let count = (batch * area).max(1) as f64;
    let mut mean = vec![0.0f64; c];
    let mut sq = vec![0.0f64; c];
    for sample in x.chunks(c * area) {
        for (ci, plane) in sample.chunks(area).enumerate() {
            for v in plane {
                mean[ci] += f64::from(*v);
                sq[ci] += f64::from(*v) * f64::from(*v);
            }
        }
    }
    let m: Vec<f32> = mean.iter().map(|s| (s / count) as f32).collect();
    let var: Vec<f32> = mean
        .iter()
        .zip(&sq)
        .map(|(s, q)| ((q / count) - (s / count).powi(2)).max(0.0) as f32)
        .collect();
    (m, var)
}

/// One layer on a batch (`train`: batch normalisation on batch statistics).
pub(crate) fn layer_forward(
    layer: &Layer,
    p: &LayerParams,
    sin: Shape,
    sout: Shape,
    x: &[f32],
    batch: usize,
    train: bool,
) -> Vec<f32> {
    let (nin, nout) = (sin.len(), sout.len());
    match layer {
        Layer::Conv2d {
            out_channels,
            kernel,
            stride,
            padding,
            ..
        } => {
            let (_, oh, ow) = dims(sout);
            let positions = oh * ow;
            let kk = p.weight.len() / out_channels;
            let mut y = vec![0.0f32; batch * nout];
            for (xs, ys) in x.chunks(nin).zip(y.chunks_mut(nout)) {
                let cols = im2col(xs, dims(sin), *kernel, *stride, *padding, (oh, ow));
                for (o, row) in ys.chunks_mut(positions).enumerate() {
                    row.fill(p.bias[o]);
                }
                gemm(
                    1.0,
                    &p.weight,
                    Layout::row_major(*out_channels, kk),
                    &cols,
                    Layout::transposed(kk, positions),
                    1.0,
                    ys,
                    Layout::row_major(*out_channels, positions),
                );
            }
            y
        }
        Layer::Square => x.iter().map(|v| v * v).collect(),
        Layer::BatchNorm { features } => {
            let (mean, var) = if train {
                batch_stats(x, sin, batch)
            } else {
                (
                    p.running[..*features].to_vec(),
                    p.running[*features..].to_vec(),
                )
            };
            let area = nin / features;
            let mut y = x.to_vec();
            for sample in y.chunks_mut(nin) {
                for (ci, plane) in sample.chunks_mut(area).enumerate() {
                    let inv = p.weight[ci] / (var[ci] + BN_EPS).sqrt();
                    for v in plane {
                        *v = (*v - mean[ci]) * inv + p.bias[ci];
                    }
                }
            }
            y
        }
        Layer::Flatten => x.to_vec(),
        Layer::AvgPool2d { kernel, stride } => {
            let (c, h, w) = dims(sin);
            let (_, oh, ow) = dims(sout);
            let scale = 1.0 / (kernel * kernel) as f32;
            let mut y = vec![0.0f32; batch * nout];
            for (xs, ys) in x.chunks(nin).zip(y.chunks_mut(nout)) {
                for ci in 0..c {
                    for oy in 0..oh {
                        for ox in 0..ow {
                            let mut s = 0.0;
                            for ky in 0..*kernel {
                                for kx in 0..*kernel {
                                    s += xs[ci * h * w + (oy * stride + ky) * w + ox * stride + kx];
                                }
                            }
                            ys[ci * oh * ow + oy * ow + ox] = s * scale;
                        }
                    }
                }
            }
            y
        }
        Layer::Linear {
            in_features,
            out_features,
        } => {
            let mut y: Vec<f32> = (0..batch).flat_map(|_| p.bias.iter().copied()).collect();
            gemm(
                1.0,
                x,
                Layout::row_major(batch, *in_features),
                &p.weight,
                Layout::transposed(*in_features, *out_features),
                1.0,
                &mut y,
                Layout::row_major(batch, *out_features),
            );
            y
        }
    }
}
