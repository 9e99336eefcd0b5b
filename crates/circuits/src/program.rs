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
    /// Then `y += rot(y, step * 2^t)` for `t < count` (`(step, count)`): sums `2^count` chunks of
    /// `step` slots. It runs before the map's rescale, at the product's larger scale, where the
    /// key-switching noise of its rotations is negligible.
    pub sum: Option<(usize, usize)>,
}

impl LinearMap {
    /// Builds a map from its non-zero diagonals, choosing the baby-step count that minimises
    /// the number of rotations.
    pub fn new(diagonals: BTreeMap<usize, Vec<f64>>, slots: usize) -> Self {
        let diagonals: BTreeMap<usize, Vec<f64>> = diagonals
            .into_iter()
            .filter(|(_, v)| v.iter().any(|x| *x != 0.0))
            .collect();
        let (stride, baby, _) = baby_giant(diagonals.keys().copied(), slots);
        Self {
            diagonals,
            stride,
            baby,
            sum: None,
        }
    }

    /// The same map followed by a rotate-and-sum of `2^count` chunks of `step` slots.
    pub fn with_sum(mut self, step: usize, count: usize) -> Self {
        self.sum = Some((step, count));
        self
    }

    /// Every non-zero rotation step the map uses, on vectors of `slots` slots.
    pub fn rotation_steps(&self, slots: usize) -> BTreeSet<usize> {
        let mut steps: BTreeSet<usize> = self.baby_steps();
        steps.extend(self.giant_steps());
        if let Some((step, count)) = self.sum {
            steps.extend((0..count).map(|t| (step << t) % slots));
        }
        steps.remove(&0);
        steps
    }

    /// Rotations one application costs, counted as whole rotations: a rotate-and-sum of
    /// `2^count` chunks counts `count`, its rotations as a chain (hoisted, [`sum_stages`], it
    /// makes more of them for less work).
    pub fn rotation_count(&self) -> usize {
        self.baby_steps().iter().filter(|s| **s != 0).count()
            + self.giant_steps().iter().filter(|s| **s != 0).count()
            + self.sum.map_or(0, |(_, count)| count)
    }

    /// Diagonal `d` as `(giant step, baby step)`, `d = giant + baby`.
    pub fn split(&self, d: usize) -> (usize, usize) {
        let unit = d / self.stride;
        (
            unit / self.baby * self.baby * self.stride,
            unit % self.baby * self.stride,
        )
    }

    /// Rotation steps of `x` (baby steps), hoisted together.
    pub fn baby_steps(&self) -> BTreeSet<usize> {
        self.diagonals.keys().map(|d| self.split(*d).1).collect()
    }

    /// Rotation steps of the partial sums (giant steps).
    pub fn giant_steps(&self) -> BTreeSet<usize> {
        self.diagonals.keys().map(|d| self.split(*d).0).collect()
    }
}

/// The baby-step/giant-step split of a map with these diagonal indices on `slots` slots:
/// `(stride, baby steps per giant step, rotations)`, the baby-step count (a power of two)
/// minimising the rotations.
pub fn baby_giant(
    diagonals: impl Iterator<Item = usize> + Clone,
    slots: usize,
) -> (usize, usize, usize) {
    let stride = diagonals.clone().fold(0usize, gcd).max(1);
    let stride = if slots % stride == 0 { stride } else { 1 };
    let units: Vec<usize> = diagonals.map(|d| d / stride).collect();
    let mut best = (usize::MAX, 1usize);
    let mut baby = 1usize;
    while baby <= slots / stride {
        let babies: BTreeSet<usize> = units.iter().map(|u| u % baby).collect();
        let giants: BTreeSet<usize> = units.iter().map(|u| u / baby).collect();
        let cost =
            babies.iter().filter(|b| **b != 0).count() + giants.iter().filter(|g| **g != 0).count();
        if cost < best.0 {
            best = (cost, baby);
        }
        baby *= 2;
    }
    let rotations = if units.is_empty() { 0 } else { best.0 };
    (stride, best.1, rotations)
}

