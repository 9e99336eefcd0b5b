//! RLWE layer: keys, hybrid key switching and automorphisms.
//!
//! A key-switching key from `s'` to `s` made for level `L` has one digit per group of data
//! primes `Q_i` (see [`crate::gadget`]: one prime per digit at the top level, as SEAL does;
//! several below it, where spare data primes join the special prime `P` in the special
//! modulus `P_s`), `(b_i, a_i)` over `q_0..q_L` and the special primes with
//! `b_i = -a_i s + e_i + P_s s' [Q_i]` (the gadget term only in the primes of `Q_i`). A
//! polynomial `c` is decomposed into its digits `[c]_{Q_i}` (centered, lifted to every
//! prime), multiplied with the key and divided by `P_s` with rounding.

use std::collections::BTreeMap;
use std::sync::Arc;

use rand_core::{CryptoRng, OsRng, RngCore};
use rayon::prelude::*;
use zeroize::{Zeroize, Zeroizing};

use crate::gadget::{self, KeyBasis, SwitchPlan};
use crate::params::Parameters;
use crate::poly::{Basis, Coeff, Ntt, Poly};
use crate::ring::{self, Modulus, Word};
use crate::{Error, Result};

/// A uniform ternary secret key. Zeroized on drop; never printed.
pub struct SecretKey {
    pub(crate) params: Arc<Parameters>,
    /// Coefficients in {-1, 0, 1}.
    pub(crate) coeffs: Vec<i8>,
    /// NTT form over all data primes and the special prime.
    pub(crate) ntt: Poly<Ntt>,
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.coeffs.zeroize();
        self.ntt.zeroize();
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// Samples a secret key with the caller's cryptographic RNG.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(
        params: &Arc<Parameters>,
        rng: &mut R,
    ) -> Self {
        let c = ring::sample_ternary(rng, params.n());
        let sk = Self::from_coeffs(params, c.iter().map(|&x| x as i8).collect());
        let mut c = c;
        c.zeroize();
        sk
    }

    /// Samples a secret key from the operating system's CSPRNG.
    pub fn generate_os(params: &Arc<Parameters>) -> Self {
        Self::generate(params, &mut OsRng)
    }

    pub(crate) fn from_coeffs(params: &Arc<Parameters>, coeffs: Vec<i8>) -> Self {
        let mut wide: Vec<i64> = coeffs.iter().map(|&x| x as i64).collect();
        let s = Poly::<Coeff>::from_signed(&wide, Basis::Extended(params.max_level()), params);
        wide.zeroize();
        let ntt = s.into_ntt(params);
        Self {
            params: params.clone(),
            coeffs,
            ntt,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
    }

    /// Residues of `s` for data primes `0..=level` (NTT form).
    pub(crate) fn data_part(&self, level: usize) -> &[u64] {
        self.ntt.at_level(level, self.params.n())
    }
}

/// A public encryption key `(b, a) = (-a s + e, a)` over all data primes and
/// the special prime (encryption then divides by P, as SEAL does, so fresh
/// noise stays small). `a` is expanded from a seed.
#[derive(Clone)]
pub struct PublicKey {
    pub(crate) params: Arc<Parameters>,
    pub(crate) seed: [u8; 32],
    /// Both over the extended basis at the top level.
    pub(crate) b: Poly<Ntt>,
    pub(crate) a: Poly<Ntt>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("params", &self.params.name())
            .finish()
    }
}

impl PublicKey {
    /// Generates the public key of `sk`.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(sk: &SecretKey, rng: &mut R) -> Self {
        let params = &sk.params;
        let n = params.n();
        let at = Basis::Extended(params.max_level());
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let a = Poly::from_vec(ring::expand_uniform(&seed, 0, &at.moduli(params), n), at, n);
        let e = Zeroizing::new(ring::sample_error(rng, n));
        let mut b = Poly::<Coeff>::from_signed(&e, at, params).into_ntt(params);
        let as_ = Zeroizing::new(a.mul(&sk.ntt, params));
        b.sub_assign(&as_, params);
        Self {
            params: params.clone(),
            seed,
            b,
            a,
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
    }
}

/// Whether the temporaries made from the dropped residue are wiped.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Wipe {
    /// Ciphertext data only (rescale, key switching).
    No,
    /// The residue may carry encryption randomness (public-key encryption).
    Copies,
}

/// The dropped residue's coefficients lifted (centered) into `m` and transformed: in 32-bit
/// words below 2^31 (the faster transform, half the traffic).
enum Lifted {
    Narrow(ring::Buffer<u32>),
    Wide(ring::Scratch),
}

impl Lifted {
    fn of(coeffs: &[u64], last: &Modulus, m: &Modulus) -> Self {
        let n = coeffs.len();
        if m.value() >> NARROW_BITS == 0 {
            let mut y = ring::Buffer::<u32>::take(n);
            ring::lift_centered(coeffs, last, m, &mut y);
            m.ntt_words(&mut y);
            Lifted::Narrow(y)
        } else {
            let mut y = ring::Scratch::take(n);
            ring::lift_centered(coeffs, last, m, &mut y);
            m.ntt(&mut y);
            Lifted::Wide(y)
        }
    }

    fn wipe(&mut self) {
        match self {
            Lifted::Narrow(y) => y.zeroize(),
            Lifted::Wide(y) => y.zeroize(),
        }
    }
}

/// The coefficients of the residue a division drops (a reused buffer).
fn dropped_coefficients(top: &[u64], last: &Modulus) -> ring::Scratch {
    let mut coeffs = ring::Scratch::take(top.len());
    coeffs.copy_from_slice(top);
    last.intt(&mut coeffs);
    coeffs
}

/// Divides an RNS polynomial whose last residue is modulo `last` by that prime with rounding,
/// into a new polynomial without it: `(src - lift(top)) / last` residue by residue. `src` holds
/// `basis.len() + 1` residues in NTT form and is left as it is; `inv[j]` is `last^-1 mod q_j`
/// (with Shoup constant).
pub(crate) fn divide_round_last(
    src: &[u64],
    basis: &[&Modulus],
    last: &Modulus,
    inv: &[(u64, u64)],
    n: usize,
    wipe: Wipe,
) -> Vec<u64> {
    let k = basis.len();
    let low = &src[..k * n];
    let mut coeffs = dropped_coefficients(&src[k * n..(k + 1) * n], last);
    let mut out = vec![0u64; k * n];
    out.par_chunks_exact_mut(n).enumerate().for_each(|(j, x)| {
        let (m, low) = (basis[j], &low[j * n..(j + 1) * n]);
        let mut y = Lifted::of(&coeffs, last, m);
        match &y {
            Lifted::Narrow(y) => m.sub_mul_const(x, low, y, inv[j].0),
            Lifted::Wide(y) => m.sub_mul_const(x, low, y, inv[j].0),
        }
        if wipe == Wipe::Copies {
            y.wipe();
        }
    });
    if wipe == Wipe::Copies {
        coeffs.zeroize();
    }
    out
}

