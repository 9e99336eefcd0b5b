//! PNG plots of a training run (loss and accuracy per epoch, the confusion matrix) and of an
//! encrypted evaluation (accuracy per class, in the clear and encrypted).

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::cnn::train::EpochStats;
use crate::{Error, Result};

/// DejaVu Sans (see `assets/DejaVuSans-LICENSE.txt`), so plots render the same everywhere.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

fn font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(
            "the bundled plot font could not be loaded".into(),
        ))
    }
}

fn plot_err(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |e| Error::Invalid(format!("cannot draw {}: {e}", path.display()))
}

/// The series' legend in a box at `position`.
fn legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    position: SeriesLabelPosition,
    size: u32,
) -> std::result::Result<(), String> {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", size))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())
}

/// Draws one or more series against the epoch number.
fn curves(
    path: &Path,
    title: &str,
    y_desc: &str,
    series: &[(&str, Vec<f64>, RGBColor)],
    y_range: (f64, f64),
) -> Result<()> {
    font()?;
    let err = plot_err(path);
    let n = series.iter().map(|s| s.1.len()).max().unwrap_or(1).max(2);
    let root = BitMapBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(50)
        .y_label_area_size(80)
        .build_cartesian_2d(1f64..n as f64, y_range.0..y_range.1)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(y_desc)
        .x_labels(n.min(20))
        .x_label_formatter(&|x| format!("{x:.0}"))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    for (label, values, color) in series {
        let color = *color;
        chart
            .draw_series(LineSeries::new(
                values.iter().enumerate().map(|(i, v)| ((i + 1) as f64, *v)),
                color.stroke_width(3),
            ))
            .map_err(|e| err(e.to_string()))?
            .label(*label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
        chart
            .draw_series(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Circle::new(((i + 1) as f64, *v), 4, color.filled())),
            )
            .map_err(|e| err(e.to_string()))?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight, 18).map_err(&err)?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// `loss.png`: training loss per epoch.
pub fn loss_curve(path: &Path, history: &[EpochStats], title: &str) -> Result<()> {
    let values: Vec<f64> = history.iter().map(|h| h.train_loss).collect();
    let hi = values.iter().copied().fold(0.0f64, f64::max) * 1.1;
    curves(
        path,
        title,
        "cross-entropy loss",
        &[("training loss", values, RGBColor(214, 39, 40))],
        (0.0, hi.max(1e-3)),
    )
}

/// `accuracy.png`: training and test accuracy per epoch, in percent.
pub fn accuracy_curve(path: &Path, history: &[EpochStats], title: &str) -> Result<()> {
    let train: Vec<f64> = history.iter().map(|h| 100.0 * h.train_accuracy).collect();
    let test: Vec<f64> = history.iter().map(|h| 100.0 * h.test_accuracy).collect();
    let lo = train.iter().chain(&test).copied().fold(100.0f64, f64::min);
    let lo = (lo - 1.0).floor().max(0.0);
    curves(
        path,
        title,
        "accuracy (%)",
        &[
            ("training", train, RGBColor(31, 119, 180)),
            ("test", test, RGBColor(255, 127, 14)),
        ],
        (lo, 100.0),
    )
}

/// `confusion.png`: counts of (true class, predicted class) as a heat map with the numbers.
pub fn confusion_matrix(
    path: &Path,
    confusion: &[Vec<usize>],
    classes: &[&str],
    title: &str,
) -> Result<()> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    font()?;
    let err = plot_err(path);
    let k = confusion.len() as i32;
    let root = BitMapBackend::new(path, (920, 880)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(70)
        .y_label_area_size(130)
        .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())
        .map_err(|e| err(e.to_string()))?;
    // Row 0 (the first class) is drawn at the top.
    let name = |v: &SegmentValue<i32>, flip: bool| match v {
        SegmentValue::CenterOf(i) => {
            let idx = if flip { k - 1 - i } else { *i };
            classes
                .get(idx as usize)
                .map(|s| s.to_string())
                .unwrap_or_default()
        }
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc("predicted class")
        .y_desc("true class")
        .x_labels(k as usize)
        .y_labels(k as usize)
        .x_label_formatter(&|v| name(v, false))
        .y_label_formatter(&|v| name(v, true))
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let max = confusion
        .iter()
        .flatten()
        .copied()
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    for (t, row) in confusion.iter().enumerate() {
        for (p, count) in row.iter().enumerate() {
            // Square-root scale so that small off-diagonal counts are still visible.
            let shade = (*count as f64 / max).sqrt();
            let c = (255.0 * (1.0 - shade)) as u8;
            let color = RGBColor(c, (f64::from(c) * 0.9 + 25.0) as u8, 255);
            let (x, y) = (p as i32, k - 1 - t as i32);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [
                        (SegmentValue::Exact(x), SegmentValue::Exact(y)),
                        (SegmentValue::Exact(x + 1), SegmentValue::Exact(y + 1)),
                    ],
                    color.filled(),
                )))
                .map_err(|e| err(e.to_string()))?;
            let text_color = if shade > 0.55 { WHITE } else { BLACK };
            let style = ("sans-serif", 17)
                .into_font()
                .color(&text_color)
                .pos(Pos::new(HPos::Center, VPos::Center));
            chart
                .draw_series(std::iter::once(Text::new(
                    count.to_string(),
                    (SegmentValue::CenterOf(x), SegmentValue::CenterOf(y)),
                    style,
                )))
                .map_err(|e| err(e.to_string()))?;
        }
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// Per-class accuracy in the clear and encrypted, side by side (percent; `plain` and
/// `encrypted` hold one value per class, `counts` the test samples of each class).
pub fn class_accuracy(
    path: &Path,
    classes: &[&str],
    plain: &[f64],
    encrypted: &[f64],
    counts: &[usize],
    title: &str,
) -> Result<()> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    font()?;
    let err = plot_err(path);
    let k = classes.len().max(1);
    // The axis starts a little below the worst class, so that differences are visible.
    let worst = plain
        .iter()
        .chain(encrypted)
        .copied()
        .filter(|v| v.is_finite())
        .fold(100.0f64, f64::min);
    let lo = ((worst - 2.0) / 5.0).floor().clamp(0.0, 19.0) * 5.0;
    // Room above 100% for the legend.
    let hi = 100.0 + (100.0 - lo) * 0.18;
    let width = (160 + 90 * k).clamp(900, 1800) as u32;
    let root = BitMapBackend::new(path, (width, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..k as f64, lo..hi)
        .map_err(|e| err(e.to_string()))?;
    let label = |x: &f64| {
        let i = x.floor() as usize;
        if (x - x.floor() - 0.5).abs() < 1e-6 {
            let n = counts.get(i).copied().unwrap_or(0);
            classes
                .get(i)
                .map(|c| format!("{c} ({n})"))
                .unwrap_or_default()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_desc("class (test samples)")
        .y_desc("accuracy (%)")
        .y_label_formatter(&|v| {
            if *v <= 100.0 {
                format!("{v:.0}")
            } else {
                String::new()
            }
        })
        .x_labels(2 * k + 1)
        .x_label_formatter(&label)
        .label_style(("sans-serif", 15))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let series = [
        ("plaintext", plain, RGBColor(31, 119, 180), 0.12),
        ("encrypted (CKKS)", encrypted, RGBColor(255, 127, 14), 0.5),
    ];
    for (name, values, color, offset) in series {
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let x0 = i as f64 + offset;
                Rectangle::new([(x0, lo), (x0 + 0.38, v.max(lo))], color.filled())
            }))
            .map_err(|e| err(e.to_string()))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 18, y + 6)], color.filled()));
        let style = ("sans-serif", 13)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                Text::new(
                    format!("{v:.1}"),
                    (i as f64 + offset + 0.19, v.max(lo)),
                    style.clone(),
                )
            }))
            .map_err(|e| err(e.to_string()))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight, 16).map_err(&err)?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}

