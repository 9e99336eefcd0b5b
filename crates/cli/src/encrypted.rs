//! `unseen eval --encrypted`: the full test loop on CKKS ciphertexts, in one process, with the
//! client's and the server's work timed separately.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::json;
use unseen_circuits::{compile_model, BatchRun, CompiledModel, EvaluationKeys, STREAM_CHUNK};
use unseen_ckks::serialize::{ciphertexts_from_bytes, ciphertexts_to_bytes};
use unseen_ckks::{Encoder, Evaluator, RelinKey, SecretKey};
use unseen_client::cnn::{generate, seeded_csprng, CnnCore};
use unseen_model::{argmax, Compiled, ModelCard, Network};
use unseen_server::cnn::CnnModel;

use crate::image_cmd::folder_name;
use crate::samples::Samples;

/// Packing of encrypted evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Whichever the compiler's cost estimate prefers for the number of inputs.
    Auto,
    /// One image per ciphertext.
    Single,
    /// One image per slot, one ciphertext per pixel.
    Batch,
}

impl Mode {
    /// `Single` or `Batch`: `Auto` resolved for `inputs` inputs of `compiled`.
    pub fn resolve(self, compiled: &CompiledModel, inputs: usize) -> Mode {
        match self {
            Mode::Auto if compiled.preferred_mode(inputs) == "batch" => Mode::Batch,
            Mode::Auto => Mode::Single,
            m => m,
        }
    }
}

/// Accuracy, agreement and logit error, accumulated image by image, and the decrypted logits.
#[derive(Default)]
pub struct Tally {
    images: usize,
    correct: usize,
    plain_correct: usize,
    agree: usize,
    max_err: f64,
    max_abs_logit: f64,
    /// Per class: samples, correct in the clear, correct encrypted.
    pub per_class: Vec<(usize, usize, usize)>,
    /// Decrypted logits, sample by sample.
    pub logits: Vec<Vec<f64>>,
}

impl Tally {
    /// Records one image: decrypted logits, plaintext logits, true label.
    pub(crate) fn record(&mut self, logits: &[f64], plain: &[f32], label: usize) {
        self.logits.push(logits.to_vec());
        for (a, b) in logits.iter().zip(plain) {
            self.max_err = self.max_err.max((a - f64::from(*b)).abs());
            self.max_abs_logit = self.max_abs_logit.max(f64::from(b.abs()));
        }
        let enc_class = logits
            .iter()
            .enumerate()
            .fold(0, |best, (j, v)| if *v > logits[best] { j } else { best });
        let plain_class = argmax(plain);
        self.images += 1;
        self.correct += usize::from(enc_class == label);
        self.plain_correct += usize::from(plain_class == label);
        self.agree += usize::from(enc_class == plain_class);
        if self.per_class.len() < plain.len() {
            self.per_class.resize(plain.len(), (0, 0, 0));
        }
        if let Some(c) = self.per_class.get_mut(label) {
            c.0 += 1;
            c.1 += usize::from(plain_class == label);
            c.2 += usize::from(enc_class == label);
        }
    }

    /// `accuracy`, `plaintext_accuracy`, `agreement`, `max_logit_error`.
    fn json(&self) -> serde_json::Value {
        let n = self.images.max(1) as f64;
        json!({
            "accuracy": self.correct as f64 / n,
            "plaintext_accuracy": self.plain_correct as f64 / n,
            "agreement": self.agree as f64 / n,
            "max_logit_error": self.max_err,
            // of the plaintext logits: the circuit leaves room for `logit_headroom`
            "max_abs_logit": self.max_abs_logit,
        })
    }
}

/// Compiles the network at `preset` (or the smallest that fits) and records the compiler's
/// choice (preset, depth, costs) in its card, which every later use follows; a network that fits
/// no preset is refused here, before anything is saved.
pub fn record_compilation(
    net: &Network,
    card: &mut ModelCard,
    preset: Option<unseen_ckks::Preset>,
) -> Result<()> {
    let c = compile_model(net, card.logit_bound, preset)
        .context("compiling the network to a CKKS circuit")?;
    card.compiled = Some(Compiled {
        preset: c.params.name().to_string(),
        depth: c.program.depth(),
        rotations: c.program.rotation_count(),
        plain_multiplications: c.program.plain_mul_count(),
        mode: c.preferred_mode(1).to_string(),
    });
    Ok(())
}