/// [`divide_round_last`] in place, for ciphertext data: `data` holds `basis.len() + 1` residues
/// in NTT form; its first `basis.len()` become the quotient's (the last is left as it was).
fn divide_round_last_in_place(
    data: &mut [u64],
    basis: &[&Modulus],
    last: &Modulus,
    inv: &[(u64, u64)],
    n: usize,
) {
    let (low, top) = data.split_at_mut(basis.len() * n);
    let coeffs = dropped_coefficients(&top[..n], last);
    low.par_chunks_exact_mut(n).enumerate().for_each(|(j, x)| {
        let m = basis[j];
        match &Lifted::of(&coeffs, last, m) {
            Lifted::Narrow(y) => m.sub_mul_const_assign(x, y, inv[j].0),
            Lifted::Wide(y) => m.sub_mul_const_assign(x, y, inv[j].0),
        }
    });
}

/// Divides by the special prime P (data residues `0..=level` plus P) into a new polynomial.
pub(crate) fn mod_down(params: &Parameters, data: &[u64], level: usize, wipe: Wipe) -> Vec<u64> {
    let basis = params.basis(level);
    divide_round_last(
        data,
        &basis,
        params.special(),
        &params.p_inv[..=level],
        params.n(),
        wipe,
    )
}

/// How a key-switching key made below the top level lays out its digits (at the top level
/// both are one data prime per digit over `P`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyDigits {
    /// One data prime per digit over `P`, as SEAL does: the fastest key switch.
    #[default]
    PerPrime,
    /// The spare data prime above the key's level joins `P` and a digit holds two data
    /// primes (see [`crate::gadget`]): about 0.6x the memory and the bytes, with the same
    /// noise, for a key switch that converts between bases where the other lifts one prime
    /// (ciphernet 1.1x the time per image, LeNet-5 1.5-1.8x: README, "Paired key digits").
    Paired,
}

/// A key-switching key (one digit per group of data primes up to its level, see
/// [`crate::gadget`]), `a` expanded from a seed.
///
/// A key made for `level` switches ciphertexts at that level and below; it holds
/// `digits x (level + 1 + special primes)` residue polynomials per half, so a key that a
/// circuit first needs after a few rescales is much smaller than one for the top level.
#[derive(Clone)]
pub(crate) struct KeySwitchKey {
    pub(crate) seed: [u8; 32],
    /// Highest ciphertext level this key switches.
    pub(crate) level: usize,
    /// Primes in its special modulus (see [`crate::gadget`]).
    pub(crate) special: usize,
    pub(crate) b: KeyHalf,
    pub(crate) a: KeyHalf,
}

// Primes below `2^NARROW_BITS` have their key residues held in 32-bit words, and their
// products (below `2^62`) summed over the digits with one reduction at the end.
use crate::ring::NARROW_BITS;

/// One residue of a key half over all its digits (`(level + 1) x n` values, digit by digit),
/// at its prime's width.
#[derive(Clone)]
pub(crate) enum Residue {
    /// A prime below `2^31`: half the memory of 64-bit words.
    Narrow(Vec<u32>),
    /// A wider prime.
    Wide(Vec<u64>),
}

impl Residue {
    /// The values of `data` (below `m`) at `m`'s width.
    pub(crate) fn of(data: &[u64], m: &Modulus) -> Self {
        if m.value() >> NARROW_BITS == 0 {
            Residue::Narrow(data.iter().map(|&x| x as u32).collect())
        } else {
            Residue::Wide(data.to_vec())
        }
    }

    /// Bytes held in memory.
    pub(crate) fn memory_bytes(&self) -> usize {
        match self {
            Residue::Narrow(v) => v.len() * 4,
            Residue::Wide(v) => v.len() * 8,
        }
    }
}

/// One half of a key-switching key, residue by residue (data primes `0..=level`, then P), each
/// holding its `level + 1` digits: the order in which the key-switching inner product reads it.
#[derive(Clone)]
pub(crate) struct KeyHalf {
    pub(crate) residues: Vec<Residue>,
}

impl KeyHalf {
    /// From the digit-major layout (`(level+1) x (level+2) x n`: digit `i`, residue `j`), every
    /// block permuted by `perm` if given (`out[t] = x[perm[t]]`).
    pub(crate) fn from_digits(
        data: &[u64],
        basis: &[&Modulus],
        n: usize,
        perm: Option<&[u32]>,
    ) -> Self {
        let digit = (basis.len() * n).max(1);
        let parts = data
            .chunks_exact(digit)
            .map(Ok::<_, std::convert::Infallible>);
        match Self::from_digit_iter(parts, basis, data.len() / digit, n, perm) {
            Ok(half) => half,
            Err(never) => match never {},
        }
    }

    /// From digits given one at a time (each `(level+2) x n`, residue by residue), every block
    /// permuted by `perm` if given: no more than one digit is ever held in 64-bit words.
    pub(crate) fn from_digit_iter<D: AsRef<[u64]>, E>(
        digits: impl Iterator<Item = std::result::Result<D, E>>,
        basis: &[&Modulus],
        count: usize,
        n: usize,
        perm: Option<&[u32]>,
    ) -> std::result::Result<Self, E> {
        let mut residues: Vec<Residue> = basis
            .iter()
            .map(|m| {
                if m.value() >> NARROW_BITS == 0 {
                    Residue::Narrow(Vec::with_capacity(count * n))
                } else {
                    Residue::Wide(Vec::with_capacity(count * n))
                }
            })
            .collect();
        for digit in digits {
            let digit = digit?;
            for (r, block) in residues.iter_mut().zip(digit.as_ref().chunks_exact(n)) {
                let value = |t: usize| match perm {
                    Some(p) => block[p[t] as usize],
                    None => block[t],
                };
                match r {
                    Residue::Narrow(v) => v.extend((0..n).map(|t| value(t) as u32)),
                    Residue::Wide(v) => v.extend((0..n).map(value)),
                }
            }
        }
        Ok(Self { residues })
    }

    /// Digit `i` over every residue, as 64-bit words (for serialization).
    pub(crate) fn digit(&self, i: usize, n: usize) -> Vec<u64> {
        let mut out = Vec::with_capacity(self.residues.len() * n);
        for r in &self.residues {
            match r {
                Residue::Narrow(v) => {
                    out.extend(v[i * n..(i + 1) * n].iter().map(|&x| u64::from(x)))
                }
                Residue::Wide(v) => out.extend_from_slice(&v[i * n..(i + 1) * n]),
            }
        }
        out
    }

    /// Bytes held in memory.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.residues.iter().map(Residue::memory_bytes).sum()
    }
}

