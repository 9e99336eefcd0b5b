//! The encrypted-CNN API's model description: `GET /v1/models/{name}` of a CKKS model returns a
//! [`ModelSpec`], everything a client needs to make keys for the model's circuit, encrypt inputs
//! in its layout and read its outputs, and nothing of its weights.

use serde::{Deserialize, Serialize};
use unseen_circuits::{CompiledModel, KeyDigits, KeyLayout};
use unseen_model::{ModelCard, Normalization, Shape};

/// `kind` of a CKKS model.
pub const CNN_KIND: &str = "cnn";
/// `scheme` of a CKKS model.
pub const CKKS_SCHEME: &str = "ckks";

/// Batch mode of a model: one input per slot, one ciphertext per input value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchSpec {
    /// Inputs one request holds at most (the slot count).
    pub images_per_request: usize,
    /// Ciphertexts of one request (one per input value).
    pub ciphertexts_per_request: usize,
    /// Level the ciphertexts are encrypted at.
    pub input_level: usize,
}

/// The client spec of a served model (`GET /v1/models/{name}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// Name under which it is served.
    pub name: String,
    /// Always [`CNN_KIND`].
    pub kind: String,
    /// Always [`CKKS_SCHEME`].
    pub scheme: String,
    /// Architecture name.
    pub architecture: String,
    /// Data set it was trained on, when unseen knows it.
    pub dataset: Option<String>,
    /// Class names, index = class.
    pub classes: Vec<String>,
    /// Input shape.
    pub input: Shape,
    /// Input preprocessing the model was trained with.
    pub normalization: Normalization,
    /// Multiplicative depth of the single-input circuit.
    pub depth: usize,
    /// Plaintext test accuracy recorded in the model card.
    pub test_accuracy: Option<f64>,
    /// CKKS parameter preset.
    pub preset: String,
    /// Security level of the preset against the HomomorphicEncryption.org table.
    pub security: String,
    /// Level a single input is encrypted at.
    pub input_level: usize,
    /// Scale a single input is encrypted at.
    pub input_scale: f64,
    /// Largest logit magnitude the circuit leaves room for, from the model card.
    pub logit_bound: Option<f64>,
    /// Batch mode.
    pub batch: BatchSpec,
    /// `(rotation step, level)` of every Galois key the single-input circuit needs.
    pub rotation_keys: Vec<(i64, usize)>,
    /// Level of the relinearisation key (`None`: the circuit has no multiplication).
    pub relin_level: Option<usize>,
    /// Digit layout of the keys below the top level, the server's choice (`unseen serve
    /// --key-digits`): `mixed` (paired digits for the rotation keys not in
    /// `hoisted_rotations`, one prime per digit for the others and the relinearisation key),
    /// `per-prime` (every key, and the shortcut keys of hoisted rotate-and-sums listed in
    /// `rotation_keys`: the fastest key switching) or `paired` (every key: the smallest
    /// keys). Absent: `per-prime`, what servers without the field made.
    #[serde(default = "per_prime")]
    pub key_digits: KeyLayout,
    /// Rotation steps the circuit hoists (its baby steps): with `key_digits` `mixed`, their
    /// keys keep one prime per digit. Absent: none.
    #[serde(default)]
    pub hoisted_rotations: Vec<i64>,
    /// For each slot of a single input's plaintexts, the index of the input value it holds: one
    /// slot vector, or several one after the other (the image is then sent as a ciphertext list
    /// of that many ciphertexts).
    pub input_layout: Vec<Option<usize>>,
    /// Slot of each output (logit).
    pub output_slots: Vec<usize>,
}

fn per_prime() -> KeyLayout {
    KeyLayout::PerPrime
}

impl ModelSpec {
    /// `(step, level, digits)` of every Galois key the spec asks for.
    pub fn galois_keys(&self) -> Vec<(i64, usize, KeyDigits)> {
        self.key_digits
            .rotation_keys(&self.rotation_keys, &self.hoisted_rotations)
    }

    /// Digit layout of the relinearisation key the spec asks for.
    pub fn relin_digits(&self) -> KeyDigits {
        self.key_digits.relin()
    }

    /// The spec of `compiled`, served as `name` with the card `card`.
    pub fn new(name: &str, card: &ModelCard, compiled: &CompiledModel) -> Self {
        let (params, plan) = (&compiled.params, &compiled.plan);
        Self {
            name: name.to_string(),
            kind: CNN_KIND.into(),
            scheme: CKKS_SCHEME.into(),
            architecture: card.architecture.name.clone(),
            dataset: card.dataset.clone(),
            classes: card.classes.clone(),
            input: card.architecture.input,
            normalization: card.normalization.clone(),
            depth: compiled.program.depth(),
            test_accuracy: card.test_accuracy,
            preset: params.name().to_string(),
            security: params.security_level().to_string(),
            input_level: plan.start_level,
            input_scale: plan.input_scale(),
            logit_bound: card.logit_bound,
            batch: BatchSpec {
                images_per_request: params.slots(),
                ciphertexts_per_request: compiled.batch.inputs,
                input_level: compiled.batch.start_level(),
            },
            rotation_keys: plan.galois_key_levels(),
            relin_level: plan.relin_level,
            key_digits: plan.key_layout,
            hoisted_rotations: plan.hoisted_rotations(),
            input_layout: compiled.program.input_layout.clone(),
            output_slots: compiled.program.output_slots.clone(),
        }
    }
}
