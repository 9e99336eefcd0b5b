//! Non-polynomial activations and their least-squares polynomial fits.
//!
//! An imported network that used ReLU, sigmoid, tanh, SiLU or GELU gets, with
//! [`ImportOptions::approximate_activations`](crate::ImportOptions), a placeholder fit on
//! `[-1, 1]` ([`PLACEHOLDER_RANGE`], degree [`PLACEHOLDER_DEGREE`]); the caller measures the
//! range its inputs actually reach and calls [`fit_activation`] again.

use std::f64::consts::PI;

/// Names of the activations [`fit_activation`] knows (as recorded in
/// [`Replaced::op_type`](crate::Replaced)); lookups ignore case.
pub const ACTIVATIONS: [&str; 6] = ["Relu", "Sigmoid", "Tanh", "Silu", "Gelu", "GeluTanh"];

/// Interval of the placeholder fit made at import.
pub const PLACEHOLDER_RANGE: (f64, f64) = (-1.0, 1.0);

/// Degree of the placeholder fit made at import.
pub const PLACEHOLDER_DEGREE: usize = 2;

/// Sample points of a fit.
const FIT_SAMPLES: usize = 1000;

/// The error function, to about 1e-15 (the series `erf x = 2/sqrt(pi) e^(-x^2) sum 2^n x^(2n+1) /
/// (1*3*...*(2n+1))`, whose terms are all positive, below `|x| = 6`; `+-1` beyond, where
/// `1 - erf 6 < 3e-17`).
pub fn erf(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    let a = x.abs();
    if a >= 6.0 {
        return x.signum();
    }
    let x2 = a * a;
    let mut term = a;
    let mut sum = a;
    let mut n = 0.0;
    while term > sum * 1e-17 {
        n += 1.0;
        term *= 2.0 * x2 / (2.0 * n + 1.0);
        sum += term;
    }
    let r = (2.0 / PI.sqrt() * (-x2).exp() * sum).min(1.0);
    r.copysign(x)
}

/// `1 / (1 + e^-x)`.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// GELU with the error function: `0.5 x (1 + erf(x / sqrt 2))` (PyTorch's default).
pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// GELU's tanh form: `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`
/// (`approximate="tanh"`).
pub fn gelu_tanh(x: f64) -> f64 {
    0.5 * x * (1.0 + ((2.0 / PI).sqrt() * (x + 0.044715 * x * x * x)).tanh())
}

fn relu(x: f64) -> f64 {
    x.max(0.0)
}

fn tanh(x: f64) -> f64 {
    x.tanh()
}

fn silu(x: f64) -> f64 {
    x * sigmoid(x)
}

/// The function of an activation named as in [`ACTIVATIONS`] (any case), if known.
pub fn activation_fn(name: &str) -> Option<fn(f64) -> f64> {
    let f: fn(f64) -> f64 = match name.to_ascii_lowercase().as_str() {
        "relu" => relu,
        "sigmoid" => sigmoid,
        "tanh" => tanh,
        "silu" | "swish" => silu,
        "gelu" => gelu,
        "gelutanh" | "gelu_tanh" => gelu_tanh,
        _ => return None,
    };
    Some(f)
}

/// The activation (name from [`ACTIVATIONS`]) that `f` computes, checked on a grid over
/// `[-6, 6]`.
pub(crate) fn identify(f: impl Fn(f64) -> f64) -> Option<&'static str> {
    let grid: Vec<f64> = (0..=240).map(|i| -6.0 + 0.05 * f64::from(i)).collect();
    let values: Vec<f64> = grid.iter().map(|x| f(*x)).collect();
    ACTIVATIONS.into_iter().find(|name| {
        activation_fn(name).is_some_and(|g| {
            grid.iter()
                .zip(&values)
                .all(|(x, v)| (v - g(*x)).abs() <= 1e-6 * (1.0 + v.abs()))
        })
    })
}

/// Least-squares polynomial of `degree` (coefficients `a0, a1, ..., a_degree`, constant first)
/// for the activation `op_type` (one of [`ACTIVATIONS`], any case) on `[lo, hi]`, from 1000
/// Chebyshev-spaced samples. Empty for an unknown activation or an empty or non-finite interval.
pub fn fit_activation(op_type: &str, lo: f64, hi: f64, degree: usize) -> Vec<f64> {
    let Some(f) = activation_fn(op_type) else {
        return Vec::new();
    };
    if !(lo.is_finite() && hi.is_finite() && hi > lo) {
        return Vec::new();
    }
    fit(f, lo, hi, degree)
}

