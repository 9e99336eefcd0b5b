//! Noise flooding of shared CKKS decryptions, with a stated statistical
//! security (countermeasure to the Li-Micciancio key-recovery attack).
//!
//! A CKKS decryption returns `dec = μ + e` where `μ` is what a simulator can
//! compute from the exact result (`⌊Δ·m⌉`, or the encoded plaintext of a
//! fresh encryption) and `e` is the ciphertext noise, a function of the
//! secret key. Sharing `dec` leaks `e`. [`SecretKey::decrypt_flooded`]
//! adds `f`, uniform on the integers of `[-B, B]^N` with `B = 2^b`, to the
//! decrypted coefficients.
//!
//! ## The bound
//!
//! For one coefficient, `SD(e_k + U[-B, B], U[-B, B]) = |e_k| / (2B + 1)`;
//! over the `N` independent coefficients (hybrid argument),
//!
//! ```text
//! SD(μ + e + f, μ + f) <= N · B_ct / (2B + 1) < 2^-σ   when ‖e‖∞ <= B_ct
//! b = ⌈σ + log2(N) + log2(B_ct)⌉                       (so B >= 2^σ · N · B_ct)
//! ```
//!
//! `σ` is the statistical security parameter ([`Flooding::sigma_bits`],
//! default [`DEFAULT_SIGMA_BITS`] = 40, refused below [`MIN_SIGMA_BITS`] =
//! 30). The bound holds per decryption: `k` shared decryptions with
//! independent floods add up to `k · 2^-σ` (raise σ by `log2(k)`).
//!
//! ## The noise bound `B_ct`
//!
//! Noise is not tracked per ciphertext, so `B_ct` is an input, and one the
//! caller must give (there is no default: only whoever chose the computation
//! knows its noise):
//!
//! * [`Flooding::precision_bits`]`(0)`: `B_ct = scale` (more exactly
//!   `⌈scale + 1/2⌉ - 1`), i.e. the claim that **every slot of the
//!   ciphertext is within 1 of its exact value** (at least 0 bits of
//!   precision). This follows from the inverse
//!   embedding, `|e_k| <= max_j |e(ζ_j)|` over the `N` primitive `2N`-th
//!   roots of unity: slot errors below `2^-p` (i.e. `|e(ζ_j)| < scale·2^-p`)
//!   bound every coefficient of `e` by `scale·2^-p` too. If the computation
//!   can be worse than that, this bound is not sound. The bound must hold for
//!   every ciphertext you decrypt: whoever chooses the computation chooses
//!   its noise.
//! * [`Flooding::precision_bits`]`(p)`: every slot within `2^-p` of its exact
//!   value, `B_ct = ⌈scale·2^-p + 1/2⌉ - 1`.
//! * [`Flooding::noise_log2`]`(x)`: `‖dec - μ‖∞ <= 2^x` directly (e.g. `|e| <=
//!   21 < 2^4.4` for a fresh secret-key encryption).
//!
//! ## Fitting in the modulus
//!
//! The flooded coefficients must still decode: with `|values| <= 2^m`
//! ([`Flooding::message_log2`], default 10) the request is refused with
//! [`Error::InvalidArgument`] unless
//!
//! ```text
//! log2(2^b + B_ct + scale · 2^m) < log2(Q_level) - 1
//! ```
//!
//! (`|μ + e + f| < Q/2`), and when `b > 126` (the sampler draws `i128`).
//!
//! ## Precision cost
//!
//! The flood adds to every decoded complex slot an error of standard
//! deviation `2^b · sqrt(N/3) / scale` (`sqrt(N/6)` per real part), so the
//! flooded values keep about `log2(scale) - b - log2(N/3)/2` bits
//! ([`FloodingPlan::precision_bits`]). With `b = σ + log2(N) + log2(B_ct)`
//! that is `p - σ - 1.5·log2(N) + 0.8`, where `p = log2(scale / B_ct)` is
//! the precision before flooding: **flooding at σ bits costs about
//! `σ + 1.5·log2(N)` bits, 58.7 bits at N = 8192 and σ = 40**, whatever the
//! level. Consequences at N = 8192, σ = 40:
//!
//! * With `B_ct = scale` (`precision_bits(0)`), the flood is `2^(s + 53)` at scale
//!   `2^s`: the result hides the values as well (about -59 bits left). It
//!   fits from level 2 of `n8192-cnn` (scale 2^26, flood 2^79, log2 Q =
//!   83) and of `n8192-precise` (scale 2^40, flood 2^93, log2 Q = 129);
//!   `n8192-cnn` at level 0 (31 bits) is refused, 49 bits short, at level 1
//!   23 bits short.
//! * Keeping `k` bits needs `p >= 59 + k` before flooding, i.e. a scale of
//!   `2^(59 + k)` times the noise: e.g. a fresh secret-key encryption (`B_ct
//!   = 2^4.4`, `b = 58`) at scale 2^80 on `n8192-precise` level 2 or 3
//!   decodes with about 16 bits. Ciphertexts of the reference CNN (scale
//!   2^26, ~15 bits of precision) cannot be flooded at σ = 40 without losing
//!   every bit; use Paillier, or more levels and a larger scale, for results
//!   that must be shared with statistical security.
//!
//! [`SecretKey::decrypt_flooded`]: crate::SecretKey::decrypt_flooded

