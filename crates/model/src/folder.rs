//! Model folders: `model.safetensors` (weights in PyTorch's names and layouts) and `model.json`
//! (the [`ModelCard`]).
//!
//! Tensor names: the k-th convolution is `conv{k}`, the k-th dense layer `fc{k}` and the k-th
//! batch normalisation `bn{k}` (1-based), with `.weight` (conv `[out, in, kh, kw]`, dense
//! `[out, in]`, batch norm `[c]`), `.bias` and, for batch norm, `.running_mean` and
//! `.running_var`; little-endian `F32` (or `F64`, converted). This is what
//! `safetensors.torch.save_file(model.state_dict(), ...)` writes for a module whose attributes
//! are named that way, e.g. the reference network's `conv1`, `fc1`, `fc2`.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};

use crate::card::ModelCard;
use crate::layers::{numel, Architecture, Layer};
use crate::network::{LayerParams, Network};
use crate::{Error, Result};

/// Largest weights file read.
pub const MAX_WEIGHTS_BYTES: u64 = 256 << 20;
/// Largest `model.json` read.
const MAX_CARD_BYTES: u64 = 16 << 20;

/// Tensor name prefix of each layer that has parameters (`conv1`, `fc2`, `bn1`, ...).
pub fn tensor_names(arch: &Architecture) -> Vec<Option<String>> {
    let (mut conv, mut fc, mut bn) = (0, 0, 0);
    arch.layers
        .iter()
        .map(|l| {
            let (prefix, k) = match l {
                Layer::Conv2d(_) => ("conv", &mut conv),
                Layer::Linear(_) => ("fc", &mut fc),
                Layer::BatchNorm(_) => ("bn", &mut bn),
                _ => return None,
            };
            *k += 1;
            Some(format!("{prefix}{k}"))
        })
        .collect()
}

/// Every tensor of `arch` with its shape: `(full name, shape, which part of LayerParams)`.
fn tensors(arch: &Architecture) -> Vec<(usize, String, Vec<usize>, Part)> {
    let mut out = Vec::new();
    for (i, (layer, name)) in arch.layers.iter().zip(tensor_names(arch)).enumerate() {
        let Some(name) = name else { continue };
        let s = layer.ops().param_shapes();
        out.push((i, format!("{name}.weight"), s.weight, Part::Weight));
        out.push((i, format!("{name}.bias"), s.bias, Part::Bias));
        if !s.running.is_empty() {
            out.push((
                i,
                format!("{name}.running_mean"),
                s.running.clone(),
                Part::Mean,
            ));
            out.push((i, format!("{name}.running_var"), s.running, Part::Var));
        }
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Part {
    Weight,
    Bias,
    Mean,
    Var,
}

fn slice_of(p: &LayerParams, part: Part) -> &[f32] {
    let half = p.running.len() / 2;
    match part {
        Part::Weight => &p.weight,
        Part::Bias => &p.bias,
        Part::Mean => &p.running[..half],
        Part::Var => &p.running[half..],
    }
}

/// The tensor names and shapes a weights file for `arch` must contain.
pub fn expected_tensor_shapes(arch: &Architecture) -> BTreeMap<String, Vec<usize>> {
    tensors(arch)
        .into_iter()
        .map(|(_, n, s, _)| (n, s))
        .collect()
}

/// Serialises the weights as safetensors bytes.
pub fn weights_to_safetensors(net: &Network) -> Result<Vec<u8>> {
    let buffers: Vec<(String, Vec<usize>, Vec<u8>)> = tensors(&net.arch)
        .into_iter()
        .map(|(i, name, shape, part)| {
            let bytes = slice_of(&net.params[i], part)
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect();
            (name, shape, bytes)
        })
        .collect();
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
    let expected = tensors(&arch);
    let mut params: Vec<LayerParams> = vec![LayerParams::default(); arch.layers.len()];
    for (i, full, shape, part) in &expected {
        let t = st.tensor(full).map_err(|_| {
            bad(format!(
                "tensor '{full}' is missing (expected shape {shape:?})"
            ))
        })?;
        if t.shape() != shape.as_slice() {
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
        if values.len() != numel(shape) {
            return Err(bad(format!("tensor '{full}' is truncated")));
        }
        let p = &mut params[*i];
        match part {
            Part::Weight => p.weight = values,
            Part::Bias => p.bias = values,
            Part::Mean | Part::Var => p.running.extend(values),
        }
    }
    if st.len() != expected.len() {
        let extra: Vec<String> = st
            .names()
            .into_iter()
            .filter(|n| !expected.iter().any(|(_, k, _, _)| k == *n))
            .map(str::to_string)
            .collect();
        return Err(bad(format!(
            "unexpected tensors {extra:?} for architecture '{}'",
            arch.name
        )));
    }
    Network::from_params(arch, params).map_err(bad)
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `model.safetensors` and `model.json` into `dir` (created if needed), atomically.
pub fn save_model(dir: &Path, net: &Network, card: &ModelCard) -> Result<()> {
    card.check().map_err(Error::Invalid)?;
    if card.architecture != net.arch {
        return Err(Error::Invalid(
            "the card's architecture is not the network's".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    let weights = dir.join("model.safetensors");
    unseen_fs::write_atomic(&weights, &weights_to_safetensors(net)?).map_err(io_error(&weights))?;
    let json = dir.join("model.json");
    let mut text = serde_json::to_string_pretty(card).map_err(|e| Error::Invalid(e.to_string()))?;
    text.push('\n');
    unseen_fs::write_atomic(&json, text.as_bytes()).map_err(io_error(&json))?;
    Ok(())
}

fn read_capped(path: &Path, cap: u64) -> Result<Vec<u8>> {
    let meta = std::fs::metadata(path).map_err(io_error(path))?;
    if meta.len() > cap {
        return Err(Error::Invalid(format!(
            "{}: larger than {cap} bytes",
            path.display()
        )));
    }
    std::fs::read(path).map_err(io_error(path))
}

/// Reads and checks a folder's `model.json` only.
pub fn load_card(dir: &Path) -> Result<ModelCard> {
    let json_path = dir.join("model.json");
    let shown = json_path.display().to_string();
    let bytes = read_capped(&json_path, MAX_CARD_BYTES)?;
    let card: ModelCard = serde_json::from_slice(&bytes).map_err(|e| Error::Model {
        path: shown.clone(),
        message: e.to_string(),
    })?;
    card.check().map_err(|message| Error::Model {
        path: shown,
        message,
    })?;
    Ok(card)
}

/// Loads a model folder.
pub fn load_model(dir: &Path) -> Result<(Network, ModelCard)> {
    let card = load_card(dir)?;
    let weights = dir.join("model.safetensors");
    let bytes = read_capped(&weights, MAX_WEIGHTS_BYTES)?;
    let net = weights_from_safetensors(
        card.architecture.clone(),
        &bytes,
        &weights.display().to_string(),
    )?;
    Ok((net, card))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn safetensors_roundtrip_and_bad_inputs() {
        let arch = Architecture::named("ciphernet")
            .expect("arch")
            .with_batch_norm();
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
        let shapes = expected_tensor_shapes(&arch);
        assert_eq!(shapes["conv1.weight"], vec![4, 1, 7, 7]);
        assert_eq!(shapes["bn2.running_var"], vec![64]);
    }
}
