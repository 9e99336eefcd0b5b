//! A network compiled for CKKS: the smallest preset its circuit fits, the single-image program,
//! its plan, and the batch program.

use std::sync::Arc;

use unseen_ckks::{Parameters, Preset};
use unseen_model::{ModelCard, Network};

use crate::batch::{compile_batch_lowered, BatchProgram};
use crate::compile::compile_lowered;
use crate::lower::lower;
use crate::plan::CkksPlan;
use crate::program::Program;
use crate::Error;

/// Everything the client and the server derive from a network.
#[derive(Debug, Clone)]
pub struct CompiledModel {
    /// The preset the circuit runs at.
    pub params: Arc<Parameters>,
    /// Single-image program.
    pub program: Program,
    /// Its levels, scales and keys.
    pub plan: CkksPlan,
    /// Batch program (one input per slot).
    pub batch: BatchProgram,
}

impl CompiledModel {
    /// Which mode costs less for `inputs` inputs sent at once, by the plan's operation counts:
    /// a single-image evaluation per input, or one batch evaluation (as costly as the batch
    /// program's plaintext products, whatever the number of inputs up to the slot count).
    pub fn preferred_mode(&self, inputs: usize) -> &'static str {
        let single = inputs as f64
            * (self.program.rotation_count() as f64 * 8.0 + self.program.plain_mul_count() as f64);
        let batch_terms: usize = self
            .batch
            .ops
            .iter()
            .map(|o| match o {
                crate::batch::BatchOp::Affine(rows) => rows.iter().map(|r| r.terms.len()).sum(),
                crate::batch::BatchOp::Activation(_) => 0,
            })
            .sum();
        let batches = inputs.div_ceil(self.params.slots()).max(1) as f64;
        if batches * batch_terms as f64 <= single {
            "batch"
        } else {
            "single"
        }
    }
}

/// Compiles a model folder's network as its card says: at the preset recorded in
/// `card.compiled` (chosen, or forced with `--preset`, when the model was imported or trained),
/// or at the smallest that fits when the card records none; outputs sized by `card.logit_bound`.
pub fn compile_card(net: &Network, card: &ModelCard) -> Result<CompiledModel, Error> {
    let preset = match &card.compiled {
        Some(c) => Some(Preset::from_name(&c.preset).ok_or_else(|| {
            Error::DoesNotFit(format!(
                "the model card names an unknown preset '{}'",
                c.preset
            ))
        })?),
        None => None,
    };
    compile_model(net, card.logit_bound, preset)
}

/// Compiles `net` at `preset`, or at the smallest of [`Preset::CNN`] whose depth and slots its
/// circuit fits. A network deeper than every preset is refused before any key exists, with its
/// depth and the largest depth available.
pub fn compile_model(
    net: &Network,
    output_bound: Option<f64>,
    preset: Option<Preset>,
) -> Result<CompiledModel, Error> {
    let lowered = lower(net)?;
    let depth = lowered.depth();
    let candidates: Vec<Preset> = match preset {
        Some(p) => vec![p],
        None => Preset::CNN.to_vec(),
    };
    let mut last_error = None;
    for p in &candidates {
        let params = Parameters::preset(*p).map_err(|e| Error::DoesNotFit(e.to_string()))?;
        if depth > params.max_level() {
            last_error = Some(Error::DoesNotFit(format!(
                "the network needs {depth} levels; preset {} has {}",
                params.name(),
                params.max_level()
            )));
            continue;
        }
        let mut program = match compile_lowered(&lowered, params.slots()) {
            Ok(p) => p,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        program.output_bound = output_bound;
        let plan = match CkksPlan::new(&params, &program) {
            Ok(p) => p,
            Err(e) => {
                last_error = Some(e);
                continue;
            }
        };
        let mut batch = compile_batch_lowered(&lowered);
        batch.output_bound = output_bound;
        return Ok(CompiledModel {
            params,
            program,
            plan,
            batch,
        });
    }
    let deepest = candidates
        .iter()
        .filter_map(|p| Parameters::preset(*p).ok())
        .map(|p| (p.max_level(), p.name().to_string()))
        .max();
    Err(match (last_error, deepest) {
        (Some(Error::DoesNotFit(_)), Some((levels, name))) if depth > levels => Error::DoesNotFit(
            format!("the network needs {depth} levels; the deepest preset, {name}, has {levels}"),
        ),
        (Some(e), _) => e,
        (None, _) => Error::DoesNotFit("no preset to compile for".into()),
    })
}
