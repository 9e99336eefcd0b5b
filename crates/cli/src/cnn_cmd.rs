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
use unseen_model::{Architecture, ModelCard, Network, Normalization};

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
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Model folder (model.json + model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// Evaluate the first N images only.
    #[arg(long)]
    limit: Option<usize>,
    /// Which part of the dataset: test (default) or train.
    #[arg(long, default_value = "test", value_parser = ["test", "train"])]
    split: String,
    /// Folder holding mnist/ and fashion-mnist/ (default: the vendored data/).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Also draw the confusion matrix into this PNG file.
    #[arg(long)]
    confusion: Option<PathBuf>,
    /// Evaluate on CKKS-encrypted images (single-image packing, preset n8192-cnn): the client
    /// encrypts each image, the compiled circuit runs on the ciphertext, the client decrypts.
    #[arg(long)]
    encrypted: bool,
    /// Encrypted mode: single (one image per ciphertext, low latency) or batch (one image per
    /// slot, high throughput).
    #[arg(long, default_value = "single")]
    mode: crate::encrypted::Mode,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A PyTorch state_dict saved with safetensors (tensors conv1.weight, conv1.bias, fc1.weight, ...).
    #[arg(long)]
    weights: PathBuf,
    /// The architecture the weights belong to.
    #[arg(long, default_value = "ciphernet", conflicts_with = "arch_file")]
    arch: String,
    /// Architecture file (as for `unseen train cnn --arch-file`).
    #[arg(long)]
    arch_file: Option<PathBuf>,
    /// The dataset it was trained on (its class names; its test set measures the accuracy).
    #[arg(long)]
    dataset: DatasetKind,
    /// The input preprocessing the model was trained with: `unit` (pixels / 255 only, as with
    /// `ToTensor()` alone), `dataset` (the data set's mean and deviation), or `MEAN,STD`.
    #[arg(long)]
    normalization: String,
    /// Output model folder.
    #[arg(long)]
    out: PathBuf,
    /// Folder holding mnist/ and fashion-mnist/ (default: the vendored data/).
    #[arg(long)]
    data: Option<PathBuf>,
}

/// The data folder: given, or the vendored `data/`.
pub fn data_root(given: Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(p) => Ok(p),
        None => crate::demo::data_file("mnist")
            .map(|p| p.parent().map(Path::to_path_buf).unwrap_or_default()),
    }
}

/// `--normalization`: `unit`, `dataset` or `MEAN,STD`.
pub fn parse_normalization(text: &str, dataset: Option<DatasetKind>) -> Result<Normalization> {
    match text {
        "unit" => Ok(Normalization::unit()),
        "dataset" => {
            let d = dataset.context("--normalization dataset needs a known --dataset")?;
            let (mean, std) = d.normalization();
            Ok(Normalization::scalar(mean, std))
        }
        other => {
            let parts: Vec<&str> = other.split(',').collect();
            let (Some(mean), Some(std), 2) = (parts.first(), parts.get(1), parts.len()) else {
                bail!("--normalization must be unit, dataset or MEAN,STD, not '{other}'");
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
    crate::encrypted::record_compilation(&net, &mut card)?;
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
    let root = data_root(a.data.clone())?;
    let split = if a.split == "train" {
        Split::Train
    } else {
        Split::Test
    };
    let dataset = card_dataset(&card).with_context(|| {
        format!(
            "{}: the model card names no data set unseen knows (mnist, fashion-mnist), so there is nothing to evaluate on",
            a.model.display()
        )
    })?;
    let mut test_set = Images::load(&root, dataset, split)?;
    if let Some(n) = a.limit {
        test_set.truncate(n);
    }
    if a.encrypted {
        let report = match a.mode {
            crate::encrypted::Mode::Single => {
                crate::encrypted::eval_encrypted(&a.model, &net, &card, &test_set)?
            }
            crate::encrypted::Mode::Batch => {
                crate::encrypted::eval_encrypted_batch(&a.model, &net, &card, &test_set)?
            }
        };
        println!("{report}");
        return Ok(());
    }
    let started = Instant::now();
    let x = normalize(&test_set, &card.normalization);
    let (accuracy, confusion) = evaluate(&net, &x, &test_set.labels);
    if let Some(png) = &a.confusion {
        let title = format!(
            "{} on {}: confusion matrix, {} test images ({:.2}%)",
            card.architecture.name,
            dataset,
            test_set.len(),
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
            "split": a.split,
            "images": test_set.len(),
            "accuracy": accuracy,
            "max_abs_logit": unseen_ml::cnn::train::max_abs_logit(&net, &x),
            "seconds": started.elapsed().as_secs_f64(),
        })
    );
    Ok(())
}

/// `unseen import`: PyTorch weights (safetensors) into a model folder.
pub fn import(a: ImportArgs) -> Result<()> {
    let arch = arch_from(&a.arch, a.arch_file.as_deref())?;
    let norm = parse_normalization(&a.normalization, Some(a.dataset))?;
    let meta = std::fs::metadata(&a.weights).with_context(|| a.weights.display().to_string())?;
    if meta.len() > 256 << 20 {
        bail!("{}: larger than 256 MiB", a.weights.display());
    }
    let bytes = std::fs::read(&a.weights).with_context(|| a.weights.display().to_string())?;
    let net = weights_from_safetensors(arch.clone(), &bytes, &a.weights.display().to_string())?;
    let mut card = dataset_card(arch, a.dataset, Some(norm));
    card.source = Some(format!("safetensors: {}", a.weights.display()));
    let root = data_root(a.data)?;
    let test_set = Images::load(&root, a.dataset, Split::Test)?;
    let (accuracy, confusion) = evaluate(
        &net,
        &normalize(&test_set, &card.normalization),
        &test_set.labels,
    );
    card.test_accuracy = Some(accuracy);
    let train_set = Images::load(&root, a.dataset, Split::Train)?;
    card.logit_bound = Some(unseen_ml::cnn::train::max_abs_logit(
        &net,
        &normalize(&train_set, &card.normalization),
    ));
    crate::encrypted::record_compilation(&net, &mut card)?;
    save_model(&a.out, &net, &card)?;
    write_plots(&a.out, &card, &confusion)?;
    println!(
        "{}",
        json!({"model": a.out.display().to_string(), "test_accuracy": accuracy})
    );
    Ok(())
}