/// `y = sum_i weights[i] * x_i` over the input vectors `x_i` (element-wise products), then the
/// rotate-and-sum `sum`: the first step of a program whose input spans several vectors, laid
/// out by the client so that its first layer needs no other rotation (one multiplicative
/// level).
#[derive(Debug, Clone, PartialEq)]
pub struct Gather {
    /// One multiplier per input vector.
    pub weights: Vec<Vec<f64>>,
    /// Then `y += rot(y, step * 2^t)` for `t < count` (`(step, count)`), before the rescale.
    pub sum: Option<(usize, usize)>,
}

impl Gather {
    /// Its rotation steps, on vectors of `slots` slots.
    pub fn rotation_steps(&self, slots: usize) -> BTreeSet<usize> {
        let mut steps: BTreeSet<usize> = self
            .sum
            .map(|(step, count)| (0..count).map(|t| (step << t) % slots).collect())
            .unwrap_or_default();
        steps.remove(&0);
        steps
    }

    /// Rotations one application costs, counted as in [`LinearMap::rotation_count`].
    pub fn rotation_count(&self) -> usize {
        self.sum.map_or(0, |(_, count)| count)
    }
}

/// The stages of a rotate-and-sum of `2^count` chunks of `step` slots (`y += rot(y, step *
/// 2^t)` for `t < count`), hoisted: each stage adds to the value its rotations by the stage's
/// steps (modulo `slots`), made from one decomposition and divided by the special modulus once.
/// Two doublings make one stage, `y + rot(y, a) + rot(y, 2a) + rot(y, 3a)` with `a = step *
/// 2^t`: three hoisted rotations are less work than the two rotations they replace, each of
/// which decomposes and divides on its own (README, "Rotate-and-sums hoisted"). An odd last
/// doubling is a stage of its own.
///
/// The chain's keys, `step * 2^t`, are the ones a program requires
/// ([`Program::rotation_steps`]); a stage's third step, `3a`, is a shortcut
/// ([`Program::sum_shortcuts`]): without its key, or when the stage's three keys are not of one
/// form (level and digits: one decomposition and one division serve only keys of one form),
/// the stage is evaluated as its two doublings.
pub fn sum_stages(step: usize, count: usize, slots: usize) -> Vec<Vec<usize>> {
    let at = |k: usize| step.saturating_mul(k) % slots.max(1);
    (0..count)
        .step_by(2)
        .map(|t| match count - t {
            1 => vec![at(1 << t)],
            _ => vec![at(1 << t), at(2 << t), at(3 << t)],
        })
        .collect()
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
    /// A diagonal linear map, possibly followed by a rotate-and-sum (one multiplicative level).
    Linear(LinearMap),
    /// The products of the input vectors with their multipliers, summed (one multiplicative
    /// level; only as the first operation).
    Gather(Gather),
    /// Adds a plaintext vector (biases).
    AddPlain(Vec<f64>),
    /// `x^2` (one multiplicative level).
    Square,
    /// Remembers the current value (the input of a cubic or quartic activation).
    Keep,
    /// `x * kept` (one multiplicative level).
    MulKept,
    /// `x += c * kept` (no level: the product is rescaled from the kept value's level).
    AddKept(f64),
}

impl Op {
    /// Whether the operation consumes a level.
    pub fn consumes_level(&self) -> bool {
        matches!(
            self,
            Op::Linear(_) | Op::Gather(_) | Op::Square | Op::MulKept
        )
    }

    /// The rotation steps it uses, on vectors of `slots` slots.
    pub fn rotation_steps(&self, slots: usize) -> BTreeSet<usize> {
        match self {
            Op::Linear(m) => m.rotation_steps(slots),
            Op::Gather(g) => g.rotation_steps(slots),
            _ => BTreeSet::new(),
        }
    }
}

