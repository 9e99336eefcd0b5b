//! python-paillier's encoding of numbers: `value = mantissa * BASE^exponent`, with the mantissa
//! stored mod `n` (negatives wrapped around) and the middle third of `[0, n)` reserved for
//! overflow detection.

use rug::ops::Pow;
use rug::{Integer, Rational};

use crate::keys::PublicKey;
use crate::math::scaled_to_f64;
use crate::{Error, Result};

/// The base of the exponent, as in phe.
pub const BASE: u32 = 16;
const LOG2_BASE: i64 = 4;
/// Bits of an `f64` mantissa (Python's `sys.float_info.mant_dig`).
const FLOAT_MANTISSA_BITS: i64 = 53;
/// Largest accepted `|exponent|`. phe's float encodings stay within about 280.
pub const MAX_ABS_EXPONENT: i32 = 4096;

/// A number to encode: an integer (exponent 0 unless lowered) or a float (exact encoding).
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    /// An arbitrary-size integer.
    Int(Integer),
    /// A finite `f64`.
    Float(f64),
}

impl From<i64> for Scalar {
    fn from(v: i64) -> Self {
        Scalar::Int(Integer::from(v))
    }
}
impl From<f64> for Scalar {
    fn from(v: f64) -> Self {
        Scalar::Float(v)
    }
}

/// A decoded number: an integer when the exponent is non-negative, else a float (like phe).
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// Exact integer result.
    Int(Integer),
    /// Correctly rounded float result.
    Float(f64),
}

impl Decoded {
    /// The value as an `f64` (integers rounded to nearest).
    pub fn to_f64(&self) -> f64 {
        match self {
            Decoded::Int(i) => scaled_to_f64(i, 0).unwrap_or(if *i < 0 {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }),
            Decoded::Float(f) => *f,
        }
    }
}

impl std::fmt::Display for Decoded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decoded::Int(i) => write!(f, "{i}"),
            Decoded::Float(x) => write!(f, "{x}"),
        }
    }
}

/// An encoded number for a given public key: `encoding` in `[0, n)` and `exponent`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedNumber {
    /// The mantissa mod `n`.
    pub encoding: Integer,
    /// The base-16 exponent.
    pub exponent: i32,
}

fn check_exponent(e: i64) -> Result<i32> {
    if e.abs() > i64::from(MAX_ABS_EXPONENT) {
        return Err(Error::ExponentRange(e));
    }
    Ok(e as i32)
}

/// `BASE^k` as a rational for any sign of `k`.
fn base_pow(k: i64) -> Rational {
    let p = Integer::from(BASE).pow(k.unsigned_abs() as u32);
    if k >= 0 {
        Rational::from(p)
    } else {
        Rational::from((Integer::from(1), p))
    }
}

/// Python's `round()` on a rational: nearest integer, ties to even.
fn round_half_even(x: Rational) -> Integer {
    let (frac, floor) = x.fract_floor(Integer::new());
    let half = Rational::from((1, 2));
    match frac.cmp(&half) {
        std::cmp::Ordering::Less => floor,
        std::cmp::Ordering::Greater => floor + 1u32,
        std::cmp::Ordering::Equal => {
            if floor.is_even() {
                floor
            } else {
                floor + 1u32
            }
        }
    }
}

impl EncodedNumber {
    /// phe's `EncodedNumber.encode(public_key, scalar, precision, max_exponent)`.
    ///
    /// Floats are encoded exactly unless `precision` (largest absolute error) is given;
    /// `max_exponent` forces an exponent no larger than it. Values whose integer
    /// representation exceeds `max_int` are an error.
    pub fn encode(
        pk: &PublicKey,
        scalar: &Scalar,
        precision: Option<f64>,
        max_exponent: Option<i32>,
    ) -> Result<Self> {
        let prec_exponent: i64 = match (precision, scalar) {
            (Some(p), _) => {
                if !(p.is_finite() && p > 0.0) {
                    return Err(Error::InvalidPrecision(p));
                }
                (p.ln() / f64::from(BASE).ln()).floor() as i64
            }
            (None, Scalar::Int(_)) => 0,
            (None, Scalar::Float(f)) => {
                if !f.is_finite() {
                    return Err(Error::NotFinite(*f));
                }
                let bin_flt_exponent = frexp_exponent(*f);
                let bin_lsb_exponent = bin_flt_exponent - FLOAT_MANTISSA_BITS;
                bin_lsb_exponent.div_euclid(LOG2_BASE)
            }
        };
        let exponent = match max_exponent {
            Some(m) => prec_exponent.min(i64::from(m)),
            None => prec_exponent,
        };
        let exponent = check_exponent(exponent)?;
        let value = match scalar {
            Scalar::Int(i) => Rational::from(i),
            Scalar::Float(f) => Rational::from_f64(*f).ok_or(Error::NotFinite(*f))?,
        };
        let int_rep = round_half_even(value * base_pow(-i64::from(exponent)));
        Self::from_int_rep(pk, int_rep, exponent)
    }

