//! The pure core of every unseen CKKS client: the command line, the Python package and the
//! browser page all use it, so a ciphertext made in a page is byte for byte the one the CLI
//! makes from the same randomness.
//!
//! It has no file system, network, GMP or async runtime: callers bring bytes and randomness and
//! take bytes back. Transport (HTTP, key folders, IndexedDB) stays in the caller.
//!
//! * [`ClientSpec`]: what a client keeps besides its secret key (`client.json`).
//! * [`generate`]: a secret key, the evaluation keys and the client spec from a served model's
//!   spec (`GET /v1/models/{name}`), with progress.
//! * [`CnnCore`]: a loaded client: inputs to ciphertexts, replies to logits.
//! * [`picture`]: pictures of any size and layout to the model's gray input.
//! * [`classify`]: logits to a class and probabilities.

pub mod picture;

use std::sync::Arc;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, OsRng, RngCore};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unseen_circuits::{EvaluationKeys, STREAM_CHUNK};
use unseen_ckks::{Ciphertext, Encoder, GaloisKeys, Parameters, RelinKey, SecretKey};
use unseen_model::{Normalization, Shape};
use unseen_wire::cnn::{ModelSpec, CKKS_SCHEME, CNN_KIND};
use zeroize::Zeroizing;

/// `format` of a client spec (`client.json`).
pub const CLIENT_FORMAT: &str = "unseen-cnn-client";

/// What can go wrong in the core, each one readable line.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Input of the wrong size or kind, a spec the client cannot use.
    #[error("{0}")]
    Input(String),
    /// CKKS failure (corrupt reply, parameters mismatch, ...).
    #[error(transparent)]
    Ckks(#[from] unseen_ckks::Error),
}

/// What a client keeps besides its secret key: parameters, the input layout of the circuit,
/// the class names and the key id. Stored as `client.json` by the CLI and in IndexedDB by the
/// browser page.
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
    /// For each slot of the vectors one input is encrypted in (one after the other: a
    /// single-image request of several ciphertexts when there are several), the index of the
    /// input value it holds.
    pub input_layout: Vec<Option<usize>>,
    /// Slot of each output (logit).
    pub output_slots: Vec<usize>,
    /// Batch mode: ciphertexts per batch (one per input value) and the level they are
    /// encrypted at.
    pub batch_inputs: usize,
    /// Level of batch ciphertexts.
    pub batch_start_level: usize,
    /// SHA-256 of the evaluation-key bundle, hex.
    pub key_id: String,
}

impl ClientSpec {
    /// Parses and checks a client spec (JSON).
    pub fn from_json(text: &[u8]) -> Result<Self, Error> {
        let spec: ClientSpec = serde_json::from_slice(text)
            .map_err(|e| Error::Input(format!("not a client description: {e}")))?;
        if spec.format != CLIENT_FORMAT {
            return Err(Error::Input(format!("format is not {CLIENT_FORMAT}")));
        }
        spec.check(&*spec.parameters()?)?;
        Ok(spec)
    }

    /// The spec as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // a derived Serialize of plain data cannot fail
        serde_json::to_vec_pretty(self).unwrap_or_default()
    }

    /// The parameters of the spec's preset.
    pub fn parameters(&self) -> Result<Arc<Parameters>, Error> {
        let preset = unseen_ckks::Preset::from_name(&self.preset)
            .ok_or_else(|| Error::Input(format!("unknown preset '{}'", self.preset)))?;
        Ok(Parameters::preset(preset)?)
    }

    /// Checks the description against its parameters.
    fn check(&self, params: &Parameters) -> Result<(), Error> {
        let inputs = self.input.len();
        if self.normalization.check(self.input).is_err()
            || self.classes.len() != self.output_slots.len()
            || self.input_layout.is_empty()
            || !self.input_layout.len().is_multiple_of(params.slots())
            || self.input_layout.len() / params.slots() > unseen_circuits::MAX_INPUT_VECTORS
            || self.input_layout.iter().flatten().any(|i| *i >= inputs)
            || self.output_slots.iter().any(|s| *s >= params.slots())
            || self.output_slots.is_empty()
            || self.start_level > params.max_level()
            || self.batch_start_level > params.max_level()
            || self.batch_inputs != inputs
            || !(self.input_scale.is_finite() && self.input_scale >= 1.0)
        {
            return Err(Error::Input("inconsistent circuit description".into()));
        }
        Ok(())
    }

    /// Rows and columns of a single-channel image input, or why the input is something else.
    pub fn gray_image(&self) -> Result<(usize, usize), Error> {
        match self.input {
            Shape::Image(1, h, w) => Ok((h, w)),
            other => Err(Error::Input(format!(
                "the model takes {other}, not a single-channel image (pictures are read as gray)"
            ))),
        }
    }
}

