//! Batch normalisation (PyTorch's `BatchNorm1d`/`BatchNorm2d` in evaluation mode when lowered):
//! an affine map per channel, which the compiler composes with its affine neighbours.

use serde::{Deserialize, Serialize};

use super::{Io, LayerOps, Lowered, ParamShapes};
use crate::affine::SparseAffine;
use crate::network::LayerParams;
use crate::shape::Shape;

/// Epsilon of batch normalisation (PyTorch's default).
pub const BN_EPS: f32 = 1e-5;

/// Batch normalisation: weight (gamma) and bias (beta) per channel; running mean and variance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchNorm {
    /// Channels or features.
    pub features: usize,
}

/// Per-channel mean and (biased) variance of a batch.
pub fn batch_stats(x: &[f32], shape: Shape, batch: usize) -> (Vec<f32>, Vec<f32>) {
    let (c, h, w) = shape.dims();
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

impl BatchNorm {
    /// `(scale, shift)` per channel with the running statistics: `y = x * scale + shift`.
    pub fn affine_terms(&self, p: &LayerParams) -> (Vec<f64>, Vec<f64>) {
        let f = self.features;
        (0..f)
            .map(|c| {
                let scale = f64::from(p.weight[c])
                    / (f64::from(p.running[f + c]) + f64::from(BN_EPS)).sqrt();
                (
                    scale,
                    f64::from(p.bias[c]) - f64::from(p.running[c]) * scale,
                )
            })
            .unzip()
    }
}

impl LayerOps for BatchNorm {
    fn kind(&self) -> &'static str {
        "batch_norm"
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        if input.channels() == self.features {
            Ok(input)
        } else {
            Err(format!(
                "expects {} channels, got {}",
                self.features,
                input.channels()
            ))
        }
    }

    fn param_shapes(&self) -> ParamShapes {
        ParamShapes {
            weight: vec![self.features],
            bias: vec![self.features],
            running: vec![self.features],
        }
    }

    fn init(&self, _rng: &mut dyn rand::RngCore) -> LayerParams {
        let f = self.features;
        LayerParams {
            weight: vec![1.0; f],
            bias: vec![0.0; f],
            running: [vec![0.0; f], vec![1.0; f]].concat(),
        }
    }

    fn forward(&self, p: &LayerParams, io: Io, x: &[f32], train: bool) -> Vec<f32> {
        let f = self.features;
        let (mean, var) = if train {
            batch_stats(x, io.input, io.batch)
        } else {
            (p.running[..f].to_vec(), p.running[f..].to_vec())
        };
        let nin = io.input.len();
        let area = nin / f;
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

    fn backward(
        &self,
        p: &LayerParams,
        io: Io,
        x: &[f32],
        dy: Vec<f32>,
        _need_dx: bool,
        g: &mut LayerParams,
    ) -> Vec<f32> {
        let (mean, var) = batch_stats(x, io.input, io.batch);
        let nin = io.input.len();
        let area = nin / self.features;
        let m = (io.batch * area) as f32;
        let mut dx = vec![0.0f32; x.len()];
        for ci in 0..self.features {
            let inv_std = 1.0 / (var[ci] + BN_EPS).sqrt();
            let (mut dbeta, mut dgamma) = (0.0f32, 0.0f32);
            let span = ci * area..(ci + 1) * area;
            for (xs, ds) in x.chunks(nin).zip(dy.chunks(nin)) {
                for (xv, dv) in xs[span.clone()].iter().zip(&ds[span.clone()]) {
                    dbeta += dv;
                    dgamma += dv * (xv - mean[ci]) * inv_std;
                }
            }
            g.weight[ci] += dgamma;
            g.bias[ci] += dbeta;
            let k = p.weight[ci] * inv_std / m;
            for ((xs, ds), dxs) in x.chunks(nin).zip(dy.chunks(nin)).zip(dx.chunks_mut(nin)) {
                for ((xv, dv), out) in xs[span.clone()]
                    .iter()
                    .zip(&ds[span.clone()])
                    .zip(&mut dxs[span.clone()])
                {
                    let xhat = (xv - mean[ci]) * inv_std;
                    *out = k * (m * dv - dbeta - xhat * dgamma);
                }
            }
        }
        dx
    }

    fn lower(&self, p: &LayerParams, io: Io) -> Lowered {
        let (scale, shift) = self.affine_terms(p);
        let area = io.input.len() / self.features;
        let per = |v: &[f64]| -> Vec<f64> {
            v.iter()
                .flat_map(|s| std::iter::repeat_n(*s, area))
                .collect()
        };
        Lowered::Affine(SparseAffine::diagonal(&per(&scale), &per(&shift)))
    }
}
