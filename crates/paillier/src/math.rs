//! Number-theoretic helpers on GMP integers: sampling from a CSPRNG, exact float conversion,
//! multi-exponentiation and fixed-base exponentiation.

use rand_core::{CryptoRng, RngCore};
use rug::integer::Order;
use rug::{Complete, Integer};

/// A uniform integer in `[0, bound)` drawn from `rng` by rejection sampling (bound > 0).
pub(crate) fn random_below<R: RngCore + CryptoRng + ?Sized>(
    bound: &Integer,
    rng: &mut R,
) -> Integer {
    debug_assert!(*bound > 0);
    let bits = bound.significant_bits();
    let bytes = bits.div_ceil(8) as usize;
    let excess = (bytes * 8) as u32 - bits;
    let mut buf = vec![0u8; bytes];
    loop {
        rng.fill_bytes(&mut buf);
        if let Some(first) = buf.first_mut() {
            *first &= 0xffu8 >> excess;
        }
        let candidate = Integer::from_digits(&buf, Order::Msf);
        if candidate < *bound {
            zeroize::Zeroize::zeroize(&mut buf);
            return candidate;
        }
    }
}

/// A uniform integer with exactly `bits` random bits (top bits may be zero).
pub(crate) fn random_bits<R: RngCore + CryptoRng + ?Sized>(bits: u32, rng: &mut R) -> Integer {
    let bound = Integer::from(1) << bits;
    random_below(&bound, rng)
}

/// A uniform unit of `Z_n`, i.e. in `[1, n)` and coprime to `n`.
pub(crate) fn random_unit<R: RngCore + CryptoRng + ?Sized>(n: &Integer, rng: &mut R) -> Integer {
    loop {
        let r = random_below(n, rng);
        if r != 0 && r.gcd_ref(n).complete() == 1 {
            return r;
        }
    }
}

/// `x * 2^shift` rounded to the nearest `f64` (ties to even), exactly like Python's
/// `int / 2**k` true division. `None` when the magnitude overflows an `f64`.
pub(crate) fn scaled_to_f64(x: &Integer, shift: i64) -> Option<f64> {
    if *x == 0 {
        return Some(0.0);
    }
    let negative = *x < 0;
    let mag = Integer::from(x.abs_ref());
    let len = i64::from(mag.significant_bits());
    // Unbiased binary exponent of the exact value.
    let exp = len - 1 + shift;
    if exp > 1023 {
        return None;
    }
    // Mantissa bits available: 53 for normal numbers, fewer for subnormals.
    let precision = if exp >= -1022 { 53 } else { 53 - (-1022 - exp) };
    let (q, q_shift) = if precision <= 0 {
        // Below half the smallest subnormal or just around it.
        let half_min = -1075i64; // 2^-1075 is half of the smallest subnormal
        let value_exp = exp;
        if value_exp < half_min {
            return Some(if negative { -0.0 } else { 0.0 });
        }
        // value in [2^-1075, 2^-1074): rounds to 2^-1074 unless exactly 2^-1075 (tie to even = 0)
        let is_power_of_two = mag.is_power_of_two();
        let q = if value_exp == half_min && is_power_of_two {
            0u64
        } else {
            1u64
        };
        (q, -1074i64)
    } else {
        let drop = len - precision;
        if drop <= 0 {
            (mag.to_u64().unwrap_or(0), shift)
        } else {
            let drop_u = drop as u32;
            let kept = Integer::from(&mag >> drop_u);
            let remainder = &mag - Integer::from(&kept << drop_u);
            let half = Integer::from(1) << (drop_u - 1);
            let mut q = kept.to_u64().unwrap_or(0);
            match remainder.cmp(&half) {
                std::cmp::Ordering::Greater => q += 1,
                std::cmp::Ordering::Equal if q & 1 == 1 => q += 1,
                _ => {}
            }
            (q, shift + drop)
        }
    };
    let value = ldexp(q as f64, q_shift)?;
    Some(if negative { -value } else { value })
}

