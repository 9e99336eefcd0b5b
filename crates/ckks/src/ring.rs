//! Ring layer: arithmetic modulo NTT-friendly primes, RNS polynomials in
//! `Z_q[X]/(X^N + 1)`, negacyclic NTT (backed by `tfhe-ntt`), sampling and
//! bit-packing.
//!
//! RNS polynomials are stored flat: `data[i * n + k]` is coefficient (or NTT
//! slot) `k` modulo the `i`-th prime of the basis the polynomial lives in.

use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};
use rayon::prelude::*;
use tfhe_ntt::prime64::Plan;

/// Largest supported prime size in bits (Barrett reduction needs `4p < 2^64`).
pub const MAX_PRIME_BITS: u32 = 61;
/// Smallest supported prime size in bits.
pub const MIN_PRIME_BITS: u32 = 17;

/// A prime modulus with precomputed reduction constants and its NTT plan.
pub struct Modulus {
    p: u64,
    bits: u32,
    ratio_hi: u64,
    ratio_lo: u64,
    barrett64: u64,
    /// For a prime below `2^31` ([`Modulus::reduce_narrow`]): `2^32 mod p` and the 32-bit Shoup
    /// constants of it and of 1 (zero for a wider prime).
    r32: u64,
    r32_shoup: u64,
    one_shoup: u64,
    plan: Plan,
    /// tfhe-ntt's 32-bit plan for a prime below 2^32: the same outputs as the 64-bit one (a
    /// test checks it for every preset's primes). Values held in 32-bit words are transformed
    /// by it ([`Modulus::ntt_words`], about a quarter faster than the 64-bit plan); in
    /// WebAssembly, which has no 64 x 64 -> 128-bit multiplication, it transforms every
    /// residue of such a prime.
    plan32: Option<tfhe_ntt::prime32::Plan>,
}

impl std::fmt::Debug for Modulus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Modulus").field("p", &self.p).finish()
    }
}

impl Modulus {
    /// Builds the modulus and its negacyclic NTT plan of size `n`; `None` when
    /// `p` is not a supported NTT-friendly prime for `n`.
    pub fn new(p: u64, n: usize) -> Option<Self> {
        if !(3..(1u64 << MAX_PRIME_BITS)).contains(&p) || !(p - 1).is_multiple_of(2 * n as u64) {
            return None;
        }
        let plan = Plan::try_new(n, p)?;
        let ratio = u128::MAX / p as u128;
        let mut m = Self {
            p,
            bits: 64 - p.leading_zeros(),
            ratio_hi: (ratio >> 64) as u64,
            ratio_lo: ratio as u64,
            barrett64: ((1u128 << 64) / p as u128) as u64,
            r32: 0,
            r32_shoup: 0,
            one_shoup: 0,
            plan,
            plan32: u32::try_from(p)
                .ok()
                .and_then(|p| tfhe_ntt::prime32::Plan::try_new(n, p)),
        };
        if p >> NARROW_BITS == 0 {
            m.r32 = (1u64 << 32) % p;
            (m.r32_shoup, m.one_shoup) = (m.shoup32(m.r32), m.shoup32(1));
        }
        Some(m)
    }

    /// The prime.
    #[inline]
    pub fn value(&self) -> u64 {
        self.p
    }

    /// Bit length of the prime.
    #[inline]
    pub fn bits(&self) -> u32 {
        self.bits
    }

    /// `a + b mod p` for `a, b < p`.
    #[inline(always)]
    pub fn add(&self, a: u64, b: u64) -> u64 {
        csub(a + b, self.p)
    }

    /// `a - b mod p` for `a, b < p`.
    #[inline(always)]
    pub fn sub(&self, a: u64, b: u64) -> u64 {
        let d = a.wrapping_sub(b);
        d.wrapping_add(self.p & (((d as i64) >> 63) as u64))
    }

    /// `-a mod p` for `a < p`.
    #[inline(always)]
    pub fn neg(&self, a: u64) -> u64 {
        // (p - a) masked to 0 when a == 0, branch-free
        (self.p - a) & (((a | a.wrapping_neg()) as i64 >> 63) as u64)
    }

    /// Reduces any 128-bit value modulo `p` (Barrett with `floor(2^128/p)`).
    #[inline]
    pub fn reduce_u128(&self, x: u128) -> u64 {
        let x0 = x as u64;
        let x1 = (x >> 64) as u64;
        // high 128 bits of x * ratio, partial products' low carries dropped:
        // the quotient estimate is at most 3 below the true quotient.
        let c = ((x0 as u128 * self.ratio_lo as u128) >> 64) as u64;
        let t = x0 as u128 * self.ratio_hi as u128 + c as u128;
        let u = x1 as u128 * self.ratio_lo as u128 + (t as u64) as u128;
        let q = ((t >> 64) as u64)
            .wrapping_add((u >> 64) as u64)
            .wrapping_add(x1.wrapping_mul(self.ratio_hi));
        let mut r = x0.wrapping_sub(q.wrapping_mul(self.p));
        while r >= self.p {
            r -= self.p;
        }
        r
    }

    /// Reduces a 64-bit value modulo `p` (one-word Barrett).
    #[inline(always)]
    pub fn reduce(&self, x: u64) -> u64 {
        let q = ((x as u128 * self.barrett64 as u128) >> 64) as u64;
        csub(x.wrapping_sub(q.wrapping_mul(self.p)), self.p)
    }

    /// `x mod p` for any `x`, for a prime below `2^31`: `x = hi 2^32 + lo` with `hi 2^32` and
    /// `lo` reduced by 32-bit Shoup products, so it vectorizes ([`Self::reduce`] needs the high
    /// half of a 64 x 64-bit product, which SIMD units do not have). For the lazily summed
    /// products of narrow primes.
    #[inline(always)]
    pub fn reduce_narrow(&self, x: u64) -> u64 {
        debug_assert!(self.p >> NARROW_BITS == 0, "a narrow prime");
        let hi = self.mul_shoup32(x >> 32, self.r32, self.r32_shoup);
        let lo = self.mul_shoup32(x & 0xffff_ffff, 1, self.one_shoup);
        csub(hi + lo, self.p)
    }

    /// `a * b mod p`.
    #[inline]
    pub fn mul(&self, a: u64, b: u64) -> u64 {
        #[cfg(target_arch = "wasm32")]
        if (a | b) >> 32 == 0 {
            // one native 64-bit multiplication and remainder instead of emulated 128-bit ones
            return (a * b) % self.p;
        }
        self.reduce_u128(a as u128 * b as u128)
    }

    /// Shoup precomputation `floor(w * 2^64 / p)` for a constant `w < p`.
    #[inline]
    pub fn shoup(&self, w: u64) -> u64 {
        (((w as u128) << 64) / self.p as u128) as u64
    }

    /// `a * w mod p` with the Shoup constant `ws` of `w`, for any `a < 2^64`.
    #[inline(always)]
    pub fn mul_shoup(&self, a: u64, w: u64, ws: u64) -> u64 {
        let q = ((a as u128 * ws as u128) >> 64) as u64;
        csub(
            a.wrapping_mul(w).wrapping_sub(q.wrapping_mul(self.p)),
            self.p,
        )
    }

    /// `a^e mod p`.
    pub fn pow(&self, mut a: u64, mut e: u64) -> u64 {
        let mut r = 1 % self.p;
        a = self.reduce(a);
        while e > 0 {
            if e & 1 == 1 {
                r = self.mul(r, a);
            }
            a = self.mul(a, a);
            e >>= 1;
        }
        r
    }

    /// Inverse modulo the prime (`a` must be non-zero mod `p`).
    pub fn inv(&self, a: u64) -> u64 {
        self.pow(a, self.p - 2)
    }

    /// Maps a signed integer to `[0, p)`.
    #[inline]
    pub fn from_i64(&self, v: i64) -> u64 {
        // branch-free: used on secret key and error coefficients
        let r = self.reduce(v.unsigned_abs());
        let mask = (v >> 63) as u64;
        (r & !mask) | (self.neg(r) & mask)
    }

    /// `out[i] = v[i] mod p` in `[0, p)`, branch-free in the signs (secret key and error
    /// coefficients, scaled plaintext values); vectorized below `2^31`
    /// ([`Self::reduce_narrow`]).
    pub fn from_signed_vec(&self, out: &mut [u64], v: &[i64]) {
        if self.p >> NARROW_BITS == 0 {
            simd(
                #[inline(always)]
                || {
                    for (o, &x) in out.iter_mut().zip(v) {
                        let r = self.reduce_narrow(x.unsigned_abs());
                        let mask = (x >> 63) as u64;
                        *o = (r & !mask) | (self.neg(r) & mask);
                    }
                },
            )
        } else {
            for (o, &x) in out.iter_mut().zip(v) {
                *o = self.from_i64(x);
            }
        }
    }

