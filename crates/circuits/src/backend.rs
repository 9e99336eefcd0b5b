//! The slot-vector operations a program needs, the evaluation of a program on them, and an
//! exact `f64` backend.

use rayon::prelude::*;

use crate::program::{sum_stages, LinearMap, Op, Program};
use crate::Error;

/// Operations on vectors of slots (ciphertexts for CKKS; plain `f64` vectors for checking).
///
/// Scale and level management are the backend's: `encode` is told how many levels the value it
/// will meet has consumed, multiplications by plaintexts are followed by one `rescale` per
/// linear map, and `square` includes relinearisation and rescaling.
/// Backends are shared by the threads that run the independent parts of a linear map.
pub trait Backend: Sync {
    /// A vector of slots.
    type Value: Clone + Send + Sync;
    /// An encoded plaintext vector that multiplies values.
    type Plain: Send + Sync;
    /// An encoded plaintext vector that is added to values.
    type Addend: Send + Sync;
    /// What can fail (a program given the wrong number of inputs among it).
    type Error: Send + From<Error>;

    /// Slots per vector.
    fn slots(&self) -> usize;
    /// Encodes a multiplier for values that have consumed `depth` levels.
    fn encode_multiplier(&self, values: &[f64], depth: usize) -> Result<Self::Plain, Self::Error>;
    /// Encodes an addend for values that have consumed `depth` levels (after rescaling).
    fn encode_addend(&self, values: &[f64], depth: usize) -> Result<Self::Addend, Self::Error>;
    /// Rotations of one value by several steps, sharing the work they have in common.
    fn rotate_hoisted(
        &self,
        x: &Self::Value,
        steps: &[usize],
    ) -> Result<Vec<Self::Value>, Self::Error>;
    /// `rot(x, step)`.
    fn rotate(&self, x: &Self::Value, step: usize) -> Result<Self::Value, Self::Error>;
    /// Whether [`Self::add_rotations`] of `x` by `steps` shares all its work: every rotation
    /// possible at `x`'s level, and all of one form (CKKS: keys of one level and digit layout,
    /// one decomposition and one division by the special modulus for all of them).
    fn hoists_together(&self, x: &Self::Value, steps: &[usize]) -> bool;
    /// `x + sum_j rot(x, step_j)`, the rotations sharing the work they have in common (a
    /// stage of a rotate-and-sum, [`crate::sum_stages`]).
    fn add_rotations(&self, x: &Self::Value, steps: &[usize]) -> Result<Self::Value, Self::Error>;
    /// `sum_j rot(x_j, step_j)` over at least one term (a map's giant steps), sharing the work
    /// the rotations have in common.
    fn sum_rotations(&self, terms: &[(Self::Value, usize)]) -> Result<Self::Value, Self::Error>;
    /// `sum_t x_t * p_t`, element-wise products summed, without rescaling (at least one term).
    fn mul_plain_sum(
        &self,
        terms: &[(&Self::Value, &Self::Plain)],
    ) -> Result<Self::Value, Self::Error>;
    /// `acc += x`.
    fn add_assign(&self, acc: &mut Self::Value, x: &Self::Value) -> Result<(), Self::Error>;
    /// `x += p`.
    fn add_plain_assign(&self, x: &mut Self::Value, p: &Self::Addend) -> Result<(), Self::Error>;
    /// `x^2`, relinearised and rescaled.
    fn square(&self, x: &Self::Value) -> Result<Self::Value, Self::Error>;
    /// `a * b`, relinearised and rescaled; `b` may have consumed fewer levels than `a`.
    fn multiply(&self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value, Self::Error>;
    /// `acc += c * x`, where `x` has consumed fewer levels than `acc`: the product is made at
    /// exactly `acc`'s scale and level.
    fn add_scaled(&self, acc: &mut Self::Value, x: &Self::Value, c: f64)
        -> Result<(), Self::Error>;
    /// Divides by the last prime (after a linear map).
    fn rescale(&self, x: &Self::Value) -> Result<Self::Value, Self::Error>;
}

/// `rot(v, -k)`: the diagonal as it must be before a giant-step rotation by `k`.
fn rotate_back(v: &[f64], k: usize) -> Vec<f64> {
    let n = v.len();
    (0..n).map(|i| v[(i + n - k % n) % n]).collect()
}

/// One giant step: its rotation and the terms (index into the baby steps, encoded pre-rotated
/// diagonal) summed before it.
struct GiantStep<B: Backend> {
    step: usize,
    terms: Vec<(usize, B::Plain)>,
}

/// A linear map with its plaintexts encoded for one backend.
struct PreparedLinear<B: Backend> {
    baby_steps: Vec<usize>,
    giants: Vec<GiantStep<B>>,
    /// A zero multiplier at the map's depth, for a map without any non-zero diagonal.
    zero: B::Plain,
    /// The map's rotate-and-sum, run before its rescale (`(step, count)`).
    sum: Option<(usize, usize)>,
}

enum PreparedOp<B: Backend> {
    Linear(PreparedLinear<B>),
    /// One encoded multiplier per input vector, then the rotate-and-sum.
    Gather(Vec<B::Plain>, Option<(usize, usize)>),
    AddPlain(B::Addend),
    Square,
    Keep,
    MulKept,
    AddKept(f64),
}

/// A program with every plaintext encoded once, ready to run many times.
pub struct Prepared<B: Backend> {
    ops: Vec<PreparedOp<B>>,
    slots: usize,
    inputs: usize,
}

fn prepare_linear<B: Backend>(
    b: &B,
    m: &LinearMap,
    depth: usize,
) -> Result<PreparedLinear<B>, B::Error> {
    let baby_steps: Vec<usize> = m.baby_steps().into_iter().collect();
    let mut giants: Vec<GiantStep<B>> = Vec::new();
    for (d, diag) in &m.diagonals {
        let (giant, baby) = m.split(*d);
        let idx = baby_steps.iter().position(|s| *s == baby).unwrap_or(0);
        let plain = b.encode_multiplier(&rotate_back(diag, giant), depth)?;
        match giants.iter_mut().find(|g| g.step == giant) {
            Some(g) => g.terms.push((idx, plain)),
            None => giants.push(GiantStep {
                step: giant,
                terms: vec![(idx, plain)],
            }),
        }
    }
    let zero = b.encode_multiplier(&vec![0.0; b.slots()], depth)?;
    Ok(PreparedLinear {
        baby_steps,
        giants,
        zero,
        sum: m.sum,
    })
}

impl<B: Backend> Prepared<B> {
    /// Encodes every plaintext of `program` for `backend`.
    pub fn new(backend: &B, program: &Program) -> Result<Self, B::Error> {
        let mut depth = 0;
        let mut ops = Vec::with_capacity(program.ops.len());
        for op in &program.ops {
            ops.push(match op {
                Op::Linear(m) => {
                    let p = prepare_linear(backend, m, depth)?;
                    depth += 1;
                    PreparedOp::Linear(p)
                }
                Op::Gather(g) => {
                    let plains = g
                        .weights
                        .iter()
                        .map(|w| backend.encode_multiplier(w, depth))
                        .collect::<Result<Vec<_>, _>>()?;
                    depth += 1;
                    PreparedOp::Gather(plains, g.sum)
                }
                Op::AddPlain(v) => PreparedOp::AddPlain(backend.encode_addend(v, depth)?),
                Op::Square => {
                    depth += 1;
                    PreparedOp::Square
                }
                Op::Keep => PreparedOp::Keep,
                Op::MulKept => {
                    depth += 1;
                    PreparedOp::MulKept
                }
                Op::AddKept(c) => PreparedOp::AddKept(*c),
            });
        }
        Ok(Self {
            ops,
            slots: program.slots,
            inputs: program.input_vectors(),
        })
    }

