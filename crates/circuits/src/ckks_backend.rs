//! Programs on CKKS ciphertexts, following a [`CkksPlan`] so that biases are encoded at exactly
//! the scale of the value they are added to.

use std::sync::Arc;

use unseen_ckks::{
    Ciphertext, CompactPlaintext, Encoder, Error, Evaluator, Parameters, Plaintext, RelinKey,
};

use crate::backend::Backend;
use crate::keys::EvaluationKeys;
use crate::plan::CkksPlan;
use crate::program::Program;

/// What every backend of one program shares: parameters, encoder, evaluator, plan.
struct Shared {
    params: Arc<Parameters>,
    encoder: Encoder,
    evaluator: Evaluator,
    plan: CkksPlan,
}

/// CKKS evaluation of one program. Without keys it can encode the program's plaintexts (see
/// [`crate::Prepared`]); [`CkksBackend::with_keys`] gives a backend that can also run it. Clones
/// are cheap.
#[derive(Clone)]
pub struct CkksBackend {
    shared: Arc<Shared>,
    keys: Option<Arc<EvaluationKeys>>,
}

impl CkksBackend {
    /// A backend for `program` under `params`, without keys. Fails if the program does not fit.
    pub fn new(params: &Arc<Parameters>, program: &Program) -> Result<Self, Error> {
        let plan =
            CkksPlan::new(params, program).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        Ok(Self {
            shared: Arc::new(Shared {
                params: params.clone(),
                encoder: Encoder::new(params),
                evaluator: Evaluator::new(params),
                plan,
            }),
            keys: None,
        })
    }

    /// The same backend with a client's evaluation keys, checked to cover the program: every
    /// rotation and the relinearisation at the level the plan needs them. A key set without
    /// the extra key of a hoisted rotate-and-sum (made before that form) is accepted: that sum
    /// is then evaluated as a chain.
    pub fn with_keys(&self, keys: Arc<EvaluationKeys>) -> Result<Self, Error> {
        let plan = &self.shared.plan;
        let params = &self.shared.params;
        if !params.same_as(keys.relin.params()) || !params.same_as(keys.galois.params()) {
            return Err(Error::ParametersMismatch);
        }
        if let Some(level) = plan.relin_level {
            if keys.relin.level() < level {
                return Err(Error::LevelTooLow(format!(
                    "the relinearisation key reaches level {}, the circuit needs {level}",
                    keys.relin.level()
                )));
            }
        }
        for (&step, &level) in &plan.rotation_keys {
            match keys.galois.rotation_level(step as i64) {
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
            shared: self.shared.clone(),
            keys: Some(keys),
        })
    }

    /// The plan this backend follows.
    pub fn plan(&self) -> &CkksPlan {
        &self.shared.plan
    }

    /// Scale a fresh input must be encrypted at.
    pub fn input_scale(&self) -> f64 {
        self.shared.plan.input_scale()
    }

