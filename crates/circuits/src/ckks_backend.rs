//! Programs on CKKS ciphertexts, following a [`CkksPlan`] so that biases are encoded at exactly
//! the scale of the value they are added to.

use std::sync::Arc;

use unseen_ckks::{
    Ciphertext, Encoder, Error, Evaluator, GaloisKeys, Parameters, Plaintext, RelinKey,
};

use crate::backend::Backend;
use crate::plan::CkksPlan;
use crate::program::Program;

/// CKKS evaluation of one program with the client's evaluation keys.
pub struct CkksBackend {
    params: Arc<Parameters>,
    encoder: Encoder,
    evaluator: Evaluator,
    relin: RelinKey,
    galois: GaloisKeys,
    plan: CkksPlan,
}

impl CkksBackend {
    /// A backend for `program` under `params` with the client's relinearisation and Galois keys.
    /// Fails if the program does not fit the parameters or the keys do not cover it.
    pub fn new(
        params: &Arc<Parameters>,
        relin: RelinKey,
        galois: GaloisKeys,
        program: &Program,
    ) -> Result<Self, Error> {
        let plan =
            CkksPlan::new(params, program).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        if !params.same_as(relin.params()) || !params.same_as(galois.params()) {
            return Err(Error::ParametersMismatch);
        }
        if let Some(level) = plan.relin_level {
            if relin.level() < level {
                return Err(Error::LevelTooLow(format!(
                    "the relinearisation key reaches level {}, the circuit needs {level}",
                    relin.level()
                )));
            }
        }
        for (&step, &level) in &plan.rotation_keys {
            match galois.rotation_level(step as i64) {
                None => {
                    return Err(Error::MissingGaloisKey(format!(
                        "rotation by {step} (the circuit needs it at level {level})"
                    )))
                }
                Some(l) if l < level => {
                    return Err(Error::LevelTooLow(format!(
                    "the key for rotation by {step} reaches level {l}, the circuit needs {level}"
                )))
                }
                Some(_) => {}
            }
        }
        Ok(Self {
            params: params.clone(),
            encoder: Encoder::new(params),
            evaluator: Evaluator::new(params),
            relin,
            galois,
            plan,
        })
    }

    /// The plan this backend follows.
    pub fn plan(&self) -> &CkksPlan {
        &self.plan
    }

    /// Scale a fresh input must be encrypted at.
    pub fn input_scale(&self) -> f64 {
        self.plan.input_scale()
    }

    fn planned(v: &[f64], depth: usize, what: &str) -> Result<f64, Error> {
        v.get(depth)
            .copied()
            .filter(|s| s.is_finite())
            .ok_or_else(|| Error::LevelTooLow(format!("no {what} scale planned at depth {depth}")))
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
        let scale = Self::planned(&self.plan.multiplier_scales, depth, "multiplier")?;
        self.encoder
            .encode_real(values, self.plan.level(depth), scale)
    }

    fn encode_addend(&self, values: &[f64], depth: usize) -> Result<Plaintext, Error> {
        let scale = Self::planned(&self.plan.scales, depth, "value")?;
        self.encoder
            .encode_real(values, self.plan.level(depth), scale)
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
