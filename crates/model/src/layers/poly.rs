//! Polynomial activations: `x^2` and `a0 + a1 x + ... + ad x^d` with `d <= 4`, applied to every
//! value. The compiler evaluates them at the minimal depth (one level for a quadratic, two for a
//! cubic or quartic), letting the affine map before absorb a shift and a scale.

use serde::{Deserialize, Serialize};

use super::{Io, LayerOps, Lowered};
use crate::network::LayerParams;
use crate::shape::Shape;

/// Highest degree of a polynomial activation.
pub const MAX_DEGREE: usize = 4;

/// `x^2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Square;

/// `sum_k coefficients[k] x^k`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Poly {
    /// `a0, a1, ..., ad`, constant first.
    pub coefficients: Vec<f64>,
}

impl Poly {
    /// Degree (index of the last non-zero coefficient).
    pub fn degree(&self) -> usize {
        self.coefficients
            .iter()
            .rposition(|c| *c != 0.0)
            .unwrap_or(0)
    }

    /// Checks the degree and that every coefficient is finite.
    pub fn check(&self) -> Result<(), String> {
        if self.coefficients.iter().any(|c| !c.is_finite()) {
            return Err("coefficients must be finite".into());
        }
        if self.degree() > MAX_DEGREE {
            return Err(format!(
                "degree {} is above the largest supported, {MAX_DEGREE}",
                self.degree()
            ));
        }
        Ok(())
    }

    fn value(&self, x: f64) -> f64 {
        self.coefficients
            .iter()
            .rev()
            .fold(0.0, |acc, c| acc * x + c)
    }

    fn slope(&self, x: f64) -> f64 {
        self.coefficients
            .iter()
            .enumerate()
            .skip(1)
            .rev()
            .fold(0.0, |acc, (k, c)| acc * x + k as f64 * c)
    }
}

fn elementwise(x: &[f32], f: impl Fn(f64) -> f64) -> Vec<f32> {
    x.iter().map(|v| f(f64::from(*v)) as f32).collect()
}

fn keep_shape(input: Shape) -> Result<Shape, String> {
    Ok(input)
}

impl LayerOps for Square {
    fn kind(&self) -> &'static str {
        "square"
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        keep_shape(input)
    }
    fn forward(&self, _p: &LayerParams, _io: Io, x: &[f32], _train: bool) -> Vec<f32> {
        x.iter().map(|v| v * v).collect()
    }
    fn backward(
        &self,
        _p: &LayerParams,
        _io: Io,
        x: &[f32],
        dy: Vec<f32>,
        _need_dx: bool,
        _g: &mut LayerParams,
    ) -> Vec<f32> {
        x.iter().zip(&dy).map(|(x, d)| 2.0 * x * d).collect()
    }
    fn lower(&self, _p: &LayerParams, _io: Io) -> Lowered {
        Lowered::Polynomial(vec![0.0, 0.0, 1.0])
    }
}

impl LayerOps for Poly {
    fn kind(&self) -> &'static str {
        "poly"
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        self.check()?;
        keep_shape(input)
    }
    fn forward(&self, _p: &LayerParams, _io: Io, x: &[f32], _train: bool) -> Vec<f32> {
        elementwise(x, |v| self.value(v))
    }
    fn backward(
        &self,
        _p: &LayerParams,
        _io: Io,
        x: &[f32],
        dy: Vec<f32>,
        _need_dx: bool,
        _g: &mut LayerParams,
    ) -> Vec<f32> {
        x.iter()
            .zip(&dy)
            .map(|(x, d)| (self.slope(f64::from(*x)) * f64::from(*d)) as f32)
            .collect()
    }
    fn lower(&self, _p: &LayerParams, _io: Io) -> Lowered {
        let mut c = self.coefficients.clone();
        c.truncate(self.degree() + 1);
        Lowered::Polynomial(c)
    }
}
