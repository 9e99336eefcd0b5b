//! The gadget of hybrid key switching: for a key made for level `L`, which primes form its
//! special modulus `P_s` and how the data primes `q_0..q_L` are grouped into digits; and the
//! base conversions that lift a digit to the other primes (mod-up) and divide by `P_s`
//! (mod-down).
//!
//! A program that starts below the parameters' top level leaves the data primes above its
//! start unused by every ciphertext. With paired digits ([`crate::KeyDigits::Paired`], which a
//! server asks its clients for), a key made for level `L` takes the one above `L` into its
//! special modulus, next to the special prime `P`, where that makes it smaller: with
//! `P_s = q_{L+1} P`, a digit can hold two data primes, as long as their product stays below
//! `P_s` (the key-switching noise grows with `digit / P_s`, so it stays where one prime over
//! `P` puts it). A key then holds `digits x (L + 1 + k)` residue polynomials per half instead
//! of `(L + 1) x (L + 2)`: 24 instead of 42 at level 5 of the reference preset. The key lives
//! modulo a product of the parameters' own primes, so its security is the parameter set's
//! (the standard's bound is on the whole `log2(QP)`). At the top level there is no spare
//! prime, and with [`crate::KeyDigits::PerPrime`] (the default) none is used: `P_s = P`, one
//! data prime per digit, as SEAL does.

use crate::ring::{self, Modulus, Scratch, Word, NARROW_BITS};

/// Most primes in a key's special modulus: `P` and one spare data prime. More make a key
/// smaller still (16.7 MB instead of 21.2 MB for ciphernet's keys with no limit), but every
/// key switch then divides by `P_s` through a base conversion from more primes, which costs
/// more than the transforms the larger digits save (`unseen bench cnn`, with an earlier build of
/// the conversions: 35-48 ms per image against 32-34 ms).
pub(crate) const MAX_SPECIAL_PRIMES: usize = 2;

/// Which primes a key made for one level is built on.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KeyBasis {
    /// Highest data prime of the key (the highest ciphertext level it switches).
    pub(crate) level: usize,
    /// Indices into the parameters' moduli of the special primes: spare data primes above
    /// `level`, then `P`.
    pub(crate) special: Vec<usize>,
    /// Data primes per digit: consecutive ranges covering `0..=level`.
    pub(crate) groups: Vec<std::ops::Range<usize>>,
}

impl KeyBasis {
    /// The basis of a key for `level` whose special modulus holds `special` primes: the
    /// `special - 1` spare data primes above `level`, then `P`; the digits filled greedily
    /// while their product stays below `P_s` (a single prime always makes a digit).
    pub(crate) fn new(log_primes: &[f64], nq: usize, level: usize, special: usize) -> Self {
        debug_assert!(special >= 1 && level + special <= nq);
        let special: Vec<usize> = (level + 1..level + special).chain([nq]).collect();
        let bits: f64 = special.iter().map(|&i| log_primes[i]).sum();
        let mut groups: Vec<std::ops::Range<usize>> = Vec::new();
        let mut start = 0;
        let mut acc = 0.0;
        for (i, &log) in log_primes[..=level].iter().enumerate() {
            // half a bit of slack: primes of one nominal size are not all below it
            if i > start && acc + log > bits + 0.5 {
                groups.push(start..i);
                start = i;
                acc = 0.0;
            }
            acc += log;
        }
        groups.push(start..level + 1);
        KeyBasis {
            level,
            special,
            groups,
        }
    }

    /// Every basis a key for `level` may have, by special-prime count (1, then 2 where a
    /// spare data prime exists).
    pub(crate) fn candidates(log_primes: &[f64], nq: usize, level: usize) -> Vec<Self> {
        let most = (nq - level).min(MAX_SPECIAL_PRIMES);
        (1..=most)
            .map(|k| Self::new(log_primes, nq, level, k))
            .collect()
    }

    /// Residue polynomials per key half, over all digits.
    pub(crate) fn size(&self) -> usize {
        self.groups.len() * self.residues()
    }

    /// Indices into the parameters' moduli of the key's residues: data primes `0..=level`,
    /// then the special primes.
    pub(crate) fn moduli(&self) -> Vec<usize> {
        (0..=self.level)
            .chain(self.special.iter().copied())
            .collect()
    }

    /// Residue polynomials per key half.
    pub(crate) fn residues(&self) -> usize {
        self.level + 1 + self.special.len()
    }
}

