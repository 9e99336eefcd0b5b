//! Ordinary least squares with intercept, solved by Householder QR (no normal equations, so
//! the conditioning of the design matrix is not squared).

use rand::seq::SliceRandom;
use rand::SeedableRng;

use crate::table::Table;
use crate::{Error, Result};

pub use unseen_model::linear::{LinearModel, Metrics, MODEL_FORMAT, MODEL_VERSION};

/// Options of [`fit_table`].
#[derive(Debug, Clone)]
pub struct FitOptions {
    /// Target column.
    pub target: String,
    /// Feature columns; all other columns when empty.
    pub features: Vec<String>,
    /// Fraction of rows held out for evaluation, in `[0, 1)`.
    pub test_fraction: f64,
    /// Shuffle seed.
    pub seed: u64,
    /// Model name.
    pub name: String,
}

/// Least-squares solution `beta` of `min ||X beta - y||` for a full-column-rank `X`
/// (`rows` x `cols`, row-major), by Householder QR.
pub fn least_squares(x: &[Vec<f64>], y: &[f64]) -> Result<Vec<f64>> {
    let m = x.len();
    let n = x.first().map(Vec::len).unwrap_or(0);
    if m != y.len() || x.iter().any(|r| r.len() != n) {
        return Err(Error::Invalid(
            "design matrix and target have inconsistent shapes".into(),
        ));
    }
    if m < n || n == 0 {
        return Err(Error::Invalid(format!(
            "{m} rows are not enough to fit {n} parameters"
        )));
    }
    // Column-major copy of X and a copy of y, transformed in place.
    let mut a: Vec<Vec<f64>> = (0..n).map(|j| x.iter().map(|r| r[j]).collect()).collect();
    let mut b = y.to_vec();
    let scale = a
        .iter()
        .map(|c| c.iter().fold(0.0f64, |s, v| s.max(v.abs())))
        .fold(0.0f64, f64::max);
    for k in 0..n {
        let norm = a[k][k..].iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm <= 1e-12 * scale.max(1.0) * (m as f64) {
            return Err(Error::Invalid(format!(
                "the design matrix is rank deficient (column {k} is a combination of others)"
            )));
        }
        let alpha = if a[k][k] > 0.0 { -norm } else { norm };
        // v = x - alpha e1, normalised implicitly.
        let mut v: Vec<f64> = a[k][k..].to_vec();
        v[0] -= alpha;
        let vnorm2: f64 = v.iter().map(|t| t * t).sum();
        for col in a.iter_mut().skip(k) {
            let dot: f64 = v.iter().zip(&col[k..]).map(|(p, q)| p * q).sum();
            let f = 2.0 * dot / vnorm2;
            for (c, vi) in col[k..].iter_mut().zip(&v) {
                *c -= f * vi;
            }
        }
        let dot: f64 = v.iter().zip(&b[k..]).map(|(p, q)| p * q).sum();
        let f = 2.0 * dot / vnorm2;
        for (c, vi) in b[k..].iter_mut().zip(&v) {
            *c -= f * vi;
        }
    }
    // Back substitution with R (upper triangle of a).
    let mut beta = vec![0.0; n];
    for i in (0..n).rev() {
        let mut s = b[i];
        for j in i + 1..n {
            s -= a[j][i] * beta[j];
        }
        beta[i] = s / a[i][i];
    }
    Ok(beta)
}

/// RMSE and R^2 of predictions against truth.
pub fn rmse_r2(pred: &[f64], truth: &[f64]) -> (f64, f64) {
    let n = truth.len().max(1) as f64;
    let mean = truth.iter().sum::<f64>() / n;
    let ss_res: f64 = pred.iter().zip(truth).map(|(p, t)| (p - t) * (p - t)).sum();
    let ss_tot: f64 = truth.iter().map(|t| (t - mean) * (t - mean)).sum();
    let r2 = if ss_tot > 0.0 {
        1.0 - ss_res / ss_tot
    } else {
        f64::NAN
    };
    ((ss_res / n).sqrt(), r2)
}

/// Splits row indices into (train, test) after a seeded shuffle; the test part has
/// `ceil(fraction * rows)` rows.
pub fn split_indices(rows: usize, fraction: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    if !(0.0..1.0).contains(&fraction) {
        return Err(Error::Invalid(format!(
            "test fraction {fraction} must be in [0, 1)"
        )));
    }
    let mut idx: Vec<usize> = (0..rows).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    idx.shuffle(&mut rng);
    let n_test = (fraction * rows as f64).ceil() as usize;
    let train = idx.split_off(n_test);
    Ok((train, idx))
}

/// Fits a linear model on a table.
pub fn fit_table(table: &Table, opts: &FitOptions) -> Result<LinearModel> {
    let target = table.column_index(&opts.target)?;
    let features: Vec<String> = if opts.features.is_empty() {
        table
            .columns
            .iter()
            .filter(|c| **c != opts.target)
            .cloned()
            .collect()
    } else {
        opts.features.clone()
    };
    let feature_idx: Vec<usize> = features
        .iter()
        .map(|f| table.column_index(f))
        .collect::<Result<_>>()?;
    let (train, test) = split_indices(table.rows.len(), opts.test_fraction, opts.seed)?;
    let design = |rows: &[usize]| -> Vec<Vec<f64>> {
        rows.iter()
            .map(|&r| {
                std::iter::once(1.0)
                    .chain(feature_idx.iter().map(|&j| table.rows[r][j]))
                    .collect()
            })
            .collect()
    };
    let y = |rows: &[usize]| -> Vec<f64> { rows.iter().map(|&r| table.rows[r][target]).collect() };
    let beta = least_squares(&design(&train), &y(&train))?;
    let (eval_rows, evaluated_on) = if test.is_empty() {
        (&train, "train")
    } else {
        (&test, "test")
    };
    let mut model = LinearModel {
        format: MODEL_FORMAT.into(),
        version: MODEL_VERSION,
        name: opts.name.clone(),
        target: opts.target.clone(),
        features,
        coefficients: beta[1..].to_vec(),
        intercept: beta[0],
        metrics: Metrics {
            rmse: 0.0,
            r2: 0.0,
            rows_train: train.len(),
            rows_test: test.len(),
            evaluated_on: evaluated_on.into(),
            test_fraction: opts.test_fraction,
            seed: opts.seed,
        },
    };
    let pred: Vec<f64> = eval_rows
        .iter()
        .map(|&r| {
            model.predict(
                &feature_idx
                    .iter()
                    .map(|&j| table.rows[r][j])
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let (rmse, r2) = rmse_r2(&pred, &y(eval_rows));
    model.metrics.rmse = rmse;
    model.metrics.r2 = r2;
    Ok(model)
}