    /// Vectors one input takes (see [`Program::input_vectors`]).
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// `x += rot(x, step * 2^t)` for `t < count`, in hoisted stages ([`sum_stages`]); a stage
    /// that cannot share its work (a key made without its shortcut, or keys of different
    /// forms) as its two doublings.
    fn rotate_sum(
        &self,
        b: &B,
        mut x: B::Value,
        step: usize,
        count: usize,
    ) -> Result<B::Value, B::Error> {
        for stage in sum_stages(step, count, self.slots) {
            match stage[..] {
                [a, a2, _] if !b.hoists_together(&x, &stage) => {
                    x = b.add_rotations(&x, &[a])?;
                    x = b.add_rotations(&x, &[a2])?;
                }
                _ => x = b.add_rotations(&x, &stage)?,
            }
        }
        Ok(x)
    }

    /// One giant step of a linear map: its terms (baby-step rotations times pre-rotated
    /// diagonals) summed, with the step it is then rotated by; `None` without terms.
    fn giant_step(
        &self,
        b: &B,
        rotated: &[B::Value],
        g: &GiantStep<B>,
    ) -> Result<Option<(B::Value, usize)>, B::Error> {
        let terms: Vec<(&B::Value, &B::Plain)> = g
            .terms
            .iter()
            .map(|(idx, plain)| (&rotated[*idx], plain))
            .collect();
        if terms.is_empty() {
            return Ok(None);
        }
        Ok(Some((b.mul_plain_sum(&terms)?, g.step % self.slots)))
    }

