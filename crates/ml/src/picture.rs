//! Grayscale pictures written as PNG files (test images shown by the demo). Reading pictures
//! as model inputs is the client's (`unseen_client::picture`).

use std::path::Path;

use crate::{Error, Result};

/// Writes `rows x cols` gray pixels as an 8-bit grayscale PNG.
pub fn write_png(path: &Path, pixels: &[u8], rows: usize, cols: usize) -> Result<()> {
    if pixels.len() != rows * cols {
        return Err(Error::Invalid(format!(
            "{} pixels for a {rows}x{cols} image",
            pixels.len()
        )));
    }
    let mut bytes = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut bytes, cols as u32, rows as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .map_err(|e| Error::Invalid(format!("encoding PNG: {e}")))?;
        w.write_image_data(pixels)
            .map_err(|e| Error::Invalid(format!("encoding PNG: {e}")))?;
    }
    unseen_fs::write_atomic(path, &bytes).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}
