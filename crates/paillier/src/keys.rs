//! Paillier keys with `g = n + 1`: generation, validation, CRT decryption and CRT encryption.

use std::fmt;
use std::sync::{Arc, OnceLock};

use rand_core::{CryptoRng, OsRng, RngCore};
use rug::integer::IsPrime;
use rug::{Complete, Integer};

use crate::math::{random_bits, random_unit, FixedBase};
use crate::randomizer::{FixedBaseRandomizer, Randomness};
use crate::secret::wipe;
use crate::{Error, Result};

/// Default modulus size, as in python-paillier.
pub const DEFAULT_KEY_BITS: u32 = 2048;
/// Smallest modulus accepted by [`PrivateKey::generate`]: 2048 bits (112-bit security, NIST SP 800-57).
pub const MIN_SECURE_KEY_BITS: u32 = 2048;
/// Largest modulus this crate generates or accepts.
pub const MAX_KEY_BITS: u32 = 8192;
/// Miller-Rabin rounds on top of GMP's Baillie-PSW test when accepting a prime.
const PRIME_REPS: u32 = 40;

/// A Paillier public key: the modulus `n` (with `g = n + 1`) and cached derived values.
pub struct PublicKey {
    n: Integer,
    n_square: Integer,
    max_int: Integer,
    fixed_base: OnceLock<FixedBaseRandomizer>,
}

impl PublicKey {
    /// Wraps a modulus received from elsewhere, after sanity checks (odd, not tiny, not huge).
    ///
    /// `min_bits` is the smallest modulus the caller accepts (e.g. 2048 for a server).
    pub fn from_n(n: Integer, min_bits: u32) -> Result<Self> {
        let bits = n.significant_bits();
        if n <= 0 || n.is_even() {
            return Err(Error::InvalidKey(
                "the modulus n must be a positive odd integer".into(),
            ));
        }
        if bits < min_bits {
            return Err(Error::InvalidKey(format!(
                "the modulus has {bits} bits, fewer than the {min_bits} required"
            )));
        }
        if bits > MAX_KEY_BITS {
            return Err(Error::InvalidKey(format!(
                "the modulus has {bits} bits, more than the supported {MAX_KEY_BITS}"
            )));
        }
        if n.is_perfect_square() {
            return Err(Error::InvalidKey("the modulus is a perfect square".into()));
        }
        Ok(Self::new_unchecked(n))
    }

    fn new_unchecked(n: Integer) -> Self {
        let n_square = Integer::from(n.square_ref());
        let max_int = Integer::from(&n / 3u32) - 1u32;
        Self {
            n,
            n_square,
            max_int,
            fixed_base: OnceLock::new(),
        }
    }

    /// The modulus `n`.
    pub fn n(&self) -> &Integer {
        &self.n
    }

    /// `n^2`, the ciphertext modulus.
    pub fn n_square(&self) -> &Integer {
        &self.n_square
    }

    /// The largest encodable magnitude, `n // 3 - 1` (as in phe).
    pub fn max_int(&self) -> &Integer {
        &self.max_int
    }

    /// Bit length of `n`.
    pub fn bits(&self) -> u32 {
        self.n.significant_bits()
    }

    /// The fixed-base randomizer of this key, built on first use (one exponentiation mod `n^2`
    /// plus a table of `bits/12` powers) and shared afterwards.
    pub fn fixed_base(&self) -> &FixedBaseRandomizer {
        self.fixed_base
            .get_or_init(|| FixedBaseRandomizer::new(self, &mut OsRng))
    }

    /// A fresh `r^n mod n^2` obfuscator for encryption or re-randomisation.
    pub fn obfuscator<R: RngCore + CryptoRng + ?Sized>(
        &self,
        mode: Randomness,
        rng: &mut R,
    ) -> Integer {
        match mode {
            Randomness::FixedBase => self.fixed_base().sample(rng),
            Randomness::Standard => {
                let r = random_unit(&self.n, rng);
                Integer::from(
                    r.pow_mod_ref(&self.n, &self.n_square)
                        .expect("exponent n is positive"),
                )
            }
        }
    }

    /// `(1 + n m) mod n^2 = g^m`, the deterministic part of an encryption of `m` in `[0, n)`.
    pub(crate) fn g_pow(&self, m: &Integer) -> Integer {
        let mut c = Integer::from(&self.n * m);
        c += 1u32;
        c %= &self.n_square;
        c
    }

