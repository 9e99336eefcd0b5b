//! Sparse affine maps `y = A x + b`: what every linear layer lowers to. Consecutive linear
//! layers (a convolution, the pooling after it, a batch normalisation, a dense layer) compose
//! into one map, which the compiler evaluates in one multiplicative level.

/// `y[o] = bias[o] + sum_(i, w) in rows[o] w * x[i]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SparseAffine {
    /// Number of inputs.
    pub inputs: usize,
    /// Non-zero terms `(input index, weight)` of each output, inputs in increasing order.
    pub rows: Vec<Vec<(usize, f64)>>,
    /// Constant term of each output.
    pub bias: Vec<f64>,
}

impl SparseAffine {
    /// The identity on `n` values.
    pub fn identity(n: usize) -> Self {
        Self {
            inputs: n,
            rows: (0..n).map(|i| vec![(i, 1.0)]).collect(),
            bias: vec![0.0; n],
        }
    }

    /// `y[i] = scale[i] * x[i] + shift[i]`.
    pub fn diagonal(scale: &[f64], shift: &[f64]) -> Self {
        Self {
            inputs: scale.len(),
            rows: scale
                .iter()
                .enumerate()
                .map(|(i, s)| if *s == 0.0 { vec![] } else { vec![(i, *s)] })
                .collect(),
            bias: shift.to_vec(),
        }
    }

    /// Number of outputs.
    pub fn outputs(&self) -> usize {
        self.rows.len()
    }

    /// Number of non-zero weights.
    pub fn nonzeros(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    /// `next(self(x))`: the composition, `next` applied after `self`.
    pub fn then(&self, next: &SparseAffine) -> Result<SparseAffine, String> {
        if next.inputs != self.outputs() {
            return Err(format!(
                "cannot compose a map with {} outputs and one with {} inputs",
                self.outputs(),
                next.inputs
            ));
        }
        let mut acc = vec![0.0f64; self.inputs];
        let mut mark = vec![false; self.inputs];
        let mut touched: Vec<usize> = Vec::new();
        let mut rows = Vec::with_capacity(next.rows.len());
        let mut bias = Vec::with_capacity(next.rows.len());
        for (row, b) in next.rows.iter().zip(&next.bias) {
            let mut c = *b;
            for (k, w) in row {
                c += w * self.bias[*k];
                for (i, v) in &self.rows[*k] {
                    if !mark[*i] {
                        mark[*i] = true;
                        touched.push(*i);
                    }
                    acc[*i] += w * v;
                }
            }
            touched.sort_unstable();
            let mut out = Vec::with_capacity(touched.len());
            for i in touched.drain(..) {
                if acc[i] != 0.0 {
                    out.push((i, acc[i]));
                }
                acc[i] = 0.0;
                mark[i] = false;
            }
            rows.push(out);
            bias.push(c);
        }
        Ok(SparseAffine {
            inputs: self.inputs,
            rows,
            bias,
        })
    }

    /// The same map with every output multiplied by `scale[o]` and shifted by `shift[o]`.
    pub fn scale_outputs(&mut self, scale: &[f64], shift: &[f64]) {
        for ((row, b), (s, t)) in self
            .rows
            .iter_mut()
            .zip(&mut self.bias)
            .zip(scale.iter().zip(shift))
        {
            for (_, w) in row.iter_mut() {
                *w *= s;
            }
            *b = *b * s + t;
        }
    }

    /// Applies the map to one input.
    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        self.rows
            .iter()
            .zip(&self.bias)
            .map(|(row, b)| b + row.iter().map(|(i, w)| w * x[*i]).sum::<f64>())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn composition_equals_applying_both() {
        let a = SparseAffine {
            inputs: 3,
            rows: vec![vec![(0, 1.0), (2, -2.0)], vec![(1, 0.5)]],
            bias: vec![1.0, -1.0],
        };
        let b = SparseAffine {
            inputs: 2,
            rows: vec![vec![(0, 2.0), (1, 4.0)], vec![], vec![(1, 1.0)]],
            bias: vec![0.0, 3.0, 0.5],
        };
        let c = a.then(&b).expect("compose");
        let x = [0.3, -1.2, 2.5];
        let want = b.apply(&a.apply(&x));
        let got = c.apply(&x);
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-12, "{got:?} {want:?}");
        }
        assert!(a.then(&a).is_err());
        // Cancelling terms disappear.
        let dup = SparseAffine {
            inputs: 1,
            rows: vec![vec![(0, 1.0)], vec![(0, -1.0)]],
            bias: vec![0.0, 0.0],
        };
        let sum = SparseAffine {
            inputs: 2,
            rows: vec![vec![(0, 1.0), (1, 1.0)]],
            bias: vec![0.0],
        };
        assert!(dup.then(&sum).expect("compose").rows[0].is_empty());
    }
}