/// The residues of a key's basis (see [`KeyBasis::moduli`]) of a polynomial held over all
/// data primes and the special prime.
fn key_residues(full: &[u64], basis: &KeyBasis, n: usize) -> Zeroizing<Vec<u64>> {
    let mut out = Zeroizing::new(Vec::with_capacity(basis.residues() * n));
    for i in basis.moduli() {
        out.extend_from_slice(&full[i * n..(i + 1) * n]);
    }
    out
}

impl KeySwitchKey {
    /// Bytes of both halves in memory.
    pub(crate) fn memory_bytes(&self) -> usize {
        self.b.memory_bytes() + self.a.memory_bytes()
    }

    /// Key switching from `s_from` (NTT over all primes incl. P) to `sk`,
    /// for ciphertexts up to `level` (at most the parameters' top level), held permuted by
    /// `hold` if given (see [`GaloisKey`]).
    pub(crate) fn generate<R: RngCore + CryptoRng + ?Sized>(
        sk: &SecretKey,
        s_from: &[u64],
        (level, digits): (usize, KeyDigits),
        rng: &mut R,
        hold: Option<&[u32]>,
    ) -> Self {
        let params = &sk.params;
        let n = params.n();
        let level = level.min(params.max_level());
        let special = params.special_primes(level, digits);
        let kb = params.key_basis(level, special);
        let basis = params.key_moduli(level, special);
        let r = kb.residues();
        let s = key_residues(&sk.ntt, kb, n);
        let s_from = key_residues(s_from, kb, n);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let a = Self::expand_a(params, (level, special), &seed);
        let mut b = Vec::with_capacity(a.len());
        for (i, group) in kb.groups.iter().enumerate() {
            let e = Zeroizing::new(ring::sample_error(rng, n));
            let mut bi = ring::from_signed(&e, &basis);
            ring::ntt_all(&mut bi, &basis, n);
            let ai = &a[i * r * n..(i + 1) * r * n];
            let as_ = Zeroizing::new(ring::mul(ai, &s, &basis, n));
            ring::sub_assign(&mut bi, &as_, &basis, n);
            // gadget term P_s * s_from in the residues of the digit's primes only
            for j in group.clone() {
                let m = basis[j];
                let pw = kb.special.iter().fold(1u64, |acc, &t| {
                    m.mul(acc, m.reduce(params.moduli[t].value()))
                });
                let pws = m.shoup(pw);
                for (x, &sf) in bi[j * n..(j + 1) * n]
                    .iter_mut()
                    .zip(&s_from[j * n..(j + 1) * n])
                {
                    *x = m.add(*x, m.mul_shoup(sf, pw, pws));
                }
            }
            b.extend_from_slice(&bi);
        }
        Self {
            seed,
            level,
            special,
            b: KeyHalf::from_digits(&b, &basis, n, hold),
            a: KeyHalf::from_digits(&a, &basis, n, hold),
        }
    }

    /// The uniform halves of a key for `level`, expanded from its seed.
    pub(crate) fn expand_a(
        params: &Parameters,
        (level, special): (usize, usize),
        seed: &[u8; 32],
    ) -> Vec<u64> {
        let n = params.n();
        let basis = params.key_moduli(level, special);
        let digits = params.key_basis(level, special).groups.len();
        let parts: Vec<Vec<u64>> = (0..digits)
            .into_par_iter()
            .map(|i| ring::expand_uniform(seed, i as u64, &basis, n))
            .collect();
        parts.concat()
    }

    /// The uniform half of a key for `level` at its primes' widths, expanded from its seed a
    /// few digits at a time (a loaded key never holds its whole `a` in 64-bit words), held
    /// permuted by `hold` if given.
    pub(crate) fn expand_a_half(
        params: &Parameters,
        (level, special): (usize, usize),
        seed: &[u8; 32],
        hold: Option<&[u32]>,
    ) -> KeyHalf {
        let n = params.n();
        let basis = params.key_moduli(level, special);
        let digits = params.key_basis(level, special).groups.len();
        // a few digits at a time, in parallel, each converted before the next are made
        let threads = rayon::current_num_threads().max(1);
        let indices: Vec<usize> = (0..digits).collect();
        let parts = indices.chunks(threads).flat_map(|chunk| {
            chunk
                .par_iter()
                .map(|&i| ring::expand_uniform(seed, i as u64, &basis, n))
                .collect::<Vec<_>>()
        });
        match KeyHalf::from_digit_iter(
            parts.map(Ok::<_, std::convert::Infallible>),
            &basis,
            digits,
            n,
            hold,
        ) {
            Ok(half) => half,
            Err(never) => match never {},
        }
    }

    /// Refuses to switch a ciphertext above the key's level.
    pub(crate) fn check_level(&self, level: usize, what: impl FnOnce() -> String) -> Result<()> {
        if level > self.level {
            return Err(Error::LevelTooLow(format!(
                "the {} key reaches level {}, the ciphertext is at level {level}",
                what(),
                self.level
            )));
        }
        Ok(())
    }
}

/// One prime's residues of the digits of a decomposition, digit by digit, at the prime's
/// width: 32-bit words below `2^31` (half the memory the inner products stream).
pub(crate) enum Digits {
    Narrow(ring::Buffer<u32>),
    Wide(ring::Scratch),
}

/// Decomposition of a polynomial at `level` into the digits of the keys made for one level,
/// each lifted to the extended basis (the data primes up to `level` and the keys' special
/// primes) in NTT form. Computing it once and reusing it for several rotations is
/// "hoisting".
pub(crate) struct Decomposed {
    plan: Arc<SwitchPlan>,
    /// Per prime of the extended basis: its residues of every digit (`digits x n`), in the
    /// order in which the key-switching inner product reads them.
    primes: Vec<Digits>,
}

impl Decomposed {
    /// The switch plan the digits were made for.
    pub(crate) fn plan(&self) -> &SwitchPlan {
        &self.plan
    }
}

/// What the digits of a polynomial are lifted from: its residues in NTT and coefficient form,
/// and the base-conversion values of its digits of more than one prime.
struct Source<'a> {
    ntt: &'a [u64],
    coeffs: ring::Scratch,
    prepared: Vec<Option<gadget::Prepared>>,
}

impl<'a> Source<'a> {
    fn new(params: &Parameters, plan: &SwitchPlan, c: &'a Poly<Ntt>) -> Self {
        let n = params.n();
        let coeffs = coefficients(params, c);
        let prepared = plan
            .up
            .par_iter()
            .map(|up| {
                up.as_ref()
                    .map(|up| up.prepare(&params.moduli, |t| &coeffs[up.from[t] * n..][..n], n))
            })
            .collect();
        Self {
            ntt: c,
            coeffs,
            prepared,
        }
    }

