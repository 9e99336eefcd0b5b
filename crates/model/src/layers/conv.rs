//! 2-D convolution with bias, square kernels and zero padding (PyTorch's `Conv2d`).

use serde::{Deserialize, Serialize};

use super::{Io, LayerOps, Lowered, ParamShapes};
use crate::affine::SparseAffine;
use crate::linalg::{gemm, Layout};
use crate::network::LayerParams;
use crate::shape::Shape;

/// A convolution: weight `[out, in, k, k]`, bias `[out]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Input channels.
    pub in_channels: usize,
    /// Output channels.
    pub out_channels: usize,
    /// Kernel height and width.
    pub kernel: usize,
    /// Stride in both directions.
    pub stride: usize,
    /// Zero padding on each side.
    pub padding: usize,
}

/// Pixel of a `c x h x w` image seen by patch element `(ci, ky, kx)` at output `(oy, ox)`.
fn source(
    (h, w): (usize, usize),
    (stride, pad): (usize, usize),
    (oy, ox): (usize, usize),
    (ky, kx): (usize, usize),
) -> Option<(usize, usize)> {
    let iy = (oy * stride + ky) as isize - pad as isize;
    let ix = (ox * stride + kx) as isize - pad as isize;
    (iy >= 0 && ix >= 0 && (iy as usize) < h && (ix as usize) < w)
        .then_some((iy as usize, ix as usize))
}

impl Conv2d {
    fn geometry(&self) -> (usize, usize) {
        (self.stride, self.padding)
    }

    /// Unfolds one image into `positions x (c * k * k)` patches.
    fn im2col(&self, x: &[f32], sin: Shape, (oh, ow): (usize, usize)) -> Vec<f32> {
        let (c, h, w) = sin.dims();
        let k = self.kernel;
        let kk = c * k * k;
        let mut cols = vec![0.0f32; oh * ow * kk];
        for oy in 0..oh {
            for ox in 0..ow {
                let row = &mut cols[(oy * ow + ox) * kk..(oy * ow + ox + 1) * kk];
                for ci in 0..c {
                    for ky in 0..k {
                        for kx in 0..k {
                            if let Some((iy, ix)) =
                                source((h, w), self.geometry(), (oy, ox), (ky, kx))
                            {
                                row[ci * k * k + ky * k + kx] = x[ci * h * w + iy * w + ix];
                            }
                        }
                    }
                }
            }
        }
        cols
    }

    /// Adds patch gradients back onto the image they came from (the adjoint of `im2col`).
    fn col2im(&self, cols: &[f32], dx: &mut [f32], sin: Shape, (oh, ow): (usize, usize)) {
        let (c, h, w) = sin.dims();
        let k = self.kernel;
        let kk = c * k * k;
        for oy in 0..oh {
            for ox in 0..ow {
                let row = &cols[(oy * ow + ox) * kk..(oy * ow + ox + 1) * kk];
                for ci in 0..c {
                    for ky in 0..k {
                        for kx in 0..k {
                            if let Some((iy, ix)) =
                                source((h, w), self.geometry(), (oy, ox), (ky, kx))
                            {
                                dx[ci * h * w + iy * w + ix] += row[ci * k * k + ky * k + kx];
                            }
                        }
                    }
                }
            }
        }
    }
}

