//! `unseen train cnn`, `unseen eval` and `unseen import`: HE-friendly CNNs in the clear.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rand::SeedableRng;
use serde_json::json;
use unseen_ml::cnn::files::{card_dataset, dataset_card};
use unseen_ml::cnn::train::{evaluate, normalize, train, EpochStats, TrainConfig};
use unseen_ml::digits::{DatasetKind, Images, Split};
use unseen_ml::plots;
use unseen_model::folder::{load_model, save_model, weights_from_safetensors};
use unseen_model::layers::ARCHITECTURES;
use unseen_model::{Architecture, ModelCard, Network, Normalization, Shape};

use crate::samples::Samples;

#[derive(Debug, Args)]
pub struct TrainCnnArgs {
    /// mnist or fashion-mnist.
    #[arg(long)]
    dataset: DatasetKind,
    /// Architecture: ciphernet (the reference network) or ciphernet-wide.
    #[arg(long, default_value = "ciphernet", conflicts_with = "arch_file")]
    arch: String,
    /// Architecture file: `{"name", "input": {"Image": [c, h, w]}, "layers": [...]}` (see the
    /// README's layer list).
    #[arg(long)]
    arch_file: Option<PathBuf>,
    /// Passes over the 60,000 training images.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-3)]
    lr: f32,
    /// Seed of initialisation and shuffling (same seed, same model).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output folder: model.safetensors, model.json, loss.png, accuracy.png, confusion.png.
    #[arg(long)]
    out: PathBuf,
    /// Folder holding mnist/ and fashion-mnist/ (default: the vendored data/).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Random translations of training images by up to N pixels (data augmentation).
    #[arg(long, default_value_t = 0)]
    augment_shift: usize,
    /// Mirror training images left-right at random (clothes, not digits).
    #[arg(long)]
    augment_flip: bool,
    /// Train with batch normalisation before each square, folded into the preceding layer when
    /// the model is saved (the saved network has the plain architecture).
    #[arg(long)]
    batch_norm: bool,
    /// Keep an exponential moving average of the weights with this decay and save it (Polyak
    /// averaging; 0 keeps the last weights).
    #[arg(long, default_value_t = 0.999)]
    weight_average: f32,
    /// Train on the first N training images only (quick runs).
    #[arg(long)]
    limit_train: Option<usize>,
    /// CKKS preset to compile for instead of the smallest whose depth fits: n8192-cnn,
    /// n16384-cnn or n32768-cnn.
    #[arg(long)]
    preset: Option<String>,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model folder (model.json + model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Evaluate the first N samples only.
    #[arg(long)]
    limit: Option<usize>,
    /// Which part of the model's data set: test (default) or train.
    #[arg(long, default_value = "test", value_parser = ["test", "train"])]
    split: String,
    /// Folder holding mnist/ and fashion-mnist/ (default: the vendored data/).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Evaluate on the rows of this CSV file instead of a data set: a header, the input values
    /// of one sample per row (pixels 0-255 or raw features) and a `label` column.
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Also draw the confusion matrix into this PNG file.
    #[arg(long)]
    confusion: Option<PathBuf>,
    /// Evaluate on CKKS-encrypted inputs: the client encrypts each, the compiled circuit runs on
    /// the ciphertexts, the client decrypts.
    #[arg(long)]
    encrypted: bool,
    /// Encrypted mode: single (one input per ciphertext, low latency), batch (one input per
    /// slot, high throughput) or auto (the compiler's cost estimate for this many inputs).
    #[arg(long, default_value = "auto", requires = "encrypted")]
    mode: crate::encrypted::Mode,
    /// Encrypted, batch mode: have this server evaluate the batches as jobs (`/v1/jobs`, on
    /// servers with a database --key-store) with the key folder --keys, instead of evaluating
    /// here. Any number of samples: one job per full ciphertext.
    #[arg(long, requires = "encrypted", requires = "keys")]
    server: Option<String>,
    /// Key folder for --server (`unseen keygen ckks --server URL --model NAME --out DIR`).
    #[arg(long, requires = "server")]
    keys: Option<PathBuf>,
    /// Encrypted: the digit layout of the evaluation keys made for the evaluation (`unseen
    /// serve --key-digits`; with --server the server's spec says it).
    #[arg(long, value_enum, requires = "encrypted", conflicts_with = "server", default_value_t = crate::bench::KeyLayoutArg::Mixed)]
    key_digits: crate::bench::KeyLayoutArg,
    /// Encrypted: draw per-class accuracy, plaintext against encrypted, into this PNG file.
    #[arg(long, requires = "encrypted")]
    plot: Option<PathBuf>,
    /// Write the logits into this CSV file, one row per sample: the decrypted ones with
    /// --encrypted, the plaintext model's otherwise.
    #[arg(long)]
    save_logits: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// An ONNX model exported by `torch.onnx.export` (TorchScript or dynamo exporter, opset 13
    /// or later).
    #[arg(long, conflicts_with_all = ["weights", "arch", "arch_file"], required_unless_present = "weights")]
    onnx: Option<PathBuf>,
    /// A PyTorch state_dict saved with safetensors (tensors conv1.weight, conv1.bias, fc1.weight,
    /// ...), of the architecture given by --arch or --arch-file.
    #[arg(long)]
    weights: Option<PathBuf>,
    /// The architecture the weights belong to.
    #[arg(long, default_value = "ciphernet", conflicts_with = "arch_file")]
    arch: String,
    /// Architecture file (as for `unseen train cnn --arch-file`).
    #[arg(long)]
    arch_file: Option<PathBuf>,
    /// The data set it was trained on, if unseen ships it (mnist or fashion-mnist): its class
    /// names, its test set for the accuracy, its training set for calibration.
    #[arg(long, required_unless_present = "onnx")]
    dataset: Option<DatasetKind>,
    /// Class names, comma-separated, one per output (default: the data set's, or 0, 1, ...).
    #[arg(long, value_delimiter = ',')]
    classes: Vec<String>,
    /// The input preprocessing the model was trained with: `unit` (pixels / 255 only, as with
    /// `ToTensor()` alone), `dataset` (the data set's mean and deviation), `MEAN,STD`, or a JSON
    /// file `{"mean": [...], "std": [...]}` with one value per channel or feature.
    #[arg(long)]
    normalization: String,
    /// Calibration inputs: a CSV file with a header, one sample per row (pixels 0-255 or raw
    /// features, in the model's input order) and an optional `label` column (default: 5,000
    /// training images of --dataset). Used to fit approximated activations and, without a data
    /// set, for the logit bound and (with labels) the accuracy.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Replace ReLU, sigmoid, tanh, SiLU and GELU by least-squares polynomials fitted on the
    /// range their inputs reach on the calibration data (the plaintext accuracy before and
    /// after is printed).
    #[arg(long, requires = "onnx")]
    approximate_activations: bool,
    /// Degree of the fitted polynomials: 2 costs one level per activation, 3 and 4 two.
    #[arg(long, default_value_t = 2, requires = "approximate_activations")]
    activation_degree: usize,
    /// CKKS preset to compile for instead of the smallest whose depth fits (a larger one buys
    /// output precision for models with large logits): n8192-cnn, n16384-cnn or n32768-cnn.
    #[arg(long)]
    preset: Option<String>,
    /// Output model folder.
    #[arg(long)]
    out: PathBuf,
    /// Folder holding mnist/ and fashion-mnist/ (default: the vendored data/).
    #[arg(long)]
    data: Option<PathBuf>,
}

/// `--preset NAME`, one of the CNN presets.
fn preset(name: Option<&str>) -> Result<Option<unseen_ckks::Preset>> {
    let Some(name) = name else { return Ok(None) };
    unseen_ckks::Preset::CNN
        .into_iter()
        .find(|p| p.name() == name)
        .map(Some)
        .with_context(|| {
            let known: Vec<String> = unseen_ckks::Preset::CNN.iter().map(|p| p.name()).collect();
            format!("--preset: '{name}' is not one of {}", known.join(", "))
        })
}

/// The data folder: given, or the vendored `data/`.
pub fn data_root(given: Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p),
        None => crate::demo::data_file("mnist")
            .map(|p| p.parent().map(Path::to_path_buf).unwrap_or_default()),
    }
}

