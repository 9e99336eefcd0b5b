//! Grayscale pictures as model inputs: any 8- or 16-bit PNG (gray, RGB, with or without alpha,
//! palette) decoded to luminance and resized by area averaging to the model's input size.

use std::path::Path;

use crate::{Error, Result};

/// Largest PNG side accepted (a bound on the memory a hostile file can make us use).
const MAX_SIDE: u32 = 4096;

/// Reads a PNG file as `rows x cols` gray pixels (0 = black), resized if needed. Transparent
/// pixels count as black, as MNIST digits are white on black.
pub fn read_png(path: &Path, rows: usize, cols: usize) -> Result<Vec<u8>> {
    let shown = path.display().to_string();
    let bad = |m: String| Error::Invalid(format!("{shown}: {m}"));
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: shown.clone(),
        source,
    })?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| bad(format!("not a readable PNG ({e})")))?;
    let (w, h) = (reader.info().width, reader.info().height);
    if w == 0 || h == 0 || w > MAX_SIDE || h > MAX_SIDE {
        return Err(bad(format!(
            "image of {w}x{h} pixels (1 to {MAX_SIDE} per side accepted)"
        )));
    }
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(format!("truncated or corrupt PNG ({e})")))?;
    let channels = frame.color_type.samples();
    let data = &buf[..frame.buffer_size()];
    let (w, h) = (w as usize, h as usize);
    let gray: Vec<f64> = (0..w * h)
        .map(|i| {
            let p = &data[i * channels..(i + 1) * channels];
            let (luma, alpha) = match channels {
                1 => (f64::from(p[0]), 255.0),
                2 => (f64::from(p[0]), f64::from(p[1])),
                3 => (luma(p), 255.0),
                _ => (luma(p), f64::from(p[3])),
            };
            luma * alpha / 255.0
        })
        .collect();
    Ok(resize(&gray, h, w, rows, cols))
}

fn luma(p: &[u8]) -> f64 {
    0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
}

/// Area-average resize of a `h x w` image to `rows x cols`.
fn resize(src: &[f64], h: usize, w: usize, rows: usize, cols: usize) -> Vec<u8> {
    let (sy, sx) = (h as f64 / rows as f64, w as f64 / cols as f64);
    let mut out = Vec::with_capacity(rows * cols);
    for r in 0..rows {
        for c in 0..cols {
            let (y0, y1) = (r as f64 * sy, (r + 1) as f64 * sy);
            let (x0, x1) = (c as f64 * sx, (c + 1) as f64 * sx);
            let (mut sum, mut area) = (0.0, 0.0);
            let mut y = y0.floor() as usize;
            while (y as f64) < y1 && y < h {
                let wy = (y1.min((y + 1) as f64) - y0.max(y as f64)).max(0.0);
                let mut x = x0.floor() as usize;
                while (x as f64) < x1 && x < w {
                    let wx = (x1.min((x + 1) as f64) - x0.max(x as f64)).max(0.0);
                    sum += src[y * w + x] * wx * wy;
                    area += wx * wy;
                    x += 1;
                }
                y += 1;
            }
            let v = if area > 0.0 { sum / area } else { 0.0 };
            out.push(v.round().clamp(0.0, 255.0) as u8);
        }
    }
    out
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_and_resize() {
        let dir = std::env::temp_dir().join(format!("unseen-picture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let px: Vec<u8> = (0..28 * 28).map(|i| (i * 7 % 256) as u8).collect();
        let p = dir.join("a.png");
        write_png(&p, &px, 28, 28).expect("write");
        assert_eq!(read_png(&p, 28, 28).expect("read"), px);
        // 56x56 made of 2x2 blocks averages back to the 28x28 original
        let big: Vec<u8> = (0..56 * 56)
            .map(|i| px[(i / 56 / 2) * 28 + (i % 56) / 2])
            .collect();
        write_png(&dir.join("b.png"), &big, 56, 56).expect("write");
        assert_eq!(read_png(&dir.join("b.png"), 28, 28).expect("read"), px);
        // not a PNG, truncated PNG
        std::fs::write(dir.join("c.png"), b"hello").expect("write");
        assert!(read_png(&dir.join("c.png"), 28, 28).is_err());
        let bytes = std::fs::read(&p).expect("read");
        std::fs::write(dir.join("d.png"), &bytes[..bytes.len() / 2]).expect("write");
        assert!(read_png(&dir.join("d.png"), 28, 28).is_err());
        assert!(read_png(&dir.join("missing.png"), 28, 28).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
