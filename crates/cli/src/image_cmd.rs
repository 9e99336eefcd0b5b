//! `unseen keygen ckks` and `unseen predict-image`: the client side of encrypted image
//! classification.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use unseen_client::cnn::{predict_image as remote_predict, CnnClient, RemoteInference};
use unseen_ml::digits::{Images, Split};

/// Arguments of `unseen keygen ckks`.
#[derive(Debug, Args)]
pub struct CkksKeygenArgs {
    /// The model the keys are for: a model folder (model.json + model.safetensors), or with
    /// --server the name of a model it serves.
    #[arg(long)]
    model: String,
    /// Make the keys from the client spec the server publishes (`GET /v1/models/NAME`), with no
    /// access to the weights.
    #[arg(long)]
    server: Option<String>,
    /// Key folder to write: secret.key (stays here), eval.keys (for the server), client.json.
    #[arg(long)]
    out: PathBuf,
    /// Name of the model on the server (default: the model folder's name).
    #[arg(long, conflicts_with = "server")]
    name: Option<String>,
    /// With a model folder: the digit layout the server asks for (`unseen serve --key-digits`;
    /// with --server the spec says it).
    #[arg(long, value_enum, conflicts_with = "server", default_value_t = crate::bench::KeyLayoutArg::Mixed)]
    key_digits: crate::bench::KeyLayoutArg,
    /// Replace an existing key folder.
    #[arg(long)]
    force: bool,
}

/// Arguments of `unseen predict-image`.
#[derive(Debug, Args)]
pub struct PredictImageArgs {
    /// Server base URL, http://HOST:PORT or https://HOST:PORT (see --ca).
    #[arg(long)]
    server: String,
    /// Key folder made by `unseen keygen ckks`.
    #[arg(long)]
    keys: PathBuf,
    /// A PNG image (any size; converted to gray and resized; white on black like MNIST).
    #[arg(
        long,
        conflicts_with = "mnist_index",
        required_unless_present = "mnist_index"
    )]
    image: Option<PathBuf>,
    /// Index of an image of the test set of the model's dataset (MNIST or Fashion-MNIST).
    #[arg(long)]
    mnist_index: Option<usize>,
    /// Classify this many test images from --mnist-index on, in one encrypted batch (one image
    /// per slot, up to 4096) instead of one image.
    #[arg(long, requires = "mnist_index")]
    batch: Option<usize>,
    /// Send the batch as server-side jobs (`/v1/jobs`, on servers with a database key store):
    /// one job per full ciphertext of images, so --batch may exceed one ciphertext's slots;
    /// the client waits for every job and fetches its result.
    #[arg(long, requires = "batch")]
    jobs: bool,
    /// With --jobs: images per job (default: as many as a ciphertext has slots).
    #[arg(long, requires = "jobs")]
    per_job: Option<usize>,
    /// Folder holding mnist/ and fashion-mnist/ (default: the vendored data/).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Model name from a model folder path.
pub fn folder_name(dir: &Path) -> String {
    dir.canonicalize()
        .ok()
        .as_deref()
        .unwrap_or(dir)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into())
}

/// `unseen keygen ckks`.
pub fn keygen_ckks(a: CkksKeygenArgs) -> Result<()> {
    if a.out.join("secret.key").exists() && !a.force {
        bail!(
            "{} already holds keys (use --force to replace them)",
            a.out.display()
        );
    }
    let (name, report) = match &a.server {
        Some(server) => {
            let base = http_base(server)?;
            let spec = unseen_client::cnn::fetch_spec(&base, &a.model)
                .with_context(|| format!("fetching the spec of model '{}'", a.model))?;
            (a.model.clone(), CnnClient::keygen_for(&spec, &a.out)?)
        }
        None => {
            let dir = PathBuf::from(&a.model);
            let name = a.name.clone().unwrap_or_else(|| folder_name(&dir));
            let report = CnnClient::keygen_with(&dir, &name, a.key_digits.into(), &a.out)?;
            (name, report)
        }
    };
    println!(
        "{}",
        json!({
            "keys": a.out.display().to_string(),
            "model": name,
            "key_id": report.key_id,
            "eval_keys_bytes": report.eval_keys_bytes,
            "rotation_keys": report.rotation_keys,
            "keygen_ms": report.elapsed.as_secs_f64() * 1e3,
        })
    );
    Ok(())
}