/// Merges the fields of `extra` into `base` (both JSON objects).
fn merged(mut base: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    if let (Some(b), serde_json::Value::Object(e)) = (base.as_object_mut(), extra) {
        b.extend(e);
    }
    base
}

/// The median of `v` (the upper one of an even count; NaN for none), sorting it.
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// One client and the server's model in one process, as they are deployed: the client core
/// makes the keys from the model's spec (`GET /v1/models/{name}`), encrypts and decrypts; the
/// server parses the key bundle as a registration does, and each request goes through
/// [`CnnModel::infer`] (parsing, checks, evaluation, reply), as `POST .../infer` does.
pub struct SingleImage {
    server: Arc<CnnModel>,
    client: CnnCore,
    keys: Arc<EvaluationKeys>,
    /// What the report says of the key set and the model.
    fixed: serde_json::Value,
}

/// One image through [`SingleImage`]: its decrypted logits, each side's time and the bytes
/// each way.
pub struct ImageRun {
    /// The decrypted logits.
    pub logits: Vec<f64>,
    /// Client: normalised input to request bytes.
    pub encrypt_ms: f64,
    /// Server: request bytes to reply bytes.
    pub server_ms: f64,
    /// Client: reply bytes to logits.
    pub decrypt_ms: f64,
    /// Request size.
    pub upload: usize,
    /// Reply size.
    pub download: usize,
}

/// The server's model for `compiled` (its plaintexts encoded once) and the time that took.
pub fn serve_compiled(
    model: &Path,
    card: &ModelCard,
    compiled: CompiledModel,
) -> Result<(Arc<CnnModel>, f64)> {
    let t = Instant::now();
    let server = CnnModel::from_compiled(&folder_name(model), card.clone(), compiled)
        .map_err(anyhow::Error::msg)?;
    Ok((Arc::new(server), t.elapsed().as_secs_f64() * 1e3))
}

impl SingleImage {
    /// Loads the server's model for `compiled` and makes a client's keys for it (with the
    /// key layout of its plan), on the current thread pool.
    pub fn new(model: &Path, card: &ModelCard, compiled: CompiledModel) -> Result<Self> {
        let (server, prepare_ms) = serve_compiled(model, card, compiled)?;
        Self::with_server(model, server, prepare_ms)
    }

    /// A client of `server` (loaded in `prepare_ms`): its keys made from the server's spec
    /// and registered with it, on the current thread pool.
    pub fn with_server(model: &Path, server: Arc<CnnModel>, prepare_ms: f64) -> Result<Self> {
        // the client: a secret key and exactly the evaluation keys the spec lists, drawn from
        // the client core's generator (ChaCha20 seeded by the OS)
        let t = Instant::now();
        let made = generate(&server.spec, &mut seeded_csprng(), &mut |_, _| {})?;
        let keygen_ms = t.elapsed().as_secs_f64() * 1e3;
        let keys = EvaluationKeys::from_bytes(&made.eval_keys, server.params())
            .context("the server parsing the client's key bundle")?;
        if !server.key_shape().matches(&keys) {
            bail!("the client's keys are not those the model's spec asks for");
        }
        let program = &server.program;
        let fixed = json!({
            "model": model.display().to_string(),
            "mode": "single",
            "preset": server.params().name(),
            "client_keygen_ms": keygen_ms,
            "server_prepare_ms": prepare_ms,
            "key_digits": server.spec.key_digits,
            "eval_keys_bytes": made.eval_keys.len(),
            "eval_keys_memory_bytes": keys.memory_bytes(),
            "rotation_keys": made.rotation_keys,
            "rotations_per_image": program.rotation_count(),
            "logit_headroom": 2f64.powi(unseen_circuits::output_headroom_bits(program.output_bound) as i32),
        });
        Ok(Self {
            server,
            client: made.client,
            keys: Arc::new(keys),
            fixed,
        })
    }

    /// Encrypts `x` (normalised, as the network takes it), evaluates it and decrypts the
    /// logits, on the current thread pool.
    pub fn run(&self, x: &[f32]) -> Result<ImageRun> {
        let x: Vec<f64> = x.iter().map(|v| f64::from(*v)).collect();
        let t = Instant::now();
        let request = self.client.encrypt_input(&x)?;
        let encrypt_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let reply = self
            .server
            .infer(self.keys.clone(), &request)
            .map_err(|e| anyhow!("the server refused the request ({}): {}", e.code, e.message))?;
        let server_ms = t.elapsed().as_secs_f64() * 1e3;
        let t = Instant::now();
        let logits = self.client.decrypt_logits(&reply)?;
        let decrypt_ms = t.elapsed().as_secs_f64() * 1e3;
        Ok(ImageRun {
            logits,
            encrypt_ms,
            server_ms,
            decrypt_ms,
            upload: request.len(),
            download: reply.len(),
        })
    }

