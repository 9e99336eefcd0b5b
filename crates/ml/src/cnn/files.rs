//! Model folders: `model.safetensors` (weights in PyTorch's names and layouts) and `model.json`
//! (architecture, dataset, input normalisation, training settings and metrics).
//!
//! Tensor names: the k-th convolution is `conv{k}` and the k-th dense layer `fc{k}` (1-based),
//! each with `.weight` (conv: `[out, in, kh, kw]`, dense: `[out, in]`) and `.bias` (`[out]`),
//! little-endian `F32` (or `F64`, converted). This is what `torch.save`-free export with
//! `safetensors.torch.save_file(model.state_dict(), ...)` writes for a module whose attributes
//! are named that way, e.g. the reference network's `conv1`, `fc1`, `fc2`.

use std::collections::HashMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use super::arch::{Architecture, Layer};
use super::network::{param_sizes, LayerParams, Network};
use super::train::{EpochStats, TrainConfig};
use crate::digits::DatasetKind;
use crate::{Error, Result};

/// Format tag of `model.json`.
pub const CNN_FORMAT: &str = "unseen-cnn";
/// Current version of `model.json`.
pub const CNN_VERSION: u32 = 1;
/// Largest weights file read.
const MAX_WEIGHTS_BYTES: u64 = 256 << 20;

/// Input normalisation: `(pixel / 255 - mean) / std`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Mean of training pixels in [0, 1].
    pub mean: f32,
    /// Standard deviation of training pixels in [0, 1].
    pub std: f32,
}

impl Normalization {
    /// One pixel (0..=255) as the network sees it.
    pub fn apply(self, pixel: u8) -> f32 {
        (f32::from(pixel) / 255.0 - self.mean) / self.std
    }

    /// Pixels as the network sees them.
    pub fn apply_all(self, pixels: &[u8]) -> Vec<f32> {
        pixels.iter().map(|p| self.apply(*p)).collect()
    }
}

/// The `model.json` of a model folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    /// Always [`CNN_FORMAT`].
    pub format: String,
    /// File version.
    pub version: u32,
    /// Layers.
    pub architecture: Architecture,
    /// Training data.
    pub dataset: DatasetKind,
    /// Input normalisation.
    pub normalization: Normalization,
    /// How it was trained (absent for imported weights).
    pub training: Option<TrainConfig>,
    /// Accuracy on the full test set.
    pub test_accuracy: Option<f64>,
    /// Per-epoch metrics.
    pub history: Vec<EpochStats>,
    /// Wall-clock training time in seconds.
    pub train_seconds: Option<f64>,
    /// Largest absolute logit over the training set: encrypted evaluation leaves the outputs
    /// room for a few times this much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logit_bound: Option<f64>,
}

/// `conv{k}` / `fc{k}` names of the layers that have parameters.
pub fn tensor_names(arch: &Architecture) -> Vec<Option<String>> {
    let (mut conv, mut fc) = (0, 0);
    arch.layers
        .iter()
        .map(|l| match l {
            Layer::Conv2d { .. } => {
                conv += 1;
                Some(format!("conv{conv}"))
            }
            Layer::Linear { .. } => {
                fc += 1;
                Some(format!("fc{fc}"))
            }
            _ => None,
        })
        .collect()
}

fn shapes_of(layer: &Layer) -> (Vec<usize>, Vec<usize>) {
    match layer {
        Layer::Conv2d {
            in_channels,
            out_channels,
            kernel,
            ..
        } => (
            vec![*out_channels, *in_channels, *kernel, *kernel],
            vec![*out_channels],
        ),
        Layer::Linear {
            in_features,
            out_features,
        } => (vec![*out_features, *in_features], vec![*out_features]),
        _ => (vec![], vec![]),
    }
}