/// A compiled network: how the client lays out its input, what the server computes, and where
/// the outputs are.
#[derive(Debug, Clone, PartialEq)]
pub struct Program {
    /// Slots of a vector (`N/2` for CKKS at ring degree `N`).
    pub slots: usize,
    /// For each slot of the input vectors (one after the other; more than one only when the
    /// first operation is a [`Gather`]), the index of the input value it holds (`None`: zero).
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
            steps.extend(op.rotation_steps(self.slots));
        }
        steps
    }

    /// Each rotation step with the number of levels consumed when it is first used: a Galois
    /// key for that step is needed only down from that level, so it can be made smaller.
    pub fn rotation_steps_by_depth(&self) -> BTreeMap<usize, usize> {
        let mut first: BTreeMap<usize, usize> = BTreeMap::new();
        let mut depth = 0;
        for op in &self.ops {
            for s in op.rotation_steps(self.slots) {
                first.entry(s).or_insert(depth);
            }
            if op.consumes_level() {
                depth += 1;
            }
        }
        first
    }

    /// The shortcut steps of the program's hoisted rotate-and-sums ([`sum_stages`]: the third
    /// step, `3a`, of each stage of two doublings), each with its stage's other steps `(a, 2a)`
    /// (`slots` being a power of two, `3a` decides them).
    pub fn sum_shortcuts(&self) -> BTreeMap<usize, (usize, usize)> {
        let mut shortcuts = BTreeMap::new();
        for op in &self.ops {
            let sum = match op {
                Op::Linear(m) => m.sum,
                Op::Gather(g) => g.sum,
                _ => None,
            };
            if let Some((step, count)) = sum {
                for stage in sum_stages(step, count, self.slots) {
                    if let [a, a2, third] = stage[..] {
                        if third != 0 {
                            shortcuts.insert(third, (a, a2));
                        }
                    }
                }
            }
        }
        shortcuts
    }

    /// The non-zero rotation steps some linear map hoists (its baby steps).
    pub fn hoisted_steps(&self) -> BTreeSet<usize> {
        self.ops
            .iter()
            .filter_map(|o| match o {
                Op::Linear(m) => Some(m.baby_steps()),
                _ => None,
            })
            .flatten()
            .filter(|s| *s != 0)
            .collect()
    }

    /// Multiplicative depth: levels consumed.
    pub fn depth(&self) -> usize {
        self.ops.iter().filter(|o| o.consumes_level()).count()
    }

    /// Number of rotations one evaluation performs.
    pub fn rotation_count(&self) -> usize {
        self.ops
            .iter()
            .map(|o| match o {
                Op::Linear(m) => m.rotation_count(),
                Op::Gather(g) => g.rotation_count(),
                _ => 0,
            })
            .sum()
    }

    /// Number of plaintext multiplications one evaluation performs.
    pub fn plain_mul_count(&self) -> usize {
        self.ops
            .iter()
            .map(|o| match o {
                Op::Linear(m) => m.diagonals.len(),
                Op::Gather(g) => g.weights.len(),
                _ => 0,
            })
            .sum()
    }

    /// Vectors the client encrypts for one input (ciphertexts of a single-image request).
    pub fn input_vectors(&self) -> usize {
        (self.input_layout.len() / self.slots.max(1)).max(1)
    }

    /// The slot vectors a client encrypts for one input, one after the other
    /// ([`Self::input_vectors`] of them).
    pub fn encode_input(&self, input: &[f64]) -> Vec<f64> {
        self.input_layout
            .iter()
            .map(|i| i.and_then(|i| input.get(i).copied()).unwrap_or(0.0))
            .collect()
    }

    /// [`Self::encode_input`] as one vector per input ciphertext.
    pub fn encode_inputs(&self, input: &[f64]) -> Vec<Vec<f64>> {
        self.encode_input(input)
            .chunks(self.slots.max(1))
            .map(<[f64]>::to_vec)
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
