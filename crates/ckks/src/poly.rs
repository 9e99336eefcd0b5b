//! RNS polynomials that carry their basis and their domain.
//!
//! A [`Poly`] holds `n` values per residue, residue `j` modulo the `j`-th prime of its
//! [`Basis`]: the data primes `q_0..=q_level`, or those and the special prime P (where key
//! switching works). Its domain is a type parameter, [`Ntt`] (evaluation form, where products
//! are pointwise: ciphertexts, plaintexts, keys) or [`Coeff`] (coefficients, where lifts and
//! rounding happen), so that a coefficient-form polynomial cannot be passed where an NTT-form
//! one is expected: that mismatch does not compile. The basis is checked where two
//! polynomials meet. The hot loops read and write the residues as plain slices (`Deref`).

use std::marker::PhantomData;

use zeroize::Zeroize;

use crate::params::Parameters;
use crate::ring::{self, Modulus};

/// The primes a polynomial's residues are modulo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    /// The data primes `q_0..=q_level`.
    Data(usize),
    /// The data primes `q_0..=q_level`, then the special prime P.
    Extended(usize),
}

impl Basis {
    /// Level of the data primes.
    pub(crate) fn level(self) -> usize {
        match self {
            Basis::Data(l) | Basis::Extended(l) => l,
        }
    }

    /// Number of residues.
    pub(crate) fn residues(self) -> usize {
        match self {
            Basis::Data(l) => l + 1,
            Basis::Extended(l) => l + 2,
        }
    }

    /// The primes, in residue order.
    pub(crate) fn moduli(self, params: &Parameters) -> Vec<&Modulus> {
        match self {
            Basis::Data(l) => params.basis(l),
            Basis::Extended(l) => params.ext_basis(l),
        }
    }
}

/// Marker: residues in the NTT (evaluation) domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ntt;

/// Marker: residues as coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Coeff;

/// An RNS polynomial over `basis` in domain `D` (see the module documentation).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Poly<D> {
    data: Vec<u64>,
    basis: Basis,
    domain: PhantomData<D>,
}

impl<D> Poly<D> {
    /// Residues given as `basis.residues()` blocks of `n` values.
    pub(crate) fn from_vec(data: Vec<u64>, basis: Basis, n: usize) -> Self {
        debug_assert_eq!(data.len(), basis.residues() * n, "{basis:?}");
        Self {
            data,
            basis,
            domain: PhantomData,
        }
    }

    /// The zero polynomial.
    pub(crate) fn zero(basis: Basis, n: usize) -> Self {
        Self::from_vec(vec![0; basis.residues() * n], basis, n)
    }

    /// Its basis.
    pub(crate) fn basis(&self) -> Basis {
        self.basis
    }

    /// The level of its data primes.
    pub(crate) fn level(&self) -> usize {
        self.basis.level()
    }

    /// The same values over the data primes `q_0..=level` only (the dropped residues are
    /// exact: a polynomial reduced modulo fewer primes).
    pub(crate) fn at_level(&self, level: usize, n: usize) -> &[u64] {
        debug_assert!(level <= self.level(), "{level} above {:?}", self.basis);
        &self.data[..(level + 1) * n]
    }

    /// Makes this polynomial hold `basis`'s residues, keeping its allocation when it has the
    /// room (the values are then overwritten by the caller).
    pub(crate) fn refit(&mut self, basis: Basis, n: usize) {
        let len = basis.residues() * n;
        if self.data.capacity() >= len {
            self.data.resize(len, 0);
        } else {
            self.data = vec![0; len];
        }
        self.basis = basis;
    }

    /// `self = other`, in this polynomial's buffer when it has the room.
    pub(crate) fn copy_from(&mut self, other: &Self) {
        self.data.clone_from(&other.data);
        self.basis = other.basis;
    }

    fn check_same(&self, other: &Self) {
        debug_assert_eq!(self.basis, other.basis, "polynomials over different bases");
    }
}

impl Poly<Ntt> {
    /// `self += other` (same basis).
    pub(crate) fn add_assign(&mut self, other: &Self, params: &Parameters) {
        self.check_same(other);
        ring::add_assign(
            &mut self.data,
            &other.data,
            &self.basis.moduli(params),
            params.n(),
        );
    }

    /// `self -= other` (same basis).
    pub(crate) fn sub_assign(&mut self, other: &Self, params: &Parameters) {
        self.check_same(other);
        ring::sub_assign(
            &mut self.data,
            &other.data,
            &self.basis.moduli(params),
            params.n(),
        );
    }

    /// The pointwise product (same basis).
    pub(crate) fn mul(&self, other: &Self, params: &Parameters) -> Self {
        self.check_same(other);
        let data = ring::mul(
            &self.data,
            &other.data,
            &self.basis.moduli(params),
            params.n(),
        );
        Self::from_vec(data, self.basis, params.n())
    }

