//! CKKS encoder: complex (or real) vectors of up to N/2 slots to plaintext
//! polynomials through the canonical embedding, computed with one complex
//! FFT of length N/2.
//!
//! Slot `j` is the evaluation of the message polynomial at `xi^(5^j)`,
//! `xi = exp(i*pi/N)`, so that the automorphism `X -> X^(5^k)` rotates the
//! slots left by `k` and `X -> X^(2N-1)` conjugates them.

use std::f64::consts::PI;
use std::sync::Arc;

use num_complex::Complex64;
use zeroize::Zeroizing;

use crate::params::Parameters;
use crate::poly::{Basis, Ntt, Poly};
use crate::ring;
use crate::{Error, Result};

/// An encoded message: an RNS polynomial in NTT form with its level and scale.
#[derive(Clone)]
pub struct Plaintext {
    pub(crate) params: Arc<Parameters>,
    /// Over the data primes up to the plaintext's level.
    pub(crate) data: Poly<Ntt>,
    pub(crate) scale: f64,
}

/// A plaintext held at its primes' width, for products only ([`crate::Evaluator::mul_plain_sum`]):
/// residues whose prime is below `2^31` in 32-bit words, the others in 64-bit words. It takes
/// about half the memory of a [`Plaintext`], and half the bandwidth in a product: what a server
/// keeps of a model's encoded weights.
///
/// A message that repeats itself is held once per repetition: slots that repeat every
/// `slots / r` positions (`r` a power of two) make a polynomial in `X^r`, whose NTT values
/// (in the transform's bit-reversed order) come in runs of `r` equal values. Such runs, of 8
/// or more, are found exactly on the NTT values and kept as one value each: a linear map over
/// a vector replicated across the slots (as the compiler lays out small layers) keeps its
/// diagonals at a fraction of their size, and its products read that much less memory. The
/// products are the same residues as with the whole plaintext.
#[derive(Clone)]
pub struct CompactPlaintext {
    pub(crate) params: Arc<Parameters>,
    /// Residue `j` holds value `c / run` for coefficient `c`.
    pub(crate) residues: Vec<crate::rlwe::Residue>,
    /// Length of the runs of equal NTT values, the same in every residue (1: none).
    pub(crate) run: usize,
    pub(crate) level: usize,
    pub(crate) scale: f64,
}

impl std::fmt::Debug for CompactPlaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactPlaintext")
            .field("level", &self.level)
            .field("log2_scale", &self.scale.log2())
            .finish()
    }
}

impl CompactPlaintext {
    /// Level (number of RNS primes - 1).
    pub fn level(&self) -> usize {
        self.level
    }

    /// Scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Bytes held in memory.
    pub fn memory_bytes(&self) -> usize {
        self.residues.iter().map(|r| r.memory_bytes()).sum()
    }

    /// Length of the runs of equal NTT values it is held as (1: held whole).
    pub fn run(&self) -> usize {
        self.run
    }
}

/// The shortest runs of equal NTT values a [`CompactPlaintext`] is held as: a vector of 64-bit
/// products (AVX-512) per value.
const MIN_RUN: usize = 8;

/// The longest power-of-two length `r` such that `values` is constant on every aligned block of
/// `r` values (`values.len()`, a power of two, when it is constant).
fn run_length(values: &[u64]) -> usize {
    let mut zeros = values.len().trailing_zeros();
    for (c, w) in values.windows(2).enumerate() {
        if w[0] != w[1] {
            // a new value starts at c + 1: runs are at most its largest power-of-two factor
            zeros = zeros.min((c + 1).trailing_zeros());
            if zeros == 0 {
                break;
            }
        }
    }
    1 << zeros
}

impl Plaintext {
    /// The same plaintext at its primes' width (see [`CompactPlaintext`]).
    pub fn compact(&self) -> CompactPlaintext {
        let n = self.params.n();
        // runs shorter than a vector of products are held whole: multiplying from them would
        // cost more than the memory they save
        let run = match self.data.chunks_exact(n).map(run_length).min() {
            Some(run) if run >= MIN_RUN => run,
            _ => 1,
        };
        let residues = self
            .data
            .chunks_exact(n)
            .zip(self.data.basis().moduli(&self.params))
            .map(|(r, m)| {
                let kept: Vec<u64> = r.iter().step_by(run).copied().collect();
                crate::rlwe::Residue::of(&kept, m)
            })
            .collect();
        CompactPlaintext {
            params: self.params.clone(),
            residues,
            run,
            level: self.level(),
            scale: self.scale,
        }
    }
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plaintext")
            .field("level", &self.level())
            .field("log2_scale", &self.scale.log2())
            .finish()
    }
}

