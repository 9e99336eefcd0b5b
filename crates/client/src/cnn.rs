//! Encrypted image classification, client side: key folders, encryption of images, key
//! registration and inference over HTTP, decryption of logits.
//!
//! A key folder holds everything the client needs and nothing the server must not see:
//! `secret.key` (mode 0600, never sent), `eval.keys` (the evaluation keys, sent once) and
//! `client.json` (parameters, the input layout of the circuit, the class names and the key id).
//! The key id is the SHA-256 of `eval.keys`, as the server computes it, so a client can ask for
//! an inference first and register its keys only if the server does not have them.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unseen_circuits::{compile_card, EvaluationKeys};
use unseen_ckks::{Ciphertext, Encoder, GaloisKeys, Parameters, RelinKey, SecretKey};
use unseen_model::folder::load_model;
use unseen_model::{Normalization, Shape};
use unseen_wire::cnn::{ModelSpec, CKKS_SCHEME, CNN_KIND};

use crate::Error;

/// `format` of `client.json`.
pub const CLIENT_FORMAT: &str = "unseen-cnn-client";
/// Largest encrypted reply accepted.
const MAX_REPLY: u64 = 16 << 20;
/// Network timeout per request.
const TIMEOUT: Duration = Duration::from_secs(120);

/// `client.json`: what the client needs to encrypt inputs for one model and read its outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientSpec {
    /// Always [`CLIENT_FORMAT`].
    pub format: String,
    /// Model name on the server.
    pub model: String,
    /// CKKS parameter preset.
    pub preset: String,
    /// Level the input is encrypted at.
    pub start_level: usize,
    /// Scale the input is encrypted at.
    pub input_scale: f64,
    /// Input shape (`C x H x W` image or feature vector).
    pub input: Shape,
    /// Data set the model was trained on, when unseen knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Pixel normalisation the model was trained with.
    pub normalization: Normalization,
    /// Class names, index = class.
    pub classes: Vec<String>,
    /// For each slot, the index of the input value it holds.
    pub input_layout: Vec<Option<usize>>,
    /// Slot of each output (logit).
    pub output_slots: Vec<usize>,
    /// Batch mode: ciphertexts per batch (one per input value) and the level they are
    /// encrypted at.
    pub batch_inputs: usize,
    /// Level of batch ciphertexts.
    pub batch_start_level: usize,
    /// SHA-256 of `eval.keys`, hex.
    pub key_id: String,
}

/// A loaded key folder.
pub struct CnnClient {
    /// The folder's description.
    pub spec: ClientSpec,
    params: Arc<Parameters>,
    sk: SecretKey,
    encoder: Encoder,
}