use crate::params::Parameters;
use crate::ring::MAX_FLOOD_BITS;
use crate::{Error, Result};

/// Default statistical security parameter σ of noise flooding (bits).
pub const DEFAULT_SIGMA_BITS: u32 = 40;
/// Smallest accepted statistical security parameter σ (bits).
pub const MIN_SIGMA_BITS: u32 = 30;
/// Default bound `log2(max |value|)` on the decoded values, used only to
/// check that the flooded message still fits in the modulus.
pub const DEFAULT_MESSAGE_LOG2: f64 = 10.0;

#[derive(Debug, Clone, Copy, PartialEq)]
enum NoiseBound {
    /// Every slot within `2^-p` of its exact value.
    Precision(f64),
    /// `log2` of a bound on the coefficient noise.
    Log2(f64),
}

/// Settings of a flooded decryption (see the [module documentation](self)
/// for the bound): statistical security, ciphertext noise bound, message
/// bound. There is no default: the noise bound must come from the caller
/// ([`Flooding::precision_bits`] or [`Flooding::noise_log2`]), who knows
/// the computation; σ defaults to 40 and the message bound to 2^10.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Flooding {
    sigma_bits: u32,
    noise: NoiseBound,
    message_log2: f64,
}

/// What a flooded decryption does at a given level and scale, from
/// [`Flooding::plan`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodingPlan {
    /// Statistical security parameter σ.
    pub sigma_bits: u32,
    /// `log2(B_ct)`, the ciphertext noise bound used.
    pub noise_log2: f64,
    /// `b`: the flooding noise is uniform in `[-2^b, 2^b]`.
    pub flood_bits: u32,
    /// `log2` of the statistical-distance bound `N · B_ct / (2^(b+1) + 1)`
    /// (at most `-σ`).
    pub distance_log2: f64,
    /// `log2(Q_level)`.
    pub log_q: f64,
    /// `log2(Q_level) - 1 - log2(2^b + B_ct + scale · 2^m)`, positive.
    pub headroom_bits: f64,
    /// Expected precision of the flooded values, `-log2` of the standard
    /// deviation `2^b · sqrt(N/3) / scale` of the error the flood adds to a
    /// complex slot (negative: the values are hidden too).
    pub precision_bits: f64,
}

/// `log2(2^a + 2^b + ...)` without overflow.
fn log2_sum(xs: &[f64]) -> f64 {
    let m = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + xs.iter().map(|x| (x - m).exp2()).sum::<f64>().log2()
}

impl Flooding {
    fn with(noise: NoiseBound) -> Self {
        Self {
            sigma_bits: DEFAULT_SIGMA_BITS,
            noise,
            message_log2: DEFAULT_MESSAGE_LOG2,
        }
    }

    /// Flooding for ciphertexts whose every slot is within `2^-bits` of its
    /// exact value (`bits = 0`: within 1, i.e. noise below the scale). The
    /// bound must hold for every ciphertext decrypted with it.
    pub fn precision_bits(bits: f64) -> Self {
        Self::with(NoiseBound::Precision(bits))
    }