/// Converts values held by their residues modulo a set of primes (coefficient form) to their
/// centered representatives modulo other primes: `x = sum_t v_t Q/g_t - alpha Q` with
/// `v_t = x_t (Q/g_t)^-1 mod g_t` and `alpha = round(sum_t v_t / g_t)`, which puts `x` in
/// `[-Q/2, Q/2)` (the rounding decided in `f64`; an error there moves a value at `+-Q/2` to
/// its other representative of the same size).
#[derive(Debug)]
pub(crate) struct Converter {
    /// Indices into the parameters' moduli of the source primes.
    pub(crate) from: Vec<usize>,
    /// `((Q/g_t)^-1 mod g_t, Shoup)`.
    hat_inv: Vec<(u64, u64)>,
    /// `1 / g_t`.
    inv: Vec<f64>,
    /// Per modulus index: `Q/g_t mod q_j` for every `t` (empty for the sources).
    hat_mod: Vec<Vec<u64>>,
    /// Per modulus index: `Q mod q_j`.
    whole_mod: Vec<u64>,
}

/// The per-coefficient values of one conversion's source (reused buffers).
pub(crate) struct Prepared {
    /// `v_t`, one `n`-block per source prime, then `alpha` (one buffer: a key switch holds
    /// several of these at once, and the per-thread pool keeps a few buffers).
    buf: Scratch,
    /// Coefficients per block.
    n: usize,
}

impl Prepared {
    fn v(&self, t: usize) -> &[u64] {
        &self.buf[t * self.n..(t + 1) * self.n]
    }

    fn alpha(&self) -> &[u64] {
        &self.buf[self.buf.len() - self.n..]
    }
}

impl Converter {
    pub(crate) fn new(moduli: &[Modulus], from: Vec<usize>) -> Self {
        let product_mod = |m: &Modulus, skip: Option<usize>| {
            from.iter()
                .filter(|&&u| Some(u) != skip)
                .fold(1u64, |acc, &u| m.mul(acc, m.reduce(moduli[u].value())))
        };
        let hat_inv = from
            .iter()
            .map(|&t| {
                let m = &moduli[t];
                let w = m.inv(product_mod(m, Some(t)));
                (w, m.shoup(w))
            })
            .collect();
        let inv = from
            .iter()
            .map(|&t| 1.0 / moduli[t].value() as f64)
            .collect();
        let hat_mod = moduli
            .iter()
            .enumerate()
            .map(|(j, m)| {
                if from.contains(&j) {
                    Vec::new()
                } else {
                    from.iter().map(|&t| product_mod(m, Some(t))).collect()
                }
            })
            .collect();
        let whole_mod = moduli.iter().map(|m| product_mod(m, None)).collect();
        Self {
            from,
            hat_inv,
            inv,
            hat_mod,
            whole_mod,
        }
    }

