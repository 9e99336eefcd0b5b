//! The IDX format of MNIST and Fashion-MNIST (`train-images-idx3-ubyte.gz`, ...), gzip or raw.
//!
//! Layout: two zero bytes, a type byte (0x08 for unsigned bytes, the only type supported), the
//! number of dimensions, each dimension as a big-endian `u32`, then the data in row-major order.
//! Every length is checked: a truncated file, trailing bytes, or dimensions that do not match
//! what the caller expects are errors.

use std::io::Read;
use std::path::Path;

use crate::{Error, Result};

/// Largest decompressed IDX file read (the MNIST training images are 47 MB).
const MAX_IDX_BYTES: u64 = 512 << 20;

/// An n-dimensional array of bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first.
    pub dims: Vec<usize>,
    /// Row-major data, `dims.iter().product()` bytes.
    pub data: Vec<u8>,
}

fn invalid(path: &str, message: impl Into<String>) -> Error {
    Error::Invalid(format!("{path}: {}", message.into()))
}

/// Reads an IDX file, gunzipping it when it starts with the gzip magic.
pub fn read_idx(path: &Path) -> Result<IdxArray> {
    let shown = path.display().to_string();
    let raw = std::fs::read(path).map_err(|source| Error::Io {
        path: shown.clone(),
        source,
    })?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .take(MAX_IDX_BYTES + 1)
            .read_to_end(&mut out)
            .map_err(|e| invalid(&shown, format!("corrupt or truncated gzip data ({e})")))?;
        out
    } else {
        raw
    };
    if bytes.len() as u64 > MAX_IDX_BYTES {
        return Err(invalid(
            &shown,
            format!("larger than {MAX_IDX_BYTES} bytes"),
        ));
    }
    parse_idx(&bytes).map_err(|m| invalid(&shown, m))
}

/// Parses IDX bytes.
pub fn parse_idx(bytes: &[u8]) -> std::result::Result<IdxArray, String> {
    let header = bytes
        .get(..4)
        .ok_or("truncated header (fewer than 4 bytes)")?;
    if header[0] != 0 || header[1] != 0 {
        return Err(format!(
            "not an IDX file (magic {:02x}{:02x}{:02x}{:02x})",
            header[0], header[1], header[2], header[3]
        ));
    }
    if header[2] != 0x08 {
        return Err(format!(
            "unsupported IDX data type 0x{:02x} (only 0x08, unsigned bytes)",
            header[2]
        ));
    }
    let ndims = usize::from(header[3]);
    if ndims == 0 || ndims > 4 {
        return Err(format!("{ndims} dimensions (expected 1 to 4)"));
    }
    let dims_bytes = bytes.get(4..4 + 4 * ndims).ok_or("truncated dimensions")?;
    let dims: Vec<usize> = dims_bytes
        .chunks_exact(4)
        .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize)
        .collect();
    let total = dims
        .iter()
        .try_fold(1usize, |acc, d| acc.checked_mul(*d))
        .filter(|t| *t as u64 <= MAX_IDX_BYTES)
        .ok_or("dimensions too large")?;
    let data = &bytes[4 + 4 * ndims..];
    if data.len() < total {
        return Err(format!(
            "truncated: {} data bytes, the dimensions {dims:?} need {total}",
            data.len()
        ));
    }
    if data.len() > total {
        return Err(format!(
            "{} unexpected bytes after the data",
            data.len() - total
        ));
    }
    Ok(IdxArray {
        dims,
        data: data.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend_from_slice(&d.to_be_bytes());
        }
        v.extend_from_slice(data);
        v
    }

    #[test]
    fn parses_and_checks_lengths() {
        let a = parse_idx(&idx(&[2, 3], &[1, 2, 3, 4, 5, 6])).expect("parse");
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
        assert!(parse_idx(&idx(&[2, 3], &[1, 2, 3, 4, 5]))
            .expect_err("short")
            .contains("truncated"));
        assert!(parse_idx(&idx(&[2, 3], &[0; 7]))
            .expect_err("long")
            .contains("unexpected"));
        assert!(parse_idx(&[0, 0, 9, 1, 0, 0, 0, 1, 5])
            .expect_err("type")
            .contains("type"));
        assert!(parse_idx(&[1, 2, 3]).is_err());
        assert!(parse_idx(&[0x50, 0x4b, 3, 4, 0, 0])
            .expect_err("zip")
            .contains("not an IDX"));
        assert!(parse_idx(&idx(&[u32::MAX, u32::MAX], &[])).is_err());
    }
}
