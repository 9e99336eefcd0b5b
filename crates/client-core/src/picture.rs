//! Pictures as model inputs, the same for every client: pixels of any layout (gray, gray and
//! alpha, RGB, RGBA; 8 bits per sample) to luminance, transparent pixels as black (MNIST digits
//! are white on black), resized by area averaging to the model's `rows x cols`.

use crate::Error;

/// Largest picture side accepted (a bound on the memory a hostile picture can make us use).
pub const MAX_SIDE: usize = 4096;

/// The `rows x cols` gray pixels (0 = black) of a `width x height` picture whose pixels are
/// `channels` samples each (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA), row-major.
pub fn gray_pixels(
    samples: &[u8],
    channels: usize,
    width: usize,
    height: usize,
    rows: usize,
    cols: usize,
) -> Result<Vec<u8>, Error> {
    if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
        return Err(Error::Input(format!(
            "a picture of {width}x{height} pixels (1 to {MAX_SIDE} per side accepted)"
        )));
    }
    if !(1..=4).contains(&channels) || samples.len() != width * height * channels {
        return Err(Error::Input(format!(
            "{} bytes for a {width}x{height} picture of {channels} samples per pixel",
            samples.len()
        )));
    }
    if rows == 0 || cols == 0 {
        return Err(Error::Input("the model's input has no pixels".into()));
    }
    let gray: Vec<f64> = samples
        .chunks_exact(channels)
        .map(|p| {
            let (luma, alpha) = match channels {
                1 => (f64::from(p[0]), 255.0),
                2 => (f64::from(p[0]), f64::from(p[1])),
                3 => (luma(p), 255.0),
                _ => (luma(p), f64::from(p[3])),
            };
            luma * alpha / 255.0
        })
        .collect();
    Ok(resize(&gray, height, width, rows, cols))
}

fn luma(p: &[u8]) -> f64 {
    // a gray pixel keeps its exact value: the weights sum to 1
    if p[0] == p[1] && p[1] == p[2] {
        return f64::from(p[0]);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_average_back_to_the_original_exactly() {
        // a 3x2 image painted as 10x10 blocks of RGBA comes back unchanged
        let small = [0u8, 17, 128, 255, 3, 200];
        let (rows, cols, k) = (3, 2, 10);
        let mut rgba = Vec::new();
        for y in 0..rows * k {
            for x in 0..cols * k {
                let v = small[(y / k) * cols + x / k];
                rgba.extend_from_slice(&[v, v, v, 255]);
            }
        }
        let got = gray_pixels(&rgba, 4, cols * k, rows * k, rows, cols).expect("picture");
        assert_eq!(got, small);
    }

    #[test]
    fn transparency_is_black_and_colour_is_luma() {
        let px = [255u8, 0, 0, 255, 0, 255, 0, 0];
        let got = gray_pixels(&px, 4, 2, 1, 1, 2).expect("picture");
        assert_eq!(got, vec![76, 0]); // 0.299 * 255 = 76.2
        let half = gray_pixels(&[200, 128], 2, 1, 1, 1, 1).expect("picture");
        assert_eq!(half, vec![100]); // 200 * 128 / 255 = 100.4
    }

    #[test]
    fn area_average_of_a_two_by_two_block() {
        let got = gray_pixels(&[0, 10, 20, 31], 1, 2, 2, 1, 1).expect("picture");
        assert_eq!(got, vec![15]); // 61 / 4 = 15.25
    }

    #[test]
    fn bad_pictures_are_refused() {
        assert!(gray_pixels(&[], 4, 0, 0, 28, 28).is_err());
        assert!(gray_pixels(&[0; 7], 4, 2, 1, 28, 28).is_err());
        assert!(gray_pixels(&[0; 5], 5, 1, 1, 28, 28).is_err());
        assert!(gray_pixels(&[0; 4], 1, 1, MAX_SIDE + 1, 28, 28).is_err());
    }
}
