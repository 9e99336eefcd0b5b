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
    /// following rescale removes. The inputs are fed [`STREAM_CHUNK`] at a time through a
    /// [`BatchRun`], and each is freed once used.
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
        let mut run = BatchRun::new(self, params, relin)?;
        let mut inputs = inputs.into_iter();
        loop {
            let part: Vec<Ciphertext> = inputs.by_ref().take(STREAM_CHUNK).collect();
            if part.is_empty() {
                break;
            }
            run.push(part)?;
        }
        run.finish()
    }
}

/// Input ciphertexts a streamed batch evaluation is best fed at a time: enough for the weighted
/// sums of a part to share their inputs in one pass, few enough that a part (64 ciphertexts of
/// `n8192-cnn` at level 5: 50 MB) is small beside a whole batch.
pub const STREAM_CHUNK: usize = 64;

/// A batch evaluation fed its input ciphertexts a part at a time, in input order. Each layer
/// waits for [`STREAM_CHUNK`] of its inputs (or the last of them); an affine map keeps an
/// accumulator per output it has started, adds a part's weighted sums to them in one pass, and
/// finishes an output (rescale, bias, activation) as soon as its last input has arrived,
/// passing it on to the next layer. A part is freed once it has been added, so memory holds the
/// outputs in progress rather than the batch: for a convolution fed row by row, the outputs
/// whose receptive field straddles the rows read so far. The result is the same, residue for
/// residue, whatever the parts.
pub struct BatchRun<'a> {
    ev: Evaluator,
    params: &'a Arc<Parameters>,
    relin: &'a RelinKey,
    output_bound: Option<f64>,
    stages: Vec<Stream<'a>>,
    /// Per layer: the inputs that have arrived and wait for a part to fill.
    buffers: Vec<Indexed>,
    outputs: Vec<Option<Ciphertext>>,
    inputs: usize,
    received: usize,
    /// Level and scale of the first input, which every other must share.
    input_at: Option<(usize, f64)>,
    failed: bool,
}

/// A layer of a streamed run.
enum Stream<'a> {
    Affine(AffineStream<'a>),
    Activation(Activation),
}

/// An affine map (and the activation that follows it, if any) in a streamed run.
struct AffineStream<'a> {
    rows: &'a [AffineRow],
    then: Option<Activation>,
    /// The program's last affine map, whose outputs keep their headroom.
    last: bool,
    /// Per input of the map: the rows that read it, with their weights.
    readers: Vec<Vec<(usize, f64)>>,
    /// Per row: the terms still to be added.
    pending: Vec<usize>,
    /// Per row: its sum so far, once started.
    accs: Vec<Option<Ciphertext>>,
    /// The weights' scale, set by the first part (from its level and scale).
    prime: Option<f64>,
}

type Indexed = Vec<(usize, Ciphertext)>;

impl<'a> BatchRun<'a> {
    /// A run of `program` with the relinearisation key `relin`.
    pub fn new(
        program: &'a BatchProgram,
        params: &'a Arc<Parameters>,
        relin: &'a RelinKey,
    ) -> Result<Self, Error> {
        let last_affine = program
            .ops
            .iter()
            .rposition(|o| matches!(o, BatchOp::Affine(_)));
        let mut stages = Vec::new();
        let mut width = program.inputs;
        let mut k = 0;
        while k < program.ops.len() {
            let (rows, then, fused) = match (&program.ops[k], program.ops.get(k + 1)) {
                (BatchOp::Affine(rows), Some(BatchOp::Activation(f))) => (rows, Some(*f), 2),
                (BatchOp::Affine(rows), _) => (rows, None, 1),
                (BatchOp::Activation(f), _) => {
                    stages.push(Stream::Activation(*f));
                    k += 1;
                    continue;
                }
            };
            let mut readers = vec![Vec::new(); width];
            for (r, row) in rows.iter().enumerate() {
                for &(i, w) in &row.terms {
                    readers
                        .get_mut(i)
                        .ok_or_else(|| {
                            Error::InvalidArgument(format!(
                                "layer {k} reads feature {i} of {width}"
                            ))
                        })?
                        .push((r, w));
                }
            }
            stages.push(Stream::Affine(AffineStream {
                rows,
                then,
                last: Some(k) == last_affine,
                readers,
                pending: rows.iter().map(|r| r.terms.len()).collect(),
                accs: vec![None; rows.len()],
                prime: None,
            }));
            width = rows.len();
            k += fused;
        }
        Ok(Self {
            ev: Evaluator::new(params),
            params,
            relin,
            output_bound: program.output_bound,
            buffers: stages.iter().map(|_| Vec::new()).collect(),
            stages,
            outputs: vec![None; width],
            inputs: program.inputs,
            received: 0,
            input_at: None,
            failed: false,
        })
    }

