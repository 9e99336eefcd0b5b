//! Programs over slot vectors.

use std::collections::{BTreeMap, BTreeSet};

/// `y = sum_d diag_d * rot(x, d)` (element-wise products, `rot(x, d)[i] = x[(i + d) mod n]`),
/// evaluated baby-step/giant-step: with `d = stride * (g * baby + b)`, the rotations of `x` by
/// `stride * b` are computed once (hoisted) and each giant step rotates one partial sum.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearMap {
    /// Diagonal index (a multiple of `stride`) -> its values, one per slot.
    pub diagonals: BTreeMap<usize, Vec<f64>>,
    /// Common factor of all diagonal indices.
    pub stride: usize,
    /// Baby steps per giant step.
    pub baby: usize,
}

impl LinearMap {
    /// Builds a map from its non-zero diagonals, choosing the baby-step count that minimises
    /// the number of rotations.
    pub fn new(diagonals: BTreeMap<usize, Vec<f64>>, slots: usize) -> Self {
        let diagonals: BTreeMap<usize, Vec<f64>> = diagonals
            .into_iter()
            .filter(|(_, v)| v.iter().any(|x| *x != 0.0))
            .collect();
        let stride = diagonals.keys().fold(0usize, |g, d| gcd(g, *d)).max(1);
        let stride = if slots % stride == 0 { stride } else { 1 };
        let units: Vec<usize> = diagonals.keys().map(|d| d / stride).collect();
        let mut best = (usize::MAX, 1usize);
        let mut baby = 1usize;
        while baby <= slots / stride {
            let babies: BTreeSet<usize> = units.iter().map(|u| u % baby).collect();
            let giants: BTreeSet<usize> = units.iter().map(|u| u / baby).collect();
            let cost = babies.iter().filter(|b| **b != 0).count()
                + giants.iter().filter(|g| **g != 0).count();
            if cost < best.0 {
                best = (cost, baby);
            }
            baby *= 2;
        }
        Self {
            diagonals,
            stride,
            baby: best.1,
        }
    }

    /// Rotation steps of `x` (baby steps), hoisted together.
    pub fn baby_steps(&self) -> BTreeSet<usize> {
        self.diagonals
            .keys()
            .map(|d| (d / self.stride) % self.baby * self.stride)
            .collect()
    }

    /// Rotation steps of the partial sums (giant steps).
    pub fn giant_steps(&self) -> BTreeSet<usize> {
        self.diagonals
            .keys()
            .map(|d| (d / self.stride) / self.baby * self.baby * self.stride)
            .collect()
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// One step of a program.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A diagonal linear map (one multiplicative level).
    Linear(LinearMap),
    /// `x += rot(x, step * 2^t)` for `t < count`: sums `2^count` chunks of `step` slots.
    /// Directly after a linear map it runs before that map's rescale, at the product's larger
    /// scale, where the key-switching noise of its rotations is negligible.
    RotateSum {
        /// Chunk size.
        step: usize,
        /// Number of doublings.
        count: usize,
    },
    /// Adds a plaintext vector (biases).
    AddPlain(Vec<f64>),
    /// `x^2` (one multiplicative level).
    Square,
}

/// A compiled network: how the client lays out its input, what the server computes, and where
/// the outputs are.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// Slots of a vector (`N/2` for CKKS at ring degree `N`).
    pub slots: usize,
    /// For each slot of the input vector, the index of the input value it holds (`None`: zero).
    pub input_layout: Vec<Option<usize>>,
    /// The operations in order.
    pub ops: Vec<Op>,
    /// Slot of each output (logit).
    pub output_slots: Vec<usize>,
    /// Largest output magnitude expected (the model's logit bound); `None` for a default.
    pub output_bound: Option<f64>,
}

impl Program {
    /// Every rotation step the program uses (the Galois keys a client must make).
    pub fn rotation_steps(&self) -> BTreeSet<usize> {
        let mut steps = BTreeSet::new();
        for op in &self.ops {
            match op {
                Op::Linear(m) => {
                    steps.extend(m.baby_steps());
                    steps.extend(m.giant_steps());
                }
                Op::RotateSum { step, count } => {
                    steps.extend((0..*count).map(|t| (step << t) % self.slots))
                }
                _ => {}
            }
        }
        steps.remove(&0);
        steps
    }

    /// Each rotation step with the number of levels consumed when it is first used: a Galois
    /// key for that step is needed only down from that level, so it can be made smaller.
    pub fn rotation_steps_by_depth(&self) -> BTreeMap<usize, usize> {
        let mut first: BTreeMap<usize, usize> = BTreeMap::new();
        let mut depth = 0;
        let mut after_linear = false;
        for op in &self.ops {
            let (steps, at): (Vec<usize>, usize) = match op {
                Op::Linear(m) => (
                    m.baby_steps().into_iter().chain(m.giant_steps()).collect(),
                    depth,
                ),
                Op::RotateSum { step, count } => (
                    (0..*count).map(|t| (step << t) % self.slots).collect(),
                    // before the preceding linear map's rescale
                    if after_linear { depth - 1 } else { depth },
                ),
                _ => (Vec::new(), depth),
            };
            after_linear = matches!(op, Op::Linear(_));
            for s in steps.into_iter().filter(|s| *s != 0) {
                first.entry(s).or_insert(at);
            }
            if matches!(op, Op::Linear(_) | Op::Square) {
                depth += 1;
            }
        }
        first
    }

    /// Multiplicative depth: levels consumed.
    pub fn depth(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| matches!(o, Op::Linear(_) | Op::Square))
            .count()
    }

    /// Number of rotations one evaluation performs.
    pub fn rotation_count(&self) -> usize {
        self.ops
            .iter()
            .map(|o| match o {
                Op::Linear(m) => {
                    m.baby_steps().iter().filter(|s| **s != 0).count()
                        + m.giant_steps().iter().filter(|s| **s != 0).count()
                }
                Op::RotateSum { count, .. } => *count,
                _ => 0,
            })
            .sum()
    }

    /// Number of plaintext multiplications one evaluation performs.
    pub fn plain_mul_count(&self) -> usize {
        self.ops
            .iter()
            .map(|o| {
                if let Op::Linear(m) = o {
                    m.diagonals.len()
                } else {
                    0
                }
            })
            .sum()
    }

    /// The slot vector a client encrypts for one input.
    pub fn encode_input(&self, input: &[f64]) -> Vec<f64> {
        self.input_layout
            .iter()
            .map(|i| i.and_then(|i| input.get(i).copied()).unwrap_or(0.0))
            .collect()
    }

    /// The outputs read from a decrypted result vector.
    pub fn decode_output(&self, slots: &[f64]) -> Vec<f64> {
        self.output_slots
            .iter()
            .map(|s| slots.get(*s).copied().unwrap_or(f64::NAN))
            .collect()
    }
}