/// `m * 2^e` for an exactly representable result, by exact power-of-two steps.
fn ldexp(mut m: f64, mut e: i64) -> Option<f64> {
    while e > 0 {
        let step = e.min(1000);
        m *= f64::powi(2.0, step as i32);
        e -= step;
        if m.is_infinite() {
            return None;
        }
    }
    while e < 0 {
        let step = e.max(-1000);
        m *= f64::powi(2.0, step as i32);
        e -= step;
    }
    Some(m)
}

/// `prod_i bases[i]^exps[i] mod modulus` for non-negative exponents, by interleaved
/// sliding windows (Straus): the squarings are shared by all bases.
pub(crate) fn multi_pow(bases: &[&Integer], exps: &[Integer], modulus: &Integer) -> Integer {
    debug_assert_eq!(bases.len(), exps.len());
    const WINDOW: u32 = 4;
    let max_bits = exps.iter().map(|e| e.significant_bits()).max().unwrap_or(0);
    if max_bits == 0 {
        return Integer::from(1);
    }
    // Odd powers b^1, b^3, ..., b^(2^WINDOW - 1) of each base.
    let tables: Vec<Vec<Integer>> = bases
        .iter()
        .zip(exps)
        .map(|(b, e)| {
            if *e == 0 {
                return Vec::new();
            }
            let b = Integer::from(*b % modulus);
            let sq = Integer::from(b.square_ref()) % modulus;
            let mut t = Vec::with_capacity(1 << (WINDOW - 1));
            t.push(b);
            for i in 1..(1usize << (WINDOW - 1)) {
                let next = Integer::from(&t[i - 1] * &sq) % modulus;
                t.push(next);
            }
            t
        })
        .collect();
    // Per base: (bit position where a window ends, odd window value) pairs, scanning from the top.
    let mut events: Vec<Vec<(u32, usize)>> = Vec::with_capacity(exps.len());
    for e in exps {
        let mut ev = Vec::new();
        let mut i = e.significant_bits() as i64 - 1;
        while i >= 0 {
            if !e.get_bit(i as u32) {
                i -= 1;
                continue;
            }
            // Window [j, i] with j > i - WINDOW, ending in a set bit.
            let mut j = (i - WINDOW as i64 + 1).max(0);
            while !e.get_bit(j as u32) {
                j += 1;
            }
            let mut value = 0usize;
            for k in (j..=i).rev() {
                value = (value << 1) | usize::from(e.get_bit(k as u32));
            }
            ev.push((j as u32, value));
            i = j - 1;
        }
        events.push(ev);
    }
    let mut cursors = vec![0usize; exps.len()];
    let mut acc = Integer::from(1);
    let mut started = false;
    for bit in (0..max_bits).rev() {
        if started {
            acc.square_mut();
            acc %= modulus;
        }
        for (idx, ev) in events.iter().enumerate() {
            if let Some(&(pos, value)) = ev.get(cursors[idx]) {
                if pos == bit {
                    acc *= &tables[idx][value >> 1];
                    acc %= modulus;
                    cursors[idx] += 1;
                    started = true;
                }
            }
        }
    }
    acc
}

/// Precomputed powers `base^(2^(w*i))` for fast exponentiation of one fixed base
/// (Brickell-Gordon-McCurley-Wilson / Yao): about `bits/w + 2^w` multiplications per power.
#[derive(Clone)]
pub(crate) struct FixedBase {
    modulus: Integer,
    window: u32,
    exp_bits: u32,
    powers: Vec<Integer>,
}

impl FixedBase {
    /// Precomputes the table for exponents of at most `exp_bits` bits.
    pub(crate) fn new(base: &Integer, modulus: &Integer, exp_bits: u32) -> Self {
        let window = 6;
        let digits = exp_bits.div_ceil(window) as usize;
        let mut powers = Vec::with_capacity(digits);
        let mut cur = Integer::from(base % modulus);
        for _ in 0..digits {
            powers.push(cur.clone());
            for _ in 0..window {
                cur.square_mut();
                cur %= modulus;
            }
        }
        Self {
            modulus: modulus.clone(),
            window,
            exp_bits,
            powers,
        }
    }

    /// Overwrites the table (for tables derived from secrets).
    pub(crate) fn wipe(&mut self) {
        for x in &mut self.powers {
            crate::secret::wipe(x);
        }
        crate::secret::wipe(&mut self.modulus);
    }