fn to_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Serialises the weights as safetensors bytes.
pub fn weights_to_safetensors(net: &Network) -> Result<Vec<u8>> {
    if net
        .arch
        .layers
        .iter()
        .any(|l| matches!(l, Layer::BatchNorm { .. }))
    {
        return Err(Error::Invalid(
            "fold batch normalisation into its layers before saving".into(),
        ));
    }
    let names = tensor_names(&net.arch);
    let mut buffers: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for ((layer, p), name) in net.arch.layers.iter().zip(&net.params).zip(names) {
        if let Some(name) = name {
            let (ws, bs) = shapes_of(layer);
            buffers.push((format!("{name}.weight"), ws, to_bytes(&p.weight)));
            buffers.push((format!("{name}.bias"), bs, to_bytes(&p.bias)));
        }
    }
    let views = buffers
        .iter()
        .map(|(n, s, b)| TensorView::new(Dtype::F32, s.clone(), b).map(|v| (n.clone(), v)))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Invalid(format!("cannot build tensors: {e}")))?;
    safetensors::serialize(views, None)
        .map_err(|e| Error::Invalid(format!("cannot serialise weights: {e}")))
}

/// Reads weights for `arch` from safetensors bytes, checking every name, dtype and shape.
pub fn weights_from_safetensors(arch: Architecture, bytes: &[u8], origin: &str) -> Result<Network> {
    let bad = |m: String| Error::Invalid(format!("{origin}: {m}"));
    let st = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let names = tensor_names(&arch);
    let mut params = Vec::with_capacity(arch.layers.len());
    for (layer, name) in arch.layers.iter().zip(&names) {
        let Some(name) = name else {
            params.push(LayerParams::default());
            continue;
        };
        let (ws, bs) = shapes_of(layer);
        let read = |suffix: &str, shape: &[usize]| -> Result<Vec<f32>> {
            let full = format!("{name}.{suffix}");
            let t = st.tensor(&full).map_err(|_| {
                bad(format!(
                    "tensor '{full}' is missing (expected shape {shape:?})"
                ))
            })?;
            if t.shape() != shape {
                return Err(bad(format!(
                    "tensor '{full}' has shape {:?}, expected {shape:?}",
                    t.shape()
                )));
            }
            let data = t.data();
            let values: Vec<f32> = match t.dtype() {
                Dtype::F32 => data
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                Dtype::F64 => data
                    .chunks_exact(8)
                    .map(|c| {
                        f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
                    })
                    .collect(),
                other => {
                    return Err(bad(format!(
                        "tensor '{full}' has dtype {other:?}; F32 or F64 expected"
                    )))
                }
            };
            Ok(values)
        };
        let weight = read("weight", &ws)?;
        let bias = read("bias", &bs)?;
        params.push(LayerParams {
            weight,
            bias,
            running: Vec::new(),
        });
    }
    let expected: usize = names.iter().flatten().count() * 2;
    if st.len() != expected {
        let known: Vec<String> = names
            .iter()
            .flatten()
            .flat_map(|n| [format!("{n}.weight"), format!("{n}.bias")])
            .collect();
        let extra: Vec<String> = st
            .names()
            .into_iter()
            .filter(|n| !known.iter().any(|k| k == n))
            .map(str::to_string)
            .collect();
        return Err(bad(format!(
            "unexpected tensors {extra:?} for architecture '{}'",
            arch.name
        )));
    }
    debug_assert!(arch
        .layers
        .iter()
        .zip(&params)
        .all(|(l, p)| param_sizes(l) == (p.weight.len(), p.bias.len())));
    Network::from_params(arch, params).map_err(bad)
}

/// Writes `model.safetensors` and `model.json` into `dir` (created if needed), atomically.
pub fn save_model(dir: &Path, net: &Network, card: &ModelCard) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let io = |p: &Path| {
        let shown = p.display().to_string();
        move |source| Error::Io {
            path: shown,
            source,
        }
    };
    let weights = dir.join("model.safetensors");
    unseen_fs::write_atomic(&weights, &weights_to_safetensors(net)?).map_err(io(&weights))?;
    let json = dir.join("model.json");
    let mut text = serde_json::to_string_pretty(card).map_err(|e| Error::Invalid(e.to_string()))?;
    text.push('\n');
    unseen_fs::write_atomic(&json, text.as_bytes()).map_err(io(&json))?;
    Ok(())
}