/// Least squares on Chebyshev nodes: with `t_i = cos(pi (i + 1/2) / n)` the Chebyshev
/// polynomials `T_0..T_{n-1}` are orthogonal over the samples, so the coefficients of the best
/// fit in that basis are plain sums; they are then converted to powers of `x`.
fn fit(f: impl Fn(f64) -> f64, lo: f64, hi: f64, degree: usize) -> Vec<f64> {
    let n = FIT_SAMPLES.max(degree + 1);
    let (mid, half) = ((lo + hi) / 2.0, (hi - lo) / 2.0);
    let theta: Vec<f64> = (0..n).map(|i| PI * (i as f64 + 0.5) / n as f64).collect();
    let values: Vec<f64> = theta.iter().map(|th| f(mid + half * th.cos())).collect();
    let cheb: Vec<f64> = (0..=degree)
        .map(|k| {
            let s: f64 = theta
                .iter()
                .zip(&values)
                .map(|(th, v)| v * (k as f64 * th).cos())
                .sum();
            s * if k == 0 { 1.0 } else { 2.0 } / n as f64
        })
        .collect();
    // Powers of t: T_0 = 1, T_1 = t, T_{k+1} = 2t T_k - T_{k-1}.
    let mut in_t = vec![0.0; degree + 1];
    let (mut prev, mut cur) = (vec![1.0], vec![0.0, 1.0]);
    for (k, c) in cheb.iter().enumerate() {
        let tk = if k == 0 { &prev } else { &cur };
        for (j, v) in tk.iter().enumerate() {
            in_t[j] += c * v;
        }
        if k >= 1 {
            let mut next = vec![0.0; cur.len() + 1];
            for (j, v) in cur.iter().enumerate() {
                next[j + 1] += 2.0 * v;
            }
            for (j, v) in prev.iter().enumerate() {
                next[j] -= v;
            }
            prev = std::mem::replace(&mut cur, next);
        }
    }
    // t = (x - mid) / half: expand sum a_j ((x - mid) / half)^j.
    let mut in_x = vec![0.0; degree + 1];
    let mut binom = vec![1.0f64];
    for (j, a) in in_t.iter().enumerate() {
        if j > 0 {
            let mut next = vec![1.0; j + 1];
            for i in 1..j {
                next[i] = binom[i - 1] + binom[i];
            }
            binom = next;
        }
        let scale = a / half.powi(j as i32);
        for (i, b) in binom.iter().enumerate() {
            in_x[i] += scale * b * (-mid).powi((j - i) as i32);
        }
    }
    in_x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_reference_values() {
        for (x, want) in [
            (0.0, 0.0),
            (0.1, 0.1124629160182849),
            (0.5, 0.5204998778130465),
            (1.0, 0.8427007929497149),
            (2.0, 0.9953222650189527),
            (3.0, 0.9999779095030014),
            (4.5, 0.9999999998033839),
        ] {
            assert!(
                (erf(x) - want).abs() < 1e-14,
                "erf({x}) = {} != {want}",
                erf(x)
            );
            assert!((erf(-x) + want).abs() < 1e-14);
        }
        assert_eq!(erf(7.0), 1.0);
    }

    #[test]
    fn fits_are_least_squares() {
        // A polynomial of the fitted degree is reproduced exactly, on any interval.
        let p = |x: f64| 0.3 - 1.5 * x + 0.25 * x * x - 0.125 * x * x * x;
        let c = fit(p, -3.0, 5.0, 3);
        for (got, want) in c.iter().zip([0.3, -1.5, 0.25, -0.125]) {
            assert!((got - want).abs() < 1e-10, "{c:?}");
        }
        // ReLU on [-1, 1], degree 2: symmetric, so the odd part is x / 2 exactly.
        let r = fit_activation("Relu", -1.0, 1.0, 2);
        assert_eq!(r.len(), 3);
        assert!((r[1] - 0.5).abs() < 1e-9, "{r:?}");
        // Least squares with Chebyshev weight: 1/pi + x/2 + 2/(3 pi) T_2(x) = 1/(3 pi) + x/2 +
        // 4/(3 pi) x^2.
        assert!((r[0] - 1.0 / (3.0 * PI)).abs() < 1e-3, "{r:?}");
        assert!((r[2] - 4.0 / (3.0 * PI)).abs() < 1e-3, "{r:?}");
        // Sigmoid near 0 is 1/2 + x/4.
        let s = fit_activation("sigmoid", -0.1, 0.1, 1);
        assert!(
            (s[0] - 0.5).abs() < 1e-6 && (s[1] - 0.25).abs() < 1e-3,
            "{s:?}"
        );
        assert!(fit_activation("Softsign", -1.0, 1.0, 2).is_empty());
        assert!(fit_activation("Relu", 1.0, 1.0, 2).is_empty());
        for name in ACTIVATIONS {
            let f = activation_fn(name).expect("known");
            let c = fit_activation(name, -4.0, 4.0, 4);
            let err = (0..=80)
                .map(|i| {
                    let x = -4.0 + 0.1 * f64::from(i);
                    (c.iter().rev().fold(0.0, |a, k| a * x + k) - f(x)).abs()
                })
                .fold(0.0, f64::max);
            assert!(err < 0.6, "{name}: {err}");
            assert_eq!(identify(f), Some(name));
        }
    }
}
