//! PNG files as model inputs: decoded here, then converted by the client core's
//! [`unseen_client_core::picture`], the code the browser page runs on a canvas's pixels.

use std::path::Path;

use crate::Error;

/// Reads a PNG file (8 or 16 bits; gray, RGB, with or without alpha, palette) as `rows x cols`
/// gray pixels (0 = black), resized if needed. Transparent pixels count as black, as MNIST
/// digits are white on black.
pub fn read_png(path: &Path, rows: usize, cols: usize) -> Result<Vec<u8>, Error> {
    let shown = path.display().to_string();
    let bad = |message: String| Error::KeyFile {
        path: shown.clone(),
        message,
    };
    let file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    let mut decoder = png::Decoder::new(std::io::BufReader::new(file));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder
        .read_info()
        .map_err(|e| bad(format!("not a readable PNG ({e})")))?;
    let (w, h) = (reader.info().width as usize, reader.info().height as usize);
    let max = unseen_client_core::picture::MAX_SIDE;
    if w == 0 || h == 0 || w > max || h > max {
        return Err(bad(format!(
            "image of {w}x{h} pixels (1 to {max} per side accepted)"
        )));
    }
    let mut buf = vec![0u8; reader.output_buffer_size()];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| bad(format!("truncated or corrupt PNG ({e})")))?;
    let channels = frame.color_type.samples();
    unseen_client_core::picture::gray_pixels(
        &buf[..frame.buffer_size()],
        channels,
        w,
        h,
        rows,
        cols,
    )
    .map_err(|e| bad(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_gray_png(path: &Path, pixels: &[u8], rows: usize, cols: usize) {
        let mut bytes = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut bytes, cols as u32, rows as u32);
            enc.set_color(png::ColorType::Grayscale);
            enc.set_depth(png::BitDepth::Eight);
            let mut w = enc.write_header().expect("header");
            w.write_image_data(pixels).expect("data");
        }
        std::fs::write(path, bytes).expect("write");
    }

    #[test]
    fn png_round_trip_and_resize() {
        let dir = std::env::temp_dir().join(format!("unseen-picture-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let px: Vec<u8> = (0..28 * 28).map(|i| (i * 7 % 256) as u8).collect();
        let p = dir.join("a.png");
        write_gray_png(&p, &px, 28, 28);
        assert_eq!(read_png(&p, 28, 28).expect("read"), px);
        // 56x56 made of 2x2 blocks averages back to the 28x28 original
        let big: Vec<u8> = (0..56 * 56)
            .map(|i| px[(i / 56 / 2) * 28 + (i % 56) / 2])
            .collect();
        write_gray_png(&dir.join("b.png"), &big, 56, 56);
        assert_eq!(read_png(&dir.join("b.png"), 28, 28).expect("read"), px);
        // not a PNG, truncated PNG, no file
        std::fs::write(dir.join("c.png"), b"hello").expect("write");
        assert!(read_png(&dir.join("c.png"), 28, 28).is_err());
        let bytes = std::fs::read(&p).expect("read");
        std::fs::write(dir.join("d.png"), &bytes[..bytes.len() / 2]).expect("write");
        assert!(read_png(&dir.join("d.png"), 28, 28).is_err());
        assert!(read_png(&dir.join("missing.png"), 28, 28).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