/// Loads a model folder.
pub fn load_model(dir: &Path) -> Result<(Network, ModelCard)> {
    let json_path = dir.join("model.json");
    let shown = json_path.display().to_string();
    let text = std::fs::read_to_string(&json_path).map_err(|source| Error::Io {
        path: shown.clone(),
        source,
    })?;
    let card: ModelCard = serde_json::from_str(&text).map_err(|e| Error::Model {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    if card.format != CNN_FORMAT || card.version != CNN_VERSION {
        return Err(Error::Model {
            path: shown,
            message: format!(
                "format {} v{} is not {CNN_FORMAT} v{CNN_VERSION}",
                card.format, card.version
            ),
        });
    }
    if !(card.normalization.std > 0.0 && card.normalization.mean.is_finite()) {
        return Err(Error::Model {
            path: shown,
            message: "normalization.std must be positive".into(),
        });
    }
    let weights = dir.join("model.safetensors");
    let wshown = weights.display().to_string();
    let meta = std::fs::metadata(&weights).map_err(|source| Error::Io {
        path: wshown.clone(),
        source,
    })?;
    if meta.len() > MAX_WEIGHTS_BYTES {
        return Err(Error::Invalid(format!(
            "{wshown}: larger than {MAX_WEIGHTS_BYTES} bytes"
        )));
    }
    let bytes = std::fs::read(&weights).map_err(|source| Error::Io {
        path: wshown.clone(),
        source,
    })?;
    let net = weights_from_safetensors(card.architecture.clone(), &bytes, &wshown)?;
    Ok((net, card))
}

/// Metadata for imported weights (no training history).
pub fn imported_card(arch: Architecture, dataset: DatasetKind) -> ModelCard {
    let (mean, std) = dataset.normalization();
    ModelCard {
        format: CNN_FORMAT.into(),
        version: CNN_VERSION,
        architecture: arch,
        dataset,
        normalization: Normalization { mean, std },
        training: None,
        test_accuracy: None,
        history: Vec::new(),
        train_seconds: None,
        logit_bound: None,
    }
}

/// The tensor names and shapes a weights file for `arch` must contain.
pub fn expected_tensor_shapes(arch: &Architecture) -> HashMap<String, Vec<usize>> {
    let mut out = HashMap::new();
    for (layer, name) in arch.layers.iter().zip(tensor_names(arch)) {
        if let Some(name) = name {
            let (w, b) = shapes_of(layer);
            out.insert(format!("{name}.weight"), w);
            out.insert(format!("{name}.bias"), b);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn safetensors_roundtrip_and_bad_inputs() {
        let arch = Architecture::named("ciphernet").expect("arch");
        let net = Network::init(arch.clone(), &mut rand_chacha::ChaCha8Rng::seed_from_u64(3))
            .expect("init");
        let bytes = weights_to_safetensors(&net).expect("serialise");
        let back = weights_from_safetensors(arch.clone(), &bytes, "x").expect("parse");
        assert_eq!(back, net);
        assert!(weights_from_safetensors(arch.clone(), &bytes[..bytes.len() - 5], "x").is_err());
        assert!(weights_from_safetensors(arch.clone(), b"garbage", "x").is_err());
        let wide = Architecture::named("ciphernet-wide").expect("arch");
        let err = weights_from_safetensors(wide, &bytes, "x")
            .expect_err("shape mismatch")
            .to_string();
        assert!(err.contains("shape"), "{err}");
        assert_eq!(
            expected_tensor_shapes(&arch)["conv1.weight"],
            vec![4, 1, 7, 7]
        );
    }
}
