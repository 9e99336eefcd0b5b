//! Encrypted image classification: a CNN compiled to a CKKS circuit once, its plaintexts
//! encoded once, then run on each client's ciphertext with that client's evaluation keys.

use std::path::Path;
use std::sync::Arc;

use axum::http::StatusCode;
use unseen_circuits::{
    compile_card, BatchProgram, BatchRun, CkksBackend, CompiledModel, EvaluationKeys, KeyLayout,
    Prepared, Program, STREAM_CHUNK,
};
use unseen_ckks::serialize::{ciphertexts_to_bytes, CiphertextList};
use unseen_ckks::{Ciphertext, Evaluator, Parameters};
use unseen_model::folder::load_model;
use unseen_model::ModelCard;
use unseen_wire::cnn::ModelSpec;

use crate::ApiError;

/// A CNN ready to serve.
pub struct CnnModel {
    /// Name under which it is published.
    pub name: String,
    /// Its model card (architecture, dataset, accuracy).
    pub card: ModelCard,
    /// The compiled circuit (one image per ciphertext).
    pub program: Program,
    /// The batch circuit (one image per slot, one ciphertext per pixel).
    pub batch: BatchProgram,
    /// What clients need to make keys and encrypt inputs (`GET /v1/models/{name}`).
    pub spec: ModelSpec,
    params: Arc<Parameters>,
    backend: CkksBackend,
    prepared: Prepared<CkksBackend>,
}

impl std::fmt::Debug for CnnModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CnnModel")
            .field("name", &self.name)
            .finish()
    }
}

impl CnnModel {
    /// Loads the model folder `dir`, compiles it and encodes its plaintexts; its clients make
    /// keys with the default [`KeyLayout`].
    pub fn load(dir: &Path, name: &str) -> Result<Self, String> {
        Self::load_with(dir, name, KeyLayout::default())
    }

    /// [`Self::load`], its spec asking clients for keys with the digit layout `layout`.
    pub fn load_with(dir: &Path, name: &str, layout: KeyLayout) -> Result<Self, String> {
        let (net, card) = load_model(dir).map_err(|e| e.to_string())?;
        let mut compiled =
            compile_card(&net, &card).map_err(|e| format!("{}: {e}", dir.display()))?;
        compiled.plan.key_layout = layout;
        Self::from_compiled(name, card, compiled).map_err(|e| format!("{}: {e}", dir.display()))
    }

    /// A model already compiled (its plan's key layout is the one its spec asks clients for),
    /// with its plaintexts encoded once.
    pub fn from_compiled(
        name: &str,
        card: ModelCard,
        compiled: CompiledModel,
    ) -> Result<Self, String> {
        let spec = ModelSpec::new(name, &card, &compiled);
        let (params, program, batch) = (compiled.params, compiled.program, compiled.batch);
        let backend = CkksBackend::new(&params, &program).map_err(|e| e.to_string())?;
        let prepared = Prepared::new(&backend, &program).map_err(|e| e.to_string())?;
        Ok(Self {
            name: name.to_string(),
            card,
            program,
            batch,
            spec,
            params,
            backend,
            prepared,
        })
    }

    /// The evaluation keys its clients must register: exactly those of its spec.
    pub fn key_shape(&self) -> crate::keystore::KeyShape {
        crate::keystore::KeyShape {
            params: self.params.clone(),
            relin_level: self.spec.relin_level.unwrap_or(0),
            relin_digits: self.spec.relin_digits(),
            rotations: self.spec.galois_keys(),
        }
    }