    /// Digit `i` at target `t` of the plan's extended basis into `out`: `c`'s own residue for a
    /// prime of the digit, else the digit's centered value (small digits keep the
    /// key-switching noise low in every slot) modulo the target, transformed.
    fn lift<T: Word>(
        &self,
        out: &mut [T],
        params: &Parameters,
        plan: &SwitchPlan,
        (i, t): (usize, usize),
        ntt: impl Fn(&Modulus, &mut [T]),
    ) {
        let n = out.len();
        let j = plan.targets[t];
        let group = &plan.groups[i];
        let m = &params.moduli[j];
        if group.contains(&j) && t <= plan.level {
            for (o, &v) in out.iter_mut().zip(&self.ntt[j * n..(j + 1) * n]) {
                *o = T::of(v);
            }
            return;
        }
        match (&plan.up[i], &self.prepared[i]) {
            (Some(up), Some(prepared)) => up.convert_into(prepared, j, &params.moduli, out),
            _ => {
                let g = group.start;
                let from = &params.moduli[g];
                ring::lift_centered(&self.coeffs[g * n..(g + 1) * n], from, m, out);
            }
        }
        ntt(m, out);
    }
}

/// The residues of `c` in coefficient form (a reused buffer).
fn coefficients(params: &Parameters, c: &Poly<Ntt>) -> ring::Scratch {
    let n = params.n();
    let basis = c.basis().moduli(params);
    let mut coeffs = ring::Scratch::take(c.len());
    coeffs
        .par_chunks_exact_mut(n)
        .enumerate()
        .for_each(|(i, x)| {
            x.copy_from_slice(&c[i * n..(i + 1) * n]);
            basis[i].intt(x);
        });
    coeffs
}

/// Decomposes `c` for keys made for `key_level` with `special` special primes.
pub(crate) fn decompose(
    params: &Parameters,
    c: &Poly<Ntt>,
    (key_level, special): (usize, usize),
) -> Decomposed {
    debug_assert!(
        matches!(c.basis(), Basis::Data(_)),
        "a ciphertext polynomial"
    );
    let n = params.n();
    let plan = params.switch_plan(key_level, special, c.level());
    let digits = plan.groups.len();
    let src = Source::new(params, &plan, c);
    let primes = (0..plan.targets.len())
        .into_par_iter()
        .map(|t| {
            let m = &params.moduli[plan.targets[t]];
            // every value is written below
            if m.value() >> NARROW_BITS == 0 {
                let mut d = ring::Buffer::<u32>::take(digits * n);
                d.par_chunks_exact_mut(n)
                    .enumerate()
                    .for_each(|(i, out)| src.lift(out, params, &plan, (i, t), Modulus::ntt_words));
                Digits::Narrow(d)
            } else {
                let mut d = ring::Scratch::take(digits * n);
                d.par_chunks_exact_mut(n)
                    .enumerate()
                    .for_each(|(i, out)| src.lift(out, params, &plan, (i, t), Modulus::ntt));
                Digits::Wide(d)
            }
        })
        .collect();
    Decomposed { plan, primes }
}

/// Coefficients per block of the key-switching inner product (two 4 KiB accumulators).
const IP_BLOCK: usize = 512;

/// `o0 += d * kb`, `o1 += d * ka` for digit values and key residues below `2^31`, unreduced;
/// for the `FIRST` digit `=` (the accumulators are not cleared beforehand).
#[inline(always)]
fn mac_narrow<T: Word, const FIRST: bool>(
    o0: &mut [u64],
    o1: &mut [u64],
    d: &[T],
    kb: &[u32],
    ka: &[u32],
) {
    ring::simd(
        #[inline(always)]
        || {
            for ((((x0, x1), &d), &b), &a) in
                o0.iter_mut().zip(o1.iter_mut()).zip(d).zip(kb).zip(ka)
            {
                let d = d.narrow();
                let (p0, p1) = (d * u64::from(b), d * u64::from(a));
                if FIRST {
                    (*x0, *x1) = (p0, p1);
                } else {
                    *x0 += p0;
                    *x1 += p1;
                }
            }
        },
    );
}

/// [`mac_narrow`] of digit `i`.
#[inline(always)]
fn mac_digit<T: Word>(i: usize, o0: &mut [u64], o1: &mut [u64], d: &[T], kb: &[u32], ka: &[u32]) {
    if i == 0 {
        mac_narrow::<T, true>(o0, o1, d, kb, ka);
    } else {
        mac_narrow::<T, false>(o0, o1, d, kb, ka);
    }
}

/// Reduces two lazily accumulated residues of a prime below `2^31`.
fn reduce_pair(m: &Modulus, o0: &mut [u64], o1: &mut [u64]) {
    ring::simd(
        #[inline(always)]
        || {
            // two loops, not a chained iterator: each vectorizes
            for x in o0.iter_mut() {
                *x = m.reduce_narrow(*x);
            }
            for x in o1.iter_mut() {
                *x = m.reduce_narrow(*x);
            }
        },
    );
}

/// The two polynomials of a key switch at `level` (`(level + 1) x n` residues each, NTT form),
/// in reused per-thread buffers: read them, add them into a ciphertext, then drop them.
pub(crate) type Switched = (ring::Scratch, ring::Scratch);

/// The two sums of a key switch over its plan's extended basis (`targets.len() x n` residues
/// each, NTT form), not yet divided by `P_s`: the sums of several switches made with one plan
/// add here and are divided once ([`divide_by_special`]).
pub(crate) type Undivided = (ring::Scratch, ring::Scratch);

/// The frame of a key switch: per target `t` of the plan's extended basis (in parallel),
/// `accumulate(t, q_t, (key_b, key_a) residues, acc0, acc1)` writes the sums of the digits'
/// products with the key into two accumulators (reused buffers, not cleared).
fn sums_with(
    params: &Parameters,
    plan: &SwitchPlan,
    key: &KeySwitchKey,
    accumulate: impl Fn(usize, &Modulus, (&Residue, &Residue), &mut [u64], &mut [u64]) + Sync,
) -> Undivided {
    debug_assert_eq!(
        (plan.key.level, plan.key.special.len()),
        (key.level, key.special),
        "the key's plan"
    );
    let n = params.n();
    let slots = plan.targets.len();
    let (mut out0, mut out1) = (
        ring::Scratch::take(slots * n),
        ring::Scratch::take(slots * n),
    );
    out0.par_chunks_exact_mut(n)
        .zip(out1.par_chunks_exact_mut(n))
        .enumerate()
        .for_each(|(t, (o0, o1))| {
            let kt = plan.key_residue(t);
            let halves = (&key.b.residues[kt], &key.a.residues[kt]);
            accumulate(t, &params.moduli[plan.targets[t]], halves, o0, o1);
        });
    (out0, out1)
}

