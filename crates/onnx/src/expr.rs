//! Symbolic element-wise functions of the activation `x`: polynomials (kept as coefficient
//! vectors, so `0.1 + 0.5*x + 0.25*x**2` spread over six ONNX nodes becomes one `[0.1, 0.5, 0.25]`)
//! and, where activations are approximated, trees over non-polynomial functions (`x * sigmoid(x)`,
//! `0.5 * x * (1 + erf(x / sqrt 2))`) that are evaluated numerically to recognise them.

use crate::activation;

/// Highest degree a polynomial may reach while it is being built (the network's activations
/// are checked against their own limit when they are materialised).
pub(crate) const MAX_SYMBOLIC_DEGREE: usize = 16;

/// Largest expression tree kept (guards against graphs that square a non-polynomial repeatedly).
pub(crate) const MAX_NODES: usize = 1000;

/// A non-polynomial function of one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unary {
    Relu,
    Sigmoid,
    Tanh,
    Erf,
    Exp,
    /// `0.5 x (1 + erf(x / sqrt 2))`.
    Gelu,
    /// `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
    GeluTanh,
}

impl Unary {
    fn apply(self, x: f64) -> f64 {
        match self {
            Unary::Relu => x.max(0.0),
            Unary::Sigmoid => activation::sigmoid(x),
            Unary::Tanh => x.tanh(),
            Unary::Erf => activation::erf(x),
            Unary::Exp => x.exp(),
            Unary::Gelu => activation::gelu(x),
            Unary::GeluTanh => activation::gelu_tanh(x),
        }
    }
}

/// An element-wise function of the activation.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    /// `sum_k c[k] x^k` (no trailing zeros; at least one coefficient).
    Poly(Vec<f64>),
    Unary(Unary, Box<Expr>),
    Add(Box<Expr>, Box<Expr>),
    Mul(Box<Expr>, Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
}

fn trim(mut c: Vec<f64>) -> Vec<f64> {
    while c.len() > 1 && c.last() == Some(&0.0) {
        c.pop();
    }
    if c.is_empty() {
        c.push(0.0);
    }
    c
}

fn poly_mul(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut c = vec![0.0; a.len() + b.len() - 1];
    for (i, x) in a.iter().enumerate() {
        for (j, y) in b.iter().enumerate() {
            c[i + j] += x * y;
        }
    }
    trim(c)
}

impl Expr {
    /// The activation itself.
    pub(crate) fn x() -> Self {
        Expr::Poly(vec![0.0, 1.0])
    }

    /// A constant.
    pub(crate) fn constant(c: f64) -> Self {
        Expr::Poly(vec![c])
    }

    /// Coefficients when the function is a polynomial.
    pub(crate) fn as_poly(&self) -> Option<&[f64]> {
        match self {
            Expr::Poly(c) => Some(c),
            _ => None,
        }
    }

    /// Whether this is exactly `x`.
    pub(crate) fn is_x(&self) -> bool {
        self.as_poly() == Some(&[0.0, 1.0][..])
    }

    /// Nodes in the tree.
    pub(crate) fn size(&self) -> usize {
        match self {
            Expr::Poly(_) => 1,
            Expr::Unary(_, a) => 1 + a.size(),
            Expr::Add(a, b) | Expr::Mul(a, b) | Expr::Div(a, b) => 1 + a.size() + b.size(),
        }
    }

    /// The value at `x`.
    pub(crate) fn eval(&self, x: f64) -> f64 {
        match self {
            Expr::Poly(c) => c.iter().rev().fold(0.0, |acc, k| acc * x + k),
            Expr::Unary(u, a) => u.apply(a.eval(x)),
            Expr::Add(a, b) => a.eval(x) + b.eval(x),
            Expr::Mul(a, b) => a.eval(x) * b.eval(x),
            Expr::Div(a, b) => a.eval(x) / b.eval(x),
        }
    }

    fn checked(self) -> Result<Self, String> {
        if let Some(c) = self.as_poly() {
            if c.len() > MAX_SYMBOLIC_DEGREE + 1 {
                return Err(format!(
                    "polynomial of degree {} (more than {MAX_SYMBOLIC_DEGREE})",
                    c.len() - 1
                ));
            }
        } else if self.size() > MAX_NODES {
            return Err(format!(
                "element-wise expression of more than {MAX_NODES} terms"
            ));
        }
        Ok(self)
    }