    /// Maps a signed 128-bit integer to `[0, p)`.
    #[inline]
    pub fn from_i128(&self, v: i128) -> u64 {
        // branch-free in the sign: used on flooding noise
        let r = self.reduce_u128(v.unsigned_abs());
        let mask = ((v >> 127) as i64) as u64;
        (r & !mask) | (self.neg(r) & mask)
    }

    /// Forward negacyclic NTT (output in the plan's bit-reversed order).
    #[inline]
    pub fn ntt(&self, buf: &mut [u64]) {
        #[cfg(target_arch = "wasm32")]
        if let Some(plan) = &self.plan32 {
            return in_u32(buf, |b| plan.fwd(b));
        }
        self.plan.fwd(buf);
    }

    /// [`Modulus::ntt`] of values held in 32-bit words (the prime is below 2^32).
    pub fn ntt_words(&self, buf: &mut [u32]) {
        match &self.plan32 {
            Some(plan) => plan.fwd(buf),
            None => {
                let mut wide: Vec<u64> = buf.iter().map(|&x| u64::from(x)).collect();
                self.plan.fwd(&mut wide);
                for (x, w) in buf.iter_mut().zip(&wide) {
                    *x = *w as u32;
                }
            }
        }
    }

    /// Inverse negacyclic NTT, normalized.
    #[inline]
    pub fn intt(&self, buf: &mut [u64]) {
        #[cfg(target_arch = "wasm32")]
        if let Some(plan) = &self.plan32 {
            return in_u32(buf, |b| {
                plan.inv(b);
                plan.normalize(b);
            });
        }
        self.plan.inv(buf);
        self.plan.normalize(buf);
    }

    /// `buf *= w` for a constant `w < p` (SIMD).
    pub fn mul_const_vec(&self, buf: &mut [u64], w: u64) {
        if self.p >> NARROW_BITS == 0 {
            let ws = self.shoup32(w);
            simd(
                #[inline(always)]
                || {
                    for x in buf.iter_mut() {
                        *x = self.mul_shoup32(*x, w, ws);
                    }
                },
            );
        } else {
            let c = self.mul(w, self.reduce(self.plan.ntt_size() as u64));
            let mut cv = Scratch::take(buf.len());
            cv.fill(c);
            self.plan.mul_assign_normalize(buf, &cv);
        }
    }

    /// `out = (a - b) * w` for `a, b < p` and a constant `w < p` (SIMD; the last step of a
    /// division by a dropped prime).
    pub fn sub_mul_const<T: Word>(&self, out: &mut [u64], a: &[u64], b: &[T], w: u64) {
        if self.p >> NARROW_BITS == 0 {
            let (p, ws) = (self.p, self.shoup32(w));
            // a + p - b < 2p < 2^32: one narrow Shoup product, no separate subtraction pass
            simd(
                #[inline(always)]
                || {
                    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                        *o = self.mul_shoup32(x + p - y.narrow(), w, ws);
                    }
                },
            );
        } else {
            // a wide prime: the difference, then the 64-bit plan's vector product
            simd(
                #[inline(always)]
                || {
                    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
                        *o = self.sub(x, y.wide());
                    }
                },
            );
            self.mul_const_vec(out, w);
        }
    }

    /// `x = (x - b) * w` in place, as [`Self::sub_mul_const`] (a division by a dropped prime
    /// that overwrites its input, e.g. the key-switching sums, which nothing reads again).
    pub fn sub_mul_const_assign<T: Word>(&self, x: &mut [u64], b: &[T], w: u64) {
        if self.p >> NARROW_BITS == 0 {
            let (p, ws) = (self.p, self.shoup32(w));
            simd(
                #[inline(always)]
                || {
                    for (o, &y) in x.iter_mut().zip(b) {
                        *o = self.mul_shoup32(*o + p - y.narrow(), w, ws);
                    }
                },
            );
        } else {
            simd(
                #[inline(always)]
                || {
                    for (o, &y) in x.iter_mut().zip(b) {
                        *o = self.sub(*o, y.wide());
                    }
                },
            );
            self.mul_const_vec(x, w);
        }
    }

    /// Shoup constant `floor(w * 2^32 / p)` of a constant `w < p < 2^31`.
    #[inline]
    pub(crate) fn shoup32(&self, w: u64) -> u64 {
        (w << 32) / self.p
    }

    /// `a * w mod p` for `a < 2^32` and `w < p < 2^31`, with `ws = shoup32(w)`: only 32 x 32-bit
    /// products, so it vectorizes (`a * w - floor(a * ws / 2^32) * p` lies in `[0, 2p)`).
    #[inline(always)]
    pub(crate) fn mul_shoup32(&self, a: u64, w: u64, ws: u64) -> u64 {
        // every factor below 2^32, said so: one 32 x 32 -> 64-bit multiply per product
        let x = |v: u64| u64::from(v as u32);
        let (a, w, ws) = (x(a), x(w), x(ws));
        let q = (a * ws) >> 32;
        csub((a * w).wrapping_sub(q * x(self.p)), self.p)
    }

    /// `acc += a * b` pointwise (SIMD).
    #[inline]
    pub fn mul_acc_vec(&self, acc: &mut [u64], a: &[u64], b: &[u64]) {
        self.plan.mul_accumulate(acc, a, b);
    }
}

/// A reusable buffer for a hot path's temporaries (a decomposition, the copy a permutation
/// reads): taken from and given back to a small per-thread pool, so that a key switch does
/// not map, fault in and zero fresh pages for them each time. Its contents are whatever its
/// last user left (ciphertext data; never secrets): callers overwrite every value they read.
///
/// The pooled vector keeps every value it ever held (its length only grows, by zeros), and
/// the buffer views a prefix of it: a buffer shortened by one user is not zeroed again when
/// the next takes it longer.
pub struct Buffer<T: Word> {
    buf: Vec<T>,
    len: usize,
}

/// A reusable buffer of 64-bit words.
pub type Scratch = Buffer<u64>;

/// Buffers each thread keeps for reuse, per word width: a single-use key switch holds up to
/// eight at once (its input's coefficients, the base-conversion values of its digits, its two
/// sums and a division's conversion of each).
const SCRATCH_KEEP: usize = 8;

thread_local! {
    static SCRATCH: std::cell::RefCell<Vec<Vec<u64>>> = const { std::cell::RefCell::new(Vec::new()) };
    static SCRATCH32: std::cell::RefCell<Vec<Vec<u32>>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<T: Word> Buffer<T> {
    /// A buffer of `len` values, reusing one of this thread's when one is large enough.
    pub fn take(len: usize) -> Self {
        let mut buf = T::with_pool(|pool| {
            // the shortest buffer that fits, so that a long one stays for a long request;
            // else the longest (lengthened below)
            let fit = (0..pool.len())
                .filter(|&i| pool[i].len() >= len)
                .min_by_key(|&i| pool[i].len())
                .or_else(|| (0..pool.len()).max_by_key(|&i| pool[i].len()));
            fit.map(|i| pool.swap_remove(i))
        })
        .flatten()
        .unwrap_or_default();
        if buf.len() < len {
            if buf.capacity() < len {
                // a fresh allocation rather than a copy of values nobody reads
                buf = Vec::with_capacity(len);
            }
            buf.resize(len, T::default());
        }
        Self { buf, len }
    }

    /// Keeps the first `len` values (the buffer keeps the rest for its next user).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

impl<T: Word> std::ops::Deref for Buffer<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.buf[..self.len]
    }
}

impl<T: Word> std::ops::DerefMut for Buffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.buf[..self.len]
    }
}

impl<T: Word> Drop for Buffer<T> {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        // a thread that is exiting has no pool left: the buffer is simply freed
        T::with_pool(|pool| {
            if pool.len() < SCRATCH_KEEP {
                pool.push(buf);
            } else if let Some(shortest) = pool.iter_mut().min_by_key(|b| b.len()) {
                // the pool keeps the longest buffers: a short one is cheap to fault in again
                if shortest.len() < buf.len() {
                    *shortest = buf;
                }
            }
        });
    }
}

/// Runs `f` compiled for the best available x86 SIMD level (runtime
/// dispatch through `pulp`), so that simple loops auto-vectorize.
#[inline(always)]
pub fn simd<R>(f: impl FnOnce() -> R) -> R {
    pulp::Arch::new().dispatch(f)
}

/// `x - p` if `x >= p`, else `x`, branch-free (for `x < 2p <= 2^63`).
#[inline(always)]
pub fn csub(x: u64, p: u64) -> u64 {
    let y = x.wrapping_sub(p);
    y.wrapping_add(p & (((y as i64) >> 63) as u64))
}

/// A machine word that holds residues: `u64` for any prime, `u32` for a prime below 2^32 (half
/// the memory traffic, and the faster 32-bit NTT).
pub trait Word: Copy + Default + Send + Sync + 'static {
    /// `v` (below the prime, so it fits) in this width.
    fn of(v: u64) -> Self;
    /// Runs `f` on this thread's pool of [`Buffer`]s of this width (`None` once the thread's
    /// pools are gone, as it exits).
    fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<Self>>) -> R) -> Option<R>;
    /// The value, read as below 2^32 (the narrow kernels' 32 x 32 -> 64-bit products).
    fn narrow(self) -> u64;
    /// The value.
    fn wide(self) -> u64;
}