impl Drop for Plaintext {
    fn drop(&mut self) {
        // decrypted plaintexts hold the client's data
        zeroize::Zeroize::zeroize(&mut self.data);
    }
}

impl Plaintext {
    /// Level (number of RNS primes - 1).
    pub fn level(&self) -> usize {
        self.data.level()
    }

    /// Scale of the encoding.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
    }
}

/// Encodes and decodes CKKS plaintexts.
pub struct Encoder {
    params: Arc<Parameters>,
    /// `exp(2*pi*i*k/s)` for `k < s`, `s = N/2`.
    roots: Vec<Complex64>,
    /// `xi^k` for `k < s`.
    twist: Vec<Complex64>,
    /// FFT output index of slot `j`.
    slot_pos: Vec<usize>,
    bitrev: Vec<usize>,
}

/// `2^63`: rounded values below it in magnitude convert to `i64` exactly.
const I64_BOUND: f64 = 9_223_372_036_854_775_808.0;

impl Encoder {
    /// Builds the FFT tables for `params`.
    pub fn new(params: &Arc<Parameters>) -> Self {
        let s = params.slots();
        let n = params.n();
        let roots = (0..s)
            .map(|k| Complex64::from_polar(1.0, 2.0 * PI * k as f64 / s as f64))
            .collect();
        let twist = (0..s)
            .map(|k| Complex64::from_polar(1.0, PI * k as f64 / n as f64))
            .collect();
        let m = 2 * n;
        let mut g = 1usize;
        let slot_pos = (0..s)
            .map(|_| {
                let t = (g - 1) / 4;
                g = g * 5 % m;
                t
            })
            .collect();
        let bits = s.trailing_zeros();
        let bitrev = (0..s)
            .map(|i| {
                if bits == 0 {
                    0
                } else {
                    i.reverse_bits() >> (usize::BITS - bits)
                }
            })
            .collect();
        Self {
            params: params.clone(),
            roots,
            twist,
            slot_pos,
            bitrev,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
    }

    fn fft(&self, buf: &mut [Complex64], inverse: bool) {
        let s = buf.len();
        for i in 0..s {
            let j = self.bitrev[i];
            if i < j {
                buf.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= s {
            let half = len / 2;
            let step = s / len;
            for start in (0..s).step_by(len) {
                for k in 0..half {
                    let w = self.roots[k * step];
                    let w = if inverse { w.conj() } else { w };
                    let u = buf[start + k];
                    let v = buf[start + k + half] * w;
                    buf[start + k] = u + v;
                    buf[start + k + half] = u - v;
                }
            }
            len *= 2;
        }
        if inverse {
            let inv = 1.0 / s as f64;
            for x in buf.iter_mut() {
                *x *= inv;
            }
        }
    }

    /// Real coefficients (not yet scaled) of the polynomial whose slots are `values`.
    fn embed_inverse(&self, values: &[Complex64]) -> Vec<f64> {
        let s = self.params.slots();
        let mut v = vec![Complex64::new(0.0, 0.0); s];
        for (j, z) in values.iter().enumerate() {
            v[self.slot_pos[j]] = *z;
        }
        self.fft(&mut v, true);
        let mut coeffs = vec![0.0; 2 * s];
        for k in 0..s {
            let c = v[k] * self.twist[k].conj();
            coeffs[k] = c.re;
            coeffs[k + s] = c.im;
        }
        coeffs
    }

    fn embed(&self, coeffs: &[f64]) -> Vec<Complex64> {
        let s = self.params.slots();
        let mut v: Vec<Complex64> = (0..s)
            .map(|k| Complex64::new(coeffs[k], coeffs[k + s]) * self.twist[k])
            .collect();
        self.fft(&mut v, false);
        self.slot_pos.iter().map(|&t| v[t]).collect()
    }

    /// Encodes up to N/2 complex values (missing slots are zero) at `level`
    /// with `scale`.
    pub fn encode(&self, values: &[Complex64], level: usize, scale: f64) -> Result<Plaintext> {
        let s = self.params.slots();
        if values.len() > s {
            return Err(Error::Encoding(format!(
                "{} values do not fit in {s} slots",
                values.len()
            )));
        }
        if values
            .iter()
            .any(|z| !z.re.is_finite() || !z.im.is_finite())
        {
            return Err(Error::Encoding("non-finite input value".into()));
        }
        // the message's coefficients, wiped when done (as the plaintext is when dropped)
        let coeffs = Zeroizing::new(self.embed_inverse(values));
        self.encode_coefficients(&coeffs, level, scale)
    }

    /// Encodes up to N/2 real values.
    pub fn encode_real(&self, values: &[f64], level: usize, scale: f64) -> Result<Plaintext> {
        let z: Vec<Complex64> = values.iter().map(|&x| Complex64::new(x, 0.0)).collect();
        self.encode(&z, level, scale)
    }

    /// Scales, rounds and converts real coefficients to an NTT-form plaintext.
    ///
    /// `coeffs` holds `n` values (`ring::from_signed` sizes the polynomial by them).
    pub(crate) fn encode_coefficients(
        &self,
        coeffs: &[f64],
        level: usize,
        scale: f64,
    ) -> Result<Plaintext> {
        let params = &self.params;
        if level > params.max_level() {
            return Err(Error::InvalidArgument(format!(
                "level {level} above the maximum {}",
                params.max_level()
            )));
        }
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(Error::Encoding(format!("invalid scale {scale}")));
        }
        let limit = (params.log_q_at(level) - 1.0).min(120.0).exp2();
        let scaled: Zeroizing<Vec<f64>> =
            Zeroizing::new(coeffs.iter().map(|&c| (c * scale).round()).collect());
        if let Some(v) = scaled.iter().find(|v| !v.is_finite() || v.abs() >= limit) {
            return Err(Error::Encoding(format!(
                "scaled value 2^{:.1} too large for level {level} (modulus 2^{:.1})",
                v.abs().log2(),
                params.log_q_at(level)
            )));
        }
        let largest = scaled.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        let basis = params.basis(level);
        let n = params.n();
        let mut data = if largest < I64_BOUND {
            // the common case: every value is a 64-bit integer, reduced without 128-bit words
            let ints: Zeroizing<Vec<i64>> =
                Zeroizing::new(scaled.iter().map(|&v| v as i64).collect());
            ring::from_signed(&ints, &basis)
        } else {
            let ints: Zeroizing<Vec<i128>> =
                Zeroizing::new(scaled.iter().map(|&v| v as i128).collect());
            ring::from_signed_wide(&ints, &basis)
        };
        ring::ntt_all(&mut data, &basis, n);
        Ok(Plaintext {
            params: params.clone(),
            data: Poly::from_vec(data, Basis::Data(level), n),
            scale,
        })
    }

    /// Centered integer coefficients of a plaintext, as `f64` (exact CRT
    /// reconstruction by mixed-radix conversion, then Horner in floating point).
    pub(crate) fn coefficients(&self, pt: &Plaintext) -> Vec<f64> {
        let params = &self.params;
        let n = params.n();
        let basis = pt.data.basis().moduli(params);
        let l = basis.len();
        // the message's coefficients: wiped when done, as the plaintext is
        let data = zeroize::Zeroizing::new(pt.data.to_coeff(params));
        // mixed-radix digits of floor(Q/2)
        let half_res: Vec<u64> = basis
            .iter()
            .map(|m| {
                let p = m.value();
                m.mul(p - 1, m.inv(2))
            })
            .collect();
        let mut half_digits = vec![0u64; l];
        self.garner(&half_res, &basis, &mut half_digits);
        let mut out = vec![0.0; n];
        let mut res = vec![0u64; l];
        let mut d = vec![0u64; l];
        for (k, o) in out.iter_mut().enumerate() {
            for i in 0..l {
                res[i] = data[i * n + k];
            }
            self.garner(&res, &basis, &mut d);
            let mut negative = false;
            for i in (0..l).rev() {
                if d[i] != half_digits[i] {
                    negative = d[i] > half_digits[i];
                    break;
                }
            }
            if negative {
                for i in 0..l {
                    res[i] = basis[i].neg(res[i]);
                }
                self.garner(&res, &basis, &mut d);
            }
            let mut v = 0.0f64;
            for i in (0..l).rev() {
                v = v * basis[i].value() as f64 + d[i] as f64;
            }
            *o = if negative { -v } else { v };
        }
        out
    }

    /// Mixed-radix digits `d` of the CRT value with residues `res`:
    /// `x = d_0 + d_1 q_0 + d_2 q_0 q_1 + ...`, `d_i < q_i`.
    fn garner(&self, res: &[u64], basis: &[&ring::Modulus], d: &mut [u64]) {
        let g = &self.params.garner;
        for (i, (&r, m)) in res.iter().zip(basis).enumerate() {
            let mut t = r;
            for (&dj, &(w, ws)) in d[..i].iter().zip(&g[i]) {
                t = m.mul_shoup(m.sub(t, m.reduce(dj)), w, ws);
            }
            d[i] = t;
        }
    }

    /// Decodes a plaintext into N/2 complex values.
    pub fn decode(&self, pt: &Plaintext) -> Result<Vec<Complex64>> {
        if !self.params.same_as(&pt.params) {
            return Err(Error::ParametersMismatch);
        }
        let inv = 1.0 / pt.scale;
        let coeffs: Vec<f64> = self.coefficients(pt).iter().map(|c| c * inv).collect();
        Ok(self.embed(&coeffs))
    }

    /// Decodes a plaintext into N/2 real values (imaginary parts dropped).
    pub fn decode_real(&self, pt: &Plaintext) -> Result<Vec<f64>> {
        Ok(self.decode(pt)?.into_iter().map(|z| z.re).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Preset;
    use rand::{Rng, SeedableRng};

    #[test]
    fn encode_decode_roundtrip_precision() {
        let params = Parameters::preset(Preset::Cnn8192).expect("params");
        let enc = Encoder::new(&params);
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let vals: Vec<Complex64> = (0..params.slots())
            .map(|_| Complex64::new(rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0)))
            .collect();
        for level in [0, params.max_level()] {
            let pt = enc
                .encode(&vals, level, params.default_scale())
                .expect("encode");
            let out = enc.decode(&pt).expect("decode");
            let max = vals
                .iter()
                .zip(&out)
                .map(|(a, b)| (a - b).norm())
                .fold(0.0, f64::max);
            println!("encode/decode level {level}: max error 2^{:.2}", max.log2());
            assert!(max < 2f64.powi(-17), "{max}");
        }
    }

    #[test]
    fn coefficients_are_the_rounded_scaled_values_exactly() {
        // below 2^63 (64-bit words) and beyond it (128-bit words, a level whose modulus has
        // room), each residue is the rounded value modulo its prime
        let params = Parameters::preset(Preset::Cnn8192).expect("params");
        let enc = Encoder::new(&params);
        let n = params.n();
        let level = params.max_level();
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let coeffs: Vec<f64> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
        for scale in [2f64.powi(40), 2f64.powi(70)] {
            assert!(params.log_q_at(level) > 72.0);
            let pt = enc
                .encode_coefficients(&coeffs, level, scale)
                .expect("encode");
            let data = pt.data.to_coeff(&params);
            for (j, m) in params.basis(level).iter().enumerate() {
                for (k, &c) in coeffs.iter().enumerate() {
                    let v = (c * scale).round() as i128;
                    assert_eq!(data[j * n + k], v.rem_euclid(i128::from(m.value())) as u64);
                }
            }
        }
        // a value past the level's modulus, or not a number, is refused
        let mut bad = coeffs.clone();
        bad[3] = f64::NAN;
        assert!(enc.encode_coefficients(&bad, 0, 2f64.powi(20)).is_err());
        assert!(enc.encode_coefficients(&coeffs, 0, 2f64.powi(40)).is_err());
    }

    #[test]
    fn embedding_is_the_canonical_one() {
        // slot j must be m(xi^(5^j)) evaluated directly.
        let lit = crate::ParametersLiteral {
            name: "t".into(),
            log_n: 5,
            log_q: vec![40],
            log_p: 40,
            log_scale: 20,
            insecure: true,
        };
        let params = Parameters::new(lit).expect("params");
        let enc = Encoder::new(&params);
        let n = params.n();
        let coeffs: Vec<f64> = (0..n).map(|k| (k as f64 * 0.37).sin()).collect();
        let slots = enc.embed(&coeffs);
        let mut g = 1usize;
        for z in slots {
            let mut direct = Complex64::new(0.0, 0.0);
            for (k, &c) in coeffs.iter().enumerate() {
                direct += c * Complex64::from_polar(1.0, PI * (g * k) as f64 / n as f64);
            }
            assert!((direct - z).norm() < 1e-9);
            g = g * 5 % (2 * n);
        }
        let back = enc.embed_inverse(&enc.embed(&coeffs));
        for (a, b) in back.iter().zip(&coeffs) {
            assert!((a - b).abs() < 1e-12);
        }
    }
}