/// Both sums of a key switch (or of several made with `plan`, added) divided by `P_s` where
/// they lie: the switch's two polynomials at the plan's level.
pub(crate) fn divide_by_special(
    params: &Parameters,
    plan: &SwitchPlan,
    sums: Undivided,
) -> Switched {
    let n = params.n();
    let (mut out0, mut out1) = sums;
    debug_assert_eq!(out0.len(), plan.targets.len() * n);
    rayon::join(
        || divide_by_special_in_place(params, plan, &mut out0),
        || divide_by_special_in_place(params, plan, &mut out1),
    );
    out0.truncate((plan.level + 1) * n);
    out1.truncate((plan.level + 1) * n);
    (out0, out1)
}

/// `acc += x` over the plan's extended basis (two undivided sums).
pub(crate) fn add_undivided(
    params: &Parameters,
    plan: &SwitchPlan,
    acc: &mut Undivided,
    x: &Undivided,
) {
    let n = params.n();
    let basis: Vec<&Modulus> = plan.targets.iter().map(|&j| &params.moduli[j]).collect();
    ring::add_assign(&mut acc.0, &x.0, &basis, n);
    ring::add_assign(&mut acc.1, &x.1, &basis, n);
}

/// Divides a key switch's sum (the plan's extended basis, NTT form) by `P_s` with rounding
/// into its first `level + 1` residues: `(x - [x]_{P_s}) / P_s`, `[x]_{P_s}` centered.
fn divide_by_special_in_place(params: &Parameters, plan: &SwitchPlan, data: &mut [u64]) {
    let n = params.n();
    let basis = params.basis(plan.level);
    let Some(down) = &plan.down else {
        let p = &params.moduli[plan.key.special[0]];
        return divide_round_last_in_place(data, &basis, p, &plan.ps_inv, n);
    };
    let (low, top) = data.split_at_mut((plan.level + 1) * n);
    let mut coeffs = ring::Scratch::take(top.len());
    coeffs
        .par_chunks_exact_mut(n)
        .zip(top.par_chunks_exact(n))
        .zip(&plan.key.special)
        .for_each(|((c, x), &s)| {
            c.copy_from_slice(x);
            params.moduli[s].intt(c);
        });
    let prepared = down.prepare(&params.moduli, |t| &coeffs[t * n..(t + 1) * n], n);
    low.par_chunks_exact_mut(n).enumerate().for_each(|(j, x)| {
        let m = basis[j];
        let w = plan.ps_inv[j].0;
        if m.value() >> NARROW_BITS == 0 {
            let mut y = ring::Buffer::<u32>::take(n);
            down.convert_into(&prepared, j, &params.moduli, &mut y);
            m.ntt_words(&mut y);
            m.sub_mul_const_assign(x, &y, w);
        } else {
            let mut y = ring::Scratch::take(n);
            down.convert_into(&prepared, j, &params.moduli, &mut y);
            m.ntt(&mut y);
            m.sub_mul_const_assign(x, &y, w);
        }
    });
}

/// Inner product of a decomposition with a key-switching key (made for the level the
/// decomposition was made for), then division by `P_s`. Returns `(d0, d1)` at the
/// decomposition's level. (Galois keys are held permuted by the inverse automorphism, so a
/// rotation permutes these two results instead of every digit of the decomposition: see
/// [`GaloisKey`].)
pub(crate) fn key_switch(params: &Parameters, dec: &Decomposed, key: &KeySwitchKey) -> Switched {
    let sums = key_switch_sums(params, dec, key);
    divide_by_special(params, &dec.plan, sums)
}

/// [`key_switch`] before the division by `P_s`.
pub(crate) fn key_switch_sums(
    params: &Parameters,
    dec: &Decomposed,
    key: &KeySwitchKey,
) -> Undivided {
    let n = params.n();
    let digits = dec.plan.groups.len();
    sums_with(params, &dec.plan, key, |t, m, halves, o0, o1| {
        match (&dec.primes[t], halves) {
            (Digits::Narrow(d), (Residue::Narrow(kb), Residue::Narrow(ka))) => {
                inner_product_narrow(m, (o0, o1), d, (kb, ka), digits, n)
            }
            (d, (Residue::Wide(kb), Residue::Wide(ka))) => {
                o0.fill(0);
                o1.fill(0);
                let mut wide = ring::Scratch::take(n);
                for i in 0..digits {
                    let src = match d {
                        Digits::Wide(d) => &d[i * n..(i + 1) * n],
                        Digits::Narrow(d) => {
                            for (w, &v) in wide.iter_mut().zip(&d[i * n..(i + 1) * n]) {
                                *w = u64::from(v);
                            }
                            &wide[..]
                        }
                    };
                    m.mul_acc_vec(o0, src, &kb[i * n..(i + 1) * n]);
                    m.mul_acc_vec(o1, src, &ka[i * n..(i + 1) * n]);
                }
            }
            _ => unreachable!("a prime's key residues are narrow only where its digits are"),
        }
    })
}

/// `(o0, o1) += sum_i d_i * (kb_i, ka_i)` over the digits, for a prime below `2^31`: products
/// below 2^62 summed unreduced in 64 bits, `lazy_terms` digits at a time (all of them for
/// 26-bit primes), a block of coefficients at a time over all digits so that the accumulators
/// stay in L1 while the digits and the key stream past once.
fn inner_product_narrow<T: Word>(
    m: &Modulus,
    (o0, o1): (&mut [u64], &mut [u64]),
    d: &[T],
    (kb, ka): (&[u32], &[u32]),
    digits: usize,
    n: usize,
) {
    let per = ring::lazy_terms(m.value());
    for start in (0..n).step_by(IP_BLOCK) {
        let end = (start + IP_BLOCK).min(n);
        let (o0, o1) = (&mut o0[start..end], &mut o1[start..end]);
        for i in 0..digits {
            let (from, to) = (i * n + start, i * n + end);
            mac_digit(i, o0, o1, &d[from..to], &kb[from..to], &ka[from..to]);
            if (i + 1) % per == 0 && i + 1 < digits {
                reduce_pair(m, o0, o1);
            }
        }
        reduce_pair(m, o0, o1);
    }
}

/// [`decompose`] and [`key_switch`] in one, for a polynomial switched once: each digit is
/// lifted to a prime and transformed there just before it meets the key, so the
/// decomposition's `digits x targets` residues are never stored (they would stream through
/// memory twice). The same residues as the two steps.
pub(crate) fn key_switch_once(params: &Parameters, c: &Poly<Ntt>, key: &KeySwitchKey) -> Switched {
    let plan = params.switch_plan(key.level, key.special, c.level());
    let sums = key_switch_once_sums(params, &plan, c, key);
    divide_by_special(params, &plan, sums)
}

