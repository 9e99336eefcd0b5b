//! Batch packing (CryptoNets-style): slot `i` of every ciphertext belongs to image `i`, and
//! each input feature (pixel) is its own ciphertext. Every layer is then a set of weighted
//! sums of ciphertexts with plaintext scalars, so no rotation and no Galois key is needed; one
//! evaluation serves as many images as there are slots.

use std::sync::Arc;

use unseen_ckks::{Ciphertext, Error, Evaluator, Parameters, RelinKey};
use unseen_model::Network;

use rayon::prelude::*;

use crate::ckks_backend::{add_scaled, multiply};
use crate::lower::{lower, Activation, LoweredNet, Stage};

/// Rows of an affine map whose weighted sums are computed in one pass.
const ROW_GROUP: usize = 32;

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
    /// An activation of every feature (see [`Activation::depth`]).
    Activation(Activation),
}

/// A network as a sequence of affine maps and activations over feature vectors.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchProgram {
    /// Number of input features (ciphertexts a client sends per batch).
    pub inputs: usize,
    /// The layers.
    pub ops: Vec<BatchOp>,
    /// Largest output magnitude expected (the model's logit bound); `None` for a default.
    pub output_bound: Option<f64>,
}

/// Compiles a lowered network.
pub fn compile_batch_lowered(lowered: &LoweredNet) -> BatchProgram {
    let ops = lowered
        .stages
        .iter()
        .map(|s| match s {
            Stage::Affine(a) => BatchOp::Affine(
                a.rows
                    .iter()
                    .zip(&a.bias)
                    .map(|(terms, bias)| AffineRow {
                        terms: terms.clone(),
                        bias: *bias,
                    })
                    .collect(),
            ),
            Stage::Activation(f) => BatchOp::Activation(*f),
        })
        .collect();
    BatchProgram {
        inputs: lowered.input.len(),
        ops,
        output_bound: None,
    }
}

/// Compiles a network.
pub fn compile_batch(net: &Network) -> Result<BatchProgram, crate::Error> {
    Ok(compile_batch_lowered(&lower(net)?))
}

/// One activation on one ciphertext.
fn activation(
    ev: &Evaluator,
    relin: &RelinKey,
    f: Activation,
    z: &Ciphertext,
) -> Result<Ciphertext, Error> {
    let sq = ev.rescale(&ev.square_relin(z, relin)?)?;
    Ok(match f {
        Activation::Square => sq,
        Activation::Cube { linear } => {
            let y = multiply(ev, &sq, z, relin)?;
            if linear == 0.0 {
                y
            } else {
                add_scaled(ev, &y, z, linear)?
            }
        }
        Activation::Quartic { shift, linear } => {
            let t = if shift == 0.0 {
                sq
            } else {
                ev.add_scalar(&sq, shift)?
            };
            let y = ev.rescale(&ev.square_relin(&t, relin)?)?;
            if linear == 0.0 {
                y
            } else {
                add_scaled(ev, &y, z, linear)?
            }
        }
    })
}

impl BatchProgram {
    /// Multiplicative depth.
    pub fn depth(&self) -> usize {
        self.ops
            .iter()
            .map(|o| match o {
                BatchOp::Affine(_) => 1,
                BatchOp::Activation(f) => f.depth(),
            })
            .sum()
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
                BatchOp::Activation(f) => x.iter().map(|v| f.eval(*v)).collect(),
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
        let mut k = 0;
        while k < self.ops.len() {
            // An activation right after an affine map runs in the same pass, output by output,
            // so the map's outputs before the activation never all exist at once.
            let (op, fused) = match (&self.ops[k], self.ops.get(k + 1)) {
                (BatchOp::Affine(rows), Some(BatchOp::Activation(f))) => ((rows, Some(*f)), 2),
                (BatchOp::Affine(rows), _) => ((rows, None), 1),
                (BatchOp::Activation(f), _) => {
                    x = x
                        .par_iter()
                        .map(|c| activation(&ev, relin, *f, c))
                        .collect::<Result<Vec<_>, Error>>()?;
                    k += 1;
                    continue;
                }
            };
            let (rows, then) = op;
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
            // rows a group at a time: the weighted sums of a group in one pass over the data
            // (the inputs its rows share are read from cache), then each row's rescale, bias
            // and activation; only a group's sums exist before their activation
            let mut out = Vec::with_capacity(rows.len());
            for group in rows.chunks(ROW_GROUP) {
                let terms: Vec<&[(usize, f64)]> =
                    group.iter().map(|r| r.terms.as_slice()).collect();
                let sums = ev.scalar_combinations(&x, &terms, prime)?;
                let done = sums
                    .into_par_iter()
                    .zip(group)
                    .map(|(acc, row)| {
                        let out = ev.add_scalar(&ev.rescale(&acc)?, row.bias)?;
                        match then {
                            Some(f) => activation(&ev, relin, f, &out),
                            None => Ok(out),
                        }
                    })
                    .collect::<Result<Vec<_>, Error>>()?;
                out.extend(done);
            }
            x = out;
            k += fused;
        }
        Ok(x)
    }
}