impl LayerOps for Conv2d {
    fn kind(&self) -> &'static str {
        "conv2d"
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        let Shape::Image(c, h, w) = input else {
            return Err(format!("expects an image, got a vector of {}", input.len()));
        };
        let (k, s, p) = (self.kernel, self.stride, self.padding);
        if c != self.in_channels {
            return Err(format!(
                "expects {} input channels, got {c}",
                self.in_channels
            ));
        }
        if k == 0 || s == 0 || self.out_channels == 0 {
            return Err("kernel, stride and output channels must be positive".into());
        }
        if h + 2 * p < k || w + 2 * p < k {
            return Err(format!(
                "a {k}x{k} kernel does not fit a {h}x{w} image padded by {p}"
            ));
        }
        Ok(Shape::Image(
            self.out_channels,
            (h + 2 * p - k) / s + 1,
            (w + 2 * p - k) / s + 1,
        ))
    }

    fn param_shapes(&self) -> ParamShapes {
        ParamShapes {
            weight: vec![
                self.out_channels,
                self.in_channels,
                self.kernel,
                self.kernel,
            ],
            bias: vec![self.out_channels],
            running: vec![],
        }
    }

    fn forward(&self, p: &LayerParams, io: Io, x: &[f32], _train: bool) -> Vec<f32> {
        let (nin, nout) = (io.input.len(), io.output.len());
        let (_, oh, ow) = io.output.dims();
        let positions = oh * ow;
        let kk = p.weight.len() / self.out_channels;
        let mut y = vec![0.0f32; io.batch * nout];
        for (xs, ys) in x.chunks(nin).zip(y.chunks_mut(nout)) {
            let cols = self.im2col(xs, io.input, (oh, ow));
            for (o, row) in ys.chunks_mut(positions).enumerate() {
                row.fill(p.bias[o]);
            }
            gemm(
                1.0,
                &p.weight,
                Layout::row_major(self.out_channels, kk),
                &cols,
                Layout::transposed(kk, positions),
                1.0,
                ys,
                Layout::row_major(self.out_channels, positions),
            );
        }
        y
    }

    fn backward(
        &self,
        p: &LayerParams,
        io: Io,
        x: &[f32],
        dy: Vec<f32>,
        need_dx: bool,
        g: &mut LayerParams,
    ) -> Vec<f32> {
        let (nin, nout) = (io.input.len(), io.output.len());
        let (_, oh, ow) = io.output.dims();
        let positions = oh * ow;
        let kk = p.weight.len() / self.out_channels;
        let mut dx = if need_dx {
            vec![0.0f32; io.batch * nin]
        } else {
            Vec::new()
        };
        for (s, (xs, dys)) in x.chunks(nin).zip(dy.chunks(nout)).enumerate() {
            let cols = self.im2col(xs, io.input, (oh, ow));
            gemm(
                1.0,
                dys,
                Layout::row_major(self.out_channels, positions),
                &cols,
                Layout::row_major(positions, kk),
                1.0,
                &mut g.weight,
                Layout::row_major(self.out_channels, kk),
            );
            for (b, row) in g.bias.iter_mut().zip(dys.chunks(positions)) {
                *b += row.iter().sum::<f32>();
            }
            if need_dx {
                let mut dcols = vec![0.0f32; positions * kk];
                gemm(
                    1.0,
                    dys,
                    Layout::transposed(positions, self.out_channels),
                    &p.weight,
                    Layout::row_major(self.out_channels, kk),
                    0.0,
                    &mut dcols,
                    Layout::row_major(positions, kk),
                );
                self.col2im(&dcols, &mut dx[s * nin..(s + 1) * nin], io.input, (oh, ow));
            }
        }
        dx
    }

    fn lower(&self, p: &LayerParams, io: Io) -> Lowered {
        let (cin, h, w) = io.input.dims();
        let (cout, oh, ow) = io.output.dims();
        let k = self.kernel;
        let mut rows = Vec::with_capacity(cout * oh * ow);
        let mut bias = Vec::with_capacity(cout * oh * ow);
        for co in 0..cout {
            for oy in 0..oh {
                for ox in 0..ow {
                    let mut terms = Vec::new();
                    for ci in 0..cin {
                        for ky in 0..k {
                            for kx in 0..k {
                                let wgt = f64::from(p.weight[((co * cin + ci) * k + ky) * k + kx]);
                                if wgt == 0.0 {
                                    continue;
                                }
                                if let Some((iy, ix)) =
                                    source((h, w), self.geometry(), (oy, ox), (ky, kx))
                                {
                                    terms.push((ci * h * w + iy * w + ix, wgt));
                                }
                            }
                        }
                    }
                    terms.sort_unstable_by_key(|t| t.0);
                    rows.push(terms);
                    bias.push(f64::from(p.bias[co]));
                }
            }
        }
        Lowered::Affine(SparseAffine {
            inputs: cin * h * w,
            rows,
            bias,
        })
    }
}