/// [`key_switch_once`] before the division by `P_s`; `plan` is the key's at `c`'s level.
pub(crate) fn key_switch_once_sums(
    params: &Parameters,
    plan: &SwitchPlan,
    c: &Poly<Ntt>,
    key: &KeySwitchKey,
) -> Undivided {
    debug_assert!(
        matches!(c.basis(), Basis::Data(_)),
        "a ciphertext polynomial"
    );
    debug_assert_eq!(plan.level, c.level(), "the plan of the polynomial's level");
    let n = params.n();
    let digits = plan.groups.len();
    let src = Source::new(params, plan, c);
    sums_with(params, plan, key, |t, m, halves, o0, o1| match halves {
        (Residue::Narrow(kb), Residue::Narrow(ka)) => {
            // below 2^31 the lifted digit is held, transformed and read in 32-bit words
            let mut lifted = ring::Buffer::<u32>::take(n);
            let per = ring::lazy_terms(m.value());
            for i in 0..digits {
                src.lift(&mut lifted, params, plan, (i, t), Modulus::ntt_words);
                let at = i * n..(i + 1) * n;
                mac_digit(i, o0, o1, &lifted, &kb[at.clone()], &ka[at]);
                if (i + 1) % per == 0 && i + 1 < digits {
                    reduce_pair(m, o0, o1);
                }
            }
            reduce_pair(m, o0, o1);
        }
        (Residue::Wide(kb), Residue::Wide(ka)) => {
            o0.fill(0);
            o1.fill(0);
            let mut lifted = ring::Scratch::take(n);
            for i in 0..digits {
                src.lift(&mut lifted, params, plan, (i, t), Modulus::ntt);
                m.mul_acc_vec(o0, &lifted, &kb[i * n..(i + 1) * n]);
                m.mul_acc_vec(o1, &lifted, &ka[i * n..(i + 1) * n]);
            }
        }
        _ => unreachable!("both halves of a residue have its prime's width"),
    })
}

/// The inverse of a permutation.
pub(crate) fn inverse_permutation(perm: &[u32]) -> Vec<u32> {
    let mut inv = vec![0u32; perm.len()];
    for (t, &p) in perm.iter().enumerate() {
        inv[p as usize] = t as u32;
    }
    inv
}

/// `out` = `src` with every residue permuted (`out[t] = src[perm[t]]` in each `n`-block).
pub(crate) fn permute_into<T: Word>(out: &mut [T], src: &[T], perm: &[u32], n: usize) {
    out.par_chunks_exact_mut(n)
        .zip(src.par_chunks_exact(n))
        .for_each(|(o, d)| {
            for (x, &p) in o.iter_mut().zip(perm) {
                *x = d[p as usize];
            }
        });
}

/// Applies the NTT-domain automorphism permutation to every residue.
pub(crate) fn permute(data: &[u64], perm: &[u32], n: usize) -> Vec<u64> {
    let mut out = vec![0u64; data.len()];
    permute_into(&mut out, data, perm, n);
    out
}

/// Relinearisation key: key switching from `s^2` to `s`.
#[derive(Clone)]
pub struct RelinKey {
    pub(crate) params: Arc<Parameters>,
    pub(crate) key: KeySwitchKey,
}

impl std::fmt::Debug for RelinKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelinKey")
            .field("params", &self.params.name())
            .finish()
    }
}

impl RelinKey {
    /// Generates the relinearisation key of `sk` for every level.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(sk: &SecretKey, rng: &mut R) -> Self {
        Self::generate_for_level(sk, sk.params.max_level(), rng)
    }

    /// Generates a relinearisation key for products at `level` and below
    /// (smaller than a full key when the first product comes after
    /// rescales), with the default [`KeyDigits`].
    pub fn generate_for_level<R: RngCore + CryptoRng + ?Sized>(
        sk: &SecretKey,
        level: usize,
        rng: &mut R,
    ) -> Self {
        Self::generate_with(sk, level, KeyDigits::default(), rng)
    }

    /// [`Self::generate_for_level`] with the digit layout `digits`.
    pub fn generate_with<R: RngCore + CryptoRng + ?Sized>(
        sk: &SecretKey,
        level: usize,
        digits: KeyDigits,
        rng: &mut R,
    ) -> Self {
        let params = &sk.params;
        let basis = params.ext_basis(params.max_level());
        let mut s2 = ring::mul(&sk.ntt, &sk.ntt, &basis, params.n());
        let key = KeySwitchKey::generate(sk, &s2, (level, digits), rng, None);
        s2.zeroize();
        Self {
            params: params.clone(),
            key,
        }
    }

    /// Highest level at which this key relinearises.
    pub fn level(&self) -> usize {
        self.key.level
    }

    /// Whether the key has the digit layout `digits` makes at its level.
    pub fn digits_are(&self, digits: KeyDigits) -> bool {
        self.key.special == self.params.special_primes(self.key.level, digits)
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
    }

    /// Bytes the key occupies in memory.
    pub fn memory_bytes(&self) -> usize {
        self.key.memory_bytes()
    }
}

/// A key for the automorphism `sigma` (`sigma(x)[t] = x[perm[t]]` in the NTT domain), held as
/// `sigma^-1` of the key-switching key: since `sum_i sigma(D_i) K_i = sigma(sum_i D_i
/// sigma^-1(K_i))` and the division by P commutes with `sigma`, a rotation takes the inner
/// product of the unpermuted decomposition and permutes its two results, not every digit.
/// Serialization writes the key itself (`sigma` of what is held).
#[derive(Clone)]
pub(crate) struct GaloisKey {
    pub(crate) key: KeySwitchKey,
    pub(crate) perm: Vec<u32>,
}

/// Galois keys for a chosen set of rotations (and optionally conjugation),
/// indexed by Galois element.
#[derive(Clone)]
pub struct GaloisKeys {
    pub(crate) params: Arc<Parameters>,
    pub(crate) keys: BTreeMap<u64, GaloisKey>,
}