    /// The report's fields for a run of `runs` (medians of each side's time), with the tally.
    pub fn report(&self, runs: &[ImageRun], tally: &Tally) -> serde_json::Value {
        let median_of =
            |f: fn(&ImageRun) -> f64| median(&mut runs.iter().map(f).collect::<Vec<_>>());
        let last = runs.last();
        let report = merged(
            self.fixed.clone(),
            json!({
                "images": runs.len(),
                "server_single_image_ms": median_of(|r| r.server_ms),
                "client_encrypt_ms": median_of(|r| r.encrypt_ms),
                "client_decrypt_ms": median_of(|r| r.decrypt_ms),
                "upload_bytes": last.map_or(0, |r| r.upload),
                "download_bytes": last.map_or(0, |r| r.download),
                // client and evaluation in this one process
                "peak_rss_mb": peak_rss_mb(),
            }),
        );
        merged(report, tally.json())
    }
}

/// Encrypted evaluation of `images`, one request per image, through [`SingleImage`]; the
/// report as JSON and the tally.
pub fn eval_encrypted(
    model: &Path,
    net: &Network,
    card: &ModelCard,
    compiled: CompiledModel,
    images: &Samples,
) -> Result<(serde_json::Value, Tally)> {
    let harness = SingleImage::new(model, card, compiled)?;
    let bar = ProgressBar::new(images.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "encrypted eval [{bar:40}] {pos}/{len} images ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let mut tally = Tally::default();
    let mut runs = Vec::with_capacity(images.len());
    for i in 0..images.len() {
        let x = images.sample(i);
        let run = harness.run(x)?;
        tally.record(&run.logits, &net.logits(x, 1), images.labels[i]);
        runs.push(run);
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok((harness.report(&runs, &tally), tally))
}

/// Batch-mode encrypted evaluation of `images` (as many per batch as there are slots); the
/// report as JSON and the tally.
pub fn eval_encrypted_batch(
    model: &Path,
    net: &Network,
    compiled: CompiledModel,
    images: &Samples,
) -> Result<(serde_json::Value, Tally)> {
    let (params, program) = (compiled.params, compiled.batch);
    let mut rng = seeded_csprng();
    let sk = SecretKey::generate(&params, &mut rng);
    let level = program.start_level();
    let rlk = RelinKey::generate_for_level(&sk, level.saturating_sub(1), &mut rng);
    drop(rng);
    let eval_keys_bytes = rlk.to_bytes().len();
    let encoder = Encoder::new(&params);
    let per_batch = params.slots();
    let mut tally = Tally::default();
    let (mut server_s, mut enc_s, mut dec_s, mut upload, mut download) =
        (0.0f64, 0.0f64, 0.0f64, 0usize, 0usize);
    let mut batch_sizes = Vec::new();
    let bar = ProgressBar::new(images.len() as u64);
    for start in (0..images.len()).step_by(per_batch) {
        let end = (start + per_batch).min(images.len());
        let xs: Vec<&[f32]> = (start..end).map(|i| images.sample(i)).collect();
        // the client encrypts a part of the inputs at a time (one ciphertext per input value,
        // on every core) and the server adds each part to the outputs it feeds, so the batch
        // never exists whole in memory
        // each part crosses as bytes, a ciphertext list, as a request's parts do: the client
        // serializes what it encrypted and the server parses it before evaluating it
        let mut run = BatchRun::new(&program, &params, &rlk)?;
        for part in (0..program.inputs).step_by(STREAM_CHUNK) {
            let t = Instant::now();
            let inputs = (part..(part + STREAM_CHUNK).min(program.inputs))
                .into_par_iter()
                .map(|f| {
                    let slots: Vec<f64> = xs.iter().map(|x| f64::from(x[f])).collect();
                    let pt = encoder.encode_real(&slots, level, params.default_scale())?;
                    sk.encrypt(&pt, &mut seeded_csprng())
                })
                .collect::<Result<Vec<_>, _>>()?;
            let request = ciphertexts_to_bytes(&inputs);
            drop(inputs);
            enc_s += t.elapsed().as_secs_f64();
            upload += request.len();
            let t = Instant::now();
            run.push(ciphertexts_from_bytes(&request, &params, STREAM_CHUNK)?)?;
            server_s += t.elapsed().as_secs_f64();
        }
        let t = Instant::now();
        let evaluator = Evaluator::new(&params);
        let outputs = run
            .finish()?
            .iter()
            .map(|c| evaluator.drop_to_level(c, 0))
            .collect::<Result<Vec<_>, _>>()?;
        let (classes, reply) = (outputs.len(), ciphertexts_to_bytes(&outputs));
        server_s += t.elapsed().as_secs_f64();
        let t = Instant::now();
        download += reply.len();
        let outputs = ciphertexts_from_bytes(&reply, &params, classes)?;
        let decoded = outputs
            .par_iter()
            .map(|c| encoder.decode_real(&sk.decrypt(c)?))
            .collect::<Result<Vec<_>, _>>()?;
        dec_s += t.elapsed().as_secs_f64();
        for (k, x) in xs.iter().enumerate() {
            let logits: Vec<f64> = decoded.iter().map(|d| d[k]).collect();
            tally.record(&logits, &net.logits(x, 1), images.labels[start + k]);
        }
        batch_sizes.push(end - start);
        bar.inc((end - start) as u64);
    }
    bar.finish_and_clear();
    let n = images.len().max(1) as f64;
    let report = json!({
            "model": model.display().to_string(),
            "mode": "batch",
            "preset": params.name(),
            "images": images.len(),
            "batch_images": per_batch,
            "batches": batch_sizes.len(),
            "batch_server_ms_per_image": server_s * 1e3 / n,
            "client_encrypt_ms_per_image": enc_s * 1e3 / n,
            "client_decrypt_ms_per_image": dec_s * 1e3 / n,
            "eval_keys_bytes": eval_keys_bytes,
            "upload_bytes_per_image": upload as f64 / n,
            "download_bytes_per_image": download as f64 / n,
            "logit_headroom": 2f64.powi(unseen_circuits::output_headroom_bits(program.output_bound) as i32),
            // client and evaluation in this one process
            "peak_rss_mb": peak_rss_mb(),
    });
    Ok((merged(report, tally.json()), tally))
}

/// `unseen eval --encrypted --mode batch --server URL --keys DIR`: every sample through batch
/// jobs on a server (one job per full ciphertext), with the key folder's keys; the decrypted
/// logits compared with the plaintext network's here.
pub fn eval_encrypted_jobs(
    model: &Path,
    net: &Network,
    base: &str,
    keys: &Path,
    samples: &Samples,
) -> Result<(serde_json::Value, Tally)> {
    let client = unseen_client::cnn::CnnClient::load(keys)?;
    let per_job = client.batch_capacity();
    let started = Instant::now();
    let (logits, costs) = unseen_client::jobs::run_jobs(
        base,
        keys,
        &client,
        samples.len(),
        per_job,
        std::time::Duration::from_secs(24 * 3600),
        |range| {
            let inputs: Vec<Vec<f64>> = range
                .map(|i| samples.sample(i).iter().map(|v| f64::from(*v)).collect())
                .collect();
            client.encrypt_batch_inputs(&inputs)
        },
    )
    .with_context(|| {
        format!(
            "evaluating {} samples in batch jobs on {base}",
            samples.len()
        )
    })?;
    let seconds = started.elapsed().as_secs_f64();
    let mut tally = Tally::default();
    for (i, l) in logits.iter().enumerate() {
        let x = samples.sample(i);
        tally.record(l, &net.logits(x, 1), samples.labels[i]);
    }
    let n = samples.len().max(1) as f64;
    let report = json!({
        "model": model.display().to_string(),
        "mode": "batch-jobs",
        "server": base,
        "served_model": client.spec.model,
        "images": samples.len(),
        "batch_images": per_job,
        "jobs": samples.len().div_ceil(per_job),
        "seconds": seconds,
        "images_per_second": n / seconds.max(1e-9),
        "client_encrypt_ms_per_image": costs.encrypt.as_secs_f64() * 1e3 / n,
        "client_decrypt_ms_per_image": costs.decrypt.as_secs_f64() * 1e3 / n,
        "upload_bytes_per_image": costs.upload_bytes as f64 / n,
        "download_bytes_per_image": costs.download_bytes as f64 / n,
        "registered_keys_bytes": costs.registered_keys,
        "client_peak_rss_mb": peak_rss_mb(),
    });
    Ok((merged(report, tally.json()), tally))
}

/// This process's peak resident memory in MB (Linux), for reports.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}
