//! Fully connected layer with bias (PyTorch's `Linear`).

use serde::{Deserialize, Serialize};

use super::{Io, LayerOps, Lowered, ParamShapes};
use crate::affine::SparseAffine;
use crate::linalg::{gemm, Layout};
use crate::network::LayerParams;
use crate::shape::Shape;

/// A dense layer: weight `[out, in]`, bias `[out]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Linear {
    /// Input features.
    pub in_features: usize,
    /// Output features.
    pub out_features: usize,
}

impl LayerOps for Linear {
    fn kind(&self) -> &'static str {
        "linear"
    }

    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        match input {
            Shape::Vector(n) if n == self.in_features && self.out_features > 0 => {
                Ok(Shape::Vector(self.out_features))
            }
            Shape::Vector(n) => Err(format!("expects {} inputs, got {n}", self.in_features)),
            Shape::Image(..) => Err(format!(
                "expects a vector, got an image {input} (add a flatten layer)"
            )),
        }
    }

    fn param_shapes(&self) -> ParamShapes {
        ParamShapes {
            weight: vec![self.out_features, self.in_features],
            bias: vec![self.out_features],
            running: vec![],
        }
    }

    fn forward(&self, p: &LayerParams, io: Io, x: &[f32], _train: bool) -> Vec<f32> {
        let (n, m) = (self.in_features, self.out_features);
        let mut y: Vec<f32> = (0..io.batch).flat_map(|_| p.bias.iter().copied()).collect();
        gemm(
            1.0,
            x,
            Layout::row_major(io.batch, n),
            &p.weight,
            Layout::transposed(n, m),
            1.0,
            &mut y,
            Layout::row_major(io.batch, m),
        );
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
        let (n, m, batch) = (self.in_features, self.out_features, io.batch);
        gemm(
            1.0,
            &dy,
            Layout::transposed(m, batch),
            x,
            Layout::row_major(batch, n),
            1.0,
            &mut g.weight,
            Layout::row_major(m, n),
        );
        for row in dy.chunks(m) {
            for (b, d) in g.bias.iter_mut().zip(row) {
                *b += d;
            }
        }
        if !need_dx {
            return Vec::new();
        }
        let mut dx = vec![0.0f32; batch * n];
        gemm(
            1.0,
            &dy,
            Layout::row_major(batch, m),
            &p.weight,
            Layout::row_major(m, n),
            0.0,
            &mut dx,
            Layout::row_major(batch, n),
        );
        dx
    }

    fn lower(&self, p: &LayerParams, _io: Io) -> Lowered {
        let n = self.in_features;
        Lowered::Affine(SparseAffine {
            inputs: n,
            rows: p
                .weight
                .chunks(n)
                .map(|r| {
                    r.iter()
                        .enumerate()
                        .filter(|(_, w)| **w != 0.0)
                        .map(|(i, w)| (i, f64::from(*w)))
                        .collect()
                })
                .collect(),
            bias: p.bias.iter().map(|b| f64::from(*b)).collect(),
        })
    }
}
