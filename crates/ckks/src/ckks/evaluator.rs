//! Homomorphic operations on CKKS ciphertexts with level and scale tracking.

use std::borrow::Cow;
use std::sync::Arc;

use rayon::prelude::*;

use crate::ckks::encoder::{CompactPlaintext, Plaintext};
use crate::gadget::SwitchPlan;
use crate::params::Parameters;
use crate::poly::{Basis, Ntt, Poly};
use crate::ring;
use crate::rlwe::{self, GaloisKeys, RelinKey, Residue};
use crate::{Error, Result};

/// Rotated terms by the form `(level, special primes)` of their keys: one division by the
/// special modulus per form.
type RotatedByForm<'a> =
    std::collections::BTreeMap<(usize, usize), Vec<(&'a Ciphertext, &'a rlwe::GaloisKey)>>;

/// A CKKS ciphertext `(c0, c1)` in NTT form with `c0 + c1 s ~ scale * m`.
#[derive(Clone)]
pub struct Ciphertext {
    pub(crate) params: Arc<Parameters>,
    /// Both over the data primes up to the ciphertext's level.
    pub(crate) c0: Poly<Ntt>,
    pub(crate) c1: Poly<Ntt>,
    pub(crate) scale: f64,
    /// Seed of `c1` for fresh secret-key ciphertexts (enables seeded serialization).
    pub(crate) seed: Option<[u8; 32]>,
}

impl std::fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ciphertext")
            .field("level", &self.level())
            .field("log2_scale", &self.scale.log2())
            .field("seeded", &self.seed.is_some())
            .finish()
    }
}

impl PartialEq for Ciphertext {
    fn eq(&self, other: &Self) -> bool {
        self.params.same_as(&other.params)
            && self.scale.to_bits() == other.scale.to_bits()
            && self.c0 == other.c0
            && self.c1 == other.c1
    }
}

impl Ciphertext {
    /// Level (number of RNS primes - 1).
    pub fn level(&self) -> usize {
        self.c0.level()
    }

    /// Current scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }

    /// Overrides the tracked scale (e.g. to absorb a known constant factor).
    pub fn set_scale(&mut self, scale: f64) {
        self.scale = scale;
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
    }

    /// Whether the ciphertext can be serialized in seeded (half-size) form.
    pub fn is_seeded(&self) -> bool {
        self.seed.is_some()
    }

    /// Same ciphertext with a new `c0` (`c1` untouched, so a seed stays valid).
    fn with_c0(&self, c0: Poly<Ntt>) -> Ciphertext {
        Ciphertext {
            params: self.params.clone(),
            c0,
            c1: self.c1.clone(),
            scale: self.scale,
            seed: self.seed,
        }
    }

    /// `c0` (0) or `c1` (1).
    fn poly(&self, i: usize) -> &[u64] {
        if i == 0 {
            &self.c0
        } else {
            &self.c1
        }
    }

    /// A new ciphertext of the same parameters from two polynomials over the same basis.
    fn derived(&self, c0: Poly<Ntt>, c1: Poly<Ntt>, scale: f64) -> Ciphertext {
        debug_assert_eq!(c0.basis(), c1.basis());
        Ciphertext {
            params: self.params.clone(),
            c0,
            c1,
            scale,
            seed: None,
        }
    }

    /// A ciphertext of the same parameters and scale with no data yet (a result to write into).
    fn empty_like(&self) -> Ciphertext {
        let empty = Poly::from_vec(Vec::new(), Basis::Data(0), 0);
        self.derived(empty.clone(), empty, self.scale)
    }
}

/// `out = ct`, in `out`'s buffers when they have the room.
fn copy_into(out: &mut Ciphertext, ct: &Ciphertext) {
    out.c0.copy_from(&ct.c0);
    out.c1.copy_from(&ct.c1);
    out.params = ct.params.clone();
    out.scale = ct.scale;
    out.seed = ct.seed;
}

/// Coefficients per block of the fused sums: a block of the accumulator and of every input
/// a block of rows shares stays in cache.
const FUSED_CHUNK: usize = 512;

/// Values `at..at + len` of part `poly` of `ct`.
fn block(ct: &Ciphertext, poly: usize, at: usize, len: usize) -> &[u64] {
    &ct.poly(poly)[at..at + len]
}

/// Relative tolerance under which two scales are considered equal.
pub const SCALE_TOLERANCE: f64 = 1e-10;

fn scales_match(a: f64, b: f64) -> bool {
    (a - b).abs() <= SCALE_TOLERANCE * a.abs().max(b.abs())
}

/// Stateless evaluator bound to a parameter set.
#[derive(Clone)]
pub struct Evaluator {
    params: Arc<Parameters>,
}

