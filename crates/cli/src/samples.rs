//! The inputs a command evaluates or calibrates on: a data set's images or the rows of a CSV
//! file, normalised as the model was trained, with their labels when known.

use std::path::Path;

use anyhow::{bail, Context, Result};
use unseen_ml::digits::Images;
use unseen_ml::table::Table;
use unseen_model::{argmax, Network, Normalization, Shape};

/// Column of a CSV file that holds the class (the others are the input values, in order).
pub const LABEL_COLUMN: &str = "label";

/// Normalised inputs, one after the other, and their classes.
pub struct Samples {
    /// `len * per` normalised values.
    pub x: Vec<f32>,
    /// Values per sample.
    pub per: usize,
    /// One class per sample, or empty when the source has none.
    pub labels: Vec<usize>,
    /// Where they come from, for reports.
    pub source: String,
}

impl Samples {
    /// Number of samples.
    pub fn len(&self) -> usize {
        self.x.len() / self.per.max(1)
    }

    /// Sample `i`.
    pub fn sample(&self, i: usize) -> &[f32] {
        &self.x[i * self.per..(i + 1) * self.per]
    }

    /// A copy of the first `n`.
    pub fn first(&self, n: usize) -> Self {
        let n = n.min(self.len());
        Self {
            x: self.x[..n * self.per].to_vec(),
            per: self.per,
            labels: self.labels[..n.min(self.labels.len())].to_vec(),
            source: self.source.clone(),
        }
    }

    /// Keeps the first `n`.
    pub fn truncate(&mut self, n: usize) {
        self.x.truncate(n * self.per);
        self.labels.truncate(n);
    }

    /// A data set's images, for a model taking `input`.
    pub fn from_images(
        images: &Images,
        input: Shape,
        norm: &Normalization,
        source: String,
    ) -> Result<Self> {
        if input != Shape::Image(1, images.rows, images.cols) {
            bail!(
                "the model takes {input}, the images of {source} are 1x{}x{}",
                images.rows,
                images.cols
            );
        }
        Ok(Self {
            x: images
                .pixels
                .chunks(input.len())
                .flat_map(|im| norm.image(im, input))
                .collect(),
            per: input.len(),
            labels: images.labels.iter().map(|l| usize::from(*l)).collect(),
            source,
        })
    }

    /// The rows of a CSV file with a header: as many value columns as the model has inputs
    /// (pixels 0-255 of a `C x H x W` image in that order, or raw features), and optionally a
    /// `label` column with the class index (required when `need_labels`).
    pub fn from_csv(
        path: &Path,
        input: Shape,
        norm: &Normalization,
        classes: usize,
        need_labels: bool,
    ) -> Result<Self> {
        let shown = path.display().to_string();
        let table = Table::read_csv(path)?;
        let label = table.columns.iter().position(|c| c == LABEL_COLUMN);
        if need_labels && label.is_none() {
            bail!("{shown}: no '{LABEL_COLUMN}' column with the true classes");
        }
        let values = table.columns.len() - usize::from(label.is_some());
        if values != input.len() {
            bail!(
                "{shown}: {values} value columns, the model takes {} ({input})",
                input.len()
            );
        }
        let mut x = Vec::with_capacity(table.rows.len() * values);
        let mut labels = Vec::new();
        for (r, row) in table.rows.iter().enumerate() {
            let line = r + 2;
            let mut v: Vec<f64> = row.clone();
            if let Some(l) = label {
                let c = v.remove(l);
                if c.fract() != 0.0 || c < 0.0 || c >= classes as f64 {
                    bail!(
                        "{shown}: line {line}: label {c} is not a class 0 to {}",
                        classes - 1
                    );
                }
                labels.push(c as usize);
            }
            match input {
                Shape::Image(..) => {
                    let pixels = v
                        .iter()
                        .map(|p| {
                            (p.fract() == 0.0 && (0.0..=255.0).contains(p))
                                .then_some(*p as u8)
                                .with_context(|| {
                                    format!("{shown}: line {line}: pixel {p} is not 0 to 255")
                                })
                        })
                        .collect::<Result<Vec<u8>>>()?;
                    x.extend(norm.image(&pixels, input));
                }
                Shape::Vector(_) => x.extend(norm.features(&v).into_iter().map(|f| f as f32)),
            }
        }
        if x.iter().any(|v| !v.is_finite()) {
            bail!("{shown}: a normalised value is not finite (check --normalization)");
        }
        Ok(Self {
            x,
            per: input.len(),
            labels,
            source: shown,
        })
    }

    /// Share of samples whose largest logit in `logits` (`classes` per sample) is the label.
    pub fn accuracy_of(&self, logits: &[f32], classes: usize) -> Option<f64> {
        if self.labels.is_empty() {
            return None;
        }
        let correct = logits
            .chunks(classes.max(1))
            .zip(&self.labels)
            .filter(|(l, y)| argmax(l) == **y)
            .count();
        Some(correct as f64 / self.labels.len().max(1) as f64)
    }

    /// Plaintext logits of `net`, 1,000 samples at a time.
    pub fn logits(&self, net: &Network) -> Vec<f32> {
        self.x
            .chunks(1000 * self.per.max(1))
            .flat_map(|xs| net.logits(xs, xs.len() / self.per.max(1)))
            .collect()
    }

    /// Plaintext accuracy of `net`.
    pub fn accuracy(&self, net: &Network) -> Option<f64> {
        self.accuracy_of(&self.logits(net), net.outputs())
    }
}
