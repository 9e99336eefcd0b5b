//! Flattening `C x H x W` to a vector in PyTorch's (channel-major) order.

use super::{Io, LayerOps, Lowered};
use crate::network::LayerParams;
use crate::shape::Shape;

/// Flatten: the values stay where they are; only the shape changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flatten;

impl LayerOps for Flatten {
    fn kind(&self) -> &'static str {
        "flatten"
    }
    fn output_shape(&self, input: Shape) -> Result<Shape, String> {
        Ok(Shape::Vector(input.len()))
    }
    fn forward(&self, _p: &LayerParams, _io: Io, x: &[f32], _train: bool) -> Vec<f32> {
        x.to_vec()
    }
    fn backward(
        &self,
        _p: &LayerParams,
        _io: Io,
        _x: &[f32],
        dy: Vec<f32>,
        _need_dx: bool,
        _g: &mut LayerParams,
    ) -> Vec<f32> {
        dy
    }
    fn lower(&self, _p: &LayerParams, _io: Io) -> Lowered {
        Lowered::Reshape
    }
}