    /// Feeds the next input ciphertexts (input features `received..received + part.len()`),
    /// carrying every output they complete through the layers after it. After an error the
    /// run refuses every further part.
    pub fn push(&mut self, part: Vec<Ciphertext>) -> Result<(), Error> {
        if self.failed {
            return Err(Error::InvalidArgument(
                "an earlier part of this batch failed".into(),
            ));
        }
        let r = self.carry(part);
        self.failed = r.is_err();
        r
    }

    fn carry(&mut self, part: Vec<Ciphertext>) -> Result<(), Error> {
        if self.received + part.len() > self.inputs {
            return Err(Error::InvalidArgument(format!(
                "{} input ciphertexts, the program needs {}",
                self.received + part.len(),
                self.inputs
            )));
        }
        // every input at the first one's level and scale, refused at once rather than when its
        // part fills
        for ct in &part {
            let (level, scale) = *self.input_at.get_or_insert((ct.level(), ct.scale()));
            if ct.level() != level || (ct.scale() / scale - 1.0).abs() > 1e-9 {
                return Err(Error::InvalidArgument(format!(
                    "batch inputs at level {} and scale 2^{:.2}, the first at level {level} and 2^{:.2}",
                    ct.level(),
                    ct.scale().log2(),
                    scale.log2()
                )));
            }
        }
        let items: Indexed = (self.received..).zip(part).collect();
        self.received += items.len();
        match self.buffers.first_mut() {
            Some(first) => first.extend(items),
            // a program without layers: its outputs are its inputs
            None => {
                for (i, c) in items {
                    self.outputs[i] = Some(c);
                }
            }
        }
        self.drain(false)
    }

    /// Runs every layer whose waiting inputs make a part (all of them when `all`), passing
    /// what each completes on to the next.
    fn drain(&mut self, all: bool) -> Result<(), Error> {
        for k in 0..self.stages.len() {
            if self.buffers[k].is_empty() || (!all && self.buffers[k].len() < STREAM_CHUNK) {
                continue;
            }
            let items = std::mem::take(&mut self.buffers[k]);
            let out = match &mut self.stages[k] {
                Stream::Activation(f) => {
                    let (ev, relin, f) = (&self.ev, self.relin, *f);
                    items
                        .into_par_iter()
                        .map(|(i, c)| Ok((i, activation(ev, relin, f, &c)?)))
                        .collect::<Result<_, Error>>()?
                }
                Stream::Affine(a) => {
                    a.feed(&self.ev, self.params, self.relin, self.output_bound, items)?
                }
            };
            match self.buffers.get_mut(k + 1) {
                Some(next) => next.extend(out),
                None => {
                    for (i, c) in out {
                        self.outputs[i] = Some(c);
                    }
                }
            }
        }
        Ok(())
    }