    /// `v_t` and `alpha` of every coefficient; `coeffs(t)` is the coefficient form of the
    /// `t`-th source residue.
    pub(crate) fn prepare<'a>(
        &self,
        moduli: &[Modulus],
        coeffs: impl Fn(usize) -> &'a [u64],
        n: usize,
    ) -> Prepared {
        let k = self.from.len();
        let mut buf = Scratch::take((k + 1) * n);
        let (v, alpha) = buf.split_at_mut(k * n);
        // round to nearest by the float unit itself: below 2^52, adding 2^52 leaves the
        // rounded value in the low mantissa bits (integer operations only)
        let magic = (1u64 << 52) as f64;
        if let [g0, g1] = self.from[..] {
            let (m0, m1) = (&moduli[g0], &moduli[g1]);
            if (m0.value() | m1.value()) >> NARROW_BITS == 0 {
                // two narrow primes (the common digit): one pass
                let (w0, w1) = (self.hat_inv[0].0, self.hat_inv[1].0);
                let (ws0, ws1) = (m0.shoup32(w0), m1.shoup32(w1));
                let (i0, i1) = (self.inv[0], self.inv[1]);
                let (v0, v1) = v.split_at_mut(n);
                let (x0, x1) = (coeffs(0), coeffs(1));
                ring::simd(
                    #[inline(always)]
                    || {
                        for ((((a, o0), o1), &y0), &y1) in alpha
                            .iter_mut()
                            .zip(v0.iter_mut())
                            .zip(v1.iter_mut())
                            .zip(x0)
                            .zip(x1)
                        {
                            *o0 = m0.mul_shoup32(y0, w0, ws0);
                            *o1 = m1.mul_shoup32(y1, w1, ws1);
                            let s = *o0 as f64 * i0 + *o1 as f64 * i1 + magic;
                            *a = s.to_bits() - magic.to_bits();
                        }
                    },
                );
                return Prepared { buf, n };
            }
        }
        // first the f64 bits of the running sum of v_t / g_t, then alpha in its place
        alpha.fill(0);
        for (t, &g) in self.from.iter().enumerate() {
            let m = &moduli[g];
            let (w, ws) = self.hat_inv[t];
            let inv = self.inv[t];
            let (v, x) = (&mut v[t * n..(t + 1) * n], coeffs(t));
            if m.value() >> NARROW_BITS == 0 {
                let ws32 = m.shoup32(w);
                ring::simd(
                    #[inline(always)]
                    || {
                        for (o, &x) in v.iter_mut().zip(x) {
                            *o = m.mul_shoup32(x, w, ws32);
                        }
                    },
                );
            } else {
                for (o, &x) in v.iter_mut().zip(x) {
                    *o = m.mul_shoup(x, w, ws);
                }
            }
            ring::simd(
                #[inline(always)]
                || {
                    for (s, &o) in alpha.iter_mut().zip(v.iter()) {
                        *s = (f64::from_bits(*s) + o as f64 * inv).to_bits();
                    }
                },
            );
        }
        ring::simd(
            #[inline(always)]
            || {
                for a in alpha.iter_mut() {
                    *a = (f64::from_bits(*a) + magic).to_bits() - magic.to_bits();
                }
            },
        );
        Prepared { buf, n }
    }

    /// The centered values modulo `moduli[j]` (not a source) into `out`.
    pub(crate) fn convert_into<T: Word>(
        &self,
        prep: &Prepared,
        j: usize,
        moduli: &[Modulus],
        out: &mut [T],
    ) {
        debug_assert_eq!(out.len(), prep.n);
        let m = &moduli[j];
        let hats = &self.hat_mod[j];
        debug_assert_eq!(hats.len(), self.from.len(), "a target outside the sources");
        let whole = self.whole_mod[j];
        let narrow = |x: u64| x >> NARROW_BITS == 0;
        if narrow(m.value()) && self.from.iter().all(|&g| narrow(moduli[g].value())) {
            return convert_narrow((prep, hats.as_slice(), whole, m), out);
        }
        let k = hats.len();
        let p = m.value();
        if (k as u128 + 1) * u128::from(p) > u128::from(u64::MAX) {
            // too many sources for the lazy sum below at this prime's width (none of the
            // presets: it takes 8 with a 61-bit prime)
            for (i, o) in out.iter_mut().enumerate() {
                let mut acc = 0u128;
                for (t, &h) in hats.iter().enumerate() {
                    acc += u128::from(prep.v(t)[i]) * u128::from(h);
                }
                let r = m.reduce_u128(acc);
                *o = T::of(m.sub(r, m.mul(prep.alpha()[i], whole)));
            }
            return;
        }
        // each product reduced by its Shoup constant (below p), k of them summed without
        // reduction, and `alpha Q mod p` (alpha <= k) read from a table: one reduction per
        // coefficient instead of a 128-bit sum and two 128-bit reductions
        let shoup: Vec<(u64, u64)> = hats.iter().map(|&h| (h, m.shoup(h))).collect();
        let whole_times: Vec<u64> = (0..=k as u64).map(|a| m.mul(a, whole)).collect();
        let sources: Vec<&[u64]> = (0..k).map(|t| prep.v(t)).collect();
        for (i, (o, &alpha)) in out.iter_mut().zip(prep.alpha()).enumerate() {
            let mut acc = p - whole_times[alpha as usize];
            for (v, &(h, hs)) in sources.iter().zip(&shoup) {
                acc += m.mul_shoup(v[i], h, hs);
            }
            *o = T::of(m.reduce(acc));
        }
    }
}

/// A conversion's arguments: the source's values, `Q/g_t mod q_j`, `Q mod q_j` and `q_j`.
type NarrowArgs<'a> = (&'a Prepared, &'a [u64], u64, &'a Modulus);