    /// Runs the program on the encrypted (or plain) vectors of one input
    /// ([`Self::inputs`] of them).
    pub fn run(&self, b: &B, inputs: &[B::Value]) -> Result<B::Value, B::Error> {
        if inputs.is_empty() || inputs.len() != self.inputs {
            return Err(self.wrong_inputs(inputs.len()).into());
        }
        // a program over several input vectors starts by gathering them (the compiler puts
        // `Gather` first only); any other starts from its one input
        let mut ops = self.ops.iter().peekable();
        let mut x = match ops.next_if(|op| matches!(op, PreparedOp::Gather(..))) {
            Some(PreparedOp::Gather(plains, sum)) => {
                let terms: Vec<(&B::Value, &B::Plain)> = inputs.iter().zip(plains).collect();
                let acc = b.mul_plain_sum(&terms)?;
                let acc = match sum {
                    Some((step, count)) => self.rotate_sum(b, acc, *step, *count)?,
                    None => acc,
                };
                b.rescale(&acc)?
            }
            _ => inputs[0].clone(),
        };
        let mut kept: Option<B::Value> = None;
        for op in ops {
            x = match op {
                PreparedOp::Gather(..) => {
                    return Err(Error::WrongInput(
                        "a program gathers its inputs only as its first step".into(),
                    )
                    .into())
                }
                PreparedOp::Linear(m) => {
                    let rotated = b.rotate_hoisted(&x, &m.baby_steps)?;
                    // the giant steps' products are independent: spread over the pool; their
                    // rotations are then summed in one operation (exact sums, so the result
                    // does not depend on the thread count)
                    let inner = m
                        .giants
                        .par_iter()
                        .map(|g| self.giant_step(b, &rotated, g))
                        .collect::<Result<Vec<_>, _>>()?;
                    let inner: Vec<(B::Value, usize)> = inner.into_iter().flatten().collect();
                    let acc = if inner.is_empty() {
                        b.mul_plain_sum(&[(&x, &m.zero)])?
                    } else {
                        b.sum_rotations(&inner)?
                    };
                    let acc = match m.sum {
                        Some((step, count)) => self.rotate_sum(b, acc, step, count)?,
                        None => acc,
                    };
                    b.rescale(&acc)?
                }
                PreparedOp::AddPlain(p) => {
                    let mut y = x;
                    b.add_plain_assign(&mut y, p)?;
                    y
                }
                PreparedOp::Square => b.square(&x)?,
                PreparedOp::Keep => {
                    kept = Some(x.clone());
                    x
                }
                PreparedOp::MulKept => match &kept {
                    Some(k) => b.multiply(&x, k)?,
                    None => x,
                },
                PreparedOp::AddKept(c) => {
                    let mut y = x;
                    if let Some(k) = &kept {
                        b.add_scaled(&mut y, k, *c)?;
                    }
                    y
                }
            };
        }
        Ok(x)
    }
}

impl<B: Backend> Prepared<B> {
    fn wrong_inputs(&self, got: usize) -> Error {
        Error::WrongInput(format!(
            "the program takes {} input ciphertext(s), {got} given",
            self.inputs
        ))
    }
}

/// Exact evaluation on `f64` vectors, to check packings against the network itself.
#[derive(Debug, Clone, Copy)]
pub struct PlainBackend {
    /// Slots per vector.
    pub slots: usize,
}

impl Backend for PlainBackend {
    type Value = Vec<f64>;
    type Plain = Vec<f64>;
    type Addend = Vec<f64>;
    type Error = Error;