/// Hex SHA-256 of a key bundle: its id on every server.
pub fn key_id(bundle: &[u8]) -> String {
    Sha256::digest(bundle)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::KeyFile {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn key_err(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::KeyFile {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// What `keygen` made.
#[derive(Debug, Clone)]
pub struct KeygenReport {
    /// Size of `eval.keys`.
    pub eval_keys_bytes: usize,
    /// Galois keys in it.
    pub rotation_keys: usize,
    /// Time to make the keys.
    pub elapsed: Duration,
    /// The key id.
    pub key_id: String,
}

impl ClientSpec {
    /// Checks the description against its parameters.
    fn check(&self, params: &Parameters) -> Result<(), String> {
        let inputs = self.input.len();
        if self.normalization.check(self.input).is_err()
            || self.classes.len() != self.output_slots.len()
            || self.input_layout.len() != params.slots()
            || self.input_layout.iter().flatten().any(|i| *i >= inputs)
            || self.output_slots.iter().any(|s| *s >= params.slots())
            || self.output_slots.is_empty()
            || self.start_level > params.max_level()
            || self.batch_start_level > params.max_level()
            || self.batch_inputs != inputs
            || !(self.input_scale.is_finite() && self.input_scale >= 1.0)
        {
            return Err("inconsistent circuit description".into());
        }
        Ok(())
    }

    /// Rows and columns of a single-channel image input, or why the input is something else.
    pub fn gray_image(&self) -> Result<(usize, usize), Error> {
        match self.input {
            Shape::Image(1, h, w) => Ok((h, w)),
            other => Err(Error::Input(format!(
                "the model takes {other}, not a single-channel image (PNG input is read as gray)"
            ))),
        }
    }
}

impl CnnClient {
    /// Makes a key folder for the model in `model_dir` (served as `name`): compiles its circuit,
    /// checks that it fits the preset, and makes exactly the keys it needs.
    pub fn keygen(model_dir: &Path, name: &str, out: &Path) -> Result<KeygenReport, Error> {
        let (net, card) = load_model(model_dir).map_err(|e| Error::Input(e.to_string()))?;
        let compiled = compile_card(&net, &card)
            .map_err(|e| Error::Input(format!("compiling {}: {e}", model_dir.display())))?;
        Self::keygen_for(&ModelSpec::new(name, &card, &compiled), out)
    }

    /// Makes a key folder from a served model's spec (`GET /v1/models/{name}`): a secret key,
    /// the relinearisation key and exactly the Galois keys the spec lists, each at its level.
    pub fn keygen_for(spec: &ModelSpec, out: &Path) -> Result<KeygenReport, Error> {
        let t = Instant::now();
        let bad = |what: &str| Error::Input(format!("model '{}': {what}", spec.name));
        if spec.kind != CNN_KIND || spec.scheme != CKKS_SCHEME {
            return Err(bad(&format!(
                "a {} model over {}, not an encrypted CNN",
                spec.kind, spec.scheme
            )));
        }
        let preset = unseen_ckks::Preset::from_name(&spec.preset)
            .ok_or_else(|| bad(&format!("unknown preset '{}'", spec.preset)))?;
        let params = Parameters::preset(preset)?;
        let top = params.max_level();
        // one relinearisation key serves both modes
        let relin = spec.relin_level.unwrap_or(0);
        if spec.batch.input_level.saturating_sub(1) > relin
            || relin > top
            || spec.rotation_keys.iter().any(|(_, l)| *l > top)
            || spec.rotation_keys.len() > params.slots()
        {
            return Err(bad("key levels beyond the preset's"));
        }
        let sk = SecretKey::generate(&params, &mut OsRng);
        let keys = EvaluationKeys {
            relin: RelinKey::generate_for_level(&sk, relin, &mut OsRng),
            galois: GaloisKeys::generate_for_levels(&sk, &spec.rotation_keys, false, &mut OsRng),
        };
        let bundle = keys.to_bytes();
        let id = key_id(&bundle);
        let client = ClientSpec {
            format: CLIENT_FORMAT.into(),
            model: spec.name.clone(),
            preset: spec.preset.clone(),
            start_level: spec.input_level,
            input_scale: spec.input_scale,
            input: spec.input,
            dataset: spec.dataset.clone(),
            normalization: spec.normalization.clone(),
            classes: spec.classes.clone(),
            input_layout: spec.input_layout.clone(),
            output_slots: spec.output_slots.clone(),
            batch_inputs: spec.batch.ciphertexts_per_request,
            batch_start_level: spec.batch.input_level,
            key_id: id.clone(),
        };
        client.check(&params).map_err(|e| bad(&e))?;
        std::fs::create_dir_all(out).map_err(io(out))?;
        let sk_path = out.join("secret.key");
        unseen_fs::write_atomic_private(&sk_path, &sk.to_bytes()).map_err(io(&sk_path))?;
        let ek_path = out.join("eval.keys");
        unseen_fs::write_atomic(&ek_path, &bundle).map_err(io(&ek_path))?;
        let spec_path = out.join("client.json");
        let json = serde_json::to_vec_pretty(&client).map_err(|e| key_err(&spec_path, e))?;
        unseen_fs::write_atomic(&spec_path, &json).map_err(io(&spec_path))?;
        Ok(KeygenReport {
            eval_keys_bytes: bundle.len(),
            rotation_keys: keys.galois.galois_elements().len(),
            elapsed: t.elapsed(),
            key_id: id,
        })
    }

    /// Loads a key folder made by [`Self::keygen`].
    pub fn load(dir: &Path) -> Result<Self, Error> {
        let spec_path = dir.join("client.json");
        let text = std::fs::read(&spec_path).map_err(io(&spec_path))?;
        let spec: ClientSpec = serde_json::from_slice(&text)
            .map_err(|e| key_err(&spec_path, format!("not a client description: {e}")))?;
        if spec.format != CLIENT_FORMAT {
            return Err(key_err(
                &spec_path,
                format!("format is not {CLIENT_FORMAT}"),
            ));
        }
        let preset = unseen_ckks::Preset::from_name(&spec.preset)
            .ok_or_else(|| key_err(&spec_path, format!("unknown preset '{}'", spec.preset)))?;
        let params = Parameters::preset(preset)?;
        spec.check(&params).map_err(|e| key_err(&spec_path, e))?;
        let sk_path = dir.join("secret.key");
        let sk_bytes = zeroize::Zeroizing::new(std::fs::read(&sk_path).map_err(io(&sk_path))?);
        let sk = SecretKey::from_bytes(&sk_bytes, &params).map_err(|e| key_err(&sk_path, e))?;
        if let Some(warning) = unseen_fs::exposed_secret(&sk_path) {
            tracing::warn!("{warning}");
        }
        Ok(Self {
            encoder: Encoder::new(&params),
            params,
            sk,
            spec,
        })
    }

    /// The evaluation-key bundle of this folder, checked against the key id in `client.json`.
    pub fn eval_keys(&self, dir: &Path) -> Result<Vec<u8>, Error> {
        let path = dir.join("eval.keys");
        let bundle = std::fs::read(&path).map_err(io(&path))?;
        if key_id(&bundle) != self.spec.key_id {
            return Err(key_err(
                &path,
                "does not match the key id in client.json (was it changed or replaced?)",
            ));
        }
        Ok(bundle)
    }

    /// The pixels (`C x H x W`, channel-major, 0..=255) of one image as the network sees them.
    pub fn normalize_image(&self, pixels: &[u8]) -> Result<Vec<f64>, Error> {
        let shape = self.spec.input;
        if !matches!(shape, Shape::Image(..)) {
            return Err(Error::Input(format!(
                "the model takes a vector of {}, not an image",
                shape.len()
            )));
        }
        if pixels.len() != shape.len() {
            return Err(Error::Input(format!(
                "{} pixels, the model takes {shape} (channels x rows x columns)",
                pixels.len()
            )));
        }
        Ok(self
            .spec
            .normalization
            .image(pixels, shape)
            .into_iter()
            .map(f64::from)
            .collect())
    }

    /// Raw features of one sample as the network sees them (normalised).
    pub fn normalize_features(&self, x: &[f64]) -> Result<Vec<f64>, Error> {
        if x.len() != self.spec.input.len() || x.iter().any(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "{} values, the model takes {} finite values",
                x.len(),
                self.spec.input.len()
            )));
        }
        Ok(self.spec.normalization.features(x))
    }

    /// Encrypts one input, already normalised, as the circuit expects it.
    pub fn encrypt_input(&self, x: &[f64]) -> Result<Vec<u8>, Error> {
        if x.len() != self.spec.input.len() {
            return Err(Error::Input(format!(
                "{} values, the model takes {}",
                x.len(),
                self.spec.input.len()
            )));
        }
        let slots: Vec<f64> = self
            .spec
            .input_layout
            .iter()
            .map(|i| i.map(|i| x[i]).unwrap_or(0.0))
            .collect();
        let pt = self
            .encoder
            .encode_real(&slots, self.spec.start_level, self.spec.input_scale)?;
        Ok(self.sk.encrypt(&pt, &mut OsRng)?.to_bytes())
    }

    /// Encrypts one image (`C x H x W` pixels 0..=255) as the circuit expects it.
    pub fn encrypt_image(&self, pixels: &[u8]) -> Result<Vec<u8>, Error> {
        self.encrypt_input(&self.normalize_image(pixels)?)
    }

    /// Inputs one batch holds (the slot count).
    pub fn batch_capacity(&self) -> usize {
        self.params.slots()
    }

    /// Encrypts up to one slot-count of images as a batch: one ciphertext per pixel, slot `i`
    /// of each holding image `i`.
    pub fn encrypt_batch(&self, images: &[&[u8]]) -> Result<Vec<u8>, Error> {
        let inputs = images
            .iter()
            .map(|im| self.normalize_image(im))
            .collect::<Result<Vec<_>, _>>()?;
        self.encrypt_batch_inputs(&inputs)
    }

    /// Encrypts up to one slot-count of normalised inputs as a batch.
    pub fn encrypt_batch_inputs(&self, inputs: &[Vec<f64>]) -> Result<Vec<u8>, Error> {
        if inputs.is_empty() || inputs.len() > self.params.slots() {
            return Err(Error::Input(format!(
                "a batch holds 1 to {} inputs, not {}",
                self.params.slots(),
                inputs.len()
            )));
        }
        if let Some(bad) = inputs.iter().find(|x| x.len() != self.spec.batch_inputs) {
            return Err(Error::Input(format!(
                "{} values, the model takes {}",
                bad.len(),
                self.spec.batch_inputs
            )));
        }
        let cts = (0..self.spec.batch_inputs)
            .map(|f| {
                let slots: Vec<f64> = inputs.iter().map(|x| x[f]).collect();
                let pt = self.encoder.encode_real(
                    &slots,
                    self.spec.batch_start_level,
                    self.params.default_scale(),
                )?;
                self.sk.encrypt(&pt, &mut OsRng)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(unseen_ckks::serialize::ciphertexts_to_bytes(&cts))
    }

    /// Decrypts a batch reply to the logits of the first `count` images.
    pub fn decrypt_batch(&self, reply: &[u8], count: usize) -> Result<Vec<Vec<f64>>, Error> {
        let classes = self.spec.output_slots.len();
        let cts = unseen_ckks::serialize::ciphertexts_from_bytes(reply, &self.params, classes)?;
        if cts.len() != classes {
            return Err(Error::Input(format!(
                "the reply has {} ciphertexts, the model has {classes} classes",
                cts.len()
            )));
        }
        let per_class = cts
            .iter()
            .map(|c| self.encoder.decode_real(&self.sk.decrypt(c)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((0..count.min(self.params.slots()))
            .map(|i| per_class.iter().map(|v| v[i]).collect())
            .collect())
    }

    /// Decrypts the server's reply to the logits.
    pub fn decrypt_logits(&self, reply: &[u8]) -> Result<Vec<f64>, Error> {
        let ct = Ciphertext::from_bytes(reply, &self.params)?;
        let slots = self.encoder.decode_real(&self.sk.decrypt(&ct)?)?;
        Ok(self.spec.output_slots.iter().map(|s| slots[*s]).collect())
    }
}

/// Class, softmax probabilities and logits.
#[derive(Debug, Clone)]
pub struct Classification {
    /// Index of the largest logit.
    pub class: usize,
    /// Softmax of the logits.
    pub probabilities: Vec<f64>,
    /// The decrypted logits.
    pub logits: Vec<f64>,
}

/// Class and probabilities from logits.
pub fn classify(logits: Vec<f64>) -> Classification {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exp: Vec<f64> = logits.iter().map(|v| (v - max).exp()).collect();
    let sum: f64 = exp.iter().sum();
    let class = logits
        .iter()
        .enumerate()
        .fold(0, |best, (j, v)| if *v > logits[best] { j } else { best });
    Classification {
        class,
        probabilities: exp.iter().map(|e| e / sum).collect(),
        logits,
    }
}

/// What one request through a server cost.
#[derive(Debug, Clone)]
pub struct Costs {
    /// Client time to encrypt.
    pub encrypt: Duration,
    /// Time from sending the request to having the reply (server time included).
    pub round_trip: Duration,
    /// Server time reported by the server.
    pub server_ms: Option<f64>,
    /// Client time to decrypt.
    pub decrypt: Duration,
    /// Request size.
    pub upload_bytes: usize,
    /// Reply size.
    pub download_bytes: usize,
    /// Bytes of evaluation keys registered first (`None`: the server had them).
    pub registered_keys: Option<usize>,
}

/// One encrypted inference through a server, with its costs.
#[derive(Debug, Clone)]
pub struct RemoteInference {
    /// The decrypted result.
    pub result: Classification,
    /// What it cost.
    pub costs: Costs,
}

fn server_error(base: &str, status: u16, body: &[u8]) -> Error {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    match (
        json["error"]["code"].as_str(),
        json["error"]["message"].as_str(),
    ) {
        (Some(code), Some(message)) => Error::Server {
            code: code.into(),
            message: message.into(),
        },
        _ => Error::Connection {
            server: base.into(),
            message: format!("HTTP {status} without an error description"),
        },
    }
}

/// The JSON body of a successful reply of at most `limit` bytes, or the server's error.
fn json_reply(
    base: &str,
    mut response: ureq::http::Response<ureq::Body>,
    limit: u64,
) -> Result<serde_json::Value, Error> {
    let conn = |message: String| Error::Connection {
        server: base.into(),
        message,
    };
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|e| conn(format!("reading the reply: {e}")))?;
    if !(200..300).contains(&status) {
        return Err(server_error(base, status, &body));
    }
    serde_json::from_slice(&body).map_err(|_| conn("reply is not JSON".into()))
}

/// The client spec of the model `name` served at `base` (`GET /v1/models/{name}`).
pub fn fetch_spec(base: &str, name: &str) -> Result<ModelSpec, Error> {
    let conn = |message: String| Error::Connection {
        server: base.into(),
        message,
    };
    let response =
        crate::authorized(crate::agent(TIMEOUT)?.get(&format!("{base}/v1/models/{name}")))
            .call()
            .map_err(|e| conn(e.to_string()))?;
    let json = json_reply(base, response, MAX_REPLY)?;
    if json["kind"] != CNN_KIND {
        return Err(Error::Input(format!(
            "model '{name}' is not an encrypted CNN (kind {})",
            json["kind"]
        )));
    }
    serde_json::from_value(json).map_err(|e| conn(format!("not a model spec: {e}")))
}

/// Registers a key bundle; returns the server's key id.
pub fn register_keys(base: &str, bundle: &[u8]) -> Result<String, Error> {
    let conn = |message: String| Error::Connection {
        server: base.into(),
        message,
    };
    let response = crate::authorized(crate::agent(TIMEOUT)?.post(&format!("{base}/v1/keys")))
        .header("content-type", "application/octet-stream")
        .send(bundle)
        .map_err(|e| conn(e.to_string()))?;
    let json = json_reply(base, response, 1 << 20)?;
    json["key_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| conn("reply has no key_id".into()))
}

/// The encrypted logits and the server time it reported.
type Reply = (Vec<u8>, Option<f64>);

/// Sends one encrypted image; `Ok(None)` when the server does not know the key id.
fn infer(base: &str, model: &str, key_id: &str, request: &[u8]) -> Result<Option<Reply>, Error> {
    let conn = |message: String| Error::Connection {
        server: base.into(),
        message,
    };
    let mut response =
        crate::authorized(crate::agent(TIMEOUT)?.post(&format!("{base}/v1/models/{model}/infer")))
            .header("content-type", "application/octet-stream")
            .header("unseen-key-id", key_id)
            .send(request)
            .map_err(|e| conn(e.to_string()))?;
    let status = response.status().as_u16();
    let server_ms = response
        .headers()
        .get("unseen-server-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_REPLY)
        .read_to_vec()
        .map_err(|e| conn(format!("reading the reply: {e}")))?;
    if status == 404 {
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        if json["error"]["code"] == "unknown_key" {
            return Ok(None);
        }
    }
    if !(200..300).contains(&status) {
        return Err(server_error(base, status, &body));
    }
    Ok(Some((body, server_ms)))
}

/// Bytes of evaluation keys sent with a request (`None`: the server had them).
type KeysSent = Option<usize>;

/// Sends a request, registering the folder's evaluation keys first if the server does not
/// have them. Returns the reply, the server time and the size of the keys if they were sent.
fn send(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    request: &[u8],
) -> Result<(Vec<u8>, Option<f64>, KeysSent), Error> {
    let mut registered_keys = None;
    let (reply, server_ms) = match infer(base, &client.spec.model, &client.spec.key_id, request)? {
        Some(r) => r,
        None => {
            let bundle = client.eval_keys(dir)?;
            let id = register_keys(base, &bundle)?;
            if id != client.spec.key_id {
                return Err(Error::Server {
                    code: "key_id".into(),
                    message: format!(
                        "the server registered the keys as {id}, their SHA-256 is {}",
                        client.spec.key_id
                    ),
                });
            }
            registered_keys = Some(bundle.len());
            infer(base, &client.spec.model, &id, request)?.ok_or_else(|| Error::Server {
                code: "unknown_key".into(),
                message: "the server forgot the keys it just registered".into(),
            })?
        }
    };
    Ok((reply, server_ms, registered_keys))
}

/// Encrypts, sends (registering the keys if needed) and decrypts, timing each part.
fn round<T>(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    encrypt: impl FnOnce() -> Result<Vec<u8>, Error>,
    decrypt: impl FnOnce(&[u8]) -> Result<T, Error>,
) -> Result<(T, Costs), Error> {
    let t = Instant::now();
    let request = encrypt()?;
    let encrypt = t.elapsed();
    let t = Instant::now();
    let (reply, server_ms, registered_keys) = send(base, dir, client, &request)?;
    let round_trip = t.elapsed();
    let t = Instant::now();
    let out = decrypt(&reply)?;
    let costs = Costs {
        encrypt,
        round_trip,
        server_ms,
        decrypt: t.elapsed(),
        upload_bytes: request.len(),
        download_bytes: reply.len(),
        registered_keys,
    };
    Ok((out, costs))
}

/// Encrypts `pixels`, has the server at `base` evaluate the folder's model (registering the
/// evaluation keys first if it does not have them) and decrypts the class.
pub fn predict_image(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    pixels: &[u8],
) -> Result<RemoteInference, Error> {
    let (logits, costs) = round(
        base,
        dir,
        client,
        || client.encrypt_image(pixels),
        |reply| client.decrypt_logits(reply),
    )?;
    Ok(RemoteInference {
        result: classify(logits),
        costs,
    })
}

/// Like [`predict_image`], for a model that takes a feature vector (`x` raw, normalised here).
pub fn predict_features(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    x: &[f64],
) -> Result<RemoteInference, Error> {
    let (logits, costs) = round(
        base,
        dir,
        client,
        || client.encrypt_input(&client.normalize_features(x)?),
        |reply| client.decrypt_logits(reply),
    )?;
    Ok(RemoteInference {
        result: classify(logits),
        costs,
    })
}

/// Like [`predict_batch`], for a model that takes feature vectors (raw, normalised here).
pub fn predict_batch_features(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    inputs: &[Vec<f64>],
) -> Result<RemoteBatch, Error> {
    let (logits, costs) = round(
        base,
        dir,
        client,
        || {
            let normalised = inputs
                .iter()
                .map(|x| client.normalize_features(x))
                .collect::<Result<Vec<_>, _>>()?;
            client.encrypt_batch_inputs(&normalised)
        },
        |reply| client.decrypt_batch(reply, inputs.len()),
    )?;
    Ok(RemoteBatch {
        results: logits.into_iter().map(classify).collect(),
        costs,
    })
}

/// A batch classified through a server, with its costs.
#[derive(Debug, Clone)]
pub struct RemoteBatch {
    /// One result per image.
    pub results: Vec<Classification>,
    /// What it cost.
    pub costs: Costs,
}

/// Encrypts `images` as one batch (one image per slot), has the server classify them all in one
/// evaluation, and decrypts the classes.
pub fn predict_batch(
    base: &str,
    dir: &Path,
    client: &CnnClient,
    images: &[&[u8]],
) -> Result<RemoteBatch, Error> {
    let (logits, costs) = round(
        base,
        dir,
        client,
        || client.encrypt_batch(images),
        |reply| client.decrypt_batch(reply, images.len()),
    )?;
    Ok(RemoteBatch {
        results: logits.into_iter().map(classify).collect(),
        costs,
    })
}