/// A ChaCha20 generator seeded with 32 bytes from the OS's CSPRNG: one call to the OS (one
/// `crypto.getRandomValues` in a browser) per key set or ciphertext instead of one per
/// sample, which in a browser cost more than the encryption itself.
pub fn seeded_csprng() -> SeededRng {
    let mut seed = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut *seed);
    SeededRng(ChaCha20Rng::from_seed(*seed))
}

/// The generator of [`seeded_csprng`]. Its state would replay the secret key or the noise it
/// drew, so it is overwritten when dropped (ChaCha20Rng has no zeroize of its own).
pub struct SeededRng(ChaCha20Rng);

impl RngCore for SeededRng {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.0.try_fill_bytes(dest)
    }
}

impl CryptoRng for SeededRng {}

impl Drop for SeededRng {
    fn drop(&mut self) {
        // a fresh zero-seeded state over the old one (key and buffered output), kept from
        // being optimised away as a dead store
        self.0 = ChaCha20Rng::from_seed([0; 32]);
        std::hint::black_box(&mut self.0);
    }
}

/// Hex SHA-256 of a key bundle: its id on every server.
pub fn key_id(bundle: &[u8]) -> String {
    Sha256::digest(bundle)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Keys made for a model: the client (secret key inside) and the evaluation keys to register.
pub struct Generated {
    /// The client, ready to encrypt and decrypt.
    pub client: CnnCore,
    /// The evaluation-key bundle (relinearisation and Galois keys), sent to the server once.
    pub eval_keys: Vec<u8>,
    /// Galois keys in the bundle.
    pub rotation_keys: usize,
}

/// Makes keys for a served model from its spec (`GET /v1/models/{name}`): a secret key, the
/// relinearisation key and exactly the Galois keys the spec lists, each at its level.
/// `progress(done, total)` is called after each Galois key.
pub fn generate<R: RngCore + CryptoRng>(
    spec: &ModelSpec,
    rng: &mut R,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Generated, Error> {
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
    if spec.hoisted_rotations.len() > params.slots() {
        return Err(bad("more hoisted rotations than the preset has slots"));
    }
    let mut client = ClientSpec {
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
        key_id: String::new(),
    };
    client.check(&params).map_err(|e| bad(&e.to_string()))?;
    let sk = SecretKey::generate(&params, rng);
    let keys = EvaluationKeys {
        relin: RelinKey::generate_with(&sk, relin, spec.relin_digits(), rng),
        galois: GaloisKeys::generate_each(&sk, &spec.galois_keys(), false, rng, progress),
    };
    let eval_keys = keys.to_bytes();
    client.key_id = key_id(&eval_keys);
    Ok(Generated {
        rotation_keys: keys.galois.galois_elements().len(),
        client: CnnCore::new(client, sk, params),
        eval_keys,
    })
}

/// A loaded client: its spec and secret key. Encryption draws from [`seeded_csprng`] (the OS's
/// CSPRNG, `crypto.getRandomValues` in a browser) unless a generator is passed to the `_with`
/// forms.
pub struct CnnCore {
    /// The client's description.
    pub spec: ClientSpec,
    params: Arc<Parameters>,
    sk: SecretKey,
    encoder: Encoder,
}

impl CnnCore {
    fn new(spec: ClientSpec, sk: SecretKey, params: Arc<Parameters>) -> Self {
        Self {
            encoder: Encoder::new(&params),
            params,
            sk,
            spec,
        }
    }

    /// A client from its spec (JSON) and its secret key's bytes.
    pub fn restore(spec_json: &[u8], secret_key: &[u8]) -> Result<Self, Error> {
        let spec = ClientSpec::from_json(spec_json)?;
        Self::from_spec(spec, secret_key)
    }

    /// A client from a checked spec and its secret key's bytes.
    pub fn from_spec(spec: ClientSpec, secret_key: &[u8]) -> Result<Self, Error> {
        let params = spec.parameters()?;
        spec.check(&params)?;
        let sk = SecretKey::from_bytes(secret_key, &params)
            .map_err(|e| Error::Input(format!("secret key: {e}")))?;
        Ok(Self::new(spec, sk, params))
    }

    /// The secret key's bytes, to be kept by the caller where only the user can read them.
    pub fn secret_key_bytes(&self) -> Zeroizing<Vec<u8>> {
        self.sk.to_bytes()
    }

    /// Inputs one batch holds (the slot count).
    pub fn batch_capacity(&self) -> usize {
        self.params.slots()
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
        self.encrypt_input_with(x, &mut seeded_csprng())
    }

    /// [`Self::encrypt_input`] with the caller's generator.
    pub fn encrypt_input_with<R: RngCore + CryptoRng>(
        &self,
        x: &[f64],
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        if x.len() != self.spec.input.len() || x.iter().any(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "{} values, the model takes {} finite values",
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
        let vectors: Vec<&[f64]> = slots.chunks(self.params.slots()).collect();
        if let [one] = vectors[..] {
            return Ok(self.encrypt_vector(one, rng)?.to_bytes());
        }
        // several vectors (a list): on every core, each with a generator seeded from `rng`
        let seeds: Vec<Zeroizing<[u8; 32]>> = vectors
            .iter()
            .map(|_| {
                let mut seed = Zeroizing::new([0u8; 32]);
                rng.fill_bytes(&mut *seed);
                seed
            })
            .collect();
        let cts = vectors
            .par_iter()
            .zip(&seeds)
            .map(|(v, seed)| self.encrypt_vector(v, &mut SeededRng(ChaCha20Rng::from_seed(**seed))))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(unseen_ckks::serialize::ciphertexts_to_bytes(&cts))
    }

    /// One input vector encrypted at the circuit's start level and input scale.
    fn encrypt_vector<R: RngCore + CryptoRng>(
        &self,
        v: &[f64],
        rng: &mut R,
    ) -> Result<Ciphertext, Error> {
        let pt = self
            .encoder
            .encode_real(v, self.spec.start_level, self.spec.input_scale)?;
        Ok(self.sk.encrypt(&pt, rng)?)
    }

    /// Encrypts one image (`C x H x W` pixels 0..=255) as the circuit expects it.
    pub fn encrypt_image(&self, pixels: &[u8]) -> Result<Vec<u8>, Error> {
        self.encrypt_input(&self.normalize_image(pixels)?)
    }

    /// [`Self::encrypt_image`] with the caller's generator.
    pub fn encrypt_image_with<R: RngCore + CryptoRng>(
        &self,
        pixels: &[u8],
        rng: &mut R,
    ) -> Result<Vec<u8>, Error> {
        self.encrypt_input_with(&self.normalize_image(pixels)?, rng)
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
        if let Some(bad) = inputs
            .iter()
            .find(|x| x.len() != self.spec.batch_inputs || x.iter().any(|v| !v.is_finite()))
        {
            return Err(Error::Input(format!(
                "{} values, the model takes {} finite values",
                bad.len(),
                self.spec.batch_inputs
            )));
        }
        // one ciphertext per input value, on every core, each with its own seeded generator;
        // serialized a part at a time, so the batch never exists as ciphertexts and bytes at once
        let mut list = unseen_ckks::serialize::CiphertextListWriter::new();
        let features = self.spec.batch_inputs;
        for part in (0..features).step_by(STREAM_CHUNK) {
            let cts = (part..(part + STREAM_CHUNK).min(features))
                .into_par_iter()
                .map(|f| {
                    let slots: Vec<f64> = inputs.iter().map(|x| x[f]).collect();
                    let pt = self.encoder.encode_real(
                        &slots,
                        self.spec.batch_start_level,
                        self.params.default_scale(),
                    )?;
                    self.sk.encrypt(&pt, &mut seeded_csprng())
                })
                .collect::<Result<Vec<_>, _>>()?;
            list.push_all(&cts);
        }
        Ok(list.finish())
    }

    /// Decrypts a batch reply to the logits of the first `count` inputs.
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
            .par_iter()
            .map(|c| self.encoder.decode_real(&self.sk.decrypt(c)?))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((0..count.min(self.params.slots()))
            .map(|i| per_class.iter().map(|v| v[i]).collect())
            .collect())
    }

    /// Decrypts a single-input reply to the logits.
    pub fn decrypt_logits(&self, reply: &[u8]) -> Result<Vec<f64>, Error> {
        let ct = Ciphertext::from_bytes(reply, &self.params)?;
        let slots = self.encoder.decode_real(&self.sk.decrypt(&ct)?)?;
        Ok(self.spec.output_slots.iter().map(|s| slots[*s]).collect())
    }
}

/// Class, softmax probabilities and logits.
#[derive(Debug, Clone, Serialize)]
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