    fn slots(&self) -> usize {
        self.slots
    }
    fn encode_multiplier(&self, values: &[f64], _depth: usize) -> Result<Vec<f64>, Self::Error> {
        Ok(values.to_vec())
    }
    fn encode_addend(&self, values: &[f64], _depth: usize) -> Result<Vec<f64>, Self::Error> {
        Ok(values.to_vec())
    }
    fn rotate_hoisted(&self, x: &Vec<f64>, steps: &[usize]) -> Result<Vec<Vec<f64>>, Self::Error> {
        steps.iter().map(|s| self.rotate(x, *s)).collect()
    }
    fn rotate(&self, x: &Vec<f64>, step: usize) -> Result<Vec<f64>, Self::Error> {
        let n = x.len();
        Ok((0..n).map(|i| x[(i + step) % n]).collect())
    }
    fn hoists_together(&self, _x: &Vec<f64>, _steps: &[usize]) -> bool {
        true
    }
    fn add_rotations(&self, x: &Vec<f64>, steps: &[usize]) -> Result<Vec<f64>, Self::Error> {
        let mut out = x.clone();
        for s in steps {
            self.add_assign(&mut out, &self.rotate(x, *s)?)?;
        }
        Ok(out)
    }
    fn sum_rotations(&self, terms: &[(Vec<f64>, usize)]) -> Result<Vec<f64>, Self::Error> {
        let mut out: Option<Vec<f64>> = None;
        for (x, step) in terms {
            let r = self.rotate(x, *step)?;
            match out.as_mut() {
                Some(o) => self.add_assign(o, &r)?,
                None => out = Some(r),
            }
        }
        out.ok_or_else(|| Error::WrongInput("a sum of no rotations".into()))
    }
    fn mul_plain_sum(&self, terms: &[(&Vec<f64>, &Vec<f64>)]) -> Result<Vec<f64>, Self::Error> {
        let mut out = vec![0.0; self.slots];
        for (x, p) in terms {
            out.iter_mut()
                .zip(x.iter().zip(p.iter()))
                .for_each(|(o, (a, b))| *o += a * b);
        }
        Ok(out)
    }
    fn add_assign(&self, acc: &mut Vec<f64>, x: &Vec<f64>) -> Result<(), Self::Error> {
        acc.iter_mut().zip(x).for_each(|(a, b)| *a += b);
        Ok(())
    }
    fn add_plain_assign(&self, x: &mut Vec<f64>, p: &Vec<f64>) -> Result<(), Self::Error> {
        x.iter_mut().zip(p).for_each(|(a, b)| *a += b);
        Ok(())
    }
    fn square(&self, x: &Vec<f64>) -> Result<Vec<f64>, Self::Error> {
        Ok(x.iter().map(|v| v * v).collect())
    }
    fn rescale(&self, x: &Vec<f64>) -> Result<Vec<f64>, Self::Error> {
        Ok(x.clone())
    }
    fn multiply(&self, a: &Vec<f64>, b: &Vec<f64>) -> Result<Vec<f64>, Self::Error> {
        Ok(a.iter().zip(b).map(|(x, y)| x * y).collect())
    }
    fn add_scaled(&self, acc: &mut Vec<f64>, x: &Vec<f64>, c: f64) -> Result<(), Self::Error> {
        acc.iter_mut().zip(x).for_each(|(a, b)| *a += c * b);
        Ok(())
    }
}