impl std::fmt::Debug for GaloisKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GaloisKeys")
            .field("params", &self.params.name())
            .field("galois_elements", &self.keys.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl GaloisKeys {
    /// Generates keys for exactly the rotation `steps` asked for (left
    /// rotations; negative = right) and for conjugation if `conjugate`,
    /// each usable at every level.
    pub fn generate<R: RngCore + CryptoRng + ?Sized>(
        sk: &SecretKey,
        steps: &[i64],
        conjugate: bool,
        rng: &mut R,
    ) -> Self {
        let top = sk.params.max_level();
        let with_levels: Vec<(i64, usize)> = steps.iter().map(|&s| (s, top)).collect();
        Self::generate_for_levels(sk, &with_levels, conjugate, rng)
    }

    /// Generates one key per `(step, level)`: the key for `step` switches
    /// ciphertexts at `level` and below, and is smaller the lower `level`
    /// is. A step listed twice gets the higher level. Conjugation, if
    /// asked for, works at every level.
    pub fn generate_for_levels<R: RngCore + CryptoRng + ?Sized>(
        sk: &SecretKey,
        steps: &[(i64, usize)],
        conjugate: bool,
        rng: &mut R,
    ) -> Self {
        Self::generate_for_levels_with_progress(sk, steps, conjugate, rng, &mut |_, _| {})
    }

    /// [`Self::generate_for_levels`], calling `progress(done, total)` after each key (a
    /// browser client shows it while the keys are made).
    pub fn generate_for_levels_with_progress<R: RngCore + CryptoRng + ?Sized>(
        sk: &SecretKey,
        steps: &[(i64, usize)],
        conjugate: bool,
        rng: &mut R,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Self {
        Self::generate_with(sk, steps, conjugate, KeyDigits::default(), rng, progress)
    }

    /// [`Self::generate_for_levels_with_progress`] with the digit layout `digits`.
    pub fn generate_with<R: RngCore + CryptoRng + ?Sized>(
        sk: &SecretKey,
        steps: &[(i64, usize)],
        conjugate: bool,
        digits: KeyDigits,
        rng: &mut R,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Self {
        let each: Vec<(i64, usize, KeyDigits)> =
            steps.iter().map(|&(s, l)| (s, l, digits)).collect();
        Self::generate_each(sk, &each, conjugate, rng, progress)
    }

    /// One key per `(step, level, digits)`, each with its own digit layout (a circuit pairs
    /// the digits of the keys it does not hoist: see `unseen_circuits::KeyLayout`). A step
    /// listed twice gets the higher level, and paired digits if either asks for them; the
    /// conjugation key, if asked for, works at every level with one prime per digit.
    pub fn generate_each<R: RngCore + CryptoRng + ?Sized>(
        sk: &SecretKey,
        steps: &[(i64, usize, KeyDigits)],
        conjugate: bool,
        rng: &mut R,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Self {
        let params = &sk.params;
        let mut elements: BTreeMap<u64, (usize, KeyDigits)> = BTreeMap::new();
        for &(s, level, digits) in steps {
            let g = params.galois_element(s);
            if g != 1 {
                let e = elements.entry(g).or_insert((0, digits));
                e.0 = e.0.max(level.min(params.max_level()));
                if digits == KeyDigits::Paired {
                    e.1 = KeyDigits::Paired;
                }
            }
        }
        if conjugate {
            elements.insert(
                params.conjugation_element(),
                (params.max_level(), KeyDigits::PerPrime),
            );
        }
        let mut keys = BTreeMap::new();
        let total = elements.len();
        for (done, (g, form)) in elements.into_iter().enumerate() {
            keys.insert(g, Self::key_for(sk, g, form, rng));
            progress(done + 1, total);
        }
        Self {
            params: params.clone(),
            keys,
        }
    }

    fn key_for<R: RngCore + CryptoRng + ?Sized>(
        sk: &SecretKey,
        g: u64,
        level: (usize, KeyDigits),
        rng: &mut R,
    ) -> GaloisKey {
        let params = &sk.params;
        let perm = params.permutation(g);
        let mut s_g = permute(&sk.ntt, &perm, params.n());
        let key = KeySwitchKey::generate(sk, &s_g, level, rng, Some(&inverse_permutation(&perm)));
        s_g.zeroize();
        GaloisKey { key, perm }
    }

    /// Whether every key has the digit layout `digits` makes at its level.
    pub fn digits_are(&self, digits: KeyDigits) -> bool {
        self.keys
            .values()
            .all(|g| g.key.special == self.params.special_primes(g.key.level, digits))
    }

    /// Whether the key for a left rotation by `step` exists and has the digit layout `digits`
    /// makes at its level.
    pub fn rotation_digits_are(&self, step: i64, digits: KeyDigits) -> bool {
        self.keys
            .get(&self.params.galois_element(step))
            .is_some_and(|g| g.key.special == self.params.special_primes(g.key.level, digits))
    }

    /// Highest level at which the key for a left rotation by `step` works
    /// (`None`: no such key).
    pub fn rotation_level(&self, step: i64) -> Option<usize> {
        self.keys
            .get(&self.params.galois_element(step))
            .map(|k| k.key.level)
    }

    /// The parameters.
    pub fn params(&self) -> &Arc<Parameters> {
        &self.params
    }

    /// Bytes the keys (and their permutations) occupy in memory.
    pub fn memory_bytes(&self) -> usize {
        self.keys
            .values()
            .map(|g| g.key.memory_bytes() + g.perm.len() * 4)
            .sum()
    }

    /// Galois elements for which a key exists.
    pub fn galois_elements(&self) -> Vec<u64> {
        self.keys.keys().copied().collect()
    }

    /// Whether a key for a left rotation by `step` exists (step 0 always works).
    pub fn has_rotation(&self, step: i64) -> bool {
        let g = self.params.galois_element(step);
        g == 1 || self.keys.contains_key(&g)
    }

    /// Whether the conjugation key exists.
    pub fn has_conjugation(&self) -> bool {
        self.keys.contains_key(&self.params.conjugation_element())
    }

    /// Rotation step in `[0, N/2)` of a Galois element, `None` for conjugation.
    pub fn step_of(&self, g: u64) -> Option<i64> {
        let two_n = 2 * self.params.n() as u64;
        let mut x = 1u64;
        for k in 0..self.params.slots() as i64 {
            if x == g {
                return Some(k);
            }
            x = x * 5 % two_n;
        }
        None
    }

    /// The keys for the given rotation steps (and conjugation), e.g. to
    /// serialize or send them one step at a time. Errors if one is missing.
    pub fn subset(&self, steps: &[i64], conjugate: bool) -> Result<GaloisKeys> {
        let mut keys = BTreeMap::new();
        for &s in steps {
            let g = self.params.galois_element(s);
            if g != 1 {
                keys.insert(g, self.get(g, || format!("rotation by {s}"))?.clone());
            }
        }
        if conjugate {
            let g = self.params.conjugation_element();
            keys.insert(g, self.get(g, || "conjugation".into())?.clone());
        }
        Ok(GaloisKeys {
            params: self.params.clone(),
            keys,
        })
    }

    /// Adds the keys of `other` (made for the same parameters and secret).
    pub fn merge(&mut self, other: GaloisKeys) -> Result<()> {
        if !self.params.same_as(&other.params) {
            return Err(Error::ParametersMismatch);
        }
        self.keys.extend(other.keys);
        Ok(())
    }

    pub(crate) fn get(&self, g: u64, what: impl FnOnce() -> String) -> Result<&GaloisKey> {
        self.keys
            .get(&g)
            .ok_or_else(|| Error::MissingGaloisKey(what()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Preset;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// Public-key encryption divides `u pk + e` by P: the transformed and lifted copies of the
    /// dropped residue go back to the per-thread scratch pools wiped, while a rescale (ciphertext
    /// data only) leaves its copies as they are.
    #[test]
    fn public_key_encryption_leaves_its_scratch_buffers_wiped() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .expect("pool");
        pool.install(|| {
            let params = Parameters::preset(Preset::Cnn8192).expect("preset");
            let mut rng = ChaCha20Rng::seed_from_u64(5);
            let sk = SecretKey::generate(&params, &mut rng);
            let pk = PublicKey::generate(&sk, &mut rng);
            let enc = crate::Encoder::new(&params);
            let pt = enc
                .encode_real(&[0.25; 8], params.max_level(), params.default_scale())
                .expect("encode");
            let pooled = || {
                let wide = u64::with_pool(|p| p.iter().map(|b| b.to_vec()).collect::<Vec<_>>());
                let narrow = u32::with_pool(|p| {
                    p.iter()
                        .map(|b| b.iter().map(|&x| u64::from(x)).collect::<Vec<_>>())
                        .collect::<Vec<_>>()
                });
                [wide.expect("pool"), narrow.expect("pool")].concat()
            };
            let clear = || {
                u64::with_pool(|p| p.clear());
                u32::with_pool(|p| p.clear());
            };
            clear();
            let ct = pk.encrypt(&pt, &mut rng).expect("encrypt");
            let after = pooled();
            assert!(!after.is_empty(), "the division used pooled buffers");
            assert!(after.iter().all(|b| b.iter().all(|&x| x == 0)), "wiped");
            // the same division for ciphertext data keeps its copies (the check above can fail)
            clear();
            let ev = crate::Evaluator::new(&params);
            ev.rescale(&ct).expect("rescale");
            assert!(pooled().iter().any(|b| b.iter().any(|&x| x != 0)));
        });
    }

    /// The same key with every residue held in 64-bit words.
    fn widened(h: &KeyHalf) -> KeyHalf {
        KeyHalf {
            residues: h
                .residues
                .iter()
                .map(|r| match r {
                    Residue::Narrow(v) => Residue::Wide(v.iter().map(|&x| u64::from(x)).collect()),
                    Residue::Wide(v) => Residue::Wide(v.clone()),
                })
                .collect(),
        }
    }

    #[test]
    fn narrow_keys_switch_exactly_like_wide_and_loaded_ones_in_half_the_memory() {
        let params = Parameters::preset(Preset::Cnn8192).expect("preset");
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let sk = SecretKey::generate(&params, &mut rng);
        // the top level (one prime per digit over P), and below it, one prime per digit or,
        // paired, a spare prime joining P and digits of two primes (level 4: three digits,
        // the last of one prime)
        let forms = [
            (params.max_level(), KeyDigits::Paired, 1),
            (4, KeyDigits::Paired, 2),
            (3, KeyDigits::Paired, 2),
            (3, KeyDigits::PerPrime, 1),
        ];
        for (key_level, digits, special) in forms {
            let gk = GaloisKeys::generate_with(
                &sk,
                &[(3, key_level)],
                false,
                digits,
                &mut rng,
                &mut |_, _| {},
            );
            let key = &gk.keys.values().next().expect("a key").key;
            assert_eq!((key.level, key.special), (key_level, special));
            switches_exactly(&params, &gk, &[key_level, key_level - 1, 1]);
        }
    }

    fn switches_exactly(params: &Arc<Parameters>, gk: &GaloisKeys, levels: &[usize]) {
        let g = gk.keys.values().next().expect("a key");
        let narrow = &g.key;
        assert!(narrow
            .b
            .residues
            .iter()
            .all(|r| matches!(r, Residue::Narrow(_))));
        let wide = KeySwitchKey {
            b: widened(&narrow.b),
            a: widened(&narrow.a),
            ..narrow.clone()
        };
        assert_eq!(2 * narrow.b.memory_bytes(), wide.b.memory_bytes());
        // a key loaded from its bytes (converted digit by digit) is the same key
        let loaded = GaloisKeys::from_bytes(&gk.to_bytes(), params).expect("load");
        let loaded = &loaded.keys.values().next().expect("a key").key;
        let n = params.n();
        for &level in levels {
            let basis = params.basis(level);
            let c: Vec<u64> = basis
                .iter()
                .flat_map(|m| ring::expand_uniform(&[7; 32], 0, &[*m], n))
                .collect();
            let c = Poly::from_vec(c, Basis::Data(level), n);
            let dec = decompose(params, &c, (narrow.level, narrow.special));
            let vecs = |(a, b): Switched| (a.to_vec(), b.to_vec());
            let (n0, n1) = vecs(key_switch(params, &dec, narrow));
            assert_eq!(n0.len(), (level + 1) * n);
            let (w0, w1) = vecs(key_switch(params, &dec, &wide));
            assert!(n0 == w0 && n1 == w1, "level {level}");
            let (l0, l1) = vecs(key_switch(params, &dec, loaded));
            assert!(n0 == l0 && n1 == l1, "loaded, level {level}");
            // without a stored decomposition: the same residues, narrow and wide
            assert!(
                vecs(key_switch_once(params, &c, narrow)) == (n0.clone(), n1.clone()),
                "once, level {level}"
            );
            assert!(
                vecs(key_switch_once(params, &c, &wide)) == (n0.clone(), n1.clone()),
                "once, wide, level {level}"
            );
            // held as sigma^-1(K): permuting the two results equals the textbook rotation's
            // key switch, every digit of the decomposition permuted and the key itself used
            let key_basis = params.key_moduli(narrow.level, narrow.special);
            let digits = params.key_basis(narrow.level, narrow.special).groups.len();
            let original = |h: &KeyHalf| {
                let parts = (0..digits).map(|i| Ok::<_, ()>(h.digit(i, n)));
                KeyHalf::from_digit_iter(parts, &key_basis, digits, n, Some(&g.perm))
                    .expect("digits")
            };
            let key = KeySwitchKey {
                b: original(&narrow.b),
                a: original(&narrow.a),
                ..narrow.clone()
            };
            let permuted = Decomposed {
                plan: dec.plan.clone(),
                primes: dec
                    .primes
                    .iter()
                    .map(|d| match d {
                        Digits::Narrow(d) => {
                            let mut p = ring::Buffer::<u32>::take(d.len());
                            permute_into(&mut p, d, &g.perm, n);
                            Digits::Narrow(p)
                        }
                        Digits::Wide(d) => {
                            let mut p = ring::Scratch::take(d.len());
                            permute_into(&mut p, d, &g.perm, n);
                            Digits::Wide(p)
                        }
                    })
                    .collect(),
            };
            let (r0, r1) = vecs(key_switch(params, &permuted, &key));
            assert!(
                permute(&n0, &g.perm, n) == r0 && permute(&n1, &g.perm, n) == r1,
                "permuted results, level {level}"
            );
        }
    }
}
