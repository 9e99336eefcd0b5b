//! From a network to stages the compiler packs: affine maps (every run of consecutive linear
//! layers composed into one: convolutions, pooling, batch normalisation, dense layers) and
//! activations in a canonical form that costs the minimal depth.
//!
//! A polynomial `p(x)` of degree 2 to 4 is rewritten as `p(x) = s * f(z) + t` with
//! `z = a * x + b` (absorbed by the affine map before it), `s = +-1` and `t` (absorbed by the
//! affine map after it), and `f` one of:
//! * `z^2` (degree 2, one level);
//! * `z^3 + l * z` (degree 3: `x` shifted to remove the square term and scaled to make the
//!   cube's coefficient 1; two levels);
//! * `(z^2 + c)^2 + l * z` (degree 4: shifted to remove the cube term, completed to a square;
//!   two levels).
//!
//! Degree 0 and 1 polynomials are affine and compose with their neighbours.

use unseen_model::layers::{Conv2d, Layer};
use unseen_model::{Lowered, Network, Shape, SparseAffine};

use crate::Error;

/// An activation in canonical form (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    /// `z^2`.
    Square,
    /// `z^3 + linear * z`.
    Cube {
        /// Coefficient of `z`.
        linear: f64,
    },
    /// `(z^2 + shift)^2 + linear * z`.
    Quartic {
        /// Added to `z^2` before it is squared.
        shift: f64,
        /// Coefficient of `z`.
        linear: f64,
    },
}

impl Activation {
    /// Levels it consumes.
    pub fn depth(self) -> usize {
        match self {
            Activation::Square => 1,
            _ => 2,
        }
    }

    /// Its value at `z`.
    pub fn eval(self, z: f64) -> f64 {
        match self {
            Activation::Square => z * z,
            Activation::Cube { linear } => z * z * z + linear * z,
            Activation::Quartic { shift, linear } => (z * z + shift).powi(2) + linear * z,
        }
    }
}

/// One stage of a lowered network.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// An affine map of the whole sample.
    Affine(SparseAffine),
    /// An activation of every value.
    Activation(Activation),
}

/// The first stage when it is exactly one convolution: its spec, the layer's parameters, and
/// the scale and shift applied to its outputs (from the activation after it).
#[derive(Debug, Clone, PartialEq)]
pub struct FirstConv {
    /// The convolution.
    pub conv: Conv2d,
    /// Its weights `[out, in, k, k]`, scaled.
    pub weight: Vec<f64>,
    /// Its biases, scaled and shifted.
    pub bias: Vec<f64>,
}

/// A network as stages.
#[derive(Debug, Clone, PartialEq)]
pub struct LoweredNet {
    /// Input shape.
    pub input: Shape,
    /// The stages.
    pub stages: Vec<Stage>,
    /// Shape of the values after each stage.
    pub shapes: Vec<Shape>,
    /// Set when the first stage is a single convolution (the client can then send its input
    /// unfolded into patches).
    pub first_conv: Option<FirstConv>,
}

impl LoweredNet {
    /// Multiplicative depth.
    pub fn depth(&self) -> usize {
        self.stages
            .iter()
            .map(|s| match s {
                Stage::Affine(_) => 1,
                Stage::Activation(a) => a.depth(),
            })
            .sum()
    }

    /// Exact evaluation of the stages, for checking.
    pub fn eval(&self, input: &[f64]) -> Vec<f64> {
        let mut x = input.to_vec();
        for s in &self.stages {
            x = match s {
                Stage::Affine(a) => a.apply(&x),
                Stage::Activation(f) => x.iter().map(|v| f.eval(*v)).collect(),
            };
        }
        x
    }
}

/// `q(u) = p(u - s)`.
fn shift_poly(p: &[f64], s: f64) -> Vec<f64> {
    let mut q = vec![0.0; p.len()];
    for (j, pj) in p.iter().enumerate() {
        let mut binom = 1.0;
        for (k, qk) in q.iter_mut().enumerate().take(j + 1) {
            if k > 0 {
                binom = binom * (j + 1 - k) as f64 / k as f64;
            }
            *qk += pj * binom * (-s).powi((j - k) as i32);
        }
    }
    q
}

/// `(a, b, f, s, t)` with `p(x) = s * f(a x + b) + t`.
type Canonical = (f64, f64, Activation, f64, f64);

fn canonical(p: &[f64]) -> Result<Canonical, Error> {
    let c = |k: usize| p.get(k).copied().unwrap_or(0.0);
    let degree = p.iter().rposition(|v| *v != 0.0).unwrap_or(0);
    Ok(match degree {
        2 => {
            let (a2, a1, a0) = (c(2), c(1), c(0));
            let alpha = a2.abs().sqrt();
            (
                alpha,
                alpha * a1 / (2.0 * a2),
                Activation::Square,
                a2.signum(),
                a0 - a1 * a1 / (4.0 * a2),
            )
        }
        3 => {
            let s = c(2) / (3.0 * c(3));
            let q = shift_poly(&p[..4], s);
            let alpha = c(3).cbrt();
            (
                alpha,
                alpha * s,
                Activation::Cube {
                    linear: q[1] / alpha,
                },
                1.0,
                q[0],
            )
        }
        4 => {
            let a4 = c(4);
            let s = c(3) / (4.0 * a4);
            let q = shift_poly(&p[..5], s);
            let alpha = a4.abs().powf(0.25);
            let sign = a4.signum();
            let cc = q[2] / (2.0 * a4);
            (
                alpha,
                alpha * s,
                Activation::Quartic {
                    shift: cc * alpha * alpha,
                    linear: sign * q[1] / alpha,
                },
                sign,
                q[0] - a4 * cc * cc,
            )
        }
        d => {
            return Err(Error::Unsupported(format!(
                "a polynomial activation of degree {d}"
            )))
        }
    })
}