    /// The output ciphertexts, once every input has been fed.
    pub fn finish(mut self) -> Result<Vec<Ciphertext>, Error> {
        if self.failed {
            return Err(Error::InvalidArgument("a part of this batch failed".into()));
        }
        if self.received != self.inputs {
            return Err(Error::InvalidArgument(format!(
                "{} input ciphertexts, the program needs {}",
                self.received, self.inputs
            )));
        }
        self.drain(true)?;
        self.outputs
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                c.ok_or_else(|| Error::InvalidArgument(format!("output {i} reads no input")))
            })
            .collect()
    }
}

impl AffineStream<'_> {
    /// Adds the weighted sums of `items` (inputs of this map, by index) to the rows that read
    /// them; returns the rows this completes, rescaled, with their bias and activation.
    fn feed(
        &mut self,
        ev: &Evaluator,
        params: &Arc<Parameters>,
        relin: &RelinKey,
        output_bound: Option<f64>,
        items: Indexed,
    ) -> Result<Indexed, Error> {
        let (index, xs): (Vec<usize>, Vec<Ciphertext>) = items.into_iter().unzip();
        let Some(first) = xs.first() else {
            return Ok(Vec::new());
        };
        let (level, scale) = (first.level(), first.scale());
        let mut touched: std::collections::BTreeMap<usize, Vec<(usize, f64)>> = Default::default();
        // a part at another level or scale than the first is refused by the accumulators'
        // checks (and the run's inputs are checked as they arrive)
        let prime = match self.prime {
            Some(prime) => prime,
            None => {
                if level == 0 {
                    return Err(Error::LevelTooLow(
                        "the batch circuit ran out of levels".into(),
                    ));
                }
                // the last map leaves the outputs their headroom in the last modulus
                let prime = if self.last {
                    crate::plan::last_multiplier_scale(
                        params,
                        level,
                        scale,
                        crate::plan::output_headroom_bits(output_bound),
                    )
                } else {
                    params.data_primes()[level] as f64
                };
                self.prime = Some(prime);
                // rows that read no input are finished with the first part
                for (r, row) in self.rows.iter().enumerate() {
                    if row.terms.is_empty() {
                        touched.insert(r, Vec::new());
                    }
                }
                prime
            }
        };
        for (p, &j) in index.iter().enumerate() {
            let readers = self.readers.get(j).ok_or_else(|| {
                Error::InvalidArgument(format!("feature {j} of {}", self.readers.len()))
            })?;
            for &(r, w) in readers {
                touched.entry(r).or_default().push((p, w));
            }
        }
        // every row the part touches in one pass over the part, so each block of the inputs is
        // read once while it is in cache; then the rescale, bias and activation of each row the
        // part completes
        let (rows, terms): (Vec<usize>, Vec<Vec<(usize, f64)>>) = touched.into_iter().unzip();
        let mut accs = rows
            .iter()
            .map(|r| match self.accs[*r].take() {
                Some(acc) => Ok(acc),
                None => ev.zero(level, scale * prime),
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let refs: Vec<&[(usize, f64)]> = terms.iter().map(|t| t.as_slice()).collect();
        ev.add_scalar_combinations(&mut accs, &xs, &refs, prime)?;
        drop(xs);
        let mut done = Vec::new();
        for ((r, t), acc) in rows.into_iter().zip(&terms).zip(accs) {
            self.pending[r] = self.pending[r].checked_sub(t.len()).ok_or_else(|| {
                Error::InvalidArgument(format!("an input of row {r} arrived twice"))
            })?;
            if self.pending[r] == 0 {
                done.push((r, acc));
            } else {
                self.accs[r] = Some(acc);
            }
        }
        let (rows, then) = (self.rows, self.then);
        let out = done
            .into_par_iter()
            .map(|(r, acc)| {
                let y = ev.add_scalar(&ev.rescale(&acc)?, rows[r].bias)?;
                let y = match then {
                    Some(f) => activation(ev, relin, f, &y)?,
                    None => y,
                };
                Ok((r, y))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(out)
    }
}