    /// The parameters its clients' keys and ciphertexts are made for.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
    }

    /// JSON description for `GET /v1/models`.
    pub fn describe(&self) -> serde_json::Value {
        serde_json::to_value(&self.spec).unwrap_or_default()
    }

    fn decode_error(&self, e: unseen_ckks::Error) -> ApiError {
        match e {
            unseen_ckks::Error::ParametersMismatch => bad(
                "wrong_parameters",
                format!(
                    "the ciphertext was made for other parameters than {}",
                    self.params.name()
                ),
            ),
            e => bad("bad_ciphertext", e.to_string()),
        }
    }

    /// Evaluates the model on a serialized request: one image (one ciphertext, or a list of
    /// as many as the spec's input layout spans; answered with one logits ciphertext) or a
    /// batch (a ciphertext list: one ciphertext per pixel, slot `i` of each holding image `i`;
    /// answered with one ciphertext per class). CPU-bound: call it off the async runtime.
    pub fn infer(&self, keys: Arc<EvaluationKeys>, request: &[u8]) -> Result<Vec<u8>, ApiError> {
        let inputs = self.prepared.inputs();
        let cts = if unseen_ckks::serialize::is_ciphertext_list(request) {
            // an image of several ciphertexts, or else a batch (which has one per pixel)
            let list = CiphertextList::parse(request, self.batch.inputs.max(inputs))
                .map_err(|e| self.decode_error(e))?;
            if inputs == 1 || list.len() != inputs {
                return self.infer_batch(keys, &list);
            }
            list.read(0..inputs, &self.params)
                .map_err(|e| self.decode_error(e))?
        } else {
            let ct =
                Ciphertext::from_bytes(request, &self.params).map_err(|e| self.decode_error(e))?;
            if inputs != 1 {
                return Err(bad(
                    "wrong_shape",
                    format!(
                        "an image for this model is a ciphertext list of {inputs} ciphertexts \
                         (see the model's input_layout)"
                    ),
                ));
            }
            vec![ct]
        };
        let plan = self.backend.plan();
        for ct in &cts {
            self.check_image(plan, ct)?;
        }
        let backend = self.backend.with_keys(keys).map_err(|e| {
            bad(
                "keys_mismatch",
                format!("these evaluation keys do not cover the model's circuit: {e}"),
            )
        })?;
        let out = self
            .prepared
            .run(&backend, &cts)
            .map_err(|e| bad("evaluation", format!("evaluation failed: {e}")))?;
        let out = Evaluator::new(&self.params)
            .drop_to_level(&out, 0)
            .map_err(|e| bad("evaluation", e.to_string()))?;
        Ok(out.to_bytes())
    }

    /// Refuses an image ciphertext at another level or scale than the circuit's input.
    fn check_image(
        &self,
        plan: &unseen_circuits::CkksPlan,
        ct: &Ciphertext,
    ) -> Result<(), ApiError> {
        if ct.level() != plan.start_level {
            return Err(bad(
                "wrong_shape",
                format!(
                    "the image must be encrypted at level {}, this one is at level {}",
                    plan.start_level,
                    ct.level()
                ),
            ));
        }
        let want = plan.input_scale();
        if (ct.scale() / want - 1.0).abs() > 1e-9 {
            return Err(bad(
                "wrong_shape",
                format!(
                    "the image must be encrypted at scale 2^{:.2}, this one is at 2^{:.2}",
                    want.log2(),
                    ct.scale().log2()
                ),
            ));
        }
        Ok(())
    }

    /// Checks that `request` is a batch for this model (one ciphertext per input, at the batch
    /// circuit's level and scale) without evaluating it: what a batch job is checked with
    /// before it is queued. The ciphertexts are read a part at a time, never all at once.
    pub fn check_batch(&self, request: &[u8]) -> Result<(), ApiError> {
        if !unseen_ckks::serialize::is_ciphertext_list(request) {
            return Err(bad(
                "wrong_shape",
                format!(
                    "a batch job is a ciphertext list of {} ciphertexts (one per input value)",
                    self.batch.inputs
                ),
            ));
        }
        let list =
            CiphertextList::parse(request, self.batch.inputs).map_err(|e| self.decode_error(e))?;
        self.read_batch(&list, |_| Ok(()))
    }

    /// Reads the batch `list` [`STREAM_CHUNK`] ciphertexts at a time, each part checked
    /// (level and scale of the batch circuit) and handed to `use_part`.
    fn read_batch(
        &self,
        list: &CiphertextList<'_>,
        mut use_part: impl FnMut(Vec<Ciphertext>) -> Result<(), ApiError>,
    ) -> Result<(), ApiError> {
        if list.len() != self.batch.inputs {
            return Err(bad(
                "wrong_shape",
                format!(
                    "a batch is {} ciphertexts (one per pixel), this one has {}",
                    self.batch.inputs,
                    list.len()
                ),
            ));
        }
        let level = self.batch.start_level();
        let scale = self.params.default_scale();
        for part in (0..list.len()).step_by(STREAM_CHUNK) {
            let inputs = list
                .read(part..(part + STREAM_CHUNK).min(list.len()), &self.params)
                .map_err(|e| self.decode_error(e))?;
            if let Some(ct) = inputs
                .iter()
                .find(|c| c.level() != level || (c.scale() / scale - 1.0).abs() > 1e-9)
            {
                return Err(bad(
                    "wrong_shape",
                    format!(
                        "batch ciphertexts must be at level {level} and scale 2^{:.2}, one is at level {} and 2^{:.2}",
                        scale.log2(),
                        ct.level(),
                        ct.scale().log2()
                    ),
                ));
            }
            use_part(inputs)?;
        }
        Ok(())
    }

    fn infer_batch(
        &self,
        keys: Arc<EvaluationKeys>,
        list: &CiphertextList<'_>,
    ) -> Result<Vec<u8>, ApiError> {
        let evaluation = |e| match e {
            unseen_ckks::Error::LevelTooLow(m) => bad(
                "keys_mismatch",
                format!("these evaluation keys do not cover the batch circuit: {m}"),
            ),
            e => bad("evaluation", format!("evaluation failed: {e}")),
        };
        // each part is evaluated as it is read, so the batch never exists whole as ciphertexts
        let mut run = BatchRun::new(&self.batch, &self.params, &keys.relin).map_err(evaluation)?;
        self.read_batch(list, |part| run.push(part).map_err(evaluation))?;
        let ev = Evaluator::new(&self.params);
        let outputs = run
            .finish()
            .map_err(evaluation)?
            .iter()
            .map(|c| ev.drop_to_level(c, 0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("evaluation", e.to_string()))?;
        Ok(ciphertexts_to_bytes(&outputs))
    }
}