/// Lowers a network to stages.
pub fn lower(net: &Network) -> Result<LoweredNet, Error> {
    let mut stages: Vec<Stage> = Vec::new();
    let mut shapes: Vec<Shape> = Vec::new();
    let mut pending: Option<(SparseAffine, Shape)> = None;
    let mut post: Option<(f64, f64)> = None;
    // The first stage's single convolution, while it is still alone in `pending`.
    let mut first_conv: Option<FirstConv> = None;
    let mut first_conv_open = true;
    let diag = |n: usize, (s, t): (f64, f64)| SparseAffine::diagonal(&vec![s; n], &vec![t; n]);
    for (i, (lowered, sin, sout)) in net.lowered().into_iter().enumerate() {
        let layer = &net.arch.layers[i];
        match lowered {
            Lowered::Reshape => {
                if let Some((_, s)) = pending.as_mut() {
                    *s = sout;
                }
            }
            Lowered::Affine(a) => {
                let composed = match (pending.take(), post.take()) {
                    (Some((p, _)), _) => {
                        first_conv_open = false;
                        first_conv = None;
                        p.then(&a)
                    }
                    (None, Some(pt)) => diag(a.inputs, pt).then(&a),
                    (None, None) => {
                        if stages.is_empty() && first_conv_open {
                            if let Layer::Conv2d(conv) = layer {
                                let p = &net.params[i];
                                first_conv = Some(FirstConv {
                                    conv: conv.clone(),
                                    weight: p.weight.iter().map(|v| f64::from(*v)).collect(),
                                    bias: p.bias.iter().map(|v| f64::from(*v)).collect(),
                                });
                            }
                        }
                        Ok(a)
                    }
                }
                .map_err(Error::Unsupported)?;
                pending = Some((composed, sout));
            }
            Lowered::Polynomial(p) => {
                let degree = p.iter().rposition(|v| *v != 0.0).unwrap_or(0);
                if degree <= 1 {
                    let n = sin.len();
                    let d = diag(
                        n,
                        (
                            p.get(1).copied().unwrap_or(0.0),
                            p.first().copied().unwrap_or(0.0),
                        ),
                    );
                    let composed = match (pending.take(), post.take()) {
                        (Some((a, _)), _) => a.then(&d),
                        (None, Some(pt)) => diag(n, pt).then(&d),
                        (None, None) => Ok(d),
                    }
                    .map_err(Error::Unsupported)?;
                    if let Some(fc) = first_conv.as_mut().filter(|_| stages.is_empty()) {
                        let (s, t) = (
                            p.get(1).copied().unwrap_or(0.0),
                            p.first().copied().unwrap_or(0.0),
                        );
                        fc.weight.iter_mut().for_each(|w| *w *= s);
                        fc.bias.iter_mut().for_each(|b| *b = *b * s + t);
                    }
                    pending = Some((composed, sout));
                    continue;
                }
                let (alpha, beta, act, s, t) = canonical(&p)?;
                let (mut a, shape) = match (pending.take(), post.take()) {
                    (Some(x), _) => x,
                    (None, pt) => {
                        first_conv = None;
                        (diag(sin.len(), pt.unwrap_or((1.0, 0.0))), sin)
                    }
                };
                let n = a.outputs();
                a.scale_outputs(&vec![alpha; n], &vec![beta; n]);
                if let Some(fc) = first_conv.as_mut().filter(|_| stages.is_empty()) {
                    fc.weight.iter_mut().for_each(|w| *w *= alpha);
                    fc.bias.iter_mut().for_each(|b| *b = *b * alpha + beta);
                }
                first_conv_open = false;
                stages.push(Stage::Affine(a));
                shapes.push(shape);
                stages.push(Stage::Activation(act));
                shapes.push(sout);
                if s != 1.0 || t != 0.0 {
                    post = Some((s, t));
                }
            }
        }
    }
    match (pending, post) {
        (Some((a, shape)), _) => {
            stages.push(Stage::Affine(a));
            shapes.push(shape);
        }
        (None, Some(pt)) => {
            let shape = *net.shapes.last().unwrap_or(&net.arch.input);
            stages.push(Stage::Affine(diag(shape.len(), pt)));
            shapes.push(shape);
        }
        (None, None) => {}
    }
    if !matches!(stages.first(), Some(Stage::Affine(_))) {
        // Keep first_conv only when the first stage is the convolution itself.
        first_conv = None;
    }
    Ok(LoweredNet {
        input: net.arch.input,
        stages,
        shapes,
        first_conv,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(p: &[f64], x: f64) -> f64 {
        p.iter().rev().fold(0.0, |acc, c| acc * x + c)
    }

    #[test]
    fn canonical_forms_are_the_same_polynomial() {
        for p in [
            vec![0.1, 0.5, 0.25],
            vec![-1.0, 2.0, -3.0],
            vec![0.3, -0.2, 0.7, 0.05],
            vec![0.0, 1.0, 0.0, -2.0],
            vec![0.2, 0.5, 0.3, -0.1, 0.02],
            vec![1.0, 0.0, -1.0, 0.0, -0.5],
        ] {
            let (a, b, f, s, t) = canonical(&p).expect("canonical");
            for k in -20..=20 {
                let x = f64::from(k) / 7.0;
                let want = eval(&p, x);
                let got = s * f.eval(a * x + b) + t;
                assert!(
                    (want - got).abs() < 1e-9 * (1.0 + want.abs()),
                    "{p:?} at {x}: {want} vs {got}"
                );
            }
        }
        assert!(canonical(&[0.0, 0.0, 0.0, 0.0, 0.0, 1.0]).is_err());
    }
}
