//! Shapes of the activations between layers.

use serde::{Deserialize, Serialize};

/// Shape of one sample's activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shape {
    /// Channels, height, width.
    Image(usize, usize, usize),
    /// A flat vector.
    Vector(usize),
}

impl Shape {
    /// Number of values.
    pub fn len(self) -> usize {
        match self {
            Shape::Image(c, h, w) => c * h * w,
            Shape::Vector(n) => n,
        }
    }

    /// Whether the shape holds no value.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }

    /// `(channels, height, width)`; a vector of `n` is `(n, 1, 1)`.
    pub fn dims(self) -> (usize, usize, usize) {
        match self {
            Shape::Image(c, h, w) => (c, h, w),
            Shape::Vector(n) => (n, 1, 1),
        }
    }

    /// Channels (images) or features (vectors).
    pub fn channels(self) -> usize {
        self.dims().0
    }
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Shape::Image(c, h, w) => write!(f, "{c}x{h}x{w}"),
            Shape::Vector(n) => write!(f, "{n}"),
        }
    }
}