    /// Encodes an integer `mantissa` with the given exponent, checking the range.
    pub fn from_int_rep(pk: &PublicKey, int_rep: Integer, exponent: i32) -> Result<Self> {
        check_exponent(i64::from(exponent))?;
        if Integer::from(int_rep.abs_ref()) > *pk.max_int() {
            let digits = int_rep.to_string();
            let value = if digits.len() > 40 {
                format!("{}...({} digits)", &digits[..20], digits.len())
            } else {
                digits
            };
            return Err(Error::EncodeOverflow {
                value,
                max_bits: pk.max_int().significant_bits(),
            });
        }
        let mut encoding = int_rep;
        encoding.modulo_mut(pk.n());
        Ok(Self { encoding, exponent })
    }

    /// The signed mantissa, or an error in the overflow band (phe's `decode` rules).
    pub fn mantissa(&self, pk: &PublicKey) -> Result<Integer> {
        if self.encoding >= *pk.n() || self.encoding < 0 {
            Err(Error::CorruptedEncoding)
        } else if self.encoding <= *pk.max_int() {
            Ok(self.encoding.clone())
        } else if self.encoding >= Integer::from(pk.n() - pk.max_int()) {
            Ok(Integer::from(&self.encoding - pk.n()))
        } else {
            Err(Error::DecodeOverflow)
        }
    }

    /// phe's `decode`: an exact integer for exponents >= 0, else the correctly rounded float.
    pub fn decode(&self, pk: &PublicKey) -> Result<Decoded> {
        let mantissa = self.mantissa(pk)?;
        if self.exponent >= 0 {
            Ok(Decoded::Int(
                mantissa * Integer::from(BASE).pow(self.exponent as u32),
            ))
        } else {
            let shift = LOG2_BASE * i64::from(self.exponent);
            scaled_to_f64(&mantissa, shift)
                .map(Decoded::Float)
                .ok_or(Error::FloatOverflow)
        }
    }

    /// The exact rational value (for tests and exact comparisons).
    pub fn to_rational(&self, pk: &PublicKey) -> Result<Rational> {
        Ok(Rational::from(self.mantissa(pk)?) * base_pow(i64::from(self.exponent)))
    }

    /// Same value with a lower exponent: the mantissa is multiplied by `BASE^(exponent - new)`.
    pub fn decrease_exponent_to(&self, pk: &PublicKey, new_exponent: i32) -> Result<Self> {
        if new_exponent > self.exponent {
            return Err(Error::ExponentIncrease {
                from: self.exponent,
                to: new_exponent,
            });
        }
        let factor = Integer::from(BASE).pow((self.exponent - new_exponent) as u32);
        let mut encoding = Integer::from(&self.encoding * &factor);
        encoding.modulo_mut(pk.n());
        Ok(Self {
            encoding,
            exponent: check_exponent(i64::from(new_exponent))?,
        })
    }
}

/// Python's `math.frexp(x)[1]`: the `e` with `x = m * 2^e`, `0.5 <= |m| < 1` (0 for 0).
fn frexp_exponent(x: f64) -> i64 {
    if x == 0.0 {
        return 0;
    }
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i64;
    if biased == 0 {
        // Subnormal: value = mantissa * 2^-1074.
        let mantissa = bits & ((1u64 << 52) - 1);
        let len = 64 - i64::from(mantissa.leading_zeros());
        len - 1074
    } else {
        biased - 1022
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frexp_matches_python() {
        assert_eq!(frexp_exponent(1.0), 1);
        assert_eq!(frexp_exponent(0.5), 0);
        assert_eq!(frexp_exponent(3.0), 2);
        assert_eq!(frexp_exponent(-0.1), -3);
        assert_eq!(frexp_exponent(f64::from_bits(1)), -1073);
        assert_eq!(frexp_exponent(f64::MAX), 1024);
    }

    #[test]
    fn rounding_is_half_even() {
        assert_eq!(round_half_even(Rational::from((5, 2))), 2);
        assert_eq!(round_half_even(Rational::from((7, 2))), 4);
        assert_eq!(round_half_even(Rational::from((-5, 2))), -2);
        assert_eq!(round_half_even(Rational::from((-7, 2))), -4);
        assert_eq!(round_half_even(Rational::from((-8, 3))), -3);
    }
}