/// [`Converter::convert_into`] between primes below `2^31`: 32 x 32-bit Shoup products (each
/// below `p`, so a few of them sum far below `2^64`), one source at a time over all the
/// coefficients (simple loops that vectorize), and one reduction.
fn convert_narrow<T: Word>((prep, hats, whole, m): NarrowArgs<'_>, out: &mut [T]) {
    let n = out.len();
    let p = m.value();
    let k = hats.len();
    // minus alpha Q, alpha <= k: (k + 1) p keeps the sum positive; with k products below p
    // the sum stays below (2k + 1) p, far from 2^64, so one reduction at the end suffices
    let bias = (k as u64 + 1) * p;
    let alpha = prep.alpha();
    if let [h0, h1] = hats[..] {
        // two sources (the common digit): one pass
        let (hs0, hs1) = (m.shoup32(h0), m.shoup32(h1));
        let (v0, v1) = (prep.v(0), prep.v(1));
        ring::simd(
            #[inline(always)]
            || {
                for (((o, &al), &x0), &x1) in out.iter_mut().zip(alpha).zip(v0).zip(v1) {
                    let a =
                        bias - al * whole + m.mul_shoup32(x0, h0, hs0) + m.mul_shoup32(x1, h1, hs1);
                    *o = T::of(m.reduce_narrow(a));
                }
            },
        );
        return;
    }
    let mut acc = Scratch::take(n);
    ring::simd(
        #[inline(always)]
        || {
            for (a, &al) in acc.iter_mut().zip(alpha) {
                *a = bias - al * whole;
            }
        },
    );
    for (t, &h) in hats.iter().enumerate() {
        let hs = m.shoup32(h);
        let v = prep.v(t);
        ring::simd(
            #[inline(always)]
            || {
                for (a, &x) in acc.iter_mut().zip(v) {
                    *a += m.mul_shoup32(x, h, hs);
                }
            },
        );
    }
    ring::simd(
        #[inline(always)]
        || {
            for (o, &a) in out.iter_mut().zip(acc.iter()) {
                *o = T::of(m.reduce_narrow(a));
            }
        },
    );
}

/// Everything a key switch of a ciphertext at `level` with a key made for `key.level` needs.
#[derive(Debug)]
pub(crate) struct SwitchPlan {
    /// The key's basis.
    pub(crate) key: KeyBasis,
    /// The ciphertext's level.
    pub(crate) level: usize,
    /// The key's digits restricted to `0..=level` (non-empty; a prefix of the key's).
    pub(crate) groups: Vec<std::ops::Range<usize>>,
    /// Indices into the parameters' moduli of the extended basis: `0..=level`, then the key's
    /// special primes.
    pub(crate) targets: Vec<usize>,
    /// Mod-up of each digit of more than one prime.
    pub(crate) up: Vec<Option<Converter>>,
    /// Mod-down from a special modulus of more than one prime.
    pub(crate) down: Option<Converter>,
    /// `(P_s^-1 mod q_j, Shoup)` for `j <= level`.
    pub(crate) ps_inv: Vec<(u64, u64)>,
}

impl SwitchPlan {
    pub(crate) fn new(moduli: &[Modulus], key: KeyBasis, level: usize) -> Self {
        debug_assert!(level <= key.level);
        let groups: Vec<std::ops::Range<usize>> = key
            .groups
            .iter()
            .filter(|g| g.start <= level)
            .map(|g| g.start..g.end.min(level + 1))
            .collect();
        let targets = (0..=level).chain(key.special.iter().copied()).collect();
        let up = groups
            .iter()
            .map(|g| (g.len() > 1).then(|| Converter::new(moduli, g.clone().collect())))
            .collect();
        let down = (key.special.len() > 1).then(|| Converter::new(moduli, key.special.clone()));
        let ps_inv = (0..=level)
            .map(|j| {
                let m = &moduli[j];
                let ps = key
                    .special
                    .iter()
                    .fold(1u64, |acc, &s| m.mul(acc, m.reduce(moduli[s].value())));
                let w = m.inv(ps);
                (w, m.shoup(w))
            })
            .collect();
        Self {
            key,
            level,
            groups,
            targets,
            up,
            down,
            ps_inv,
        }
    }

