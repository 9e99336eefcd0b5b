//! Average pooling (PyTorch's `AvgPool2d` without padding) and global average pooling
//! (`AdaptiveAvgPool2d(1)`, ONNX's `GlobalAveragePool`). Both are linear: the compiler folds
//! them into the next linear map, so they cost no level.

use serde::{Deserialize, Serialize};

use super::{Io, LayerOps, Lowered};
use crate::affine::SparseAffine;
use crate::network::LayerParams;
use crate::shape::Shape;

/// Average pooling with a square window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvgPool2d {
    /// Window height and width.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
}

/// Mean of each channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GlobalAvgPool;

/// For each output value (channel-major), the input indices it averages.
fn windows(io: Io, kernel: usize, stride: usize) -> Vec<Vec<usize>> {
    let (c, h, w) = io.input.dims();
    let (_, oh, ow) = io.output.dims();
    let mut out = Vec::with_capacity(c * oh * ow);
    for ci in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut idx = Vec::with_capacity(kernel * kernel);
                for ky in 0..kernel {
                    for kx in 0..kernel {
                        idx.push(ci * h * w + (oy * stride + ky) * w + ox * stride + kx);
                    }
                }
                idx.sort_unstable();
                out.push(idx);
            }
        }
    }
    out
}

fn mean_forward(win: &[Vec<usize>], io: Io, x: &[f32]) -> Vec<f32> {
    let (nin, nout) = (io.input.len(), io.output.len());
    let mut y = vec![0.0f32; io.batch * nout];
    for (xs, ys) in x.chunks(nin).zip(y.chunks_mut(nout)) {
        for (yv, idx) in ys.iter_mut().zip(win) {
            *yv = idx.iter().map(|i| xs[*i]).sum::<f32>() / idx.len() as f32;
        }
    }
    y
}

fn mean_backward(win: &[Vec<usize>], io: Io, dy: &[f32]) -> Vec<f32> {
    let (nin, nout) = (io.input.len(), io.output.len());
    let mut dx = vec![0.0f32; io.batch * nin];
    for (dxs, dys) in dx.chunks_mut(nin).zip(dy.chunks(nout)) {
        for (d, idx) in dys.iter().zip(win) {
            let share = d / idx.len() as f32;
            for i in idx {
                dxs[*i] += share;
            }
        }
    }
    dx
}

fn mean_lower(win: &[Vec<usize>], io: Io) -> Lowered {
    Lowered::Affine(SparseAffine {
        inputs: io.input.len(),
        rows: win
            .iter()
            .map(|idx| idx.iter().map(|i| (*i, 1.0 / idx.len() as f64)).collect())
            .collect(),
        bias: vec![0.0; win.len()],
    })
}

impl LayerOps for AvgPool2d {
    fn kind(&self) -> &'static str {
        "avg_pool2d"
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        let Shape::Image(c, h, w) = input else {
            return Err(format!("expects an image, got a vector of {}", input.len()));
        };
        let (k, s) = (self.kernel, self.stride);
        if k == 0 || s == 0 || h < k || w < k {
            return Err(format!(
                "a {k}x{k} window with stride {s} does not fit a {h}x{w} image"
            ));
        }
        Ok(Shape::Image(c, (h - k) / s + 1, (w - k) / s + 1))
    }
    fn forward(&self, _p: &LayerParams, io: Io, x: &[f32], _train: bool) -> Vec<f32> {
        mean_forward(&windows(io, self.kernel, self.stride), io, x)
    }
    fn backward(
        &self,
        _p: &LayerParams,
        io: Io,
        _x: &[f32],
        dy: Vec<f32>,
        _need_dx: bool,
        _g: &mut LayerParams,
    ) -> Vec<f32> {
        mean_backward(&windows(io, self.kernel, self.stride), io, &dy)
    }
    fn lower(&self, _p: &LayerParams, io: Io) -> Lowered {
        mean_lower(&windows(io, self.kernel, self.stride), io)
    }
}

impl GlobalAvgPool {
    fn windows(io: Io) -> Vec<Vec<usize>> {
        let (c, h, w) = io.input.dims();
        (0..c)
            .map(|ci| (ci * h * w..(ci + 1) * h * w).collect())
            .collect()
    }
}

impl LayerOps for GlobalAvgPool {
    fn kind(&self) -> &'static str {
        "global_avg_pool"
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        match input {
            Shape::Image(c, _, _) => Ok(Shape::Image(c, 1, 1)),
            Shape::Vector(n) => Err(format!("expects an image, got a vector of {n}")),
        }
    }
    fn forward(&self, _p: &LayerParams, io: Io, x: &[f32], _train: bool) -> Vec<f32> {
        mean_forward(&Self::windows(io), io, x)
    }
    fn backward(
        &self,
        _p: &LayerParams,
        io: Io,
        _x: &[f32],
        dy: Vec<f32>,
        _need_dx: bool,
        _g: &mut LayerParams,
    ) -> Vec<f32> {
        mean_backward(&Self::windows(io), io, &dy)
    }
    fn lower(&self, _p: &LayerParams, io: Io) -> Lowered {
        mean_lower(&Self::windows(io), io)
    }
}
