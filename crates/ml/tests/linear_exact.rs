//! Least squares against an exact rational solution of the normal equations.

use rug::Rational;
use unseen_ml::linear::{fit_table, least_squares, split_indices, FitOptions};
use unseen_ml::table::Table;

/// Exact solution of X^T X beta = X^T y with rationals (Gaussian elimination).
fn exact_least_squares(x: &[Vec<f64>], y: &[f64]) -> Vec<f64> {
    let n = x[0].len();
    let xr: Vec<Vec<Rational>> = x
        .iter()
        .map(|r| {
            r.iter()
                .map(|v| Rational::from_f64(*v).expect("finite"))
                .collect()
        })
        .collect();
    let yr: Vec<Rational> = y
        .iter()
        .map(|v| Rational::from_f64(*v).expect("finite"))
        .collect();
    let mut m: Vec<Vec<Rational>> = (0..n)
        .map(|i| {
            let mut row: Vec<Rational> = (0..n)
                .map(|j| {
                    xr.iter().fold(Rational::new(), |acc, r| {
                        acc + Rational::from(&r[i] * &r[j])
                    })
                })
                .collect();
            row.push(xr.iter().zip(&yr).fold(Rational::new(), |acc, (r, t)| {
                acc + Rational::from(&r[i] * t)
            }));
            row
        })
        .collect();
    for k in 0..n {
        let p = (k..n).find(|&i| m[i][k] != 0).expect("non-singular");
        m.swap(k, p);
        let pivot = m[k].clone();
        for (i, row) in m.iter_mut().enumerate() {
            if i != k && row[k] != 0 {
                let f = Rational::from(&row[k] / &pivot[k]);
                for (dst, src) in row[k..].iter_mut().zip(&pivot[k..]) {
                    *dst -= Rational::from(&f * src);
                }
            }
        }
    }
    (0..n)
        .map(|i| Rational::from(&m[i][n] / &m[i][i]).to_f64())
        .collect()
}

fn employee_table() -> Table {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/employee/employee_data.csv");
    Table::read_csv(&path).expect("vendored employee data")
}

#[test]
fn employee_fit_matches_exact_solution() {
    let table = employee_table();
    assert_eq!(table.rows.len(), 1000);
    let opts = FitOptions {
        target: "salary".into(),
        features: vec![],
        test_fraction: 0.2,
        seed: 42,
        name: "salary".into(),
    };
    let model = fit_table(&table, &opts).expect("fit");
    assert_eq!(
        model.features,
        vec!["age", "healthy_eating", "active_lifestyle", "Gender"]
    );
    assert_eq!(
        (model.metrics.rows_train, model.metrics.rows_test),
        (800, 200)
    );
    let (train, _) = split_indices(1000, 0.2, 42).expect("split");
    let x: Vec<Vec<f64>> = train
        .iter()
        .map(|&r| {
            std::iter::once(1.0)
                .chain(table.rows[r][..4].iter().copied())
                .collect()
        })
        .collect();
    let y: Vec<f64> = train.iter().map(|&r| table.rows[r][4]).collect();
    let exact = exact_least_squares(&x, &y);
    let fitted: Vec<f64> = std::iter::once(model.intercept)
        .chain(model.coefficients.iter().copied())
        .collect();
    for (a, b) in fitted.iter().zip(&exact) {
        assert!(((a - b) / b).abs() < 1e-9, "{a} vs exact {b}");
    }
    assert!(
        model.metrics.r2 > 0.5 && model.metrics.r2 <= 1.0,
        "r2 {}",
        model.metrics.r2
    );
    assert!(model.metrics.rmse > 0.0);
}

#[test]
fn ill_conditioned_fit_matches_exact_solution() {
    // Columns with very different scales and a near-collinear pair.
    let x: Vec<Vec<f64>> = (0..200)
        .map(|i| {
            let t = f64::from(i) / 7.0;
            vec![
                1.0,
                t * 1e6,
                t * 1e6 + (t * 3.1).sin(),
                (t * 0.37).cos() * 1e-3,
            ]
        })
        .collect();
    let y: Vec<f64> = x
        .iter()
        .enumerate()
        .map(|(i, r)| 3.0 + 2e-6 * r[1] - 0.5 * r[2] + 40.0 * r[3] + (i % 5) as f64 * 0.01)
        .collect();
    let fitted = least_squares(&x, &y).expect("fit");
    let exact = exact_least_squares(&x, &y);
    for (a, b) in fitted.iter().zip(&exact) {
        assert!(((a - b) / b).abs() < 1e-6, "{a} vs exact {b}");
    }
}

#[test]
fn rank_deficiency_and_bad_fractions_are_errors() {
    let x = vec![
        vec![1.0, 2.0, 4.0],
        vec![1.0, 3.0, 6.0],
        vec![1.0, 5.0, 10.0],
        vec![1.0, 7.0, 14.0],
    ];
    assert!(least_squares(&x, &[1.0, 2.0, 3.0, 4.0]).is_err());
    assert!(least_squares(&x[..2], &[1.0, 2.0]).is_err());
    assert!(split_indices(10, 1.0, 0).is_err());
    assert!(split_indices(10, -0.1, 0).is_err());
    assert!(split_indices(10, f64::NAN, 0).is_err());
}