/// The data set the client's model was trained on, if unseen ships it.
fn spec_dataset(client: &CnnClient) -> Result<unseen_ml::digits::DatasetKind> {
    let name = client.spec.dataset.as_deref().context(
        "the model names no data set unseen ships, so it has no test images: give --image FILE.png",
    )?;
    name.parse().map_err(anyhow::Error::msg)
}

/// The pixels of a test image and its label, or of a PNG file.
pub fn load_image(
    client: &CnnClient,
    image: Option<&Path>,
    index: Option<usize>,
    data: Option<PathBuf>,
) -> Result<(Vec<u8>, Option<usize>, String)> {
    let (rows, cols) = client.spec.gray_image()?;
    match (image, index) {
        (Some(path), _) => Ok((
            unseen_client::picture::read_png(path, rows, cols)?,
            None,
            path.display().to_string(),
        )),
        (None, Some(i)) => {
            let root = crate::cnn_cmd::data_root(data)?;
            let kind = spec_dataset(client)?;
            let test = Images::load(&root, kind, Split::Test)?;
            if i >= test.len() {
                bail!(
                    "--mnist-index {i} is out of range: the {} test set has {} images",
                    kind.dir_name(),
                    test.len()
                );
            }
            if test.rows != rows || test.cols != cols {
                bail!(
                    "the model takes {rows}x{cols} images, the test set has {}x{}",
                    test.rows,
                    test.cols
                );
            }
            Ok((
                test.image(i).to_vec(),
                Some(usize::from(test.labels[i])),
                format!("{} test image {i}", kind.dir_name()),
            ))
        }
        (None, None) => bail!("give --image FILE.png or --mnist-index I"),
    }
}

/// The HTTP base URL of `--server` (the CNN API has no legacy TCP protocol).
pub(crate) fn http_base(server: &str) -> Result<String> {
    match server.parse::<unseen_client::salary::Server>() {
        Ok(unseen_client::salary::Server::Http(base)) => Ok(base),
        Ok(unseen_client::salary::Server::Legacy(_)) => {
            bail!("--server must be http(s)://HOST:PORT (encrypted images go through the HTTP API)")
        }
        Err(e) => bail!("--server: {e}"),
    }
}

/// Encrypts, sends and decrypts one image; the report as JSON.
pub fn remote(
    server: &str,
    keys: &Path,
    client: &CnnClient,
    pixels: &[u8],
) -> Result<(RemoteInference, serde_json::Value)> {
    let r = remote_predict(&http_base(server)?, keys, client, pixels)?;
    let class = &client.spec.classes[r.result.class.min(client.spec.classes.len() - 1)];
    let report = json!({
        "class": r.result.class,
        "label": class,
        "probability": r.result.probabilities[r.result.class],
        "logits": r.result.logits,
        "client_encrypt_ms": r.costs.encrypt.as_secs_f64() * 1e3,
        "round_trip_ms": r.costs.round_trip.as_secs_f64() * 1e3,
        "server_ms": r.costs.server_ms,
        "client_decrypt_ms": r.costs.decrypt.as_secs_f64() * 1e3,
        "upload_bytes": r.costs.upload_bytes,
        "download_bytes": r.costs.download_bytes,
        "registered_keys_bytes": r.costs.registered_keys,
    });
    Ok((r, report))
}