impl Word for u64 {
    #[inline(always)]
    fn of(v: u64) -> Self {
        v
    }
    fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<Self>>) -> R) -> Option<R> {
        SCRATCH.try_with(|pool| f(&mut pool.borrow_mut())).ok()
    }
    #[inline(always)]
    fn narrow(self) -> u64 {
        u64::from(self as u32)
    }
    #[inline(always)]
    fn wide(self) -> u64 {
        self
    }
}

impl Word for u32 {
    #[inline(always)]
    fn of(v: u64) -> Self {
        v as u32
    }
    fn with_pool<R>(f: impl FnOnce(&mut Vec<Vec<Self>>) -> R) -> Option<R> {
        SCRATCH32.try_with(|pool| f(&mut pool.borrow_mut())).ok()
    }
    #[inline(always)]
    fn narrow(self) -> u64 {
        u64::from(self)
    }
    #[inline(always)]
    fn wide(self) -> u64 {
        u64::from(self)
    }
}

/// Deterministic Miller-Rabin for 64-bit integers.
pub fn is_prime(n: u64) -> bool {
    if n < 2 {
        return false;
    }
    const SMALL: [u64; 12] = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37];
    for &s in &SMALL {
        if n.is_multiple_of(s) {
            return n == s;
        }
    }
    let mulmod = |a: u64, b: u64| ((a as u128 * b as u128) % n as u128) as u64;
    let powmod = |mut a: u64, mut e: u64| {
        let mut r = 1u64;
        while e > 0 {
            if e & 1 == 1 {
                r = mulmod(r, a);
            }
            a = mulmod(a, a);
            e >>= 1;
        }
        r
    };
    let mut d = n - 1;
    let mut s = 0;
    while d.is_multiple_of(2) {
        d /= 2;
        s += 1;
    }
    'outer: for &a in &SMALL {
        let mut x = powmod(a, d);
        if x == 1 || x == n - 1 {
            continue;
        }
        for _ in 1..s {
            x = mulmod(x, x);
            if x == n - 1 {
                continue 'outer;
            }
        }
        return false;
    }
    true
}