fn bad(code: &'static str, message: String) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;
    use unseen_circuits::CkksPlan;
    use unseen_ckks::serialize::CiphertextListWriter;
    use unseen_ckks::{Encoder, GaloisKeys, SecretKey};

    #[test]
    fn ciphertexts_of_the_wrong_shape_or_parameters_are_refused() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/ciphernet-mnist");
        let model = CnnModel::load(&dir, "m").expect("model");
        let params = model.params().clone();
        let sk = SecretKey::generate(&params, &mut OsRng);
        let plan = CkksPlan::new(&params, &model.program).expect("plan");
        let keys = Arc::new(plan.make_keys(&sk, &mut OsRng));
        let enc = Encoder::new(&params);
        let image = vec![0.5; params.slots()];
        let one = |level: usize, scale: f64| {
            let pt = enc.encode_real(&image, level, scale).expect("encode");
            sk.encrypt(&pt, &mut OsRng).expect("encrypt")
        };
        // ciphernet's image is 4 ciphertexts: a list of them, the last at `level` and `scale`
        let inputs = model.program.input_vectors();
        assert_eq!(inputs, 4);
        let list = |count: usize, level: usize, scale: f64| {
            let mut w = CiphertextListWriter::new();
            for i in 0..count {
                let last = i + 1 == count;
                let ct = if last {
                    one(level, scale)
                } else {
                    one(plan.start_level, plan.input_scale())
                };
                w.push(&ct);
            }
            w.finish()
        };
        let encrypt = |level: usize, scale: f64| list(inputs, level, scale);
        let scale = plan.input_scale();
        assert!(model
            .infer(keys.clone(), &encrypt(plan.start_level, scale))
            .is_ok());
        for request in [
            encrypt(plan.start_level + 1, scale),
            encrypt(plan.start_level, scale * 2.0),
            // a lone ciphertext, or a list of another length (read as a batch)
            one(plan.start_level, scale).to_bytes(),
            list(inputs - 1, plan.start_level, scale),
        ] {
            let err = model
                .infer(keys.clone(), &request)
                .expect_err("wrong shape");
            assert_eq!(
                (err.status, err.code),
                (StatusCode::BAD_REQUEST, "wrong_shape"),
                "{}",
                err.message
            );
        }
        let other = Parameters::preset(unseen_ckks::Preset::Small4096).expect("preset");
        let osk = SecretKey::generate(&other, &mut OsRng);
        let opt = Encoder::new(&other)
            .encode_real(&[1.0], other.max_level(), other.default_scale())
            .expect("encode");
        let ct = osk.encrypt(&opt, &mut OsRng).expect("encrypt").to_bytes();
        let err = model
            .infer(keys.clone(), &ct)
            .expect_err("other parameters");
        assert_eq!(err.code, "wrong_parameters");
        // keys that do not cover the circuit
        let partial = Arc::new(unseen_circuits::EvaluationKeys {
            relin: keys.relin.clone(),
            galois: keys.galois.subset(&[1], false).expect("subset"),
        });
        let err = model
            .infer(partial, &encrypt(plan.start_level, scale))
            .expect_err("keys");
        assert_eq!(err.code, "keys_mismatch");
    }

    /// A model's spec says the keys' digit layout and its key shape holds registered keys to
    /// it: keys of any other layout are refused, and with the mixed layout (the default) so is
    /// a key set with a single key of the other layout.
    #[test]
    fn the_spec_key_digits_decide_which_keys_match() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/ciphernet-mnist");
        let layouts = [KeyLayout::Mixed, KeyLayout::PerPrime, KeyLayout::Paired];
        let models: Vec<CnnModel> = layouts
            .iter()
            .map(|&l| CnnModel::load_with(&dir, "m", l).expect("model"))
            .collect();
        assert_eq!(
            CnnModel::load(&dir, "m").expect("model").spec.key_digits,
            KeyLayout::Mixed
        );
        let params = models[0].params().clone();
        let sk = SecretKey::generate(&params, &mut OsRng);
        let mut plan = CkksPlan::new(&params, &models[0].program).expect("plan");
        let keys: Vec<EvaluationKeys> = layouts
            .iter()
            .map(|&l| {
                plan.key_layout = l;
                plan.make_keys(&sk, &mut OsRng)
            })
            .collect();
        for (i, model) in models.iter().enumerate() {
            assert_eq!(model.spec.key_digits, layouts[i]);
            for (j, k) in keys.iter().enumerate() {
                assert_eq!(model.key_shape().matches(k), i == j, "{i} {j}");
            }
        }
        // the mixed layout's keys, one of them (a hoisted step's) made paired
        let hoisted = *plan.hoisted_steps.iter().next().expect("a hoisted step") as i64;
        let level = plan.rotation_keys[&(hoisted as usize)];
        let mut one_off = keys[0].clone();
        let paired = GaloisKeys::generate_each(
            &sk,
            &[(hoisted, level, unseen_ckks::KeyDigits::Paired)],
            false,
            &mut OsRng,
            &mut |_, _| {},
        );
        let others: Vec<i64> = plan
            .rotation_keys
            .keys()
            .map(|&s| s as i64)
            .filter(|&s| s != hoisted)
            .collect();
        let mut galois = one_off.galois.subset(&others, false).expect("subset");
        galois.merge(paired).expect("merge");
        one_off.galois = galois;
        assert!(!models[0].key_shape().matches(&one_off));
    }
}