    /// Checks that `c` is a valid ciphertext: `0 < c < n^2` and `gcd(c, n) = 1`.
    pub fn check_ciphertext(&self, c: &Integer) -> Result<()> {
        if *c <= 0 || *c >= self.n_square {
            return Err(Error::InvalidCiphertext("not in the range (0, n^2)"));
        }
        if c.gcd_ref(&self.n).complete() != 1 {
            return Err(Error::InvalidCiphertext("not coprime to n"));
        }
        Ok(())
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n
    }
}
impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.n.to_string();
        let head: String = digits.chars().take(12).collect();
        write!(f, "PublicKey {{ bits: {}, n: {head}... }}", self.bits())
    }
}

impl Clone for PublicKey {
    fn clone(&self) -> Self {
        let out = Self::new_unchecked(self.n.clone());
        if let Some(fb) = self.fixed_base.get() {
            let _ = out.fixed_base.set(fb.clone());
        }
        out
    }
}

/// A Paillier private key: the primes `p < q` and the CRT constants of phe's decryption.
///
/// Secret values are wiped on drop; `Debug` prints no secret.
pub struct PrivateKey {
    public: Arc<PublicKey>,
    p: Integer,
    q: Integer,
    p_square: Integer,
    q_square: Integer,
    /// `p^-1 mod q`.
    p_inverse: Integer,
    /// `L_p(g^(p-1) mod p^2)^-1 mod p`.
    hp: Integer,
    /// `L_q(g^(q-1) mod q^2)^-1 mod q`.
    hq: Integer,
    /// `(p^2)^-1 mod q^2`, to recombine residues mod `p^2` and `q^2`.
    p_square_inverse: Integer,
    /// `n mod p(p-1)` and `n mod q(q-1)`: reduced exponents of `r^n`.
    n_mod_phi_p2: Integer,
    n_mod_phi_q2: Integer,
    /// Fixed-base tables of the public key's randomizer base mod `p^2` and `q^2` (secret:
    /// a residue mod `p^2` reveals `p`).
    crt_tables: OnceLock<(FixedBase, FixedBase)>,
}

impl PrivateKey {
    /// Generates a key pair with a modulus of exactly `bits` bits from the OS CSPRNG.
    ///
    /// `bits` must be even, at least [`MIN_SECURE_KEY_BITS`] and at most [`MAX_KEY_BITS`].
    pub fn generate(bits: u32) -> Result<Self> {
        Self::generate_with_rng(bits, &mut OsRng)
    }

    /// Like [`PrivateKey::generate`] with a caller-supplied CSPRNG.
    pub fn generate_with_rng<R: RngCore + CryptoRng + ?Sized>(
        bits: u32,
        rng: &mut R,
    ) -> Result<Self> {
        if bits < MIN_SECURE_KEY_BITS {
            return Err(Error::KeySize {
                bits,
                reason: "below 2048 bits is not secure",
            });
        }
        Self::generate_insecure(bits, rng)
    }

    /// Key generation without the security floor, for tests and known-answer vectors only.
    ///
    /// `bits` must be even and in `[64, MAX_KEY_BITS]`.
    pub fn generate_insecure<R: RngCore + CryptoRng + ?Sized>(
        bits: u32,
        rng: &mut R,
    ) -> Result<Self> {
        if bits % 2 != 0 {
            return Err(Error::KeySize {
                bits,
                reason: "the size must be even (p and q have equal size)",
            });
        }
        if !(64..=MAX_KEY_BITS).contains(&bits) {
            return Err(Error::KeySize {
                bits,
                reason: "supported sizes are 64 to 8192 bits",
            });
        }
        loop {
            let mut p = random_prime(bits / 2, rng);
            let mut q = random_prime(bits / 2, rng);
            let n = Integer::from(&p * &q);
            if p != q && n.significant_bits() == bits {
                return Self::with_public(Arc::new(PublicKey::new_unchecked(n)), p, q);
            }
            wipe(&mut p);
            wipe(&mut q);
        }
    }