/// Generates distinct primes `p = 1 mod 2n` of the requested bit sizes, each
/// the largest such prime below `2^bits` not already taken (SEAL's choice).
/// Returns `None` when not enough primes exist.
pub fn generate_primes(bit_sizes: &[u32], n: usize) -> Option<Vec<u64>> {
    let m = 2 * n as u64;
    let mut out: Vec<u64> = Vec::with_capacity(bit_sizes.len());
    for &b in bit_sizes {
        if !(MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(&b) {
            return None;
        }
        let lo = 1u64 << (b - 1);
        let mut c = ((1u64 << b) - 1) / m * m + 1;
        loop {
            if c < lo || c < m {
                return None;
            }
            if c < (1u64 << b) && !out.contains(&c) && is_prime(c) {
                out.push(c);
                break;
            }
            c -= m;
        }
    }
    Some(out)
}

/// Runs `f` on a 32-bit copy of `buf` (values below a 32-bit prime) and writes the result back.
#[cfg(target_arch = "wasm32")]
fn in_u32(buf: &mut [u64], f: impl FnOnce(&mut [u32])) {
    let mut narrow: Vec<u32> = buf.iter().map(|&x| x as u32).collect();
    f(&mut narrow);
    for (wide, x) in buf.iter_mut().zip(&narrow) {
        *wide = u64::from(*x);
    }
}

/// Applies the forward NTT to every residue of an RNS polynomial.
pub fn ntt_all(data: &mut [u64], basis: &[&Modulus], n: usize) {
    data.par_chunks_exact_mut(n)
        .zip(basis.par_iter())
        .for_each(|(c, m)| m.ntt(c));
}

/// Applies the inverse NTT to every residue of an RNS polynomial.
pub fn intt_all(data: &mut [u64], basis: &[&Modulus], n: usize) {
    data.par_chunks_exact_mut(n)
        .zip(basis.par_iter())
        .for_each(|(c, m)| m.intt(c));
}

/// `a += b` residue-wise.
pub fn add_assign(a: &mut [u64], b: &[u64], basis: &[&Modulus], n: usize) {
    a.par_chunks_exact_mut(n)
        .zip(b.par_chunks_exact(n))
        .zip(basis.par_iter())
        .for_each(|((x, y), m)| {
            simd(
                #[inline(always)]
                || {
                    for (u, &v) in x.iter_mut().zip(y) {
                        *u = m.add(*u, v);
                    }
                },
            )
        });
}

/// `a -= b` residue-wise.
pub fn sub_assign(a: &mut [u64], b: &[u64], basis: &[&Modulus], n: usize) {
    a.par_chunks_exact_mut(n)
        .zip(b.par_chunks_exact(n))
        .zip(basis.par_iter())
        .for_each(|((x, y), m)| {
            simd(
                #[inline(always)]
                || {
                    for (u, &v) in x.iter_mut().zip(y) {
                        *u = m.sub(*u, v);
                    }
                },
            )
        });
}

/// `a = -a` residue-wise.
pub fn neg_assign(a: &mut [u64], basis: &[&Modulus], n: usize) {
    a.par_chunks_exact_mut(n)
        .zip(basis.par_iter())
        .for_each(|(x, m)| {
            simd(
                #[inline(always)]
                || {
                    for u in x.iter_mut() {
                        *u = m.neg(*u);
                    }
                },
            )
        });
}

/// `a *= b` pointwise (NTT domain).
pub fn mul_assign(a: &mut [u64], b: &[u64], basis: &[&Modulus], n: usize) {
    let out = mul(a, b, basis, n);
    a.copy_from_slice(&out);
}

/// `out = a * b` pointwise into a fresh vector (SIMD).
pub fn mul(a: &[u64], b: &[u64], basis: &[&Modulus], n: usize) -> Vec<u64> {
    let mut out = vec![0u64; a.len()];
    mul_acc(&mut out, a, b, basis, n);
    out
}

/// `acc += a * b` pointwise.
pub fn mul_acc(acc: &mut [u64], a: &[u64], b: &[u64], basis: &[&Modulus], n: usize) {
    acc.par_chunks_exact_mut(n)
        .zip(a.par_chunks_exact(n))
        .zip(b.par_chunks_exact(n))
        .zip(basis.par_iter())
        .for_each(|(((z, x), y), m)| m.mul_acc_vec(z, x, y));
}

/// `acc += a * c[i]` in residue `i` (the SIMD multiply-accumulate against the constant
/// broadcast once per residue; sequential, for callers that already run many of these in
/// parallel).
pub fn mul_scalar_acc(acc: &mut [u64], a: &[u64], c: &[u64], basis: &[&Modulus], n: usize) {
    let mut broadcast = vec![0u64; n];
    for ((z, x), (&w, m)) in acc
        .chunks_exact_mut(n)
        .zip(a.chunks_exact(n))
        .zip(c.iter().zip(basis))
    {
        broadcast.fill(w);
        m.mul_acc_vec(z, x, &broadcast);
    }
}

/// Primes below `2^NARROW_BITS` take the lazily reduced paths of the fused sums below: their
/// products (below `2^62`) are summed in 64-bit words and reduced once every
/// [`lazy_terms`] products.
pub const NARROW_BITS: u32 = 31;

/// How many products of values below `p` can be added to a value below `p` without leaving 64
/// bits: at least 3 below `2^31`, thousands for the 26-bit primes of the CNN presets.
pub fn lazy_terms(p: u64) -> usize {
    let sq = (p - 1) * (p - 1);
    usize::try_from((u64::MAX - p) / sq.max(1)).unwrap_or(usize::MAX)
}

/// `acc += sum_t a_t * w_t` for values below `2^31`, without reduction (the caller keeps the
/// sum within 64 bits).
#[inline(always)]
fn lazy_scaled(acc: &mut [u64], terms: &[(&[u64], u64)]) {
    let len = acc.len();
    let x = |v: u64| u64::from(v as u32);
    let mut quads = terms.chunks_exact(4);
    for q in &mut quads {
        let (a0, a1, a2, a3) = (
            &q[0].0[..len],
            &q[1].0[..len],
            &q[2].0[..len],
            &q[3].0[..len],
        );
        let (w0, w1, w2, w3) = (x(q[0].1), x(q[1].1), x(q[2].1), x(q[3].1));
        for c in 0..len {
            acc[c] += x(a0[c]) * w0 + x(a1[c]) * w1 + x(a2[c]) * w2 + x(a3[c]) * w3;
        }
    }
    for &(at, wt) in quads.remainder() {
        let (at, wt) = (&at[..len], x(wt));
        for c in 0..len {
            acc[c] += x(at[c]) * wt;
        }
    }
}

/// `acc += sum_t a_t * b_t` pointwise for values below `2^31`, as [`lazy_scaled`].
#[inline(always)]
fn lazy_products<const OVERWRITE: bool>(acc: &mut [u64], terms: &[(&[u64], &[u32])]) {
    let len = acc.len();
    let x = |v: u64| u64::from(v as u32);
    // with OVERWRITE the first product (pair) is written, not added: `acc` may hold anything
    let mut overwrite = OVERWRITE;
    let mut pairs = terms.chunks_exact(2);
    for p in &mut pairs {
        let (a0, a1) = (&p[0].0[..len], &p[1].0[..len]);
        let (b0, b1) = (&p[0].1[..len], &p[1].1[..len]);
        if overwrite {
            for c in 0..len {
                acc[c] = x(a0[c]) * u64::from(b0[c]) + x(a1[c]) * u64::from(b1[c]);
            }
            overwrite = false;
        } else {
            for c in 0..len {
                acc[c] += x(a0[c]) * u64::from(b0[c]) + x(a1[c]) * u64::from(b1[c]);
            }
        }
    }
    for &(at, bt) in pairs.remainder() {
        let (at, bt) = (&at[..len], &bt[..len]);
        if overwrite {
            for c in 0..len {
                acc[c] = x(at[c]) * u64::from(bt[c]);
            }
            overwrite = false;
        } else {
            for c in 0..len {
                acc[c] += x(at[c]) * u64::from(bt[c]);
            }
        }
    }
}

/// Fills `out` with values `off..off + out.len()` of a vector held as runs of `run` equal
/// values (a power of two), one value per run in `runs`.
pub fn expand_runs<T: Copy>(out: &mut [T], runs: &[T], run: usize, off: usize) {
    if run >= out.len() {
        out.fill(runs[off / run]);
    } else {
        for (dst, &x) in out.chunks_mut(run).zip(&runs[off / run..]) {
            dst.fill(x);
        }
    }
}

/// [`sum_of_products_narrow`] with every `b_t` held as runs of `run` equal values, one value per
/// run (`run` divides `out.len()`; 1: held whole): the residues of the products with the
/// expanded `b_t`, without expanding them.
pub fn sum_of_products_narrow_runs(
    out: &mut [u64],
    terms: &[(&[u64], &[u32])],
    run: usize,
    m: &Modulus,
) {
    if terms.is_empty() || run == 0 {
        out.fill(0);
        return;
    }
    lazily(
        out,
        terms.len(),
        m,
        #[inline(always)]
        |acc, r| match (r.start == 0, run) {
            (true, 1) => lazy_products::<true>(acc, &terms[r]),
            (false, 1) => lazy_products::<false>(acc, &terms[r]),
            (true, _) => lazy_products_runs::<true>(acc, &terms[r], run),
            (false, _) => lazy_products_runs::<false>(acc, &terms[r], run),
        },
    );
}

/// `acc += sum_t a_t * b_t` pointwise for values below `2^31`, with `b_t` held as runs of `run`
/// equal values (see [`lazy_products`]).
#[inline(always)]
fn lazy_products_runs<const OVERWRITE: bool>(
    acc: &mut [u64],
    terms: &[(&[u64], &[u32])],
    run: usize,
) {
    let len = acc.len();
    let groups = len / run;
    let x = |v: u64| u64::from(v as u32);
    // with OVERWRITE the first product (pair) is written, not added: `acc` may hold anything
    let mut overwrite = OVERWRITE;
    let mut pairs = terms.chunks_exact(2);
    for p in &mut pairs {
        let (a0, a1) = (&p[0].0[..len], &p[1].0[..len]);
        let (b0, b1) = (&p[0].1[..groups], &p[1].1[..groups]);
        for g in 0..groups {
            let (w0, w1) = (u64::from(b0[g]), u64::from(b1[g]));
            let (o, v0, v1) = (
                &mut acc[g * run..][..run],
                &a0[g * run..][..run],
                &a1[g * run..][..run],
            );
            if overwrite {
                for c in 0..run {
                    o[c] = x(v0[c]) * w0 + x(v1[c]) * w1;
                }
            } else {
                for c in 0..run {
                    o[c] += x(v0[c]) * w0 + x(v1[c]) * w1;
                }
            }
        }
        overwrite = false;
    }
    for &(at, bt) in pairs.remainder() {
        let (at, bt) = (&at[..len], &bt[..groups]);
        for g in 0..groups {
            let w = u64::from(bt[g]);
            let (o, v) = (&mut acc[g * run..][..run], &at[g * run..][..run]);
            if overwrite {
                for c in 0..run {
                    o[c] = x(v[c]) * w;
                }
            } else {
                for c in 0..run {
                    o[c] += x(v[c]) * w;
                }
            }
        }
        overwrite = false;
    }
}

/// `out = sum_t a_t * b_t` pointwise modulo `m` (below `2^31`), for slices of one residue with
/// the `b_t` in 32-bit words: one pass, no temporary per term, products summed unreduced
/// [`lazy_terms`] at a time; the same residues as summing reduced products one by one. What
/// `out` held is not read (the first products are written over it).
pub fn sum_of_products_narrow(out: &mut [u64], terms: &[(&[u64], &[u32])], m: &Modulus) {
    sum_of_products_narrow_runs(out, terms, 1, m)
}

/// `out = sum_t a_t * b_t` pointwise modulo `m`, for slices of one residue of any prime.
pub fn sum_of_products(out: &mut [u64], terms: &[(&[u64], &[u64])], m: &Modulus) {
    out.fill(0);
    for (a, b) in terms {
        m.mul_acc_vec(out, a, b);
    }
}

/// `out += sum_t w_t * a_t` modulo `m` for constants `w_t < p` and `out` reduced, for slices
/// of one residue: one pass, no temporary per term, the same residues as adding reduced
/// products one by one. Below `2^31`, products are summed unreduced [`lazy_terms`] at a time
/// (a reduced `out` is what every run after the first starts from).
pub fn add_sum_of_scaled(out: &mut [u64], terms: &[(&[u64], u64)], m: &Modulus) {
    if m.value() >> NARROW_BITS == 0 {
        lazily(
            out,
            terms.len(),
            m,
            #[inline(always)]
            |acc, r| lazy_scaled(acc, &terms[r]),
        );
    } else {
        for &(a, w) in terms {
            let ws = m.shoup(w);
            for (s, &v) in out.iter_mut().zip(a) {
                *s = m.add(*s, m.mul_shoup(v, w, ws));
            }
        }
    }
}

/// Runs `add` over the terms [`lazy_terms`] at a time, reducing `out` after each run (a prime
/// below `2^31`).
#[inline(always)]
fn lazily(
    out: &mut [u64],
    count: usize,
    m: &Modulus,
    add: impl Fn(&mut [u64], std::ops::Range<usize>),
) {
    let per = lazy_terms(m.value());
    simd(
        #[inline(always)]
        || {
            let mut start = 0;
            while start < count {
                let end = (start + per).min(count);
                add(out, start..end);
                for x in out.iter_mut() {
                    *x = m.reduce_narrow(*x);
                }
                start = end;
            }
        },
    );
}

/// Multiplies residue `i` by the constant `c[i]`.
pub fn mul_scalar_assign(a: &mut [u64], c: &[u64], basis: &[&Modulus], n: usize) {
    a.par_chunks_exact_mut(n)
        .zip(c.par_iter())
        .zip(basis.par_iter())
        .for_each(|((x, &w), m)| m.mul_const_vec(x, w));
}

/// An RNS polynomial of `n` coefficients over `basis`: `residue(prime, out)` writes the residues
/// modulo each prime, the primes in parallel.
fn to_residues(
    n: usize,
    basis: &[&Modulus],
    residue: impl Fn(&Modulus, &mut [u64]) + Sync,
) -> Vec<u64> {
    let mut out = vec![0u64; n * basis.len()];
    out.par_chunks_exact_mut(n)
        .zip(basis.par_iter())
        .for_each(|(x, m)| residue(m, x));
    out
}

/// Writes small signed coefficients into every residue of an RNS polynomial.
pub fn from_signed(coeffs: &[i64], basis: &[&Modulus]) -> Vec<u64> {
    to_residues(coeffs.len(), basis, |m, x| m.from_signed_vec(x, coeffs))
}

/// Centered lift: for `src` with values in `[0, from)`, writes the residues
/// modulo `to` of the representatives in `(-from/2, from/2]`.
pub fn lift_centered<T: Word>(src: &[u64], from: &Modulus, to: &Modulus, out: &mut [T]) {
    let (p, q) = (from.value(), to.value());
    debug_assert!(
        T::of(q - 1).wide() == q - 1,
        "the word holds the target's residues"
    );
    let half = p / 2;
    // all ones for the negative half (v > p / 2)
    #[inline(always)]
    fn negative(v: u64, half: u64) -> u64 {
        ((half.wrapping_sub(v) as i64) >> 63) as u64
    }
    if p <= q {
        // v < p <= q: no reduction; v - p + q for the negative half
        let d = q - p;
        simd(
            #[inline(always)]
            || {
                for (o, &v) in out.iter_mut().zip(src) {
                    *o = T::of(v + (d & negative(v, half)));
                }
            },
        )
    } else if p < 2 * q {
        let pm = p - q;
        simd(
            #[inline(always)]
            || {
                for (o, &v) in out.iter_mut().zip(src) {
                    *o = T::of(to.sub(csub(v, q), pm & negative(v, half)));
                }
            },
        )
    } else if p >> 32 == 0 && q >> NARROW_BITS == 0 {
        // v < 2^32 reduced by a narrow Barrett step (32-bit products: it vectorizes)
        let (pm, b) = (to.reduce(p), to.one_shoup);
        simd(
            #[inline(always)]
            || {
                for (o, &v) in out.iter_mut().zip(src) {
                    *o = T::of(to.sub(to.mul_shoup32(v, 1, b), pm & negative(v, half)));
                }
            },
        )
    } else if q >> NARROW_BITS == 0 {
        // a wider source into a prime below 2^31: the reduction that vectorizes
        let pm = to.reduce(p);
        simd(
            #[inline(always)]
            || {
                for (o, &v) in out.iter_mut().zip(src) {
                    *o = T::of(to.sub(to.reduce_narrow(v), pm & negative(v, half)));
                }
            },
        )
    } else {
        let pm = to.reduce(p);
        simd(
            #[inline(always)]
            || {
                for (o, &v) in out.iter_mut().zip(src) {
                    *o = T::of(to.sub(to.reduce(v), pm & negative(v, half)));
                }
            },
        )
    }
}

/// Uniform ternary coefficients in `{-1, 0, 1}`.
pub fn sample_ternary<R: RngCore + CryptoRng + ?Sized>(rng: &mut R, n: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        rng.fill_bytes(&mut buf);
        for &b in &buf {
            // 255 = 3 * 85: reject 255 for an exactly uniform choice.
            if b < 255 && out.len() < n {
                out.push(i64::from(b % 3) - 1);
            }
        }
    }
    // a plain loop of stores to a dead buffer may be optimized away
    zeroize::Zeroize::zeroize(&mut buf);
    out
}

