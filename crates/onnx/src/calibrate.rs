//! Calibration of approximated activations: each activation that
//! [`ImportOptions::approximate_activations`](crate::ImportOptions) replaced by a placeholder is
//! refitted on the range its inputs reach on real data, layer after layer, so that every fit sees
//! the inputs the approximated network (the one that will run encrypted) gives it.

use unseen_model::layers::Poly;
use unseen_model::Layer;

use crate::activation::{activation_fn, fit_activation};
use crate::{Error, Imported};

/// Share of the measured range added on each side before a fit, for inputs a little beyond
/// those of the calibration data.
pub const CALIBRATION_MARGIN: f64 = 0.1;

/// One refitted activation.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    /// The ONNX node it stands for.
    pub node: String,
    /// The activation (as in [`crate::ACTIVATIONS`]).
    pub op_type: String,
    /// Index of its `poly` layer.
    pub layer_index: usize,
    /// Smallest and largest input measured on the calibration data.
    pub measured: (f64, f64),
    /// Interval of the fit: the measured one widened by [`CALIBRATION_MARGIN`] on each side.
    pub range: (f64, f64),
    /// The polynomial, constant first.
    pub coefficients: Vec<f64>,
    /// Largest `|polynomial - activation|` over the interval of the fit.
    pub max_error: f64,
}

fn calibration_error(reason: impl Into<String>) -> Error {
    Error::Calibration(reason.into())
}

fn check_batch(imported: &Imported, inputs: &[f32], samples: usize) -> Result<(), Error> {
    let per = imported.network.inputs();
    if samples == 0 || inputs.len() != samples * per {
        return Err(calibration_error(format!(
            "{} values are not {samples} samples of {per} inputs",
            inputs.len()
        )));
    }
    if inputs.iter().any(|v| !v.is_finite()) {
        return Err(calibration_error("an input is not a finite number"));
    }
    Ok(())
}

/// Refits every replaced activation of `imported` on `samples` normalised inputs (`inputs` holds
/// them one after the other) with a least-squares polynomial of `degree` (1 to 4; 2 costs one
/// level, 3 and 4 two), and returns the fits in layer order.
pub fn calibrate(
    imported: &mut Imported,
    inputs: &[f32],
    samples: usize,
    degree: usize,
) -> Result<Vec<Fitted>, Error> {
    if !(1..=unseen_model::layers::MAX_DEGREE).contains(&degree) {
        return Err(calibration_error(format!(
            "the degree of a fitted activation must be 1 to {}, not {degree}",
            unseen_model::layers::MAX_DEGREE
        )));
    }
    check_batch(imported, inputs, samples)?;
    let mut fitted = Vec::new();
    let mut x = inputs.to_vec();
    for i in 0..imported.network.arch.layers.len() {
        if let Some(r) = imported.replaced.iter().find(|r| r.layer_index == i) {
            let f = activation_fn(&r.op_type)
                .ok_or_else(|| calibration_error(format!("unknown activation {}", r.op_type)))?;
            let (lo, hi) = x
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(f64::from(*v)), hi.max(f64::from(*v)))
                });
            if !(lo.is_finite() && hi.is_finite()) {
                return Err(calibration_error(format!(
                    "the inputs of node '{}' ({}) overflow on the calibration data",
                    r.node, r.op_type
                )));
            }
            let pad = (hi - lo).max(1e-3) * CALIBRATION_MARGIN;
            let range = (lo - pad, hi + pad);
            let coefficients = fit_on_samples(f, &x, range, degree)
                .unwrap_or_else(|| fit_activation(&r.op_type, range.0, range.1, degree));
            if coefficients.is_empty() || coefficients.iter().any(|c| !c.is_finite()) {
                return Err(calibration_error(format!(
                    "no polynomial fits node '{}' ({}) on [{lo}, {hi}]",
                    r.node, r.op_type
                )));
            }
            let max_error = (0..=1000)
                .map(|k| {
                    let t = range.0 + (range.1 - range.0) * f64::from(k) / 1000.0;
                    let p = coefficients.iter().rev().fold(0.0, |acc, c| acc * t + c);
                    (p - f(t)).abs()
                })
                .fold(0.0, f64::max);
            imported.network.arch.layers[i] = Layer::Poly(Poly {
                coefficients: coefficients.clone(),
            });
            fitted.push(Fitted {
                node: r.node.clone(),
                op_type: r.op_type.clone(),
                layer_index: i,
                measured: (lo, hi),
                range,
                coefficients,
                max_error,
            });
        }
        x = imported.network.layer_forward(i, &x, samples);
    }
    Ok(fitted)
}