    /// Builds a private key from its primes (in either order), checking them.
    pub fn from_primes(p: Integer, q: Integer) -> Result<Self> {
        let (p, q) = if q < p { (q, p) } else { (p, q) };
        if p == q {
            return Err(Error::InvalidKey("p and q must differ".into()));
        }
        if p < 3 {
            return Err(Error::InvalidKey("p and q must be odd primes".into()));
        }
        for (name, x) in [("p", &p), ("q", &q)] {
            if x.significant_bits() > MAX_KEY_BITS || x.is_probably_prime(PRIME_REPS) == IsPrime::No
            {
                return Err(Error::InvalidKey(format!("{name} is not a prime")));
            }
        }
        let n = Integer::from(&p * &q);
        let public = PublicKey::from_n(n, 16)?;
        Self::with_public(Arc::new(public), p, q)
    }

    /// Builds a private key for a given public key; fails unless `p * q = n`.
    pub fn with_public(public: Arc<PublicKey>, p: Integer, q: Integer) -> Result<Self> {
        let (p, q) = if q < p { (q, p) } else { (p, q) };
        if Integer::from(&p * &q) != *public.n() || p == q || p < 3 {
            return Err(Error::InvalidKey(
                "p * q does not equal n (or p = q)".into(),
            ));
        }
        let p_square = Integer::from(p.square_ref());
        let q_square = Integer::from(q.square_ref());
        let p_inverse = Integer::from(
            p.invert_ref(&q)
                .ok_or_else(|| Error::InvalidKey("p is not invertible mod q".into()))?,
        );
        let hp = h_function(public.n(), &p, &p_square)?;
        let hq = h_function(public.n(), &q, &q_square)?;
        let p_square_inverse = Integer::from(
            p_square
                .invert_ref(&q_square)
                .ok_or_else(|| Error::InvalidKey("p^2 is not invertible mod q^2".into()))?,
        );
        let mut p_minus_1 = Integer::from(&p - 1u32);
        let mut q_minus_1 = Integer::from(&q - 1u32);
        let mut phi_p2 = Integer::from(&p * &p_minus_1);
        let mut phi_q2 = Integer::from(&q * &q_minus_1);
        let n_mod_phi_p2 = Integer::from(public.n() % &phi_p2);
        let n_mod_phi_q2 = Integer::from(public.n() % &phi_q2);
        for x in [&mut p_minus_1, &mut q_minus_1, &mut phi_p2, &mut phi_q2] {
            wipe(x);
        }
        Ok(Self {
            public,
            p,
            q,
            p_square,
            q_square,
            p_inverse,
            hp,
            hq,
            p_square_inverse,
            n_mod_phi_p2,
            n_mod_phi_q2,
            crt_tables: OnceLock::new(),
        })
    }

    /// The public half.
    pub fn public_key(&self) -> &Arc<PublicKey> {
        &self.public
    }

    /// The smaller prime.
    pub fn p(&self) -> &Integer {
        &self.p
    }

    /// The larger prime.
    pub fn q(&self) -> &Integer {
        &self.q
    }

    /// Raw decryption of a ciphertext to its plaintext in `[0, n)`, through CRT (as phe), with
    /// the halves mod `p^2` and `q^2` computed in parallel.
    pub fn raw_decrypt(&self, c: &Integer) -> Result<Integer> {
        self.public.check_ciphertext(c)?;
        // The two halves are independent: run them on two cores.
        let (mp, mut mq) = rayon::join(
            || self.decrypt_half(c, &self.p, &self.p_square, &self.hp),
            || self.decrypt_half(c, &self.q, &self.q_square, &self.hq),
        );
        // CRT: m = mp + p * ((mq - mp) * p^-1 mod q)
        let mut u = Integer::from(&mq - &mp);
        wipe(&mut mq);
        u *= &self.p_inverse;
        u.modulo_mut(&self.q);
        u *= &self.p;
        u += mp;
        Ok(u)
    }

    fn decrypt_half(&self, c: &Integer, prime: &Integer, square: &Integer, h: &Integer) -> Integer {
        // The exponent is secret: GMP's side-channel-resilient exponentiation (`mpz_powm_sec`,
        // the same time and memory access pattern for every exponent of this size).
        let mut exp = Integer::from(prime - 1u32);
        let mut x = Integer::from(c % square);
        x.secure_pow_mod_mut(&exp, square);
        wipe(&mut exp);
        // L(x) = (x - 1) / prime
        x -= 1u32;
        x /= prime;
        x *= h;
        x.modulo_mut(prime);
        x
    }