    /// The coefficients.
    pub(crate) fn to_coeff(&self, params: &Parameters) -> Poly<Coeff> {
        let mut data = self.data.clone();
        ring::intt_all(&mut data, &self.basis.moduli(params), params.n());
        Poly::from_vec(data, self.basis, params.n())
    }
}

impl Poly<Coeff> {
    /// Small signed coefficients (errors, ternary values) over `basis`.
    pub(crate) fn from_signed(values: &[i64], basis: Basis, params: &Parameters) -> Self {
        let data = ring::from_signed(values, &basis.moduli(params));
        Self::from_vec(data, basis, params.n())
    }

    /// Wide signed coefficients (flooding noise) over `basis`.
    pub(crate) fn from_signed_wide(values: &[i128], basis: Basis, params: &Parameters) -> Self {
        let data = ring::from_signed_wide(values, &basis.moduli(params));
        Self::from_vec(data, basis, params.n())
    }

    /// The NTT form.
    pub(crate) fn into_ntt(mut self, params: &Parameters) -> Poly<Ntt> {
        ring::ntt_all(&mut self.data, &self.basis.moduli(params), params.n());
        Poly {
            data: std::mem::take(&mut self.data),
            basis: self.basis,
            domain: PhantomData,
        }
    }
}

impl<D> std::ops::Deref for Poly<D> {
    type Target = [u64];
    fn deref(&self) -> &[u64] {
        &self.data
    }
}

impl<D> std::ops::DerefMut for Poly<D> {
    fn deref_mut(&mut self) -> &mut [u64] {
        &mut self.data
    }
}

impl<D> Zeroize for Poly<D> {
    fn zeroize(&mut self) {
        self.data.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Preset;

    #[test]
    fn domains_convert_exactly_and_bases_carry_their_primes() {
        let params = Parameters::preset(Preset::Cnn8192).expect("preset");
        let n = params.n();
        let level = 3;
        let values: Vec<i64> = (0..n as i64).map(|i| (i * 7919) % 201 - 100).collect();
        for basis in [Basis::Data(level), Basis::Extended(level)] {
            let c = Poly::<Coeff>::from_signed(&values, basis, &params);
            assert_eq!(c.len(), basis.residues() * n);
            let moduli = basis.moduli(&params);
            assert_eq!(moduli.len(), basis.residues());
            // the last residue of an extended basis is modulo P
            let last = moduli[moduli.len() - 1].value();
            match basis {
                Basis::Data(l) => assert_eq!(last, params.moduli[l].value()),
                Basis::Extended(_) => assert_eq!(last, params.special().value()),
            }
            // coefficients -> NTT -> coefficients is the identity, residue by residue the
            // signed values modulo each prime
            let ntt = c.clone().into_ntt(&params);
            assert_ne!(&ntt[..], &c[..]);
            let back = ntt.to_coeff(&params);
            assert!(back == c, "{basis:?}");
            for (j, m) in moduli.iter().enumerate() {
                let p = m.value() as i64;
                for (t, &v) in values.iter().enumerate() {
                    assert_eq!(back[j * n + t] as i64, v.rem_euclid(p));
                }
            }
            // in the NTT domain a product is pointwise: x * 1 = x, x + (-x) = 0
            let one = Poly::<Coeff>::from_signed(
                &(0..n).map(|t| i64::from(t == 0)).collect::<Vec<_>>(),
                basis,
                &params,
            )
            .into_ntt(&params);
            assert!(ntt.mul(&one, &params) == ntt);
            let neg: Vec<i64> = values.iter().map(|v| -v).collect();
            let mut sum = Poly::<Coeff>::from_signed(&neg, basis, &params).into_ntt(&params);
            sum.add_assign(&ntt, &params);
            assert!(sum == Poly::zero(basis, n));
        }
    }

    #[test]
    fn a_polynomial_over_a_lower_level_keeps_the_residues_it_has() {
        let params = Parameters::preset(Preset::Cnn8192).expect("preset");
        let n = params.n();
        let p = Poly::<Ntt>::from_vec((0..4 * n as u64).collect(), Basis::Data(3), n);
        assert_eq!(p.at_level(1, n), &p[..2 * n]);
        let mut q = Poly::<Ntt>::zero(Basis::Data(0), n);
        q.copy_from(&p);
        assert!(q == p && q.level() == 3);
        q.refit(Basis::Extended(1), n);
        assert_eq!((q.len(), q.basis()), (3 * n, Basis::Extended(1)));
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "different bases")]
    fn polynomials_over_different_bases_do_not_meet() {
        let params = Parameters::preset(Preset::Cnn8192).expect("preset");
        let n = params.n();
        let mut a = Poly::<Ntt>::zero(Basis::Data(2), n);
        a.add_assign(&Poly::zero(Basis::Data(1), n), &params);
    }
}