/// Least squares over the measured inputs themselves (at most 200,000 of them, evenly strided),
/// so that the fit is best where the data is dense; in the variable `t = (x - mid) / half` of
/// the interval for a well-conditioned system. `None` if the system is singular.
fn fit_on_samples(
    f: fn(f64) -> f64,
    x: &[f32],
    range: (f64, f64),
    degree: usize,
) -> Option<Vec<f64>> {
    let (mid, half) = ((range.0 + range.1) / 2.0, (range.1 - range.0) / 2.0);
    let stride = x.len().div_ceil(200_000).max(1);
    let k = degree + 1;
    let mut ata = vec![vec![0.0f64; k]; k];
    let mut atb = vec![0.0f64; k];
    let mut powers = vec![0.0f64; k];
    for v in x.iter().step_by(stride) {
        let v = f64::from(*v);
        let t = (v - mid) / half;
        let mut p = 1.0;
        for slot in powers.iter_mut() {
            *slot = p;
            p *= t;
        }
        let y = f(v);
        for i in 0..k {
            atb[i] += powers[i] * y;
            for j in 0..k {
                ata[i][j] += powers[i] * powers[j];
            }
        }
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..k {
        let pivot = (col..k).max_by(|a, b| ata[*a][col].abs().total_cmp(&ata[*b][col].abs()))?;
        if ata[pivot][col].abs() < 1e-12 * ata[0][0].abs().max(1e-300) {
            return None;
        }
        ata.swap(col, pivot);
        atb.swap(col, pivot);
        let (top, rest) = ata.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (r, row) in rest.iter_mut().enumerate() {
            let m = row[col] / pivot_row[col];
            for (a, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *a -= m * p;
            }
            atb[col + 1 + r] -= m * atb[col];
        }
    }
    let mut in_t = vec![0.0f64; k];
    for row in (0..k).rev() {
        let s: f64 = (row + 1..k).map(|j| ata[row][j] * in_t[j]).sum();
        in_t[row] = (atb[row] - s) / ata[row][row];
    }
    // Back to powers of x: sum a_j ((x - mid) / half)^j.
    let mut in_x = vec![0.0f64; k];
    for (j, a) in in_t.iter().enumerate() {
        let scale = a / half.powi(j as i32);
        let mut binom = 1.0f64;
        for (i, c) in in_x[..=j].iter_mut().enumerate() {
            // binom = C(j, i)
            *c += scale * binom * (-mid).powi((j - i) as i32);
            binom = binom * (j - i) as f64 / (i + 1) as f64;
        }
    }
    in_x.iter().all(|c| c.is_finite()).then_some(in_x)
}

/// Logits of the model as exported: the network with each replaced activation computed exactly
/// instead of by its polynomial (`samples` normalised inputs one after the other).
pub fn exact_logits(
    imported: &Imported,
    inputs: &[f32],
    samples: usize,
) -> Result<Vec<f32>, Error> {
    check_batch(imported, inputs, samples)?;
    let mut x = inputs.to_vec();
    for i in 0..imported.network.arch.layers.len() {
        let exact = imported
            .replaced
            .iter()
            .find(|r| r.layer_index == i)
            .and_then(|r| activation_fn(&r.op_type));
        x = match exact {
            Some(f) => x.iter().map(|v| f(f64::from(*v)) as f32).collect(),
            None => imported.network.layer_forward(i, &x, samples),
        };
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relu(x: f64) -> f64 {
        x.max(0.0)
    }

    #[test]
    fn fits_on_samples_are_least_squares_over_the_data() {
        // ReLU on positive data is the identity, whatever the interval.
        let x: Vec<f32> = (0..500).map(|i| 0.1 + i as f32 / 100.0).collect();
        let c = fit_on_samples(relu, &x, (-3.0, 6.0), 2).expect("fit");
        for (got, want) in c.iter().zip([0.0, 1.0, 0.0]) {
            assert!((got - want).abs() < 1e-9, "{c:?}");
        }
        // Data symmetric around 0: degree 1 fit of ReLU is mean(relu) + x / 2 when the data
        // is symmetric (the odd part of ReLU is x / 2).
        let x: Vec<f32> = (-100..=100).map(|i| i as f32 / 50.0).collect();
        let c = fit_on_samples(relu, &x, (-2.2, 2.2), 1).expect("fit");
        let mean = x.iter().map(|v| relu(f64::from(*v))).sum::<f64>() / x.len() as f64;
        assert!(
            (c[0] - mean).abs() < 1e-9 && (c[1] - 0.5).abs() < 1e-9,
            "{c:?}"
        );
        // Too few distinct points for the degree: singular.
        assert!(fit_on_samples(relu, &[1.0, 1.0, 1.0], (0.0, 2.0), 2).is_none());
    }
}