    /// Flooding for ciphertexts whose decrypted integer coefficients are
    /// within `2^log2_bound` of `μ`: `‖dec - μ‖∞ <= 2^log2_bound` (bounds
    /// below 1 count as 1), e.g. `|e| <= 21 < 2^4.4` for a fresh secret-key
    /// encryption.
    pub fn noise_log2(log2_bound: f64) -> Self {
        Self::with(NoiseBound::Log2(log2_bound))
    }

    /// Statistical security parameter σ (at least [`MIN_SIGMA_BITS`]).
    pub fn sigma_bits(mut self, sigma: u32) -> Self {
        self.sigma_bits = sigma;
        self
    }

    /// Bound `2^log2_bound` on the magnitude of the decoded values (only
    /// used to check that the flooded message fits in the modulus).
    pub fn message_log2(mut self, log2_bound: f64) -> Self {
        self.message_log2 = log2_bound;
        self
    }

    /// The configured σ.
    pub fn sigma(&self) -> u32 {
        self.sigma_bits
    }

    /// Computes the flooding width for a ciphertext at `level` with `scale`
    /// and checks it. Errors with [`Error::InvalidArgument`] when σ is below
    /// [`MIN_SIGMA_BITS`], an input is not finite, or the flood does not fit
    /// in `Q_level` (the message says how many bits are missing).
    pub fn plan(&self, params: &Parameters, level: usize, scale: f64) -> Result<FloodingPlan> {
        let inv = |s: String| Err(Error::InvalidArgument(s));
        let sigma = self.sigma_bits;
        if sigma < MIN_SIGMA_BITS {
            return inv(format!(
                "noise flooding with {sigma}-bit statistical security is below the minimum of {MIN_SIGMA_BITS} bits (default {DEFAULT_SIGMA_BITS})"
            ));
        }
        if level > params.max_level() {
            return inv(format!(
                "level {level} above the maximum {}",
                params.max_level()
            ));
        }
        if !(scale.is_finite() && scale >= 1.0) {
            return inv(format!("invalid scale {scale}"));
        }
        if !self.message_log2.is_finite() {
            return inv("message bound must be finite".into());
        }
        let (noise_log2, source) = match self.noise {
            NoiseBound::Precision(p) if p.is_finite() => {
                // |e_k| < scale·2^-p + 1/2 and e_k is an integer
                let x = scale * (-p).exp2();
                (
                    ((x + 0.5).ceil() - 1.0).max(1.0).log2(),
                    format!("slots within 2^-{p} of the exact values"),
                )
            }
            NoiseBound::Log2(x) if x.is_finite() => (x.max(0.0), "as given".to_string()),
            _ => return inv("noise bound must be finite".into()),
        };
        let n = params.n();
        let log_n = n.trailing_zeros() as f64;
        let b = (sigma as f64 + log_n + noise_log2).ceil();
        if b > MAX_FLOOD_BITS as f64 {
            return inv(format!(
                "noise flooding needs uniform noise of 2^{b} (2^{sigma} · N · B_ct), above the supported 2^{MAX_FLOOD_BITS}"
            ));
        }
        let b = b as u32;
        let log_scale = scale.log2();
        let log_q = params.log_q_at(level);
        let need = log2_sum(&[b as f64, noise_log2, log_scale + self.message_log2]);
        let headroom = log_q - 1.0 - need;
        if headroom <= 0.0 {
            return inv(format!(
                "noise flooding with {sigma}-bit statistical security does not fit at level {level}: \
                 it needs uniform noise of 2^{b} (= 2^{sigma} · N · B_ct with N = 2^{log_n}, \
                 B_ct = 2^{noise_log2:.1}: {source}), so coefficients up to 2^{need:.1} with the \
                 message (scale 2^{log_scale:.1}, values up to 2^{m}), but log2(Q_{level}) = \
                 {log_q:.1} only allows 2^{avail:.1}: {missing:.1} bits missing. Decrypt at a \
                 higher level (before rescaling), use a preset with a larger modulus, or give a \
                 tighter noise bound",
                m = self.message_log2,
                avail = log_q - 1.0,
                missing = -headroom,
            ));
        }
        Ok(FloodingPlan {
            sigma_bits: sigma,
            noise_log2,
            flood_bits: b,
            distance_log2: log_n + noise_log2 - (((b + 1) as f64).exp2() + 1.0).log2(),
            log_q,
            headroom_bits: headroom,
            precision_bits: log_scale - b as f64 - 0.5 * (n as f64 / 3.0).log2(),
        })
    }
}