    /// Largest exponent size the table supports, in bits.
    pub(crate) fn exp_bits(&self) -> u32 {
        self.exp_bits
    }

    /// `base^exp mod modulus` for `0 <= exp < 2^exp_bits`.
    pub(crate) fn pow(&self, exp: &Integer) -> Integer {
        debug_assert!(exp.significant_bits() <= self.exp_bits);
        let w = self.window;
        let mask = (1u32 << w) - 1;
        // digits[i] = i-th base-2^w digit of exp
        let digits: Vec<u32> = (0..self.powers.len())
            .map(|i| {
                let mut d = 0u32;
                for b in 0..w {
                    if exp.get_bit(i as u32 * w + b) {
                        d |= 1 << b;
                    }
                }
                d & mask
            })
            .collect();
        let mut a = Integer::from(1);
        let mut b = Integer::from(1);
        for value in (1..=mask).rev() {
            for (i, d) in digits.iter().enumerate() {
                if *d == value {
                    b *= &self.powers[i];
                    b %= &self.modulus;
                }
            }
            a *= &b;
            a %= &self.modulus;
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;

    #[test]
    fn scaled_to_f64_matches_exact_cases() {
        assert_eq!(scaled_to_f64(&Integer::from(3), -1), Some(1.5));
        assert_eq!(scaled_to_f64(&Integer::from(-5), 2), Some(-20.0));
        // 2^53 + 1 is a tie: rounds to even 2^53.
        let x = (Integer::from(1) << 53) + 1;
        assert_eq!(scaled_to_f64(&x, 0), Some(9007199254740992.0));
        // 2^53 + 3 is a tie: rounds up to 2^53 + 4.
        let x = (Integer::from(1) << 53) + 3;
        assert_eq!(scaled_to_f64(&x, 0), Some(9007199254740996.0));
        assert_eq!(
            scaled_to_f64(&Integer::from(1), -1074),
            Some(f64::from_bits(1))
        );
        assert_eq!(scaled_to_f64(&Integer::from(1), -1075), Some(0.0));
        assert_eq!(
            scaled_to_f64(&Integer::from(3), -1076),
            Some(f64::from_bits(1))
        );
        assert_eq!(scaled_to_f64(&Integer::from(1), 1024), None);
        assert_eq!(
            scaled_to_f64(&Integer::from(1), 1023),
            Some(f64::powi(2.0, 1023))
        );
    }

    #[test]
    fn scaled_to_f64_roundtrips_random_floats() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for _ in 0..20_000 {
            let bits = rng.next_u64();
            let f = f64::from_bits(bits);
            if !f.is_finite() {
                continue;
            }
            let r = rug::Rational::from_f64(f).expect("finite");
            let (num, den) = r.into_numer_denom();
            let shift = -(den.significant_bits() as i64 - 1);
            assert_eq!(scaled_to_f64(&num, shift), Some(f), "{f:e}");
        }
    }

    #[test]
    fn multi_pow_and_fixed_base_match_pow_mod() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let m = random_bits(512, &mut rng) | Integer::from(1);
        let bases: Vec<Integer> = (0..5).map(|_| random_below(&m, &mut rng)).collect();
        let exps: Vec<Integer> = (0..5u32)
            .map(|i| random_bits(10 + 37 * i, &mut rng))
            .collect();
        let refs: Vec<&Integer> = bases.iter().collect();
        let mut expected = Integer::from(1);
        for (b, e) in bases.iter().zip(&exps) {
            expected *= Integer::from(b.pow_mod_ref(e, &m).expect("non-negative exponent"));
            expected %= &m;
        }
        assert_eq!(multi_pow(&refs, &exps, &m), expected);
        let fb = FixedBase::new(&bases[0], &m, 300);
        for e in [
            Integer::from(0),
            Integer::from(1),
            random_bits(300, &mut rng),
            (Integer::from(1) << 300) - 1,
        ] {
            assert_eq!(
                fb.pow(&e),
                Integer::from(bases[0].pow_mod_ref(&e, &m).expect("ok"))
            );
        }
    }
}