/// Centered binomial error with parameter 21 (standard deviation ~3.24,
/// bounded by 21), the usual RLWE error distribution.
///
/// Each coefficient takes 42 bits of one 64-bit little-endian word of `rng`'s stream, read 64
/// words per call (with `OsRng`, one system call per 64 coefficients instead of one each); the
/// byte buffer is zeroized.
pub fn sample_error<R: RngCore + CryptoRng + ?Sized>(rng: &mut R, n: usize) -> Vec<i64> {
    const WORDS: usize = 64;
    let mut out = Vec::with_capacity(n);
    let mut buf = [0u8; 8 * WORDS];
    while out.len() < n {
        let words = (n - out.len()).min(WORDS);
        rng.fill_bytes(&mut buf[..8 * words]);
        out.extend(buf[..8 * words].chunks_exact(8).map(|b| {
            let w = u64::from_le_bytes(b.try_into().expect("8 bytes"));
            let a = (w & 0x1f_ffff).count_ones() as i64;
            let b = ((w >> 21) & 0x1f_ffff).count_ones() as i64;
            a - b
        }));
    }
    zeroize::Zeroize::zeroize(&mut buf);
    out
}

/// Largest flooding width supported by [`sample_flood`]: coefficients are
/// drawn in `[-2^bits, 2^bits]` as `i128`, so `bits <= 126`.
pub const MAX_FLOOD_BITS: u32 = 126;

/// Exactly uniform integer coefficients in `[-2^bits, 2^bits]` (noise
/// flooding), `bits <= MAX_FLOOD_BITS`, as `i128` so that widths beyond 64
/// bits are available.
///
/// Each coefficient is a `(bits + 2)`-bit draw from `rng`, rejected unless it
/// is below `2^(bits+1) + 1` (acceptance probability above 1/2; the number
/// of rejections does not depend on the accepted values), then centered.
/// The random byte buffer is zeroized; the caller should hold the result in
/// `Zeroizing` and map it to RNS with [`from_signed_wide`].
///
/// # Panics
///
/// If `bits > MAX_FLOOD_BITS`.
pub fn sample_flood<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    n: usize,
    bits: u32,
) -> Vec<i128> {
    assert!(
        bits <= MAX_FLOOD_BITS,
        "flooding width 2^{bits} above 2^{MAX_FLOOD_BITS}"
    );
    // bits + 2 <= 128 random bits per draw, in whole bytes
    let width = bits as usize + 2;
    let bytes = width.div_ceil(8);
    let mask = u128::MAX >> (128 - width);
    let range = (1u128 << (bits + 1)) + 1;
    let half = 1u128 << bits;
    let mut out = Vec::with_capacity(n);
    // one RNG call per 64 draws (OsRng: one system call)
    let mut buf = [0u8; 64 * 16];
    let mut word = [0u8; 16];
    'fill: while out.len() < n {
        rng.fill_bytes(&mut buf[..64 * bytes]);
        for chunk in buf[..64 * bytes].chunks_exact(bytes) {
            word[..bytes].copy_from_slice(chunk);
            let v = u128::from_le_bytes(word) & mask;
            if v < range {
                // v - 2^bits in [-2^bits, 2^bits], two's complement
                out.push(v.wrapping_sub(half) as i128);
                if out.len() == n {
                    break 'fill;
                }
            }
        }
    }
    zeroize::Zeroize::zeroize(&mut buf);
    zeroize::Zeroize::zeroize(&mut word);
    out
}

/// Maps signed 128-bit coefficients to an RNS polynomial (coefficient form),
/// branch-free in the values (see [`Modulus::from_i128`]).
pub fn from_signed_wide(coeffs: &[i128], basis: &[&Modulus]) -> Vec<u64> {
    to_residues(coeffs.len(), basis, |m, x| {
        for (u, &v) in x.iter_mut().zip(coeffs) {
            *u = m.from_i128(v);
        }
    })
}

/// Expands a 32-byte seed into a uniform RNS polynomial (valid as NTT-domain
/// values) over `basis`, prime after prime, with ChaCha20 on stream `stream`.
/// The first residues do not depend on later primes, so a prefix of the basis
/// regenerates a prefix of the polynomial.
pub fn expand_uniform(seed: &[u8; 32], stream: u64, basis: &[&Modulus], n: usize) -> Vec<u64> {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    rng.set_stream(stream);
    let mut out = Vec::with_capacity(n * basis.len());
    for m in basis {
        let p = m.value();
        let bits = m.bits();
        let mut k = 0;
        if bits <= 32 {
            // 32-bit draws for primes below 2^32: half the keystream
            let mask = if bits == 32 {
                u32::MAX
            } else {
                (1u32 << bits) - 1
            };
            while k < n {
                let v = (rng.next_u32() & mask) as u64;
                if v < p {
                    out.push(v);
                    k += 1;
                }
            }
        } else {
            let mask = if bits >= 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            while k < n {
                let v = rng.next_u64() & mask;
                if v < p {
                    out.push(v);
                    k += 1;
                }
            }
        }
    }
    out
}

/// Computes the NTT-domain permutation of the automorphism `X -> X^g` from
/// the exponent table of the NTT ordering.
pub fn automorphism_permutation(exp_of_pos: &[u32], pos_of_exp: &[u32], g: u64) -> Vec<u32> {
    let two_n = pos_of_exp.len() as u64;
    exp_of_pos
        .iter()
        .map(|&e| pos_of_exp[((e as u64 * g) % two_n) as usize])
        .collect()
}

/// Finds, for the NTT ordering of `m`, which power of a primitive `2n`-th root
/// is evaluated at each output position. Returns `(exp_of_pos, pos_of_exp)`,
/// `pos_of_exp` of length `2n` (entries at even exponents are unused).
pub fn ntt_exponents(m: &Modulus, n: usize) -> Option<(Vec<u32>, Vec<u32>)> {
    let mut x = vec![0u64; n];
    x[1] = 1;
    m.ntt(&mut x);
    let root = x[0];
    let mut table = std::collections::HashMap::with_capacity(2 * n);
    let mut pw = 1u64;
    for e in 0..(2 * n) as u32 {
        table.insert(pw, e);
        pw = m.mul(pw, root);
    }
    let mut exp_of_pos = Vec::with_capacity(n);
    let mut pos_of_exp = vec![u32::MAX; 2 * n];
    for (i, v) in x.iter().enumerate() {
        let e = *table.get(v)?;
        if e % 2 == 0 || pos_of_exp[e as usize] != u32::MAX {
            return None;
        }
        exp_of_pos.push(e);
        pos_of_exp[e as usize] = i as u32;
    }
    Some((exp_of_pos, pos_of_exp))
}

/// Little-endian bit writer used by the serializer.
#[derive(Default)]
pub struct BitWriter {
    out: Vec<u8>,
    acc: u128,
    nbits: u32,
}