impl Evaluator {
    /// An evaluator for `params`.
    pub fn new(params: &Arc<Parameters>) -> Self {
        Self {
            params: params.clone(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
    }

    fn check_params(&self, p: &Parameters) -> Result<()> {
        if self.params.same_as(p) {
            Ok(())
        } else {
            Err(Error::ParametersMismatch)
        }
    }

    fn check_pair(&self, a: &Ciphertext, b: &Ciphertext) -> Result<()> {
        self.check_params(&a.params)?;
        self.check_params(&b.params)?;
        if a.level() != b.level() {
            return Err(Error::LevelMismatch {
                left: a.level(),
                right: b.level(),
            });
        }
        Ok(())
    }

    fn check_scales(a: f64, b: f64) -> Result<()> {
        if scales_match(a, b) {
            Ok(())
        } else {
            Err(Error::ScaleMismatch {
                left_log2: a.log2(),
                right_log2: b.log2(),
            })
        }
    }

    /// Plaintext residues at the ciphertext level (a plaintext at a higher
    /// level is used truncated, which is exact).
    fn plain_at<'a>(&self, ct: &Ciphertext, pt: &'a Plaintext) -> Result<&'a [u64]> {
        self.check_params(&pt.params)?;
        if pt.level() < ct.level() {
            return Err(Error::LevelMismatch {
                left: ct.level(),
                right: pt.level(),
            });
        }
        Ok(pt.data.at_level(ct.level(), self.params.n()))
    }

    fn check_scale_fits(&self, scale: f64, level: usize) -> Result<()> {
        let room = self.params.log_q_at(level) - 1.0;
        if !(scale.is_finite() && scale > 0.0) || scale.log2() >= room {
            return Err(Error::LevelTooLow(format!(
                "scale 2^{:.1} does not fit in the modulus 2^{:.1} at level {level}; rescale first",
                scale.log2(),
                room + 1.0
            )));
        }
        Ok(())
    }