    /// `a + b`.
    pub(crate) fn add(a: Expr, b: Expr) -> Result<Self, String> {
        match (a, b) {
            (Expr::Poly(p), Expr::Poly(q)) => {
                let mut c = vec![0.0; p.len().max(q.len())];
                for (i, v) in p.iter().enumerate() {
                    c[i] += v;
                }
                for (i, v) in q.iter().enumerate() {
                    c[i] += v;
                }
                Ok(Expr::Poly(trim(c)))
            }
            (a, b) => Expr::Add(Box::new(a), Box::new(b)).checked(),
        }
    }

    /// `a * b`.
    pub(crate) fn mul(a: Expr, b: Expr) -> Result<Self, String> {
        match (a, b) {
            (Expr::Poly(p), Expr::Poly(q)) => {
                let degree = p.len() + q.len() - 2;
                if degree > MAX_SYMBOLIC_DEGREE {
                    return Err(format!(
                        "polynomial of degree {degree} (more than {MAX_SYMBOLIC_DEGREE})"
                    ));
                }
                Ok(Expr::Poly(poly_mul(&p, &q)))
            }
            (a, b) => Expr::Mul(Box::new(a), Box::new(b)).checked(),
        }
    }

    /// `-a`.
    pub(crate) fn neg(a: Expr) -> Result<Self, String> {
        Expr::mul(Expr::constant(-1.0), a)
    }

    /// `a - b`.
    pub(crate) fn sub(a: Expr, b: Expr) -> Result<Self, String> {
        Expr::add(a, Expr::neg(b)?)
    }

    /// `a / b`: a polynomial when `b` is a non-zero constant, else a (non-polynomial) quotient.
    pub(crate) fn div(a: Expr, b: Expr) -> Result<Self, String> {
        match b.as_poly() {
            Some([c]) if *c == 0.0 => Err("division by zero".into()),
            Some([c]) => Expr::mul(a, Expr::constant(1.0 / c)),
            _ => Expr::Div(Box::new(a), Box::new(b)).checked(),
        }
    }

    /// `a^k`.
    pub(crate) fn powi(a: Expr, k: u32) -> Result<Self, String> {
        let mut r = Expr::constant(1.0);
        for _ in 0..k {
            r = Expr::mul(r, a.clone())?;
        }
        Ok(r)
    }

    /// `f(a)`.
    pub(crate) fn unary(f: Unary, a: Expr) -> Result<Self, String> {
        Expr::Unary(f, Box::new(a)).checked()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polynomials_combine() {
        let x = Expr::x();
        // 0.1 + 0.5 x + 0.25 x^2, as the exporter spells it.
        let a = Expr::add(
            Expr::mul(x.clone(), Expr::constant(0.5)).expect("ok"),
            Expr::constant(0.1),
        )
        .expect("ok");
        let b = Expr::mul(Expr::powi(x.clone(), 2).expect("ok"), Expr::constant(0.25)).expect("ok");
        assert_eq!(
            Expr::add(a, b).expect("ok").as_poly(),
            Some(&[0.1, 0.5, 0.25][..])
        );
        let sq = Expr::mul(x.clone(), x.clone()).expect("ok");
        assert_eq!(sq.as_poly(), Some(&[0.0, 0.0, 1.0][..]));
        let zero = Expr::sub(sq.clone(), sq).expect("ok");
        assert_eq!(zero.as_poly(), Some(&[0.0][..]));
        let half = Expr::div(x.clone(), Expr::constant(2.0)).expect("ok");
        assert_eq!(half.as_poly(), Some(&[0.0, 0.5][..]));
        assert!(Expr::div(x.clone(), Expr::constant(0.0)).is_err());
        assert!(Expr::powi(Expr::powi(x, 4).expect("ok"), 5).is_err());
    }

    #[test]
    fn non_polynomials_evaluate() {
        let x = Expr::x();
        let silu = Expr::mul(
            x.clone(),
            Expr::unary(Unary::Sigmoid, x.clone()).expect("ok"),
        )
        .expect("ok");
        assert!(silu.as_poly().is_none());
        assert!((silu.eval(1.0) - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-15);
        let mut e = x;
        for _ in 0..12 {
            match Expr::mul(e.clone(), Expr::unary(Unary::Relu, e.clone()).expect("ok")) {
                Ok(n) => e = n,
                Err(m) => {
                    assert!(m.contains("terms"), "{m}");
                    return;
                }
            }
        }
        panic!("expression grew without bound");
    }
}