impl BitWriter {
    /// Wraps an output buffer (bits are appended after its bytes).
    pub fn new(out: Vec<u8>) -> Self {
        Self {
            out,
            acc: 0,
            nbits: 0,
        }
    }

    /// Appends the low `bits` bits of `v` (`bits <= 64`).
    #[inline]
    pub fn write(&mut self, v: u64, bits: u32) {
        let v = v & low_mask(bits);
        // fewer than 64 bits wait in `acc`, so this fits in its 128
        self.acc |= (v as u128) << self.nbits;
        self.nbits += bits;
        if self.nbits >= 64 {
            self.out.extend_from_slice(&(self.acc as u64).to_le_bytes());
            self.acc >>= 64;
            self.nbits -= 64;
        }
    }

    /// Flushes the waiting bits (whole bytes, the last one padded with zeros) and returns
    /// the buffer.
    pub fn finish(self) -> Vec<u8> {
        let mut out = self.out;
        let bytes = self.nbits.div_ceil(8) as usize;
        out.extend_from_slice(&(self.acc as u64).to_le_bytes()[..bytes]);
        out
    }
}

/// Little-endian bit reader; `None` on truncation.
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    acc: u128,
    nbits: u32,
}

impl<'a> BitReader<'a> {
    /// Reads bits from `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            acc: 0,
            nbits: 0,
        }
    }

    /// Reads `bits` bits (`bits <= 64`).
    #[inline]
    pub fn read(&mut self, bits: u32) -> Option<u64> {
        if self.nbits < bits {
            // eight bytes at once where there are eight (fewer than 64 bits wait in `acc`)
            if let Some(word) = self.data.get(self.pos..self.pos + 8) {
                let word = u64::from_le_bytes(word.try_into().expect("eight bytes"));
                self.acc |= (word as u128) << self.nbits;
                self.pos += 8;
                self.nbits += 64;
            }
            while self.nbits < bits {
                let b = *self.data.get(self.pos)?;
                self.pos += 1;
                self.acc |= (b as u128) << self.nbits;
                self.nbits += 8;
            }
        }
        let v = (self.acc as u64) & low_mask(bits);
        self.acc >>= bits;
        self.nbits -= bits;
        Some(v)
    }

    /// Number of bytes consumed so far, a partly read one included (those read ahead and
    /// waiting whole are not).
    pub fn bytes_consumed(&self) -> usize {
        self.pos - (self.nbits / 8) as usize
    }
}

/// Number of bytes needed to pack `count` values of `bits` bits.
pub fn packed_len(count: usize, bits: u32) -> usize {
    (count * bits as usize).div_ceil(8)
}

/// The low `bits` bits set (`bits <= 64`).
fn low_mask(bits: u32) -> u64 {
    match bits {
        0 => 0,
        b => u64::MAX >> (64 - b.min(64)),
    }
}

/// Appends the low `bits` bits of every value (`1 <= bits <= 64`), packed as [`BitWriter`]
/// packs them (little-endian, the last byte padded with zeros), a 64-bit word at a time.
pub fn pack(out: &mut Vec<u8>, values: &[u64], bits: u32) {
    debug_assert!((1..=64).contains(&bits));
    let start = out.len();
    out.resize(start + packed_len(values.len(), bits), 0);
    let mask = low_mask(bits);
    let mut words = out[start..].chunks_exact_mut(8);
    // `acc` holds `filled` bits (< 64) waiting for the next word
    let (mut acc, mut filled) = (0u64, 0u32);
    for &v in values {
        let v = v & mask;
        acc |= v << filled;
        filled += bits;
        if filled >= 64 {
            if let Some(word) = words.next() {
                word.copy_from_slice(&acc.to_le_bytes());
            }
            filled -= 64;
            // the bits of `v` that did not fit (none when it ended the word exactly)
            acc = if filled == 0 { 0 } else { v >> (bits - filled) };
        }
    }
    // the last bits: a whole word's bytes when 57 to 63 of them wait, else a few bytes
    let rest = acc.to_le_bytes();
    match words.next() {
        Some(word) => word.copy_from_slice(&rest),
        None => {
            let tail = words.into_remainder();
            let len = tail.len();
            tail.copy_from_slice(&rest[..len]);
        }
    }
}

