//! Batch packing (CryptoNets-style): slot `i` of every ciphertext belongs to image `i`, and
//! each input feature (pixel) is its own ciphertext. Every layer is then a set of weighted
//! sums of ciphertexts with plaintext scalars, so no rotation and no Galois key is needed; one
//! evaluation serves as many images as there are slots.

use std::sync::Arc;

use unseen_ckks::{Ciphertext, Error, Evaluator, Parameters, RelinKey};
use unseen_ml::cnn::arch::{Layer, Shape};
use unseen_ml::cnn::network::LayerParams;
use unseen_ml::cnn::Network;

use rayon::prelude::*;

/// One output of an affine layer: `bias + sum weight * input[index]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AffineRow {
    /// Non-zero terms `(input index, weight)`.
    pub terms: Vec<(usize, f64)>,
    /// Constant term.
    pub bias: f64,
}

/// A layer of a batch program.
#[derive(Debug, Clone, PartialEq)]
pub enum BatchOp {
    /// Weighted sums (one multiplicative level).
    Affine(Vec<AffineRow>),
    /// `x^2` of every feature (one level).
    Square,
}

/// A network as a sequence of affine maps and squares over feature vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchProgram {
    /// Number of input features (ciphertexts a client sends per batch).
    pub inputs: usize,
    /// The layers.
    pub ops: Vec<BatchOp>,
    /// Largest output magnitude expected (the model's logit bound); `None` for a default.
    pub output_bound: Option<f64>,
}

fn dims(s: Shape) -> (usize, usize, usize) {
    match s {
        Shape::Image(c, h, w) => (c, h, w),
        Shape::Vector(n) => (n, 1, 1),
    }
}

fn conv_rows(
    p: &LayerParams,
    sin: Shape,
    sout: Shape,
    k: usize,
    stride: usize,
    pad: usize,
) -> Vec<AffineRow> {
    let (cin, h, w) = dims(sin);
    let (cout, oh, ow) = dims(sout);
    let mut rows = Vec::with_capacity(cout * oh * ow);
    for co in 0..cout {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut terms = Vec::new();
                for ci in 0..cin {
                    for ky in 0..k {
                        for kx in 0..k {
                            let iy = (oy * stride + ky) as isize - pad as isize;
                            let ix = (ox * stride + kx) as isize - pad as isize;
                            if iy < 0 || ix < 0 || iy as usize >= h || ix as usize >= w {
                                continue;
                            }
                            let wgt = f64::from(p.weight[((co * cin + ci) * k + ky) * k + kx]);
                            if wgt != 0.0 {
                                terms.push((ci * h * w + iy as usize * w + ix as usize, wgt));
                            }
                        }
                    }
                }
                rows.push(AffineRow {
                    terms,
                    bias: f64::from(p.bias[co]),
                });
            }
        }
    }
    rows
}

/// Compiles a network of convolutions, dense layers, squares and flattens.
pub fn compile_batch(net: &Network) -> Result<BatchProgram, crate::Error> {
    let mut ops = Vec::new();
    for (i, layer) in net.arch.layers.iter().enumerate() {
        let (sin, sout, p) = (net.shapes[i], net.shapes[i + 1], &net.params[i]);
        match layer {
            Layer::Conv2d {
                kernel,
                stride,
                padding,
                ..
            } => ops.push(BatchOp::Affine(conv_rows(
                p, sin, sout, *kernel, *stride, *padding,
            ))),
            Layer::Linear {
                in_features,
                out_features,
            } => ops.push(BatchOp::Affine(
                (0..*out_features)
                    .map(|o| AffineRow {
                        terms: (0..*in_features)
                            .map(|i| (i, f64::from(p.weight[o * in_features + i])))
                            .filter(|t| t.1 != 0.0)
                            .collect(),
                        bias: f64::from(p.bias[o]),
                    })
                    .collect(),
            )),
            Layer::Square => ops.push(BatchOp::Square),
            Layer::Flatten => {}
            other => {
                return Err(crate::Error::Unsupported(format!(
                    "layer {other:?} in batch mode"
                )))
            }
        }
    }
    Ok(BatchProgram {
        inputs: net.shapes.first().map(|s| s.len()).unwrap_or(0),
        ops,
        output_bound: None,
    })
}

impl BatchProgram {
    /// Multiplicative depth.
    pub fn depth(&self) -> usize {
        self.ops.len()
    }

    /// Level at which clients encrypt: the lowest that leaves the depth, so uploads and the
    /// relinearisation key (needed one level below) are as small as they can be.
    pub fn start_level(&self) -> usize {
        self.depth()
    }

    /// Exact evaluation on plain feature vectors (one value per feature), for checking.
    pub fn run_plain(&self, input: &[f64]) -> Vec<f64> {
        let mut x = input.to_vec();
        for op in &self.ops {
            x = match op {
                BatchOp::Affine(rows) => rows
                    .iter()
                    .map(|r| r.bias + r.terms.iter().map(|(i, w)| w * x[*i]).sum::<f64>())
                    .collect(),
                BatchOp::Square => x.iter().map(|v| v * v).collect(),
            };
        }
        x
    }

    /// Runs the program on one ciphertext per input feature; returns one ciphertext per output.
    /// Scales stay exact: each weighted sum uses scalars at the scale of the prime the
    /// following rescale removes.
    pub fn run(
        &self,
        params: &Arc<Parameters>,
        relin: &RelinKey,
        inputs: Vec<Ciphertext>,
    ) -> Result<Vec<Ciphertext>, Error> {
        if inputs.len() != self.inputs {
            return Err(Error::InvalidArgument(format!(
                "{} input ciphertexts, the program needs {}",
                inputs.len(),
                self.inputs
            )));
        }
        let ev = Evaluator::new(params);
        let last_affine = self
            .ops
            .iter()
            .rposition(|o| matches!(o, BatchOp::Affine(_)));
        let mut x = inputs;
        for (k, op) in self.ops.iter().enumerate() {
            x = match op {
                BatchOp::Affine(rows) => {
                    let first = x
                        .first()
                        .ok_or_else(|| Error::InvalidArgument("no input".into()))?;
                    if first.level() == 0 {
                        return Err(Error::LevelTooLow(
                            "the batch circuit ran out of levels".into(),
                        ));
                    }
                    // the last map leaves the outputs their headroom in the last modulus
                    let prime = if Some(k) == last_affine {
                        crate::plan::last_multiplier_scale(
                            params,
                            first.level(),
                            first.scale(),
                            crate::plan::output_headroom_bits(self.output_bound),
                        )
                    } else {
                        params.data_primes()[first.level()] as f64
                    };
                    rows.par_iter()
                        .map(|row| {
                            let mut acc: Option<Ciphertext> = None;
                            for (i, w) in &row.terms {
                                let term = ev.mul_scalar(&x[*i], *w, prime)?;
                                acc = Some(match acc {
                                    Some(a) => ev.add(&a, &term)?,
                                    None => term,
                                });
                            }
                            let sum = match acc {
                                Some(a) => a,
                                None => ev.mul_scalar(first, 0.0, prime)?,
                            };
                            let out = ev.rescale(&sum)?;
                            ev.add_scalar(&out, row.bias)
                        })
                        .collect::<Result<Vec<_>, Error>>()?
                }
                BatchOp::Square => x
                    .par_iter()
                    .map(|c| ev.rescale(&ev.square_relin(c, relin)?))
                    .collect::<Result<Vec<_>, Error>>()?,
            };
        }
        Ok(x)
    }
}