    /// `a + b`.
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        let mut sum = a.clone();
        self.add_assign(&mut sum, b)?;
        Ok(sum)
    }

    /// `acc += b`, in place.
    pub fn add_assign(&self, acc: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        self.check_pair(acc, b)?;
        Self::check_scales(acc.scale, b.scale)?;
        acc.c0.add_assign(&b.c0, &self.params);
        acc.c1.add_assign(&b.c1, &self.params);
        acc.seed = None;
        Ok(())
    }

    /// `a - b`.
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.check_pair(a, b)?;
        Self::check_scales(a.scale, b.scale)?;
        let mut c0 = a.c0.clone();
        let mut c1 = a.c1.clone();
        c0.sub_assign(&b.c0, &self.params);
        c1.sub_assign(&b.c1, &self.params);
        Ok(a.derived(c0, c1, a.scale))
    }

    /// `-a`.
    pub fn negate(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.check_params(&a.params)?;
        let n = self.params.n();
        let basis = self.params.basis(a.level());
        let mut c0 = a.c0.clone();
        let mut c1 = a.c1.clone();
        ring::neg_assign(&mut c0, &basis, n);
        ring::neg_assign(&mut c1, &basis, n);
        Ok(a.derived(c0, c1, a.scale))
    }

    /// `ct + pt` (scales must match).
    pub fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        let p = self.plain_at(ct, pt)?;
        Self::check_scales(ct.scale, pt.scale)?;
        let n = self.params.n();
        let basis = self.params.basis(ct.level());
        let mut c0 = ct.c0.clone();
        ring::add_assign(&mut c0, p, &basis, n);
        Ok(ct.with_c0(c0))
    }

    /// `ct - pt` (scales must match).
    pub fn sub_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        let p = self.plain_at(ct, pt)?;
        Self::check_scales(ct.scale, pt.scale)?;
        let n = self.params.n();
        let basis = self.params.basis(ct.level());
        let mut c0 = ct.c0.clone();
        ring::sub_assign(&mut c0, p, &basis, n);
        Ok(ct.with_c0(c0))
    }

    /// `ct * pt`; the result scale is the product of the scales.
    pub fn mul_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        let p = self.plain_at(ct, pt)?;
        let scale = ct.scale * pt.scale;
        self.check_scale_fits(scale, ct.level())?;
        let n = self.params.n();
        let basis = self.params.basis(ct.level());
        let at = Basis::Data(ct.level());
        let c0 = Poly::from_vec(ring::mul(&ct.c0, p, &basis, n), at, n);
        let c1 = Poly::from_vec(ring::mul(&ct.c1, p, &basis, n), at, n);
        Ok(ct.derived(c0, c1, scale))
    }

    /// Adds the real constant `c` to every slot (encoded at the ciphertext scale).
    pub fn add_scalar(&self, ct: &Ciphertext, c: f64) -> Result<Ciphertext> {
        self.check_params(&ct.params)?;
        let v = self.scalar_int(c * ct.scale, ct.level())?;
        let n = self.params.n();
        let basis = self.params.basis(ct.level());
        let mut c0 = ct.c0.clone();
        // a constant polynomial is constant in the NTT domain
        for (chunk, m) in c0.chunks_exact_mut(n).zip(&basis) {
            let r = m.from_i128(v);
            for x in chunk.iter_mut() {
                *x = m.add(*x, r);
            }
        }
        Ok(ct.with_c0(c0))
    }

    fn scalar_int(&self, v: f64, level: usize) -> Result<i128> {
        let v = v.round();
        let limit = (self.params.log_q_at(level) - 1.0).min(120.0).exp2();
        if !v.is_finite() || v.abs() >= limit {
            return Err(Error::Encoding(format!(
                "scalar does not fit at level {level}"
            )));
        }
        Ok(v as i128)
    }

    /// Multiplies every slot by the real constant `c`, encoded as the integer
    /// `round(c * scale)`; the result scale is `ct.scale * scale`. Choosing
    /// `scale` equal to the last prime makes the next rescale restore the
    /// current scale exactly.
    pub fn mul_scalar(&self, ct: &Ciphertext, c: f64, scale: f64) -> Result<Ciphertext> {
        self.check_params(&ct.params)?;
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(Error::InvalidArgument(format!(
                "invalid scalar scale {scale}"
            )));
        }
        let v = self.scalar_int(c * scale, ct.level())?;
        let new_scale = ct.scale * scale;
        self.check_scale_fits(new_scale, ct.level())?;
        Ok(self.mul_int_raw(ct, v, new_scale))
    }

    /// `acc += ct * c`, in place: `c` encoded as the integer `round(c * scale)` as in
    /// [`Self::mul_scalar`], so `acc` must be at the level of `ct` with scale `ct.scale * scale`
    /// (a weighted sum accumulated without a temporary ciphertext per term).
    pub fn mul_scalar_acc(
        &self,
        acc: &mut Ciphertext,
        ct: &Ciphertext,
        c: f64,
        scale: f64,
    ) -> Result<()> {
        self.check_pair(acc, ct)?;
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(Error::InvalidArgument(format!(
                "invalid scalar scale {scale}"
            )));
        }
        Self::check_scales(acc.scale, ct.scale * scale)?;
        let v = self.scalar_int(c * scale, ct.level())?;
        let n = self.params.n();
        let basis = self.params.basis(ct.level());
        let consts: Vec<u64> = basis.iter().map(|m| m.from_i128(v)).collect();
        ring::mul_scalar_acc(&mut acc.c0, &ct.c0, &consts, &basis, n);
        ring::mul_scalar_acc(&mut acc.c1, &ct.c1, &consts, &basis, n);
        acc.seed = None;
        Ok(())
    }

    /// `sum_t ct_t * pt_t`, without rescaling, in one pass over the data: no temporary
    /// ciphertext per term, and for primes below `2^31` (whose plaintext residues are 32-bit
    /// words) one reduction per coefficient instead of one per product; plaintexts held as runs
    /// of equal values ([`CompactPlaintext`]) are multiplied from their runs. The products must
    /// share a level and a scale.
    pub fn mul_plain_sum(&self, terms: &[(&Ciphertext, &CompactPlaintext)]) -> Result<Ciphertext> {
        let Some(&(first, first_pt)) = terms.first() else {
            return Err(Error::InvalidArgument("an empty sum of products".into()));
        };
        let scale = first.scale * first_pt.scale;
        self.check_scale_fits(scale, first.level())?;
        for (ct, pt) in terms {
            self.check_pair(first, ct)?;
            self.check_params(&pt.params)?;
            if pt.level() < ct.level() {
                return Err(Error::LevelMismatch {
                    left: ct.level(),
                    right: pt.level(),
                });
            }
            Self::check_scales(scale, ct.scale * pt.scale)?;
        }
        let n = self.params.n();
        let basis = self.params.basis(first.level());
        let chunk = FUSED_CHUNK.min(n);
        // plaintexts all held as runs of one length (1: whole) are multiplied from their runs;
        // a sum of several lengths expands the runs a block at a time
        let run = first_pt.run;
        let one_length = terms.iter().all(|(_, pt)| pt.run == run);
        let fill = |out: &mut [u64], poly: usize| {
            out.par_chunks_mut(chunk).enumerate().for_each(|(k, o)| {
                let at = k * chunk;
                let (j, off) = (at / n, at % n);
                if one_length {
                    let (start, len) = (off / run, chunk / run.min(chunk));
                    let narrow: Option<Vec<(&[u64], &[u32])>> = terms
                        .iter()
                        .map(|(ct, pt)| match &pt.residues[j] {
                            Residue::Narrow(v) => {
                                Some((block(ct, poly, at, chunk), &v[start..start + len]))
                            }
                            Residue::Wide(_) => None,
                        })
                        .collect();
                    if let Some(pairs) = narrow {
                        return ring::sum_of_products_narrow_runs(
                            o,
                            &pairs,
                            run.min(chunk),
                            basis[j],
                        );
                    }
                }
                let mut buf: Vec<u32> = Vec::new();
                for (_, pt) in terms.iter() {
                    if let (Residue::Narrow(v), run @ 2..) = (&pt.residues[j], pt.run) {
                        let start = buf.len();
                        buf.resize(start + chunk, 0);
                        ring::expand_runs(&mut buf[start..], v, run, off);
                    }
                }
                let mut expanded = buf.chunks_exact(chunk);
                let narrow: Option<Vec<(&[u64], &[u32])>> = terms
                    .iter()
                    .map(|(ct, pt)| match &pt.residues[j] {
                        Residue::Narrow(v) if pt.run == 1 => {
                            Some((block(ct, poly, at, chunk), &v[off..off + chunk]))
                        }
                        Residue::Narrow(_) => {
                            expanded.next().map(|e| (block(ct, poly, at, chunk), e))
                        }
                        Residue::Wide(_) => None,
                    })
                    .collect();
                match narrow {
                    Some(pairs) => ring::sum_of_products_narrow(o, &pairs, basis[j]),
                    None => {
                        // a wider prime: the plaintexts' residues as 64-bit words, borrowed
                        // where held whole
                        let widened: Vec<Cow<[u64]>> = terms
                            .iter()
                            .map(|(_, pt)| match &pt.residues[j] {
                                Residue::Wide(v) if pt.run == 1 => {
                                    Cow::Borrowed(&v[off..off + chunk])
                                }
                                Residue::Wide(v) => {
                                    let mut e = vec![0; chunk];
                                    ring::expand_runs(&mut e, v, pt.run, off);
                                    Cow::Owned(e)
                                }
                                Residue::Narrow(v) => {
                                    let mut e = vec![0; chunk];
                                    ring::expand_runs(&mut e, v, pt.run, off);
                                    Cow::Owned(e.into_iter().map(u64::from).collect())
                                }
                            })
                            .collect();
                        let pairs: Vec<(&[u64], &[u64])> = terms
                            .iter()
                            .zip(&widened)
                            .map(|((ct, _), w)| (block(ct, poly, at, chunk), w.as_ref()))
                            .collect();
                        ring::sum_of_products(o, &pairs, basis[j]);
                    }
                }
            });
        };
        let at = Basis::Data(first.level());
        let (mut c0, mut c1) = (Poly::zero(at, n), Poly::zero(at, n));
        rayon::join(|| fill(&mut c0, 0), || fill(&mut c1, 1));
        Ok(first.derived(c0, c1, scale))
    }

    /// A ciphertext of zero at `level` and `scale` (both parts zero): the starting value of an
    /// accumulator such as [`Self::add_scalar_combinations`].
    pub fn zero(&self, level: usize, scale: f64) -> Result<Ciphertext> {
        if level > self.params.max_level() {
            return Err(Error::InvalidArgument(format!(
                "level {level} above the parameters' top level {}",
                self.params.max_level()
            )));
        }
        self.check_scale_fits(scale, level)?;
        let (at, n) = (Basis::Data(level), self.params.n());
        Ok(Ciphertext {
            params: self.params.clone(),
            c0: Poly::zero(at, n),
            c1: Poly::zero(at, n),
            scale,
            seed: None,
        })
    }

    /// For each row, `sum_t round(c_t * scale) * inputs[i_t]` (each weight encoded as in
    /// [`Self::mul_scalar`]), without rescaling: real weights applied to ciphertexts that
    /// share a level and a scale, the results at scale `inputs' scale * scale`. One pass over
    /// the data, block by block, so the inputs a block of rows shares are read from cache; an
    /// empty row gives zero. The same residues as [`Self::mul_scalar`] and
    /// [`Self::mul_scalar_acc`] term by term.
    pub fn scalar_combinations(
        &self,
        inputs: &[Ciphertext],
        rows: &[&[(usize, f64)]],
        scale: f64,
    ) -> Result<Vec<Ciphertext>> {
        let first = inputs
            .first()
            .ok_or_else(|| Error::InvalidArgument("no input ciphertext".into()))?;
        let mut outs = rows
            .iter()
            .map(|_| self.zero(first.level(), first.scale * scale))
            .collect::<Result<Vec<_>>>()?;
        self.add_scalar_combinations(&mut outs, inputs, rows, scale)?;
        Ok(outs)
    }

    /// [`Self::scalar_combinations`] added to the accumulators `accs` (one per row, at the
    /// inputs' level and at scale `inputs' scale * scale`) in the same pass: the form a weighted
    /// sum takes when its inputs arrive a part at a time. The same residues as adding the
    /// products term by term.
    pub fn add_scalar_combinations(
        &self,
        accs: &mut [Ciphertext],
        inputs: &[Ciphertext],
        rows: &[&[(usize, f64)]],
        scale: f64,
    ) -> Result<()> {
        let first = inputs
            .first()
            .ok_or_else(|| Error::InvalidArgument("no input ciphertext".into()))?;
        self.check_params(&first.params)?;
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(Error::InvalidArgument(format!(
                "invalid scalar scale {scale}"
            )));
        }
        if accs.len() != rows.len() {
            return Err(Error::InvalidArgument(format!(
                "{} accumulators for {} rows",
                accs.len(),
                rows.len()
            )));
        }
        for ct in inputs {
            self.check_pair(first, ct)?;
            Self::check_scales(first.scale, ct.scale)?;
        }
        let new_scale = first.scale * scale;
        self.check_scale_fits(new_scale, first.level())?;
        for acc in accs.iter() {
            self.check_pair(first, acc)?;
            Self::check_scales(new_scale, acc.scale)?;
        }
        let level = first.level();
        let n = self.params.n();
        let basis = self.params.basis(level);
        // per row: (input, the weight's residue in every prime)
        let mut weights: Vec<Vec<(usize, Vec<u64>)>> = Vec::with_capacity(rows.len());
        for row in rows {
            let mut w = Vec::with_capacity(row.len());
            for &(i, c) in row.iter() {
                if i >= inputs.len() {
                    return Err(Error::InvalidArgument(format!(
                        "a weight refers to input {i} of {}",
                        inputs.len()
                    )));
                }
                let v = self.scalar_int(c * scale, level)?;
                w.push((i, basis.iter().map(|m| m.from_i128(v)).collect()));
            }
            weights.push(w);
        }
        let len = (level + 1) * n;
        let chunk = FUSED_CHUNK.min(n);
        let parts = len / chunk;
        // task (poly, block) owns that block of every row's accumulator
        let mut tasks: Vec<Vec<&mut [u64]>> = (0..2 * parts)
            .map(|_| Vec::with_capacity(rows.len()))
            .collect();
        for acc in accs.iter_mut() {
            acc.seed = None;
            for (k, s) in acc.c0.chunks_mut(chunk).enumerate() {
                tasks[k].push(s);
            }
            for (k, s) in acc.c1.chunks_mut(chunk).enumerate() {
                tasks[parts + k].push(s);
            }
        }
        tasks.into_par_iter().enumerate().for_each(|(t, blocks)| {
            let (poly, at) = (t / parts, (t % parts) * chunk);
            let j = at / n;
            let mut terms: Vec<(&[u64], u64)> = Vec::new();
            for (out, row) in blocks.into_iter().zip(&weights) {
                terms.clear();
                terms.extend(
                    row.iter()
                        .map(|(i, w)| (&inputs[*i].poly(poly)[at..at + chunk], w[j])),
                );
                ring::add_sum_of_scaled(out, &terms, basis[j]);
            }
        });
        Ok(())
    }

    /// Multiplies every slot by the integer `k` (scale unchanged, exact).
    pub fn mul_int(&self, ct: &Ciphertext, k: i64) -> Result<Ciphertext> {
        self.check_params(&ct.params)?;
        Ok(self.mul_int_raw(ct, k as i128, ct.scale))
    }

    fn mul_int_raw(&self, ct: &Ciphertext, v: i128, scale: f64) -> Ciphertext {
        let n = self.params.n();
        let basis = self.params.basis(ct.level());
        let consts: Vec<u64> = basis.iter().map(|m| m.from_i128(v)).collect();
        let mut c0 = ct.c0.clone();
        let mut c1 = ct.c1.clone();
        ring::mul_scalar_assign(&mut c0, &consts, &basis, n);
        ring::mul_scalar_assign(&mut c1, &consts, &basis, n);
        ct.derived(c0, c1, scale)
    }

    /// `a * b` followed by relinearisation; the result scale is the product
    /// of the scales (rescale afterwards).
    pub fn mul_relin(&self, a: &Ciphertext, b: &Ciphertext, rlk: &RelinKey) -> Result<Ciphertext> {
        self.check_pair(a, b)?;
        self.check_params(&rlk.params)?;
        let scale = a.scale * b.scale;
        self.check_scale_fits(scale, a.level())?;
        let n = self.params.n();
        let level = a.level();
        let basis = self.params.basis(level);
        let mut d0 = a.c0.mul(&b.c0, &self.params);
        let mut d1 = a.c0.mul(&b.c1, &self.params);
        ring::mul_acc(&mut d1, &a.c1, &b.c0, &basis, n);
        rlk.key.check_level(level, || "relinearisation".into())?;
        let d2 = a.c1.mul(&b.c1, &self.params);
        let (k0, k1) = rlwe::key_switch_once(&self.params, &d2, &rlk.key);
        ring::add_assign(&mut d0, &k0, &basis, n);
        ring::add_assign(&mut d1, &k1, &basis, n);
        Ok(a.derived(d0, d1, scale))
    }

    /// `a * a` followed by relinearisation.
    pub fn square_relin(&self, a: &Ciphertext, rlk: &RelinKey) -> Result<Ciphertext> {
        self.mul_relin(a, a, rlk)
    }

    /// Divides by the last prime, dropping one level; the scale is divided
    /// by that prime.
    pub fn rescale(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.check_params(&ct.params)?;
        if ct.level() == 0 {
            return Err(Error::LevelTooLow("cannot rescale at level 0".into()));
        }
        let params = &self.params;
        let n = params.n();
        let t = ct.level();
        let basis = params.basis(t - 1);
        let last = &params.moduli[t];
        let inv = &params.rescale_inv[t];
        let (c0, c1) = rayon::join(
            || rlwe::divide_round_last(&ct.c0, &basis, last, inv, n, rlwe::Wipe::No),
            || rlwe::divide_round_last(&ct.c1, &basis, last, inv, n, rlwe::Wipe::No),
        );
        let scale = ct.scale / params.q[t] as f64;
        let at = Basis::Data(t - 1);
        Ok(ct.derived(Poly::from_vec(c0, at, n), Poly::from_vec(c1, at, n), scale))
    }

    /// Drops primes down to `level` (exact, scale unchanged). A seeded
    /// ciphertext stays seeded.
    pub fn drop_to_level(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        self.check_params(&ct.params)?;
        if level > ct.level() {
            return Err(Error::LevelTooLow(format!(
                "cannot raise level {} to {level}",
                ct.level()
            )));
        }
        let (at, n) = (Basis::Data(level), self.params.n());
        Ok(Ciphertext {
            params: ct.params.clone(),
            c0: Poly::from_vec(ct.c0.at_level(level, n).to_vec(), at, n),
            c1: Poly::from_vec(ct.c1.at_level(level, n).to_vec(), at, n),
            scale: ct.scale,
            seed: ct.seed,
        })
    }

    /// Drops primes of a plaintext down to `level`.
    pub fn drop_plain_to_level(&self, pt: &Plaintext, level: usize) -> Result<Plaintext> {
        self.check_params(&pt.params)?;
        if level > pt.level() {
            return Err(Error::LevelTooLow(format!(
                "cannot raise level {} to {level}",
                pt.level()
            )));
        }
        let n = self.params.n();
        Ok(Plaintext {
            params: pt.params.clone(),
            data: Poly::from_vec(pt.data.at_level(level, n).to_vec(), Basis::Data(level), n),
            scale: pt.scale,
        })
    }

    /// `out = sigma(ct)` from the key switch `(k0, k1)` of `ct.c1` with `gk` (held as
    /// sigma^-1 of itself): `sigma(c0 + k0)` and `sigma(k1)`, written in one pass over each
    /// into `out`'s buffers (reused when they have the room).
    fn galois_into(
        &self,
        ct: &Ciphertext,
        (k0, k1): rlwe::Switched,
        gk: &rlwe::GaloisKey,
        out: &mut Ciphertext,
    ) {
        let n = self.params.n();
        let at = ct.c0.basis();
        let basis = at.moduli(&self.params);
        out.c0.refit(at, n);
        out.c1.refit(at, n);
        let perm = &gk.perm;
        rayon::join(
            || {
                out.c0
                    .par_chunks_exact_mut(n)
                    .zip(k0.par_chunks_exact(n))
                    .zip(ct.c0.par_chunks_exact(n))
                    .zip(basis.par_iter())
                    .for_each(|(((o, k), c), m)| {
                        for (x, &t) in o.iter_mut().zip(perm) {
                            *x = m.add(k[t as usize], c[t as usize]);
                        }
                    })
            },
            || rlwe::permute_into(&mut out.c1, &k1, perm, n),
        );
        out.params = ct.params.clone();
        out.scale = ct.scale;
        out.seed = None;
    }

    /// Rotates the slots left by `step` (negative: right).
    ///
    /// Key switching adds a noise of about `2^-13` relative to a scale of
    /// `2^26` at the reference preset (`q_0` and `P` both have 31 bits);
    /// rotating a product *before* rescaling it (at scale `Delta^2`) makes
    /// that noise negligible.
    pub fn rotate(&self, ct: &Ciphertext, step: i64, gk: &GaloisKeys) -> Result<Ciphertext> {
        let mut out = ct.empty_like();
        self.rotate_into(ct, step, gk, &mut out)?;
        Ok(out)
    }

    /// [`Self::rotate`] into `out`, whose buffers are reused when they have the room (a caller
    /// that rotates in a loop keeps one result and never maps fresh memory for the next).
    pub fn rotate_into(
        &self,
        ct: &Ciphertext,
        step: i64,
        gk: &GaloisKeys,
        out: &mut Ciphertext,
    ) -> Result<()> {
        self.rotate_hoisted_into(ct, &[step], gk, std::slice::from_mut(out))
    }

    /// Rotations of one ciphertext by several steps sharing a single
    /// decomposition (hoisting). Results are identical to [`Self::rotate`].
    pub fn rotate_hoisted(
        &self,
        ct: &Ciphertext,
        steps: &[i64],
        gk: &GaloisKeys,
    ) -> Result<Vec<Ciphertext>> {
        let mut outs = vec![ct.empty_like(); steps.len()];
        self.rotate_hoisted_into(ct, steps, gk, &mut outs)?;
        Ok(outs)
    }

    /// [`Self::rotate_hoisted`] into `outs` (one per step), whose buffers are reused when they
    /// have the room.
    pub fn rotate_hoisted_into(
        &self,
        ct: &Ciphertext,
        steps: &[i64],
        gk: &GaloisKeys,
        outs: &mut [Ciphertext],
    ) -> Result<()> {
        self.check_params(&ct.params)?;
        self.check_params(&gk.params)?;
        if outs.len() != steps.len() {
            return Err(Error::InvalidArgument(format!(
                "{} rotation steps need as many results, got {}",
                steps.len(),
                outs.len()
            )));
        }
        let mut keys = Vec::with_capacity(steps.len());
        for &s in steps {
            let g = self.params.galois_element(s);
            if g == 1 {
                keys.push(None);
            } else {
                let key = gk.get(g, || format!("rotation by {s}"))?;
                key.key
                    .check_level(ct.level(), || format!("rotation-by-{s}"))?;
                keys.push(Some(key));
            }
        }
        let switched = keys.iter().filter(|k| k.is_some()).count();
        if switched <= 1 {
            // one key switch (or none): no stored decomposition
            for (k, out) in keys.into_iter().zip(outs.iter_mut()) {
                match k {
                    None => copy_into(out, ct),
                    Some(k) => {
                        let sw = rlwe::key_switch_once(&self.params, &ct.c1, &k.key);
                        self.galois_into(ct, sw, k, out);
                    }
                }
            }
            return Ok(());
        }
        // one decomposition per level and special modulus the keys were made for (their
        // digits differ)
        let mut decs = std::collections::BTreeMap::new();
        for k in keys.iter().flatten() {
            let form = (k.key.level, k.key.special);
            decs.entry(form)
                .or_insert_with(|| rlwe::decompose(&self.params, &ct.c1, form));
        }
        // rotations are independent: in parallel (deterministic results)
        keys.into_par_iter()
            .zip(outs.par_iter_mut())
            .for_each(|(k, out)| match k {
                None => copy_into(out, ct),
                Some(k) => {
                    let dec = &decs[&(k.key.level, k.key.special)];
                    self.galois_into(ct, rlwe::key_switch(&self.params, dec, &k.key), k, out)
                }
            });
        Ok(())
    }

    /// `sum_j rot(ct_j, step_j)` over at least one term, all at one level and scale (the
    /// giant steps of a baby-step/giant-step map). The key switches' sums are added over the
    /// extended basis, where each rotation's permutation applies residue by residue, and
    /// divided by the special modulus once instead of once per rotation (the division is
    /// a fifth of a rotation's time or more). The result differs from rotating and adding only
    /// in that division's rounding, made once for the whole sum instead of once per term.
    pub fn sum_rotations(
        &self,
        terms: &[(&Ciphertext, i64)],
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        let Some(&(first, _)) = terms.first() else {
            return Err(Error::InvalidArgument(
                "a sum of rotations needs at least one term".into(),
            ));
        };
        self.check_params(&gk.params)?;
        let level = first.level();
        let n = self.params.n();
        let basis = Basis::Data(level);
        let mut c0: Poly<Ntt> = Poly::zero(basis, n);
        let mut c1: Poly<Ntt> = Poly::zero(basis, n);
        for &(ct, _) in terms {
            self.check_pair(first, ct)?;
            Self::check_scales(first.scale, ct.scale)?;
        }
        let forms = self.by_form(terms, gk, &mut c0, &mut c1)?;
        for ((key_level, special), rotated) in forms {
            let plan = self.params.switch_plan(key_level, special, level);
            self.add_switched(&mut c0, &mut c1, &plan, &rotated, |ct, key| {
                rlwe::key_switch_once_sums(&self.params, &plan, &ct.c1, key)
            });
        }
        Ok(first.derived(c0, c1, first.scale))
    }

    /// `ct + sum_j rot(ct, step_j)`: rotations of one ciphertext summed with it, sharing one
    /// decomposition of `c1` (hoisting) and one division by the special modulus per key form
    /// (a rotate-and-sum's stage: two of its hoisted rotations cost less than one rotation
    /// made on its own). Like [`Self::sum_rotations`], the result differs from rotating and
    /// adding only in that division's rounding, made once instead of once per rotation.
    pub fn add_rotations_hoisted(
        &self,
        ct: &Ciphertext,
        steps: &[i64],
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        self.check_params(&ct.params)?;
        self.check_params(&gk.params)?;
        if let [step] = steps[..] {
            // one rotation: divided and permuted in one pass, as `rotate` does
            let mut out = self.rotate(ct, step, gk)?;
            self.add_assign(&mut out, ct)?;
            return Ok(out);
        }
        let (mut c0, mut c1) = (ct.c0.clone(), ct.c1.clone());
        let terms: Vec<(&Ciphertext, i64)> = steps.iter().map(|&s| (ct, s)).collect();
        let forms = self.by_form(&terms, gk, &mut c0, &mut c1)?;
        for (form, rotated) in forms {
            if let [_] = rotated[..] {
                // a lone switch of its form: its digits made and used on the fly, not stored
                let plan = self.params.switch_plan(form.0, form.1, ct.level());
                self.add_switched(&mut c0, &mut c1, &plan, &rotated, |ct, key| {
                    rlwe::key_switch_once_sums(&self.params, &plan, &ct.c1, key)
                });
                continue;
            }
            let dec = rlwe::decompose(&self.params, &ct.c1, form);
            self.add_switched(&mut c0, &mut c1, dec.plan(), &rotated, |_, key| {
                rlwe::key_switch_sums(&self.params, &dec, key)
            });
        }
        Ok(ct.derived(c0, c1, ct.scale))
    }

    /// Whether [`Self::add_rotations_hoisted`] of `ct` by `steps` makes one decomposition and
    /// one division for all of them: every key present and reaching `ct`'s level, and all of
    /// one form (the level and special primes they were made for).
    pub fn rotations_hoist_together(
        &self,
        ct: &Ciphertext,
        steps: &[i64],
        gk: &GaloisKeys,
    ) -> bool {
        let mut form = None;
        steps.iter().all(|&s| match self.rotation_key(ct, s, gk) {
            Ok(None) => true,
            Ok(Some(k)) => {
                *form.get_or_insert((k.key.level, k.key.special)) == (k.key.level, k.key.special)
            }
            Err(_) => false,
        })
    }

    /// The rotated terms of a sum of rotations grouped by the form of their keys (one
    /// division by the special modulus per form); the unrotated ones added to `(c0, c1)`.
    fn by_form<'a>(
        &self,
        terms: &[(&'a Ciphertext, i64)],
        gk: &'a GaloisKeys,
        c0: &mut Poly<Ntt>,
        c1: &mut Poly<Ntt>,
    ) -> Result<RotatedByForm<'a>> {
        let mut forms: RotatedByForm<'a> = Default::default();
        for &(ct, s) in terms {
            match self.rotation_key(ct, s, gk)? {
                None => {
                    c0.add_assign(&ct.c0, &self.params);
                    c1.add_assign(&ct.c1, &self.params);
                }
                Some(key) => forms
                    .entry((key.key.level, key.key.special))
                    .or_default()
                    .push((ct, key)),
            }
        }
        Ok(forms)
    }

    /// The key of a rotation of `ct` by `step`, checked to reach its level (`None`: the
    /// identity).
    fn rotation_key<'k>(
        &self,
        ct: &Ciphertext,
        step: i64,
        gk: &'k GaloisKeys,
    ) -> Result<Option<&'k rlwe::GaloisKey>> {
        let g = self.params.galois_element(step);
        if g == 1 {
            return Ok(None);
        }
        let key = gk.get(g, || format!("rotation by {step}"))?;
        key.key
            .check_level(ct.level(), || format!("rotation-by-{step}"))?;
        Ok(Some(key))
    }

    /// `(c0, c1) += sum_j sigma_j(ct_j)` over rotated terms whose keys share `plan`: each
    /// term's key-switching sums (`sums_of`, undivided; in parallel) permuted and added over
    /// the extended basis, divided by the special modulus once, and each term's
    /// `sigma_j(c0_j)`.
    fn add_switched(
        &self,
        c0: &mut Poly<Ntt>,
        c1: &mut Poly<Ntt>,
        plan: &SwitchPlan,
        rotated: &[(&Ciphertext, &rlwe::GaloisKey)],
        sums_of: impl Fn(&Ciphertext, &rlwe::KeySwitchKey) -> rlwe::Undivided + Sync,
    ) {
        let n = self.params.n();
        let moduli = c0.basis().moduli(&self.params);
        let sums = rotated
            .par_iter()
            .map(|(ct, key)| {
                let (s0, s1) = sums_of(ct, &key.key);
                let mut p0 = ring::Scratch::take(s0.len());
                let mut p1 = ring::Scratch::take(s1.len());
                rayon::join(
                    || rlwe::permute_into(&mut p0, &s0, &key.perm, n),
                    || rlwe::permute_into(&mut p1, &s1, &key.perm, n),
                );
                (p0, p1)
            })
            .reduce_with(|mut acc, x| {
                rlwe::add_undivided(&self.params, plan, &mut acc, &x);
                acc
            });
        let Some(sums) = sums else { return };
        let (d0, d1) = rlwe::divide_by_special(&self.params, plan, sums);
        ring::add_assign(c0, &d0, &moduli, n);
        ring::add_assign(c1, &d1, &moduli, n);
        // and each term's sigma(c0)
        c0.par_chunks_exact_mut(n)
            .zip(moduli.par_iter())
            .enumerate()
            .for_each(|(j, (o, m))| {
                for (ct, key) in rotated {
                    let c = &ct.c0[j * n..(j + 1) * n];
                    for (x, &t) in o.iter_mut().zip(&key.perm) {
                        *x = m.add(*x, c[t as usize]);
                    }
                }
            });
    }

    /// Complex conjugation of every slot.
    pub fn conjugate(&self, ct: &Ciphertext, gk: &GaloisKeys) -> Result<Ciphertext> {
        self.check_params(&ct.params)?;
        self.check_params(&gk.params)?;
        let g = self.params.conjugation_element();
        let k = gk.get(g, || "conjugation".into())?;
        k.key.check_level(ct.level(), || "conjugation".into())?;
        let mut out = ct.empty_like();
        let sw = rlwe::key_switch_once(&self.params, &ct.c1, &k.key);
        self.galois_into(ct, sw, k, &mut out);
        Ok(out)
    }

    /// Rotation steps needed by [`Self::inner_sum`] with the same arguments.
    pub fn inner_sum_steps(batch: usize, count: usize) -> Vec<i64> {
        let mut steps = Vec::new();
        let mut offset = 0usize;
        let mut k = 0u32;
        while count.checked_shr(k).unwrap_or(0) > 0 {
            let pow = 1usize << k;
            if count & pow != 0 {
                if offset > 0 {
                    steps.push(offset.saturating_mul(batch) as i64);
                }
                offset += pow;
            }
            if count.checked_shr(k + 1).unwrap_or(0) > 0 {
                steps.push(pow.saturating_mul(batch) as i64);
            }
            k += 1;
        }
        steps.sort_unstable();
        steps.dedup();
        steps
    }

    /// Rotate-and-add: slot `j` of the result is `sum_{i < count} ct[j + i * batch]`
    /// (indices mod N/2). Uses `O(log count)` rotations; the keys needed are
    /// given by [`Self::inner_sum_steps`].
    pub fn inner_sum(
        &self,
        ct: &Ciphertext,
        batch: usize,
        count: usize,
        gk: &GaloisKeys,
    ) -> Result<Ciphertext> {
        self.check_params(&ct.params)?;
        self.check_params(&gk.params)?;
        if count == 0 || batch == 0 || batch.saturating_mul(count) > self.params.slots() {
            return Err(Error::InvalidArgument(format!(
                "inner sum needs 0 < batch * count <= {} (got {batch} x {count})",
                self.params.slots()
            )));
        }
        let mut acc: Option<Ciphertext> = None;
        let mut pow_ct = ct.clone();
        let mut offset = 0usize;
        let mut k = 0;
        while (count >> k) > 0 {
            let pow = 1usize << k;
            if count & pow != 0 {
                acc = Some(match acc {
                    None => pow_ct.clone(),
                    Some(a) => {
                        let r = self.rotate(&pow_ct, (offset * batch) as i64, gk)?;
                        self.add(&a, &r)?
                    }
                });
                offset += pow;
            }
            if (count >> (k + 1)) > 0 {
                let r = self.rotate(&pow_ct, (pow * batch) as i64, gk)?;
                pow_ct = self.add(&pow_ct, &r)?;
            }
            k += 1;
        }
        acc.ok_or_else(|| Error::InvalidArgument("empty inner sum".into()))
    }
}