/// `--normalization`: `unit`, `dataset`, `MEAN,STD` or a JSON file.
pub fn parse_normalization(text: &str, dataset: Option<DatasetKind>) -> Result<Normalization> {
    match text {
        "unit" => Ok(Normalization::unit()),
        "dataset" => {
            let d = dataset.context("--normalization dataset needs a known --dataset")?;
            let (mean, std) = d.normalization();
            Ok(Normalization::scalar(mean, std))
        }
        file if file.ends_with(".json") => {
            let text = std::fs::read_to_string(file).with_context(|| file.to_string())?;
            serde_json::from_str(&text).with_context(|| {
                format!("{file}: not a normalization {{\"mean\": [...], \"std\": [...]}}")
            })
        }
        other => {
            let parts: Vec<&str> = other.split(',').collect();
            let (Some(mean), Some(std), 2) = (parts.first(), parts.get(1), parts.len()) else {
                bail!(
                    "--normalization must be unit, dataset, MEAN,STD or FILE.json, not '{other}'"
                );
            };
            let mean: f32 = mean
                .trim()
                .parse()
                .with_context(|| format!("mean '{mean}'"))?;
            let std: f32 = std.trim().parse().with_context(|| format!("std '{std}'"))?;
            if !(mean.is_finite() && std.is_finite() && std > 0.0) {
                bail!("--normalization: the mean must be finite and the std positive");
            }
            Ok(Normalization::scalar(mean, std))
        }
    }
}