    /// Position of the key residue that target `t` (an index into [`Self::targets`]) reads.
    pub(crate) fn key_residue(&self, t: usize) -> usize {
        if t <= self.level {
            t
        } else {
            self.key.level + 1 + (t - self.level - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logs(bits: &[u32]) -> Vec<f64> {
        bits.iter().map(|&b| f64::from(b) - 0.001).collect()
    }

    /// Conversions from two, three and seven primes (below and above 2^31, up to a 61-bit
    /// target), against the centered value computed exactly in 128 bits,
    /// at the edges of the range and between.
    #[test]
    fn conversions_give_the_exact_centered_value() {
        let n = 16;
        let (two, three) = (vec![0, 1], vec![0, 1, 2]);
        let seven: Vec<usize> = (0..7).collect();
        let wide = [vec![17u32; 7], vec![61, 60]].concat();
        for (bits, froms) in [
            (
                vec![26u32, 26, 26, 31, 31],
                vec![two.clone(), three.clone()],
            ),
            (vec![40, 30, 30, 49, 40], vec![two.clone(), three.clone()]),
            (vec![40, 30, 30, 61, 60], vec![two, three]),
            // seven products and alpha Q's complement below a 61-bit prime: the lazy sum at
            // its limit, (7 + 1) p just under 2^64
            (wide, vec![seven]),
        ] {
            let primes = ring::generate_primes(&bits, n).expect("primes");
            let moduli: Vec<Modulus> = primes
                .iter()
                .map(|&p| Modulus::new(p, n).expect("modulus"))
                .collect();
            let targets = bits.len() - 2;
            for from in froms {
                let conv = Converter::new(&moduli, from.clone());
                let q: u128 = from.iter().map(|&i| u128::from(primes[i])).product();
                let values: Vec<u128> = (0..n as u128)
                    .map(|i| match i {
                        0 => 0,
                        1 => q / 2,
                        2 => q / 2 + 1,
                        3 => q - 1,
                        _ => (i * 0x9e37_79b9_7f4a_7c15_f39c) % q,
                    })
                    .collect();
                let residues: Vec<Vec<u64>> = from
                    .iter()
                    .map(|&g| {
                        values
                            .iter()
                            .map(|&x| (x % u128::from(primes[g])) as u64)
                            .collect()
                    })
                    .collect();
                let prep = conv.prepare(&moduli, |t| &residues[t], n);
                for (j, &target) in primes.iter().enumerate().skip(targets) {
                    let mut out = vec![0u64; n];
                    conv.convert_into(&prep, j, &moduli, &mut out);
                    let pj = i128::from(target);
                    for (x, got) in values.iter().zip(&out) {
                        let centered = if *x > q / 2 {
                            *x as i128 - q as i128
                        } else {
                            *x as i128
                        };
                        // within the f64 rounding of +-q/2, either representative of that
                        // size is right (the value keeps its magnitude)
                        let edge = (q / 2).abs_diff(*x) <= q >> 50;
                        let other = if centered > 0 {
                            centered - q as i128
                        } else {
                            centered + q as i128
                        };
                        let ok = |c: i128| c.rem_euclid(pj) as u64 == *got;
                        assert!(
                            ok(centered) || (edge && ok(other)),
                            "{bits:?} from {from:?} to {j}: {x}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_reference_preset_groups_digits_under_its_spare_primes() {
        // 31 + 6 x 26 data bits, P of 31
        let l = logs(&[31, 26, 26, 26, 26, 26, 26, 31]);
        let nq = 7;
        // top level: no spare prime, one prime per digit
        let top = KeyBasis::candidates(&l, nq, 6);
        assert_eq!(top.len(), 1);
        let top = &top[0];
        assert_eq!(top.special, vec![7]);
        assert_eq!(top.groups.len(), 7);
        // level 5: q_6 joins P (57 bits): digits of 57, 52, 52 bits
        let b5 = KeyBasis::new(&l, nq, 5, 2);
        assert_eq!(b5.special, vec![6, 7]);
        assert_eq!(b5.groups, vec![0..2, 2..4, 4..6]);
        assert_eq!(b5.size(), 24);
        assert_eq!(KeyBasis::new(&l, nq, 5, 1).size(), 42);
        // level 3: q_4 joins P; digits of two primes (57 and 52 bits)
        let b3 = KeyBasis::new(&l, nq, 3, 2);
        assert_eq!(b3.special, vec![4, 7]);
        assert_eq!(b3.groups, vec![0..2, 2..4]);
        assert_eq!((b3.size(), KeyBasis::new(&l, nq, 3, 1).size()), (12, 20));
        // level 1: one spare prime
        let b1 = KeyBasis::new(&l, nq, 1, 2);
        assert_eq!(b1.special, vec![2, 7]);
        assert_eq!(b1.groups, vec![0..2]);
    }
}