    fn keys(&self) -> Result<&EvaluationKeys, Error> {
        self.keys.as_deref().ok_or_else(|| {
            Error::MissingGaloisKey("no evaluation keys given to the backend".into())
        })
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
    /// Multipliers are held at their primes' width (half the memory of a prepared program).
    type Plain = CompactPlaintext;
    type Addend = Plaintext;
    type Error = Error;

    fn slots(&self) -> usize {
        self.shared.params.slots()
    }

    fn encode_multiplier(&self, values: &[f64], depth: usize) -> Result<CompactPlaintext, Error> {
        let scale = Self::planned(&self.shared.plan.multiplier_scales, depth, "multiplier")?;
        Ok(self
            .shared
            .encoder
            .encode_real(values, self.shared.plan.level(depth), scale)?
            .compact())
    }

    fn encode_addend(&self, values: &[f64], depth: usize) -> Result<Plaintext, Error> {
        let scale = Self::planned(&self.shared.plan.scales, depth, "value")?;
        self.shared
            .encoder
            .encode_real(values, self.shared.plan.level(depth), scale)
    }

    fn rotate_hoisted(&self, x: &Ciphertext, steps: &[usize]) -> Result<Vec<Ciphertext>, Error> {
        let steps: Vec<i64> = steps.iter().map(|s| *s as i64).collect();
        self.shared
            .evaluator
            .rotate_hoisted(x, &steps, &self.keys()?.galois)
    }

    fn rotate(&self, x: &Ciphertext, step: usize) -> Result<Ciphertext, Error> {
        self.shared
            .evaluator
            .rotate(x, step as i64, &self.keys()?.galois)
    }

    fn hoists_together(&self, x: &Ciphertext, steps: &[usize]) -> bool {
        let steps: Vec<i64> = steps.iter().map(|s| *s as i64).collect();
        self.keys.as_ref().is_some_and(|k| {
            self.shared
                .evaluator
                .rotations_hoist_together(x, &steps, &k.galois)
        })
    }

    fn add_rotations(&self, x: &Ciphertext, steps: &[usize]) -> Result<Ciphertext, Error> {
        let steps: Vec<i64> = steps.iter().map(|s| *s as i64).collect();
        self.shared
            .evaluator
            .add_rotations_hoisted(x, &steps, &self.keys()?.galois)
    }

    fn sum_rotations(&self, terms: &[(Ciphertext, usize)]) -> Result<Ciphertext, Error> {
        let terms: Vec<(&Ciphertext, i64)> = terms.iter().map(|(x, s)| (x, *s as i64)).collect();
        self.shared
            .evaluator
            .sum_rotations(&terms, &self.keys()?.galois)
    }

    fn mul_plain_sum(
        &self,
        terms: &[(&Ciphertext, &CompactPlaintext)],
    ) -> Result<Ciphertext, Error> {
        self.shared.evaluator.mul_plain_sum(terms)
    }

    fn add_assign(&self, acc: &mut Ciphertext, x: &Ciphertext) -> Result<(), Error> {
        self.shared.evaluator.add_assign(acc, x)
    }

    fn add_plain_assign(&self, x: &mut Ciphertext, p: &Plaintext) -> Result<(), Error> {
        *x = self.shared.evaluator.add_plain(x, p)?;
        Ok(())
    }

    fn square(&self, x: &Ciphertext) -> Result<Ciphertext, Error> {
        let sq = self.shared.evaluator.square_relin(x, &self.keys()?.relin)?;
        self.shared.evaluator.rescale(&sq)
    }

    fn rescale(&self, x: &Ciphertext) -> Result<Ciphertext, Error> {
        self.shared.evaluator.rescale(x)
    }

    fn multiply(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext, Error> {
        multiply(&self.shared.evaluator, a, b, &self.keys()?.relin)
    }

    fn add_scaled(&self, acc: &mut Ciphertext, x: &Ciphertext, c: f64) -> Result<(), Error> {
        *acc = add_scaled(&self.shared.evaluator, acc, x, c)?;
        Ok(())
    }
}

/// `a * b` relinearised and rescaled, the operand with more levels dropped to the other's.
pub(crate) fn multiply(
    ev: &Evaluator,
    a: &Ciphertext,
    b: &Ciphertext,
    relin: &RelinKey,
) -> Result<Ciphertext, Error> {
    let level = a.level().min(b.level());
    let a = ev.drop_to_level(a, level)?;
    let b = ev.drop_to_level(b, level)?;
    ev.rescale(&ev.mul_relin(&a, &b, relin)?)
}

/// `acc + c * x` for `x` above `acc`'s level: `c` is encoded at the scale that the rescale
/// from `x`'s level turns into exactly `acc`'s scale, then the product drops to `acc`'s level.
pub(crate) fn add_scaled(
    ev: &Evaluator,
    acc: &Ciphertext,
    x: &Ciphertext,
    c: f64,
) -> Result<Ciphertext, Error> {
    if x.level() <= acc.level() {
        return Err(Error::LevelTooLow(format!(
            "a scaled term at level {} cannot join a value at level {}",
            x.level(),
            acc.level()
        )));
    }
    let prime = ev.params().data_primes()[x.level()] as f64;
    let m = acc.scale() * prime / x.scale();
    let term = ev.rescale(&ev.mul_scalar(x, c, m)?)?;
    let mut term = ev.drop_to_level(&term, acc.level())?;
    term.set_scale(acc.scale());
    ev.add(acc, &term)
}