/// A picture of one input image, enlarged, with caption lines under it (for example the
/// encrypted and the plaintext prediction).
pub fn image_card(
    path: &Path,
    pixels: &[u8],
    rows: usize,
    cols: usize,
    title: &str,
    lines: &[String],
) -> Result<()> {
    font()?;
    let err = plot_err(path);
    if pixels.len() != rows * cols || rows == 0 || cols == 0 {
        return Err(Error::Invalid(format!(
            "{} pixels for a {rows}x{cols} image",
            pixels.len()
        )));
    }
    let cell = (336 / rows.max(cols)).max(1) as i32;
    let (iw, ih) = (cell * cols as i32, cell * rows as i32);
    let width = 520u32.max(iw as u32 + 40);
    let height = (ih + 80 + 30 * lines.len() as i32) as u32;
    let root = BitMapBackend::new(path, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    root.draw(&Text::new(
        title.to_string(),
        (20, 14),
        ("sans-serif", 22).into_font(),
    ))
    .map_err(|e| err(e.to_string()))?;
    let x0 = (width as i32 - iw) / 2;
    let y0 = 50;
    for r in 0..rows {
        for c in 0..cols {
            let v = pixels[r * cols + c];
            let (x, y) = (x0 + c as i32 * cell, y0 + r as i32 * cell);
            root.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                RGBColor(v, v, v).filled(),
            ))
            .map_err(|e| err(e.to_string()))?;
        }
    }
    for (i, line) in lines.iter().enumerate() {
        root.draw(&Text::new(
            line.clone(),
            (20, y0 + ih + 14 + 30 * i as i32),
            ("sans-serif", 19).into_font(),
        ))
        .map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(())
}
