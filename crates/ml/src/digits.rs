//! Image classification datasets in IDX files: MNIST and Fashion-MNIST.

use std::path::{Path, PathBuf};

use crate::idx::read_idx;
use crate::{Error, Result};

/// A known dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Handwritten digits.
    Mnist,
    /// Zalando's clothing images.
    FashionMnist,
}

impl DatasetKind {
    /// Folder name under `data/`.
    pub fn dir_name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    /// Class names, index = label.
    pub fn classes(self) -> [&'static str; 10] {
        match self {
            DatasetKind::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::FashionMnist => [
                "T-shirt/top",
                "Trouser",
                "Pullover",
                "Dress",
                "Coat",
                "Sandal",
                "Shirt",
                "Sneaker",
                "Bag",
                "Ankle boot",
            ],
        }
    }

    /// Mean and standard deviation of training pixels scaled to [0, 1].
    pub fn normalization(self) -> (f32, f32) {
        match self {
            DatasetKind::Mnist => (0.1307, 0.3081),
            DatasetKind::FashionMnist => (0.2860, 0.3530),
        }
    }
}

impl std::str::FromStr for DatasetKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "mnist" => Ok(Self::Mnist),
            "fashion-mnist" | "fashion_mnist" | "fashion" => Ok(Self::FashionMnist),
            o => Err(format!(
                "unknown dataset '{o}' (expected mnist or fashion-mnist)"
            )),
        }
    }
}

impl std::fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.dir_name())
    }
}

/// Training or test part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// 60,000 images.
    Train,
    /// 10,000 images.
    Test,
}

/// Labelled 28x28 grey images.
#[derive(Debug, Clone)]
pub struct Images {
    /// Image height.
    pub rows: usize,
    /// Image width.
    pub cols: usize,
    /// `len * rows * cols` pixels, 0..=255, row-major.
    pub pixels: Vec<u8>,
    /// One label 0..=9 per image.
    pub labels: Vec<u8>,
}

impl Images {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there is no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of image `i`.
    pub fn image(&self, i: usize) -> &[u8] {
        let size = self.rows * self.cols;
        &self.pixels[i * size..(i + 1) * size]
    }

    /// Keeps the first `n` images.
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.labels.truncate(n);
            self.pixels.truncate(n * self.rows * self.cols);
        }
    }

    /// Reads an images file and a labels file, checking that they agree.
    pub fn read(images: &Path, labels: &Path) -> Result<Self> {
        let img = read_idx(images)?;
        let lab = read_idx(labels)?;
        let shown = images.display();
        let [n, rows, cols] = img.dims[..] else {
            return Err(Error::Invalid(format!(
                "{shown}: expected 3 dimensions (images, rows, cols), found {:?}",
                img.dims
            )));
        };
        if lab.dims.len() != 1 || lab.dims[0] != n {
            return Err(Error::Invalid(format!(
                "{}: {:?} labels for {n} images",
                labels.display(),
                lab.dims
            )));
        }
        if let Some(bad) = lab.data.iter().find(|l| **l > 9) {
            return Err(Error::Invalid(format!(
                "{}: label {bad} is not a class 0..9",
                labels.display()
            )));
        }
        Ok(Self {
            rows,
            cols,
            pixels: img.data,
            labels: lab.data,
        })
    }

    /// Loads a split of a dataset from `root/<dataset>/` (the official file names, `.gz` or raw).
    pub fn load(root: &Path, kind: DatasetKind, split: Split) -> Result<Self> {
        let dir = root.join(kind.dir_name());
        let prefix = match split {
            Split::Train => "train",
            Split::Test => "t10k",
        };
        let find = |stem: String| -> Result<PathBuf> {
            let gz = dir.join(format!("{stem}.gz"));
            let raw = dir.join(&stem);
            if gz.exists() {
                Ok(gz)
            } else if raw.exists() {
                Ok(raw)
            } else {
                Err(Error::Invalid(format!(
                    "{} not found (nor its .gz)",
                    raw.display()
                )))
            }
        };
        Self::read(
            &find(format!("{prefix}-images-idx3-ubyte"))?,
            &find(format!("{prefix}-labels-idx1-ubyte"))?,
        )
    }
}