    /// `r^n mod n^2` computed through CRT mod `p^2` and `q^2` (about 3x cheaper than mod `n^2`).
    ///
    /// With [`Randomness::FixedBase`] the public key's fixed-base randomizer is used as is
    /// (same distribution as public-key encryption); with [`Randomness::Standard`] `r` is a
    /// uniform unit and the two half-size exponentiations use exponents reduced mod `p(p-1)`
    /// and `q(q-1)`.
    pub fn obfuscator<R: RngCore + CryptoRng + ?Sized>(
        &self,
        mode: Randomness,
        rng: &mut R,
    ) -> Integer {
        match mode {
            Randomness::FixedBase => {
                let fixed = self.public.fixed_base();
                let (tp, tq) = self.crt_tables.get_or_init(|| {
                    (
                        FixedBase::new(fixed.base(), &self.p_square, fixed.exp_bits()),
                        FixedBase::new(fixed.base(), &self.q_square, fixed.exp_bits()),
                    )
                });
                let mut alpha = fixed.sample_exponent(rng);
                let xp = tp.pow(&alpha);
                let xq = tq.pow(&alpha);
                wipe(&mut alpha);
                self.crt_square(xp, xq)
            }
            Randomness::Standard => {
                let mut r = random_unit(self.public.n(), rng);
                let mut xp = Integer::from(&r % &self.p_square);
                let mut xq = Integer::from(&r % &self.q_square);
                wipe(&mut r);
                // secret exponents (reduced with p and q): the side-channel-resilient form
                xp.secure_pow_mod_mut(&self.n_mod_phi_p2, &self.p_square);
                xq.secure_pow_mod_mut(&self.n_mod_phi_q2, &self.q_square);
                self.crt_square(xp, xq)
            }
        }
    }

    /// Recombines residues mod `p^2` and `q^2` into one mod `n^2`.
    pub(crate) fn crt_square(&self, xp: Integer, xq: Integer) -> Integer {
        let mut u = Integer::from(&xq - &xp);
        u *= &self.p_square_inverse;
        u.modulo_mut(&self.q_square);
        u *= &self.p_square;
        u += xp;
        u
    }
}

impl Drop for PrivateKey {
    fn drop(&mut self) {
        for x in [
            &mut self.p,
            &mut self.q,
            &mut self.p_square,
            &mut self.q_square,
            &mut self.p_inverse,
            &mut self.hp,
            &mut self.hq,
            &mut self.p_square_inverse,
            &mut self.n_mod_phi_p2,
            &mut self.n_mod_phi_q2,
        ] {
            wipe(x);
        }
        if let Some((tp, tq)) = self.crt_tables.get_mut() {
            tp.wipe();
            tq.wipe();
        }
    }
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey {{ bits: {}, .. }}", self.public.bits())
    }
}

/// phe's `h_function`: `L_x(g^(x-1) mod x^2)^-1 mod x`.
fn h_function(n: &Integer, x: &Integer, x_square: &Integer) -> Result<Integer> {
    let mut v = Integer::from(n + 1u32);
    let mut exp = Integer::from(x - 1u32);
    v.secure_pow_mod_mut(&exp, x_square);
    wipe(&mut exp);
    v -= 1u32;
    v /= x;
    let inv =
        Integer::from(v.invert_ref(x).ok_or_else(|| {
            Error::InvalidKey("h is not invertible (are p and q primes?)".into())
        })?);
    wipe(&mut v);
    Ok(inv)
}

/// A random prime of exactly `bits` bits with its two top bits set, so that the product of two
/// such primes has exactly `2 * bits` bits.
fn random_prime<R: RngCore + CryptoRng + ?Sized>(bits: u32, rng: &mut R) -> Integer {
    loop {
        let mut prime = random_bits(bits, rng);
        prime.set_bit(bits - 1, true);
        prime.set_bit(bits - 2, true);
        prime.set_bit(0, true);
        prime.next_prime_mut();
        if prime.significant_bits() == bits && prime.is_probably_prime(PRIME_REPS) != IsPrime::No {
            return prime;
        }
        wipe(&mut prime);
    }
}
