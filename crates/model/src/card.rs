//! `model.json`: what a model is, apart from its weights: architecture, class names, input
//! normalisation, provenance and metrics, and the CKKS preset the compiler chose for it.

use serde::{Deserialize, Serialize};

use crate::layers::Architecture;
use crate::shape::Shape;

/// Format tag of `model.json`.
pub const CARD_FORMAT: &str = "unseen-cnn";
/// Current version of `model.json`.
pub const CARD_VERSION: u32 = 2;

/// One value for every channel, or one per channel (images) or feature (vectors).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PerChannel {
    /// The same for all.
    One(f32),
    /// One each.
    Each(Vec<f32>),
}

impl PerChannel {
    fn at(&self, c: usize) -> f32 {
        match self {
            PerChannel::One(v) => *v,
            PerChannel::Each(v) => v.get(c).copied().unwrap_or(f32::NAN),
        }
    }

    fn check(&self, channels: usize, what: &str, positive: bool) -> Result<(), String> {
        let values: Vec<f32> = match self {
            PerChannel::One(v) => vec![*v],
            PerChannel::Each(v) => {
                if v.len() != channels {
                    return Err(format!(
                        "normalization.{what} has {} values for {channels} channels",
                        v.len()
                    ));
                }
                v.clone()
            }
        };
        if values
            .iter()
            .any(|v| !v.is_finite() || (positive && *v <= 0.0))
        {
            return Err(format!(
                "normalization.{what} must be finite{}",
                if positive { " and positive" } else { "" }
            ));
        }
        Ok(())
    }
}

/// Input preprocessing the model was trained with. Images: `(pixel / 255 - mean[c]) / std[c]`
/// (`mean` 0 and `std` 1 for "pixels / 255 only", as with `ToTensor()` alone); feature vectors:
/// `(x[i] - mean[i]) / std[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean (of pixels scaled to [0, 1] for images).
    pub mean: PerChannel,
    /// Standard deviation.
    pub std: PerChannel,
}

impl Normalization {
    /// Pixels divided by 255 only.
    pub fn unit() -> Self {
        Self::scalar(0.0, 1.0)
    }

    /// One mean and standard deviation for every channel.
    pub fn scalar(mean: f32, std: f32) -> Self {
        Self {
            mean: PerChannel::One(mean),
            std: PerChannel::One(std),
        }
    }

    /// Checks the values against the input shape.
    pub fn check(&self, input: Shape) -> Result<(), String> {
        let channels = input.channels();
        self.mean.check(channels, "mean", false)?;
        self.std.check(channels, "std", true)
    }

    /// An image's pixels (`c x h x w`, channel-major, 0..=255) as the network sees them.
    pub fn image(&self, pixels: &[u8], input: Shape) -> Vec<f32> {
        let (_, h, w) = input.dims();
        let area = (h * w).max(1);
        pixels
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let c = i / area;
                (f32::from(*p) / 255.0 - self.mean.at(c)) / self.std.at(c)
            })
            .collect()
    }

    /// A feature vector as the network sees it.
    pub fn features(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .enumerate()
            .map(|(i, v)| (v - f64::from(self.mean.at(i))) / f64::from(self.std.at(i)))
            .collect()
    }
}

/// What the compiler chose for a model (recorded when the model is imported or trained).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Compiled {
    /// CKKS preset (the smallest 128-bit one the circuit fits).
    pub preset: String,
    /// Multiplicative depth of the single-image circuit.
    pub depth: usize,
    /// Rotations of one single-image evaluation.
    pub rotations: usize,
    /// Plaintext multiplications of one single-image evaluation.
    pub plain_multiplications: usize,
    /// Mode the cost estimate prefers for one request of one input (`single` or `batch`).
    pub mode: String,
}

/// The `model.json` of a model folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Always [`CARD_FORMAT`].
    pub format: String,
    /// File version ([`CARD_VERSION`]).
    pub version: u32,
    /// Layers and input shape.
    pub architecture: Architecture,
    /// Class names, index = output.
    pub classes: Vec<String>,
    /// Data set it was trained on, when unseen knows it (`mnist`, `fashion-mnist`): evaluation
    /// commands load its test split.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset: Option<String>,
    /// Input preprocessing.
    pub normalization: Normalization,
    /// Where the weights came from (`unseen train cnn`, an ONNX file, a safetensors file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How it was trained (the trainer's settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<serde_json::Value>,
    /// Accuracy on the full test set.
    #[serde(default)]
    pub test_accuracy: Option<f64>,
    /// Per-epoch metrics.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<serde_json::Value>,
    /// Wall-clock training time in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_seconds: Option<f64>,
    /// Largest absolute logit over the training (or calibration) set: encrypted evaluation
    /// leaves the outputs room for a few times this much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bound: Option<f64>,
    /// The compiler's choice of preset and its costs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compiled: Option<Compiled>,
}

impl ModelCard {
    /// A card with no provenance or metrics.
    pub fn new(
        architecture: Architecture,
        classes: Vec<String>,
        normalization: Normalization,
    ) -> Self {
        Self {
            format: CARD_FORMAT.into(),
            version: CARD_VERSION,
            architecture,
            classes,
            dataset: None,
            normalization,
            source: None,
            training: None,
            test_accuracy: None,
            history: Vec::new(),
            train_seconds: None,
            logit_bound: None,
            compiled: None,
        }
    }

    /// Checks the card on its own: format, version, shapes, classes, normalisation.
    pub fn check(&self) -> Result<(), String> {
        if self.format != CARD_FORMAT || self.version != CARD_VERSION {
            return Err(format!(
                "format {} v{} is not {CARD_FORMAT} v{CARD_VERSION}",
                self.format, self.version
            ));
        }
        let shapes = self.architecture.shapes()?;
        let outputs = shapes.last().map(|s| s.len()).unwrap_or(0);
        if self.classes.len() != outputs {
            return Err(format!(
                "{} class names for {outputs} outputs",
                self.classes.len()
            ));
        }
        self.normalization.check(self.architecture.input)
    }
}