/// `unseen predict-image --batch N`: test images `[index, index + N)` in one batch.
fn predict_batch(a: &PredictImageArgs, client: &CnnClient, index: usize, n: usize) -> Result<()> {
    let base = http_base(&a.server)?;
    let root = crate::cnn_cmd::data_root(a.data.clone())?;
    let kind = spec_dataset(client)?;
    let test = Images::load(&root, kind, Split::Test)?;
    if n == 0 || index.checked_add(n).is_none_or(|end| end > test.len()) {
        bail!(
            "--mnist-index {index} --batch {n} is out of range: the {} test set has {} images",
            kind.dir_name(),
            test.len()
        );
    }
    let images: Vec<&[u8]> = (index..index + n).map(|i| test.image(i)).collect();
    let capacity = client.batch_capacity();
    let per_job = a.per_job.unwrap_or(capacity);
    if a.jobs && !(1..=capacity).contains(&per_job) {
        bail!(
            "--per-job {per_job}: a job holds 1 to {capacity} images (the slots of a ciphertext)"
        );
    }
    let r = if a.jobs {
        unseen_client::jobs::predict_batch_jobs(
            &base,
            &a.keys,
            client,
            &images,
            per_job,
            std::time::Duration::from_secs(3600),
        )
        .with_context(|| format!("classifying {n} test images in batch jobs"))?
    } else {
        unseen_client::cnn::predict_batch(&base, &a.keys, client, &images)
            .with_context(|| format!("classifying {n} test images in one batch"))?
    };
    let correct = r
        .results
        .iter()
        .zip(index..index + n)
        .filter(|(c, i)| c.class == usize::from(test.labels[*i]))
        .count();
    let report = json!({
        "images": n,
        "jobs": a.jobs.then(|| n.div_ceil(per_job)),
        "first_index": index,
        "accuracy": correct as f64 / n as f64,
        "classes": r.results.iter().map(|c| c.class).collect::<Vec<_>>(),
        "client_encrypt_ms": r.costs.encrypt.as_secs_f64() * 1e3,
        "round_trip_ms": r.costs.round_trip.as_secs_f64() * 1e3,
        "server_ms": r.costs.server_ms,
        "server_ms_per_image": r.costs.server_ms.map(|m| m / n as f64),
        "client_decrypt_ms": r.costs.decrypt.as_secs_f64() * 1e3,
        "upload_bytes": r.costs.upload_bytes,
        "download_bytes": r.costs.download_bytes,
        "registered_keys_bytes": r.costs.registered_keys,
    });
    if a.json {
        println!("{report}");
    } else {
        println!(
            "{n} {} test images from {index} in {}: {correct} correct ({:.2}%)",
            kind.dir_name(),
            if a.jobs {
                format!("{} encrypted batch job(s)", n.div_ceil(per_job))
            } else {
                "one encrypted batch".into()
            },
            100.0 * correct as f64 / n as f64
        );
        println!(
            "client encrypt {:.0} ms, round trip {:.0} ms (server {}), client decrypt {:.0} ms; sent {} B, received {} B",
            r.costs.encrypt.as_secs_f64() * 1e3,
            r.costs.round_trip.as_secs_f64() * 1e3,
            r.costs.server_ms
                .map(|m| format!("{m:.0} ms, {:.3} ms per image", m / n as f64))
                .unwrap_or_else(|| "n/a".into()),
            r.costs.decrypt.as_secs_f64() * 1e3,
            r.costs.upload_bytes,
            r.costs.download_bytes
        );
    }
    Ok(())
}

/// `unseen predict-image`.
pub fn predict_image(a: PredictImageArgs) -> Result<()> {
    let client = CnnClient::load(&a.keys)?;
    if let (Some(n), Some(index)) = (a.batch, a.mnist_index) {
        return predict_batch(&a, &client, index, n);
    }
    let (pixels, label, what) = load_image(&client, a.image.as_deref(), a.mnist_index, a.data)?;
    let (r, mut report) = remote(&a.server, &a.keys, &client, &pixels)
        .with_context(|| format!("classifying {what}"))?;
    if let Some(obj) = report.as_object_mut() {
        obj.insert("image".into(), json!(what));
        obj.insert("true_class".into(), json!(label));
    }
    if a.json {
        println!("{report}");
        return Ok(());
    }
    let name = |c: usize| client.spec.classes.get(c).cloned().unwrap_or_default();
    println!(
        "{what}: class {} ({}) with probability {:.3}{}",
        r.result.class,
        name(r.result.class),
        r.result.probabilities[r.result.class],
        label
            .map(|l| format!(", true class {l} ({})", name(l)))
            .unwrap_or_default()
    );
    if let Some(bytes) = r.costs.registered_keys {
        println!("registered evaluation keys with the server ({bytes} bytes, once per key folder)");
    }
    println!(
        "client encrypt {:.1} ms, round trip {:.1} ms (server {}), client decrypt {:.2} ms; sent {} B, received {} B",
        r.costs.encrypt.as_secs_f64() * 1e3,
        r.costs.round_trip.as_secs_f64() * 1e3,
        r.costs.server_ms
            .map(|m| format!("{m:.1} ms"))
            .unwrap_or_else(|| "n/a".into()),
        r.costs.decrypt.as_secs_f64() * 1e3,
        r.costs.upload_bytes,
        r.costs.download_bytes
    );
    Ok(())
}
