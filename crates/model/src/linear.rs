//! The linear model file (`unseen train linear`): what the Paillier server evaluates.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Format tag of model files.
pub const MODEL_FORMAT: &str = "unseen-linear-model";
/// Current model file version.
pub const MODEL_VERSION: u32 = 1;

/// A fitted linear model `y = intercept + sum_i coefficients[i] * x[i]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinearModel {
    /// Always [`MODEL_FORMAT`].
    pub format: String,
    /// File version.
    pub version: u32,
    /// Name under which a server publishes the model.
    pub name: String,
    /// Name of the predicted column.
    pub target: String,
    /// Feature names, in the order a client must send them.
    pub features: Vec<String>,
    /// One weight per feature.
    pub coefficients: Vec<f64>,
    /// The constant term.
    pub intercept: f64,
    /// How the model was fitted and how well it does.
    pub metrics: Metrics,
}

/// Quality of a fit on held-out (or, without a test split, training) rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Root mean squared error.
    pub rmse: f64,
    /// Coefficient of determination.
    pub r2: f64,
    /// Rows used for fitting.
    pub rows_train: usize,
    /// Rows held out for evaluation.
    pub rows_test: usize,
    /// `"test"` or `"train"` (when no rows were held out).
    pub evaluated_on: String,
    /// Fraction of rows held out.
    pub test_fraction: f64,
    /// Seed of the shuffle before the split.
    pub seed: u64,
}

impl LinearModel {
    /// Plaintext prediction (no checks; see [`Self::check_features`]).
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.intercept
            + self
                .coefficients
                .iter()
                .zip(x)
                .map(|(w, v)| w * v)
                .sum::<f64>()
    }

    /// Checks that a request carries exactly one value per feature.
    pub fn check_features(&self, count: usize) -> Result<()> {
        if count != self.features.len() {
            return Err(Error::Invalid(format!(
                "model '{}' expects {} features ({}), got {count}",
                self.name,
                self.features.len(),
                self.features.join(", ")
            )));
        }
        Ok(())
    }

    /// Loads and validates a model file.
    pub fn load(path: &Path) -> Result<Self> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: shown.clone(),
            source,
        })?;
        Self::from_json(&text).map_err(|message| Error::Model {
            path: shown,
            message,
        })
    }

    /// Parses and validates a model from JSON text.
    pub fn from_json(text: &str) -> std::result::Result<Self, String> {
        let m: LinearModel = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if m.format != MODEL_FORMAT {
            return Err(format!(
                "format is '{}', expected '{MODEL_FORMAT}'",
                m.format
            ));
        }
        if m.version != MODEL_VERSION {
            return Err(format!(
                "version {} is not supported (expected {MODEL_VERSION})",
                m.version
            ));
        }
        if m.features.is_empty() || m.features.len() != m.coefficients.len() {
            return Err(format!(
                "{} features but {} coefficients",
                m.features.len(),
                m.coefficients.len()
            ));
        }
        if !m.intercept.is_finite() || m.coefficients.iter().any(|c| !c.is_finite()) {
            return Err("coefficients and intercept must be finite numbers".into());
        }
        if m.name.is_empty()
            || !m
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(format!(
                "model name '{}' must be non-empty ASCII letters, digits, '-' or '_'",
                m.name
            ));
        }
        Ok(m)
    }

    /// Saves the model atomically as pretty JSON.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut text =
            serde_json::to_string_pretty(self).map_err(|e| Error::Invalid(e.to_string()))?;
        text.push('\n');
        unseen_fs::write_atomic(path, text.as_bytes()).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    }
}
