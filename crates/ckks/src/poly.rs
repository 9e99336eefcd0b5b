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

    /// A polynomial over `basis` whose values the caller then overwrites, every one: the
    /// buffer of one dropped before when one fits (its values are that polynomial's), so that
    /// a result is neither zeroed nor faulted in afresh.
    pub(crate) fn overwritten(basis: Basis, n: usize) -> Self {
        Self::from_vec(released::take(basis.residues() * n), basis, n)
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
            released::give(std::mem::replace(&mut self.data, released::take(len)));
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
        let mut out = Self::overwritten(self.basis, params.n());
        ring::mul_into(
            &mut out.data,
            &self.data,
            &other.data,
            &self.basis.moduli(params),
            params.n(),
        );
        out
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
        let mut out = Self::overwritten(basis, params.n());
        ring::from_signed_into(&mut out.data, values, &basis.moduli(params));
        out
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

impl<D> Drop for Poly<D> {
    fn drop(&mut self) {
        released::give(std::mem::take(&mut self.data));
    }
}

/// The buffers of dropped polynomials, kept for [`Poly::overwritten`]: a program's
/// intermediate results are dropped as fast as they are made, mostly of a few sizes, and
/// the allocator would hand their memory back zeroed (`calloc`) or, past its mapping
/// threshold, as fresh pages to fault in. Shared by all threads (a result is often dropped
/// on another thread than the one that made it), and bounded (see [`released::Pool`]). A
/// polynomial that held secret values is zeroized by its owner before it is dropped
/// (`SecretKey`, `Zeroizing`), so nothing secret is kept here.
mod released {
    use std::sync::Mutex;

    static POOL: Pool = Pool::new();

    /// [`Pool::take`] from the process's pool.
    pub(super) fn take(len: usize) -> Vec<u64> {
        POOL.take(len)
    }

    /// [`Pool::give`] to the process's pool.
    pub(super) fn give(v: Vec<u64>) {
        POOL.give(v)
    }

    /// Vectors kept for reuse: at most [`Pool::KEEP`] of them and [`Pool::KEEP_BYTES`] in
    /// all, the largest kept.
    pub(super) struct Pool(Mutex<Vec<Vec<u64>>>);

    impl Pool {
        /// Vectors kept at most (a program's live temporaries and results at one time).
        pub(super) const KEEP: usize = 32;
        /// Bytes kept at most: 32 polynomials at the top level of the reference preset (the
        /// temporaries of ciphernet's linear maps); a fixed cost of the process, not of a
        /// client (`bench/key_memory.sh` lets it fill before it measures).
        pub(super) const KEEP_BYTES: usize = 12 << 20;

        pub(super) const fn new() -> Self {
            Self(Mutex::new(Vec::new()))
        }

        fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<u64>>> {
            // a panic elsewhere while the lock was held leaves vectors that are still vectors
            self.0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        }

        /// A vector of `len` values: a kept one of that length (its values are its last
        /// user's), else the smallest kept one with the room (shortened, or lengthened by
        /// zeros), else a fresh one of zeros.
        pub(super) fn take(&self, len: usize) -> Vec<u64> {
            let found = {
                let mut pool = self.lock();
                let at = pool.iter().position(|v| v.len() == len).or_else(|| {
                    (0..pool.len())
                        .filter(|&i| pool[i].capacity() >= len)
                        .min_by_key(|&i| pool[i].capacity())
                });
                at.map(|i| pool.swap_remove(i))
            };
            match found {
                Some(mut v) => {
                    v.resize(len, 0);
                    v
                }
                None => vec![0; len],
            }
        }

        /// Keeps `v` for a later [`Pool::take`] when there is room, in place of a smaller
        /// one when not; else frees it.
        pub(super) fn give(&self, v: Vec<u64>) {
            let bytes = |v: &Vec<u64>| v.capacity() * std::mem::size_of::<u64>();
            if v.capacity() == 0 || bytes(&v) > Self::KEEP_BYTES / 4 {
                return;
            }
            // what is freed is freed after the lock is let go
            let _freed = {
                let mut pool = self.lock();
                let held: usize = pool.iter().map(bytes).sum();
                if pool.len() < Self::KEEP && held + bytes(&v) <= Self::KEEP_BYTES {
                    pool.push(v);
                    None
                } else {
                    let smallest = (0..pool.len()).min_by_key(|&i| pool[i].capacity());
                    match smallest {
                        Some(i)
                            if pool[i].capacity() < v.capacity()
                                && held - bytes(&pool[i]) + bytes(&v) <= Self::KEEP_BYTES =>
                        {
                            Some(std::mem::replace(&mut pool[i], v))
                        }
                        _ => Some(v),
                    }
                }
            };
        }

        #[cfg(test)]
        pub(super) fn held(&self) -> (usize, usize) {
            let pool = self.lock();
            (pool.len(), pool.iter().map(|v| v.capacity() * 8).sum())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::Preset;

    #[test]
    fn released_vectors_are_reused_unzeroed_and_bounded() {
        let pool = released::Pool::new();
        // a vector of the length asked for comes back as its last user left it
        let mut v = pool.take(1000);
        assert_eq!(v, vec![0; 1000]);
        v.fill(7);
        let at = v.as_ptr();
        pool.give(v);
        let v = pool.take(1000);
        assert_eq!((v.as_ptr(), v.len()), (at, 1000));
        assert!(v.iter().all(|&x| x == 7));
        // a shorter request takes the smallest one with the room; a longer one zero-fills
        pool.give(v);
        pool.give(vec![5; 4000]);
        let w = pool.take(900);
        assert_eq!((w.as_ptr(), w.len()), (at, 900));
        pool.give(w);
        let w = pool.take(1000);
        assert_eq!(&w[900..], &[0; 100][..]);
        assert!(w[..900].iter().all(|&x| x == 7));
        // bounded in count and bytes, the largest kept
        for len in 1..=2 * released::Pool::KEEP {
            pool.give(vec![1; len * 1000]);
        }
        let (count, bytes) = pool.held();
        assert!(count <= released::Pool::KEEP && bytes <= released::Pool::KEEP_BYTES);
        assert_eq!(pool.take(2 * released::Pool::KEEP * 1000)[0], 1);
        // and a vector over a quarter of the bytes is never kept
        pool.give(vec![1; released::Pool::KEEP_BYTES / 8 / 4 + 1]);
        assert_eq!(pool.take(released::Pool::KEEP_BYTES / 8 / 4 + 1)[0], 0);
    }

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