/// Reads `out.len()` values of `bits` bits (`1 <= bits <= 64`) packed as [`pack`] packs them
/// from the start of `data`; `None` when `data` is too short. Each value is one unaligned
/// 64-bit load and a shift where eight bytes remain (`bits <= 57`).
pub fn unpack(data: &[u8], bits: u32, out: &mut [u64]) -> Option<()> {
    debug_assert!((1..=64).contains(&bits));
    if data.len() < packed_len(out.len(), bits) {
        return None;
    }
    let mask = low_mask(bits);
    let width = bits as usize;
    // values whose 8-byte window lies inside `data`
    let fast = if bits <= 57 && data.len() >= 8 {
        ((data.len() - 8) * 8 / width + 1).min(out.len())
    } else {
        0
    };
    for (i, o) in out[..fast].iter_mut().enumerate() {
        let bit = i * width;
        let at = bit / 8;
        let word = u64::from_le_bytes(data[at..at + 8].try_into().expect("eight bytes"));
        *o = (word >> (bit % 8)) & mask;
    }
    let skip = fast * width;
    let mut r = BitReader::new(&data[skip / 8..]);
    // the rest bit by bit, from inside the byte where the fast part stopped
    if !skip.is_multiple_of(8) {
        r.read((skip % 8) as u32)?;
    }
    for o in &mut out[fast..] {
        *o = r.read(bits)?;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// `pack` and `unpack` write and read exactly what the bit-at-a-time writer and reader do,
    /// for every width, counts around word and byte boundaries, and values wider than the
    /// width (their high bits dropped); a short input is refused, never read past.
    #[test]
    fn packing_a_word_at_a_time_matches_the_bit_writer_and_reader() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for bits in 1..=64u32 {
            for count in [0usize, 1, 2, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200] {
                let values: Vec<u64> = (0..count).map(|_| rng.gen()).collect();
                let mut w = BitWriter::new(vec![0xAB]);
                values.iter().for_each(|&v| w.write(v, bits));
                let expected = w.finish();
                let mut packed = vec![0xAB];
                pack(&mut packed, &values, bits);
                assert_eq!(packed, expected, "bits {bits} count {count}");
                assert_eq!(packed.len(), 1 + packed_len(count, bits));
                let mask = low_mask(bits);
                let mut back = vec![u64::MAX; count];
                unpack(&packed[1..], bits, &mut back).expect("complete input");
                let mut r = BitReader::new(&packed[1..]);
                for (i, (&b, &v)) in back.iter().zip(&values).enumerate() {
                    assert_eq!(b, v & mask, "bits {bits} count {count} value {i}");
                    assert_eq!(Some(b), r.read(bits));
                }
                if count > 0 {
                    let short = &packed[1..packed.len() - 1];
                    assert_eq!(
                        unpack(short, bits, &mut back),
                        None,
                        "bits {bits} count {count}"
                    );
                }
            }
        }
    }

    /// The WebAssembly build transforms primes below 2^32 with tfhe-ntt's 32-bit plan: it must
    /// give exactly the 64-bit plan's outputs (same roots, same order, fully reduced), or a
    /// ciphertext made in a browser would not be the one the CLI makes.
    #[test]
    fn the_32_bit_plan_agrees_with_the_64_bit_one() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut checked = 0;
        for preset in &crate::Preset::ALL {
            let params = crate::Parameters::preset(*preset).expect("preset");
            let n = params.n();
            for m in &params.moduli {
                let Ok(p32) = u32::try_from(m.value()) else {
                    continue;
                };
                let plan = tfhe_ntt::prime32::Plan::try_new(n, p32).expect("32-bit plan");
                let wide: Vec<u64> = (0..n).map(|_| rng.gen_range(0..m.value())).collect();
                let mut a = wide.clone();
                let mut b: Vec<u32> = wide.iter().map(|&x| x as u32).collect();
                m.ntt(&mut a);
                plan.fwd(&mut b);
                assert!(
                    a.iter().zip(&b).all(|(x, y)| *x == u64::from(*y)),
                    "p = {p32}"
                );
                m.intt(&mut a);
                plan.inv(&mut b);
                plan.normalize(&mut b);
                assert_eq!(a, wide);
                assert!(
                    a.iter().zip(&b).all(|(x, y)| *x == u64::from(*y)),
                    "p = {p32}"
                );
                checked += 1;
            }
        }
        assert!(checked > 10, "{checked} primes below 2^32 checked");
    }

    #[test]
    fn barrett_matches_reference() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        for bits in [17u32, 26, 31, 40, 50, 55, 61] {
            let p = generate_primes(&[bits], 1024).expect("prime")[0];
            let m = Modulus::new(p, 1024).expect("modulus");
            for _ in 0..10_000 {
                let x: u128 = rng.gen();
                assert_eq!(m.reduce_u128(x), (x % p as u128) as u64);
                let a = rng.gen_range(0..p);
                let b = rng.gen_range(0..p);
                assert_eq!(m.mul(a, b), ((a as u128 * b as u128) % p as u128) as u64);
                let ws = m.shoup(b);
                let c: u64 = rng.gen();
                assert_eq!(
                    m.mul_shoup(c, b, ws),
                    ((c as u128 * b as u128) % p as u128) as u64
                );
            }
            assert_eq!(m.reduce_u128(u128::MAX), (u128::MAX % p as u128) as u64);
        }
    }

    #[test]
    fn from_i64_matches_reference() {
        for bits in [17u32, 31, 50, 61] {
            let p = generate_primes(&[bits], 16).expect("prime")[0];
            let m = Modulus::new(p, 16).expect("modulus");
            for v in [
                0i64,
                1,
                -1,
                21,
                -21,
                p as i64 - 1,
                -(p as i64),
                i64::MAX,
                i64::MIN,
                i64::MIN + 1,
            ] {
                let expect = (v as i128).rem_euclid(p as i128) as u64;
                assert_eq!(m.from_i64(v), expect, "{v} mod {p}");
            }
        }
    }

    #[test]
    fn from_i128_matches_reference() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for bits in [17u32, 31, 50, 61] {
            let p = generate_primes(&[bits], 16).expect("prime")[0];
            let m = Modulus::new(p, 16).expect("modulus");
            let mut vals = vec![
                0i128,
                1,
                -1,
                p as i128,
                -(p as i128),
                1 << 100,
                -(1 << 100),
                (1 << 126) + 1,
                -(1 << 126) - 1,
                i128::MAX,
                i128::MIN,
                i128::MIN + 1,
            ];
            vals.extend((0..1000).map(|_| rng.gen::<i128>() >> rng.gen_range(0..127)));
            for v in vals {
                let expect = v.rem_euclid(p as i128) as u64;
                assert_eq!(m.from_i128(v), expect, "{v} mod {p}");
            }
        }
    }

    #[test]
    fn buffers_come_back_as_left_and_are_zeroed_only_where_never_written() {
        // a thread of its own: a fresh pool
        std::thread::spawn(|| {
            let mut a = Scratch::take(300);
            assert_eq!(&a[..], &[0; 300][..]);
            a.fill(3);
            a.truncate(100);
            assert_eq!(a.len(), 100);
            drop(a);
            // the shortened buffer is taken longer again: its values are still there
            let b = Scratch::take(250);
            assert!(b.iter().all(|&x| x == 3));
            // a second buffer while the first is out is new, and longer than any kept one
            let c = Scratch::take(400);
            assert_eq!(&c[..], &[0; 400][..]);
            drop(b);
            drop(c);
            // the shortest that fits is taken; when none fits, a fresh one (the longest kept
            // has no room to grow into)
            assert!(Scratch::take(200).iter().all(|&x| x == 3));
            let mut d = Scratch::take(500);
            assert!(d.iter().all(|&x| x == 0));
            d.fill(9);
            drop(d);
            assert!(Scratch::take(450).iter().all(|&x| x == 9));
        })
        .join()
        .expect("buffer thread");
    }

    #[test]
    fn error_is_the_centered_binomial_of_each_stream_word() {
        // lengths across the 64-word reads: a partial last read, exact multiples, one word
        for n in [1, 63, 64, 65, 200, 8192] {
            let e = sample_error(&mut rand_chacha::ChaCha20Rng::seed_from_u64(11), n);
            let mut bytes = vec![0u8; 8 * n];
            rand_chacha::ChaCha20Rng::seed_from_u64(11).fill_bytes(&mut bytes);
            let expect: Vec<i64> = bytes
                .chunks_exact(8)
                .map(|b| {
                    let w = u64::from_le_bytes(b.try_into().expect("8"));
                    let bits = |v: u64| (v & ((1 << 21) - 1)).count_ones() as i64;
                    bits(w) - bits(w >> 21)
                })
                .collect();
            assert_eq!(e, expect, "n = {n}");
        }
        // and the distribution: within [-21, 21], variance 21 / 2
        let e = sample_error(&mut rand_chacha::ChaCha20Rng::seed_from_u64(12), 1 << 16);
        assert!(e.iter().all(|v| v.abs() <= 21));
        let var = e.iter().map(|&v| (v * v) as f64).sum::<f64>() / e.len() as f64;
        assert!((var - 10.5).abs() < 0.3, "variance {var}");
    }

    #[test]
    fn signed_values_map_to_their_residues() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        let mut v: Vec<i64> = vec![0, 1, -1, i64::MAX, i64::MIN, i64::MIN + 1];
        v.extend((0..200).map(|_| rng.gen::<i64>()));
        v.extend((0..200).map(|_| rng.gen_range(-100..100)));
        // narrow (vectorized) and wide primes
        for bits in [20u32, 26, 30, 31, 40, 61] {
            let p = generate_primes(&[bits], 64).expect("prime")[0];
            let m = Modulus::new(p, 64).expect("modulus");
            let mut out = vec![7u64; v.len()];
            m.from_signed_vec(&mut out, &v);
            for (o, &x) in out.iter().zip(&v) {
                assert_eq!(
                    *o,
                    i128::from(x).rem_euclid(i128::from(p)) as u64,
                    "{x} mod {p}"
                );
            }
        }
    }

    #[test]
    fn fused_narrow_sums_are_exact_whatever_the_output_held() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(14);
        let len = 64;
        // a 31-bit prime sums 3 products between reductions, a 26-bit one all of them
        for bits in [26u32, 31] {
            let p = generate_primes(&[bits], len).expect("prime")[0];
            let m = Modulus::new(p, len).expect("modulus");
            for count in [1usize, 2, 3, 4, 7, 8] {
                let a: Vec<Vec<u64>> = (0..count)
                    .map(|_| (0..len).map(|_| rng.gen_range(0..p)).collect())
                    .collect();
                let b: Vec<Vec<u32>> = (0..count)
                    .map(|_| (0..len).map(|_| rng.gen_range(0..p) as u32).collect())
                    .collect();
                let terms: Vec<(&[u64], &[u32])> =
                    a.iter().zip(&b).map(|(x, y)| (&x[..], &y[..])).collect();
                let expect: Vec<u64> = (0..len)
                    .map(|c| {
                        (0..count).fold(0u128, |s, t| {
                            (s + u128::from(a[t][c]) * u128::from(b[t][c])) % u128::from(p)
                        }) as u64
                    })
                    .collect();
                let mut out: Vec<u64> = (0..len).map(|_| rng.gen()).collect();
                sum_of_products_narrow(&mut out, &terms, &m);
                assert_eq!(out, expect, "{count} terms mod a {bits}-bit prime");
            }
            // no terms: zero
            let mut out = vec![5u64; len];
            sum_of_products_narrow(&mut out, &[], &m);
            assert_eq!(out, vec![0; len]);
        }
    }

    /// Products with multipliers held as runs of equal values give the exact products with the
    /// multipliers written out, for every run length up to the whole slice, every term
    /// count around the pairs and the unreduced limit of a 31-bit prime; expanding the runs
    /// gives the written-out values.
    #[test]
    fn products_from_runs_equal_products_of_the_expanded_values() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(23);
        let len = 256;
        for bits in [26u32, 31] {
            let p = generate_primes(&[bits], len).expect("prime")[0];
            let m = Modulus::new(p, len).expect("modulus");
            for run in [1usize, 2, 8, 16, 64, 256] {
                for count in [1usize, 2, 3, 5, 8, 9] {
                    let a: Vec<Vec<u64>> = (0..count)
                        .map(|_| (0..len).map(|_| rng.gen_range(0..p)).collect())
                        .collect();
                    let runs: Vec<Vec<u32>> = (0..count)
                        .map(|_| (0..len / run).map(|_| rng.gen_range(0..p) as u32).collect())
                        .collect();
                    let expanded: Vec<Vec<u32>> = runs
                        .iter()
                        .map(|r| {
                            let mut e = vec![0u32; len];
                            for (k, block) in e.chunks_mut(64).enumerate() {
                                expand_runs(block, r, run, k * 64);
                            }
                            e
                        })
                        .collect();
                    for (e, r) in expanded.iter().zip(&runs) {
                        assert!(e.iter().enumerate().all(|(c, &v)| v == r[c / run]));
                    }
                    let whole: Vec<(&[u64], &[u32])> = a
                        .iter()
                        .zip(&expanded)
                        .map(|(x, y)| (&x[..], &y[..]))
                        .collect();
                    let held: Vec<(&[u64], &[u32])> =
                        a.iter().zip(&runs).map(|(x, y)| (&x[..], &y[..])).collect();
                    // exact arithmetic, independent of both kernels
                    let expect: Vec<u64> = (0..len)
                        .map(|c| {
                            (0..count).fold(0u128, |s, t| {
                                (s + u128::from(a[t][c]) * u128::from(expanded[t][c]))
                                    % u128::from(p)
                            }) as u64
                        })
                        .collect();
                    let mut out: Vec<u64> = (0..len).map(|_| rng.gen()).collect();
                    sum_of_products_narrow(&mut out, &whole, &m);
                    assert_eq!(out, expect, "whole, {count} terms, {bits} bits");
                    let mut out: Vec<u64> = (0..len).map(|_| rng.gen()).collect();
                    sum_of_products_narrow_runs(&mut out, &held, run, &m);
                    assert_eq!(out, expect, "runs of {run}, {count} terms, {bits} bits");
                }
            }
        }
    }

    #[test]
    fn flood_maps_to_rns_consistently() {
        let n = 64;
        let primes = generate_primes(&[31, 26, 26], n).expect("primes");
        let moduli: Vec<Modulus> = primes
            .iter()
            .map(|&p| Modulus::new(p, n).expect("m"))
            .collect();
        let basis: Vec<&Modulus> = moduli.iter().collect();
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let f = sample_flood(&mut rng, n, 100);
        let r = from_signed_wide(&f, &basis);
        for (i, m) in basis.iter().enumerate() {
            for k in 0..n {
                let expect = f[k].rem_euclid(m.value() as i128) as u64;
                assert_eq!(r[i * n + k], expect);
            }
        }
    }

    #[test]
    fn simd_mul_acc_matches_scalar() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for bits in [20u32, 26, 31, 49, 50, 51, 55, 61] {
            let n = 64;
            let p = generate_primes(&[bits], n).expect("prime")[0];
            let m = Modulus::new(p, n).expect("modulus");
            let a: Vec<u64> = (0..n).map(|_| rng.gen_range(0..p)).collect();
            let b: Vec<u64> = (0..n).map(|_| rng.gen_range(0..p)).collect();
            let mut acc: Vec<u64> = (0..n).map(|_| rng.gen_range(0..p)).collect();
            let expect: Vec<u64> = (0..n).map(|k| m.add(acc[k], m.mul(a[k], b[k]))).collect();
            m.mul_acc_vec(&mut acc, &a, &b);
            assert_eq!(acc, expect, "{bits} bits");
        }
    }

    #[test]
    fn narrow_reduction_matches_exact_arithmetic() {
        let n = 64;
        let ps = generate_primes(&[20, 26, 30, 31], n).expect("primes");
        let mut rng = rand::rngs::StdRng::seed_from_u64(11);
        for &p in &ps {
            let m = Modulus::new(p, n).expect("m");
            let mut xs = vec![
                0,
                1,
                p - 1,
                p,
                p + 1,
                2 * p - 1,
                2 * p,
                (1 << 32) - 1,
                1 << 32,
            ];
            xs.extend([
                u64::MAX,
                u64::MAX - 1,
                u64::MAX / p * p,
                u64::MAX / p * p - 1,
            ]);
            // any word, the lazy sums' range (below 2^63) and products of two residues
            xs.extend((0..2000).map(|_| rng.gen::<u64>()));
            xs.extend((0..2000).map(|_| rng.gen_range(0..1u64 << 63)));
            xs.extend((0..2000).map(|_| rng.gen_range(0..p) * rng.gen_range(0..p)));
            for x in xs {
                assert_eq!(m.reduce_narrow(x), x % p, "{x} mod {p}");
            }
        }
    }

    #[test]
    fn constant_products_match_exact_arithmetic() {
        // narrow (32-bit Shoup) and wide primes, with the extreme values of both operands
        let n = 64;
        let ps = generate_primes(&[26, 30, 31, 40, 50], n).expect("primes");
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for &p in &ps {
            let m = Modulus::new(p, n).expect("m");
            let mut a: Vec<u64> = (0..n).map(|_| rng.gen_range(0..p)).collect();
            let mut b: Vec<u64> = (0..n).map(|_| rng.gen_range(0..p)).collect();
            (a[0], a[1], a[2], b[0], b[1], b[2]) = (0, p - 1, p - 1, p - 1, 0, p - 1);
            for w in [0, 1, p - 1, rng.gen_range(0..p)] {
                let exact = |x: u64| (x as u128 * w as u128 % p as u128) as u64;
                let mut x = a.clone();
                m.mul_const_vec(&mut x, w);
                assert!(x.iter().zip(&a).all(|(&r, &v)| r == exact(v)), "{p} * {w}");
                let diff = |i: usize| (a[i] + p - b[i]) % p;
                let mut out = vec![0; n];
                m.sub_mul_const(&mut out, &a, &b, w);
                assert!((0..n).all(|i| out[i] == exact(diff(i))), "({p})");
                let narrow: Vec<u32> = b.iter().map(|&v| v as u32).collect();
                let mut words = vec![0; n];
                if p >> 32 == 0 {
                    m.sub_mul_const(&mut words, &a, &narrow, w);
                    assert_eq!(words, out, "({p}) from 32-bit words");
                }
            }
        }
    }

    #[test]
    fn centered_lift_all_cases() {
        let n = 16;
        let ps = generate_primes(&[40, 30, 29, 31, 26], n).expect("primes");
        let mods: Vec<Modulus> = ps.iter().map(|&p| Modulus::new(p, n).expect("m")).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        for from in &mods {
            for to in &mods {
                let p = from.value();
                let mut src: Vec<u64> = (0..n).map(|_| rng.gen_range(0..p)).collect();
                src[0] = 0;
                src[1] = p / 2;
                src[2] = p / 2 + 1;
                src[3] = p - 1;
                let mut out = vec![0; n];
                lift_centered(&src, from, to, &mut out);
                for (&v, &o) in src.iter().zip(&out) {
                    let c = if v > p / 2 {
                        v as i64 - p as i64
                    } else {
                        v as i64
                    };
                    assert_eq!(o, to.from_i64(c));
                }
            }
        }
    }

    #[test]
    fn primes_are_ntt_friendly_and_distinct() {
        let ps = generate_primes(&[31, 26, 26, 26, 26, 26, 26, 31], 8192).expect("primes");
        for (i, &p) in ps.iter().enumerate() {
            assert!(is_prime(p));
            assert_eq!(p % 16384, 1);
            assert!(!ps[..i].contains(&p));
        }
        assert_eq!(ps[1] >> 25, 1);
    }

    #[test]
    fn bit_packing_roundtrip() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let vals: Vec<(u64, u32)> = (0..1000)
            .map(|_| {
                let b = rng.gen_range(1..=64u32);
                let v: u64 = rng.gen();
                (if b == 64 { v } else { v & ((1 << b) - 1) }, b)
            })
            .collect();
        let mut w = BitWriter::new(Vec::new());
        for &(v, b) in &vals {
            w.write(v, b);
        }
        let bytes = w.finish();
        // the layout: bit k of the stream is bit (k mod 8) of byte k / 8, values in order,
        // least significant bit first, the last byte padded with zeros
        let total: usize = vals.iter().map(|&(_, b)| b as usize).sum();
        let mut expect = vec![0u8; total.div_ceil(8)];
        let mut k = 0;
        for &(v, b) in &vals {
            for i in 0..b {
                expect[k / 8] |= (((v >> i) & 1) as u8) << (k % 8);
                k += 1;
            }
        }
        assert_eq!(bytes, expect);
        let mut r = BitReader::new(&bytes);
        let mut read = 0;
        for &(v, b) in &vals {
            assert_eq!(r.read(b), Some(v));
            read += b as usize;
            assert_eq!(r.bytes_consumed(), read.div_ceil(8));
        }
        // past the end: nothing, at every cut of the stream
        assert_eq!(r.read(8), None);
        for cut in 0..bytes.len() {
            let mut r = BitReader::new(&bytes[..cut]);
            let mut got = 0;
            let fits = vals
                .iter()
                .take_while(|&&(_, b)| {
                    got += b as usize;
                    got <= 8 * cut
                })
                .count();
            for &(v, b) in &vals[..fits] {
                assert_eq!(r.read(b), Some(v));
            }
            assert_eq!(r.read(vals[fits].1), None, "cut at {cut}");
        }
    }

    #[test]
    fn ntt_negacyclic_product() {
        let n = 64;
        let p = generate_primes(&[30], n).expect("prime")[0];
        let m = Modulus::new(p, n).expect("modulus");
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let a: Vec<u64> = (0..n).map(|_| rng.gen_range(0..p)).collect();
        let b: Vec<u64> = (0..n).map(|_| rng.gen_range(0..p)).collect();
        let mut expect = vec![0u64; n];
        for i in 0..n {
            for j in 0..n {
                let prod = m.mul(a[i], b[j]);
                if i + j < n {
                    expect[i + j] = m.add(expect[i + j], prod);
                } else {
                    expect[i + j - n] = m.sub(expect[i + j - n], prod);
                }
            }
        }
        let (mut fa, mut fb) = (a.clone(), b.clone());
        m.ntt(&mut fa);
        m.ntt(&mut fb);
        let mut c: Vec<u64> = fa.iter().zip(&fb).map(|(&x, &y)| m.mul(x, y)).collect();
        m.intt(&mut c);
        assert_eq!(c, expect);
    }
}