/// A named architecture, or one read from a file.
fn arch_from(name: &str, file: Option<&Path>) -> Result<Architecture> {
    match file {
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| f.display().to_string())?;
            Architecture::from_json(&text).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))
        }
        None => architecture(name),
    }
}

fn architecture(name: &str) -> Result<Architecture> {
    Architecture::named(name).with_context(|| {
        format!(
            "unknown architecture '{name}' (known: {})",
            ARCHITECTURES.join(", ")
        )
    })
}

/// A progress bar over one epoch's images (drawn on stderr, hidden when it is not a terminal).
fn progress(len: u64, epoch: usize, epochs: usize) -> ProgressBar {
    let bar = ProgressBar::new(len);
    let style = ProgressStyle::with_template(
        "epoch {msg} [{bar:40}] {pos}/{len} images ({per_sec}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(format!("{epoch}/{epochs}"));
    bar
}

/// Writes the three plots of a run.
fn write_plots(dir: &Path, card: &ModelCard, confusion: &[Vec<usize>]) -> Result<()> {
    let title = format!(
        "{} on {}",
        card.architecture.name,
        card.dataset.as_deref().unwrap_or("its data")
    );
    let history: Vec<EpochStats> = card
        .history
        .iter()
        .filter_map(|v| serde_json::from_value(v.clone()).ok())
        .collect();
    if !history.is_empty() {
        plots::loss_curve(
            &dir.join("loss.png"),
            &history,
            &format!("{title}: training loss"),
        )?;
        plots::accuracy_curve(
            &dir.join("accuracy.png"),
            &history,
            &format!("{title}: accuracy"),
        )?;
    }
    let acc = card.test_accuracy.unwrap_or(0.0) * 100.0;
    plots::confusion_matrix(
        &dir.join("confusion.png"),
        confusion,
        &card.classes.iter().map(String::as_str).collect::<Vec<_>>(),
        &format!("{title}: test confusion matrix ({acc:.2}%)"),
    )?;
    Ok(())
}

/// `unseen train cnn`.
pub fn train_cnn(a: TrainCnnArgs) -> Result<()> {
    let forced_preset = preset(a.preset.as_deref())?;
    let arch = arch_from(&a.arch, a.arch_file.as_deref())?;
    if !matches!(arch.input, unseen_model::Shape::Image(1, 28, 28)) {
        bail!(
            "{}: the {} images are 1x28x28, the architecture takes {}",
            a.dataset,
            a.dataset,
            arch.input
        );
    }
    if arch
        .shapes()
        .map_err(anyhow::Error::msg)?
        .last()
        .map(|s| s.len())
        != Some(10)
    {
        bail!(
            "the architecture must end with 10 outputs, one per class of {}",
            a.dataset
        );
    }
    if a.epochs == 0 || a.batch_size == 0 || !(a.lr.is_finite() && a.lr > 0.0) {
        bail!("--epochs and --batch-size must be positive and --lr a positive number");
    }
    let root = data_root(a.data)?;
    let mut train_set = Images::load(&root, a.dataset, Split::Train)?;
    if let Some(n) = a.limit_train {
        train_set.truncate(n);
    }
    let test_set = Images::load(&root, a.dataset, Split::Test)?;
    let norm = {
        let (mean, std) = a.dataset.normalization();
        Normalization::scalar(mean, std)
    };
    let (tx, tex) = (normalize(&train_set, &norm), normalize(&test_set, &norm));
    let cfg = TrainConfig {
        epochs: a.epochs,
        batch_size: a.batch_size,
        learning_rate: a.lr,
        seed: a.seed,
        augment_shift: a.augment_shift,
        weight_average: a.weight_average,
        augment_flip: a.augment_flip,
        batch_norm: a.batch_norm,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(a.seed);
    let trained_arch = if a.batch_norm {
        arch.with_batch_norm()
    } else {
        arch
    };
    let mut net = Network::init(trained_arch, &mut rng).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let bar = progress(train_set.len() as u64, 1, a.epochs);
    let on_epoch_bar = bar.clone();
    let history = train(
        &mut net,
        (&tx, &train_set.labels),
        (&tex, &test_set.labels),
        &cfg,
        |n| bar.inc(n as u64),
        |s| {
            on_epoch_bar.suspend(|| println!("{}", serde_json::to_string(s).unwrap_or_default()));
            on_epoch_bar.reset();
            on_epoch_bar.set_message(format!("{}/{}", s.epoch + 1, a.epochs));
        },
    );
    bar.finish_and_clear();
    let net = net.fold_batch_norm().map_err(anyhow::Error::msg)?;
    let train_seconds = started.elapsed().as_secs_f64();
    let (test_accuracy, confusion) = evaluate(&net, &tex, &test_set.labels);
    let mut card = dataset_card(net.arch.clone(), a.dataset, Some(norm));
    card.source = Some("unseen train cnn".into());
    card.training = serde_json::to_value(&cfg).ok();
    card.test_accuracy = Some(test_accuracy);
    card.history = history
        .iter()
        .filter_map(|h| serde_json::to_value(h).ok())
        .collect();
    card.train_seconds = Some(train_seconds);
    card.logit_bound = Some(unseen_ml::cnn::train::max_abs_logit(&net, &tx));
    crate::encrypted::record_compilation(&net, &mut card, forced_preset)?;
    save_model(&a.out, &net, &card)?;
    write_plots(&a.out, &card, &confusion)?;
    println!(
        "{}",
        json!({"test_accuracy": test_accuracy, "test_images": test_set.len(), "train_seconds": train_seconds, "model": a.out.display().to_string()})
    );
    Ok(())
}

/// `unseen eval`.
pub fn eval(a: EvalArgs) -> Result<()> {
    let (net, card) = load_model(&a.model)?;
    let input = net.arch.input;
    let mut samples = match &a.csv {
        Some(csv) => Samples::from_csv(csv, input, &card.normalization, net.outputs(), true)?,
        None => {
            let dataset = card_dataset(&card).with_context(|| {
                format!(
                    "{}: the model card names no data set unseen ships (mnist, fashion-mnist): give --csv FILE with labelled samples",
                    a.model.display()
                )
            })?;
            let split = if a.split == "train" {
                Split::Train
            } else {
                Split::Test
            };
            let root = data_root(a.data.clone())?;
            Samples::from_images(
                &Images::load(&root, dataset, split)?,
                input,
                &card.normalization,
                format!("{dataset} {} set", a.split),
            )?
        }
    };
    if let Some(n) = a.limit {
        samples.truncate(n);
    }
    if samples.len() == 0 {
        bail!("nothing to evaluate: no samples");
    }
    if a.encrypted {
        return eval_encrypted(&a, &net, &card, &samples);
    }
    let started = Instant::now();
    let labels: Vec<u8> = samples
        .labels
        .iter()
        .map(|l| u8::try_from(*l).unwrap_or(u8::MAX))
        .collect();
    let (accuracy, confusion) = evaluate(&net, &samples.x, &labels);
    if let Some(csv) = &a.save_logits {
        let logits: Vec<Vec<f64>> = samples
            .x
            .chunks(samples.per)
            .map(|x| net.logits(x, 1).into_iter().map(f64::from).collect())
            .collect();
        save_logits(csv, &card, &logits)?;
    }
    if let Some(png) = &a.confusion {
        let title = format!(
            "{} on {}: confusion matrix, {} samples ({:.2}%)",
            card.architecture.name,
            samples.source,
            samples.len(),
            accuracy * 100.0
        );
        let names: Vec<&str> = card.classes.iter().map(String::as_str).collect();
        plots::confusion_matrix(png, &confusion, &names, &title)?;
    }
    println!(
        "{}",
        json!({
            "model": a.model.display().to_string(),
            "dataset": card.dataset,
            "samples": samples.source,
            "split": a.split,
            "images": samples.len(),
            "accuracy": accuracy,
            "max_abs_logit": unseen_ml::cnn::train::max_abs_logit(&net, &samples.x),
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}

/// `unseen eval --encrypted`.
fn eval_encrypted(a: &EvalArgs, net: &Network, card: &ModelCard, samples: &Samples) -> Result<()> {
    use crate::encrypted::Mode;
    let mut compiled = unseen_circuits::compile_card(net, card)
        .context("compiling the network to a CKKS circuit")?;
    compiled.plan.key_layout = a.key_digits.into();
    let mode = a.mode.resolve(&compiled, samples.len());
    let (report, tally) = match (&a.server, &a.keys, mode) {
        (Some(server), Some(keys), Mode::Batch | Mode::Auto) => {
            let base = crate::image_cmd::http_base(server)?;
            crate::encrypted::eval_encrypted_jobs(&a.model, net, &base, keys, samples)?
        }
        (Some(_), _, _) => bail!("--server evaluates batches as jobs: give --mode batch"),
        (None, _, Mode::Batch) => {
            crate::encrypted::eval_encrypted_batch(&a.model, net, compiled, samples)?
        }
        _ => crate::encrypted::eval_encrypted(&a.model, net, card, compiled, samples)?,
    };
    if let Some(png) = &a.plot {
        let pct = |k: usize, n: usize| 100.0 * k as f64 / n.max(1) as f64;
        let plain: Vec<f64> = tally.per_class.iter().map(|c| pct(c.1, c.0)).collect();
        let enc: Vec<f64> = tally.per_class.iter().map(|c| pct(c.2, c.0)).collect();
        let counts: Vec<usize> = tally.per_class.iter().map(|c| c.0).collect();
        let names: Vec<&str> = card.classes.iter().map(String::as_str).collect();
        let title = format!(
            "{}: accuracy per class on {} samples, plaintext and encrypted ({}, {})",
            crate::image_cmd::folder_name(&a.model),
            samples.len(),
            report["mode"].as_str().unwrap_or(""),
            report["preset"].as_str().unwrap_or(""),
        );
        plots::class_accuracy(png, &names, &plain, &enc, &counts, &title)?;
    }
    if let Some(csv) = &a.save_logits {
        save_logits(csv, card, &tally.logits)?;
    }
    println!("{report}");
    Ok(())
}

/// Writes one row of logits per sample, headed by the class names.
fn save_logits(csv: &Path, card: &ModelCard, logits: &[Vec<f64>]) -> Result<()> {
    let mut text = card
        .classes
        .iter()
        .map(|c| format!("logit_{}", c.replace([',', '"', '\n'], "_")))
        .collect::<Vec<_>>()
        .join(",");
    text.push('\n');
    for row in logits {
        let line: Vec<String> = row.iter().map(|v| format!("{v:e}")).collect();
        text.push_str(&line.join(","));
        text.push('\n');
    }
    unseen_fs::write_atomic(csv, text.as_bytes()).with_context(|| csv.display().to_string())?;
    Ok(())
}

/// Reads a model file of at most 256 MiB.
fn read_model_file(path: &Path) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).with_context(|| path.display().to_string())?;
    if meta.len() > 256 << 20 {
        bail!("{}: larger than 256 MiB", path.display());
    }
    std::fs::read(path).with_context(|| path.display().to_string())
}

/// `unseen import`: an ONNX model, or PyTorch weights (safetensors) of a known architecture,
/// into a model folder.
pub fn import(a: ImportArgs) -> Result<()> {
    match (a.onnx.clone(), a.weights.clone(), a.dataset) {
        (Some(onnx), None, _) => import_onnx(a, &onnx),
        (None, Some(weights), Some(dataset)) => import_safetensors(a, &weights, dataset),
        _ => bail!("give --onnx FILE, or --weights FILE with --dataset"),
    }
}

/// Training images the approximated activations are fitted on when no `--calibration` file is
/// given.
const CALIBRATION_IMAGES: usize = 5000;

/// Prints one JSON line on stderr (progress of a command whose result goes to stdout).
fn note(v: serde_json::Value) {
    eprintln!("{v}");
}

fn import_onnx(a: ImportArgs, path: &Path) -> Result<()> {
    let bytes = read_model_file(path)?;
    let options = unseen_onnx::ImportOptions {
        approximate_activations: a.approximate_activations,
    };
    let mut imported =
        unseen_onnx::import(&bytes, &options).with_context(|| path.display().to_string())?;
    let input = imported.network.arch.input;
    let outputs = imported.network.outputs();
    if let Some(d) = a.dataset {
        let classes = d.classes().len();
        if input != Shape::Image(1, 28, 28) || outputs != classes {
            bail!(
                "{}: the model maps {input} to {outputs} outputs; {d} has 1x28x28 images in {classes} classes",
                path.display()
            );
        }
    }
    let classes: Vec<String> = if !a.classes.is_empty() {
        if a.classes.len() != outputs {
            bail!(
                "--classes names {} classes, the model has {outputs} outputs",
                a.classes.len()
            );
        }
        a.classes.clone()
    } else if let Some(d) = a.dataset {
        d.classes().iter().map(|c| c.to_string()).collect()
    } else {
        (0..outputs).map(|c| c.to_string()).collect()
    };
    let norm = parse_normalization(&a.normalization, a.dataset)?;
    norm.check(input)
        .map_err(|e| anyhow::anyhow!("--normalization: {e} (the model takes {input})"))?;
    // Calibration data and test data.
    let root = match a.dataset {
        Some(_) => Some(data_root(a.data.clone())?),
        None => None,
    };
    // The training set, when the data set is known: the logit bound is measured on all of it.
    let train = match (a.dataset, &root) {
        (Some(d), Some(root)) => Some(Samples::from_images(
            &Images::load(root, d, Split::Train)?,
            input,
            &norm,
            format!("{d} training images"),
        )?),
        _ => None,
    };
    let calibration = match (&a.calibration, &train) {
        (Some(csv), _) => Some(Samples::from_csv(csv, input, &norm, outputs, false)?),
        (None, Some(train)) => Some(train.first(CALIBRATION_IMAGES)),
        _ => None,
    };
    let test = match (a.dataset, &root) {
        (Some(d), Some(root)) => Some(Samples::from_images(
            &Images::load(root, d, Split::Test)?,
            input,
            &norm,
            format!("{d} test set"),
        )?),
        _ => calibration
            .as_ref()
            .filter(|c| !c.labels.is_empty())
            .map(|c| c.first(c.len())),
    };
    if !imported.replaced.is_empty() {
        let calib = calibration.as_ref().context(
            "fitting the approximated activations needs calibration inputs: give --calibration FILE.csv or --dataset",
        )?;
        let before = match &test {
            Some(t) => t.accuracy_of(
                &unseen_onnx::exact_logits(&imported, &t.x, t.len())?,
                outputs,
            ),
            None => None,
        };
        let fitted =
            unseen_onnx::calibrate(&mut imported, &calib.x, calib.len(), a.activation_degree)?;
        let after = test.as_ref().and_then(|t| t.accuracy(&imported.network));
        note(json!({
            "approximated": fitted.iter().map(|f| json!({
                "node": f.node,
                "op_type": f.op_type,
                "layer": f.layer_index,
                "measured_range": [f.measured.0, f.measured.1],
                "fit_range": [f.range.0, f.range.1],
                "coefficients": f.coefficients,
                "max_fit_error": f.max_error,
            })).collect::<Vec<_>>(),
            "calibration": format!("{} ({} samples)", calib.source, calib.len()),
            "accuracy_exact_activations": before,
            "accuracy_polynomial_activations": after,
            "evaluated_on": test.as_ref().map(|t| format!("{} ({} samples)", t.source, t.len())),
        }));
    }
    let mut net = imported
        .network
        .fold_batch_norm()
        .map_err(anyhow::Error::msg)?;
    // PyTorch's exporters name every graph `main_graph`: the file's name says more.
    if matches!(net.arch.name.as_str(), "" | "main_graph" | "torch_jit") {
        if let Some(stem) = path.file_stem() {
            net.arch.name = stem.to_string_lossy().into_owned();
        }
    }
    let mut card = ModelCard::new(net.arch.clone(), classes, norm);
    card.dataset = a.dataset.map(|d| d.dir_name().to_string());
    card.source = Some(format!(
        "onnx: {} ({}, opset {}{})",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        imported.producer,
        imported.opset,
        if imported.replaced.is_empty() {
            String::new()
        } else {
            format!(
                ", {} activations replaced by degree-{} polynomials",
                imported.replaced.len(),
                a.activation_degree
            )
        }
    ));
    card.test_accuracy = test.as_ref().and_then(|t| t.accuracy(&net));
    card.logit_bound = train.as_ref().or(calibration.as_ref()).map(|c| {
        c.logits(&net)
            .iter()
            .fold(0.0f64, |m, v| m.max(f64::from(v.abs())))
    });
    crate::encrypted::record_compilation(&net, &mut card, preset(a.preset.as_deref())?)?;
    save_model(&a.out, &net, &card)?;
    if let (Some(t), true) = (&test, a.dataset.is_some()) {
        let labels: Vec<u8> = t.labels.iter().map(|l| *l as u8).collect();
        let (_, confusion) = evaluate(&net, &t.x, &labels);
        write_plots(&a.out, &card, &confusion)?;
    }
    let compiled = card.compiled.as_ref();
    println!(
        "{}",
        json!({
            "model": a.out.display().to_string(),
            "layers": net.arch.layers.iter().map(|l| l.ops().kind()).collect::<Vec<_>>(),
            "input": input.to_string(),
            "classes": card.classes.len(),
            "test_accuracy": card.test_accuracy,
            "evaluated_on": test.as_ref().map(|t| format!("{} ({} samples)", t.source, t.len())),
            "preset": compiled.map(|c| c.preset.clone()),
            "depth": compiled.map(|c| c.depth),
        })
    );
    Ok(())
}

fn import_safetensors(a: ImportArgs, weights: &Path, dataset: DatasetKind) -> Result<()> {
    let arch = arch_from(&a.arch, a.arch_file.as_deref())?;
    let norm = parse_normalization(&a.normalization, Some(dataset))?;
    let bytes = read_model_file(weights)?;
    let net = weights_from_safetensors(arch.clone(), &bytes, &weights.display().to_string())?;
    let mut card = dataset_card(arch, dataset, Some(norm));
    if !a.classes.is_empty() {
        if a.classes.len() != card.classes.len() {
            bail!(
                "--classes names {} classes, the model has {} outputs",
                a.classes.len(),
                card.classes.len()
            );
        }
        card.classes = a.classes.clone();
    }
    card.source = Some(format!("safetensors: {}", weights.display()));
    let root = data_root(a.data)?;
    let test_set = Images::load(&root, dataset, Split::Test)?;
    let (accuracy, confusion) = evaluate(
        &net,
        &normalize(&test_set, &card.normalization),
        &test_set.labels,
    );
    card.test_accuracy = Some(accuracy);
    let train_set = Images::load(&root, dataset, Split::Train)?;
    card.logit_bound = Some(unseen_ml::cnn::train::max_abs_logit(
        &net,
        &normalize(&train_set, &card.normalization),
    ));
    crate::encrypted::record_compilation(&net, &mut card, preset(a.preset.as_deref())?)?;
    save_model(&a.out, &net, &card)?;
    write_plots(&a.out, &card, &confusion)?;
    println!(
        "{}",
        json!({"model": a.out.display().to_string(), "test_accuracy": accuracy})
    );
    Ok(())
}
