//! Programs on CKKS ciphertexts.
//!
//! Scales: a value that has consumed `d` levels sits at level `L - d`. A linear map multiplies
//! by plaintexts encoded at scale `q_{L-d}` (the prime the following rescale removes), so its
//! output keeps the input's scale exactly; a square turns scale `s` into `s^2 / q_{L-d}`. The
//! backend plans these scales from the program once, so biases are encoded at exactly the scale
//! of the value they are added to.

use std::sync::Arc;

use unseen_ckks::{
    Ciphertext, Encoder, Error, Evaluator, GaloisKeys, Parameters, Plaintext, RelinKey,
};

use crate::backend::Backend;
use crate::program::{Op, Program};

/// CKKS evaluation of one program with the client's evaluation keys.
pub struct CkksBackend {
    params: Arc<Parameters>,
    encoder: Encoder,
    evaluator: Evaluator,
    relin: RelinKey,
    galois: GaloisKeys,
    /// `scales[d]`: scale of the value after `d` levels.
    scales: Vec<f64>,
}

impl CkksBackend {
    /// A backend for `program` under `params` with the client's relinearisation and Galois keys.
    /// Fails if the program is deeper than the parameters allow.
    pub fn new(
        params: &Arc<Parameters>,
        relin: RelinKey,
        galois: GaloisKeys,
        program: &Program,
    ) -> Result<Self, Error> {
        let top = params.max_level();
        if program.depth() > top {
            return Err(Error::LevelTooLow(format!(
                "the program needs {} levels, the parameters have {top}",
                program.depth()
            )));
        }
        let q = params.data_primes();
        let mut scales = vec![params.default_scale()];
        for op in &program.ops {
            let d = scales.len() - 1;
            let s = scales[d];
            match op {
                Op::Linear(_) => scales.push(s),
                Op::Square => scales.push(s * s / q[top - d] as f64),
                _ => {}
            }
        }
        Ok(Self {
            params: params.clone(),
            encoder: Encoder::new(params),
            evaluator: Evaluator::new(params),
            relin,
            galois,
            scales,
        })
    }

    /// Level of a value after `depth` levels.
    fn level(&self, depth: usize) -> usize {
        self.params.max_level().saturating_sub(depth)
    }

    /// Scale a fresh input must be encrypted at.
    pub fn input_scale(&self) -> f64 {
        self.scales[0]
    }
}

impl Backend for CkksBackend {
    type Value = Ciphertext;
    type Plain = Plaintext;
    type Error = Error;

    fn slots(&self) -> usize {
        self.params.slots()
    }

    fn encode_multiplier(&self, values: &[f64], depth: usize) -> Result<Plaintext, Error> {
        let level = self.level(depth);
        let prime = self.params.data_primes()[level] as f64;
        self.encoder.encode_real(values, level, prime)
    }

    fn encode_addend(&self, values: &[f64], depth: usize) -> Result<Plaintext, Error> {
        let scale = *self
            .scales
            .get(depth)
            .ok_or_else(|| Error::LevelTooLow(format!("no scale planned at depth {depth}")))?;
        self.encoder.encode_real(values, self.level(depth), scale)
    }

    fn rotate_hoisted(&self, x: &Ciphertext, steps: &[usize]) -> Result<Vec<Ciphertext>, Error> {
        let steps: Vec<i64> = steps.iter().map(|s| *s as i64).collect();
        self.evaluator.rotate_hoisted(x, &steps, &self.galois)
    }

    fn rotate(&self, x: &Ciphertext, step: usize) -> Result<Ciphertext, Error> {
        self.evaluator.rotate(x, step as i64, &self.galois)
    }

    fn mul_plain(&self, x: &Ciphertext, p: &Plaintext) -> Result<Ciphertext, Error> {
        self.evaluator.mul_plain(x, p)
    }

    fn add_assign(&self, acc: &mut Ciphertext, x: &Ciphertext) -> Result<(), Error> {
        *acc = self.evaluator.add(acc, x)?;
        Ok(())
    }

    fn add_plain_assign(&self, x: &mut Ciphertext, p: &Plaintext) -> Result<(), Error> {
        *x = self.evaluator.add_plain(x, p)?;
        Ok(())
    }

    fn square(&self, x: &Ciphertext) -> Result<Ciphertext, Error> {
        let sq = self.evaluator.square_relin(x, &self.relin)?;
        self.evaluator.rescale(&sq)
    }

    fn rescale(&self, x: &Ciphertext) -> Result<Ciphertext, Error> {
        self.evaluator.rescale(x)
    }
}
