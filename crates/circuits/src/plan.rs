//! Levels, scales and evaluation keys of a program on one CKKS parameter set, decided before any
//! key is made.
//!
//! A program that consumes `d` levels starts at level `d` and ends at level 0: the client encrypts
//! at the lowest level that suffices, which makes its upload and every key smaller. A value that
//! has consumed `k` levels sits at level `start - k`; a linear map multiplies it by plaintexts
//! encoded at the prime the following rescale removes, so its scale is kept exactly, and a square
//! turns scale `s` into `s^2 / q`. The last linear map is encoded at a smaller scale when needed
//! so that the outputs fit the last modulus: up to [`OUTPUT_MARGIN`] times the program's output
//! bound (the model's largest logit on its training set), rounded up to a power of two, or
//! `2^DEFAULT_OUTPUT_HEADROOM_BITS` when no bound is known. Every bit of headroom costs a bit of
//! output precision, which is why the bound is calibrated rather than fixed.
//!
//! Each rotation key is made for the level at which its step is first used, and the
//! relinearisation key for the level of the first square: keys for steps used only after a few
//! rescales are several times smaller than top-level keys. [`KeyLayout`] then decides each
//! key's digits: by default paired (smaller) for the rotations the program does not hoist, one
//! prime per digit (faster) for the hoisted baby steps and the relinearisation key.

use std::collections::{BTreeMap, BTreeSet};

use rand_core::{CryptoRng, RngCore};
use unseen_ckks::{GaloisKeys, KeyDigits, Parameters, RelinKey, SecretKey};

use crate::keys::EvaluationKeys;
use crate::program::{Op, Program};

/// Output headroom, in bits, of a program without an output bound: logits up to `2^10` in
/// magnitude decrypt correctly; larger ones wrap around the last modulus.
pub const DEFAULT_OUTPUT_HEADROOM_BITS: u32 = 10;

/// Outputs up to this many times the program's output bound decrypt correctly.
pub const OUTPUT_MARGIN: f64 = 4.0;

/// Scale for the plaintexts of the last linear map, applied to a value at `level` with scale
/// `scale`: the prime the following rescale removes, divided by the power of two that leaves
/// `headroom_bits` of room for the outputs in the modulus one level down.
pub(crate) fn last_multiplier_scale(
    params: &Parameters,
    level: usize,
    scale: f64,
    headroom_bits: u32,
) -> f64 {
    let prime = params.data_primes()[level] as f64;
    let room = params.log_q_at(level.saturating_sub(1)) - 1.0 - f64::from(headroom_bits);
    let shrink = (scale.log2() - room).max(0.0).ceil();
    prime / 2f64.powf(shrink)
}

/// Bits of output headroom for an output bound: `log2(OUTPUT_MARGIN * bound)` rounded up (at
/// least 4), or [`DEFAULT_OUTPUT_HEADROOM_BITS`] without a usable bound.
pub fn output_headroom_bits(bound: Option<f64>) -> u32 {
    match bound {
        Some(b) if b.is_finite() && b > 0.0 => {
            (OUTPUT_MARGIN * b).log2().ceil().clamp(4.0, 40.0) as u32
        }
        _ => DEFAULT_OUTPUT_HEADROOM_BITS,
    }
}

/// How a plan lays out the digits of its evaluation keys (the server's choice, named in every
/// client spec as `key_digits`): below the preset's top level, paired digits make a key about
/// 0.6x the size, and cost more per key switch where the switch is divided by the special
/// modulus on its own (README, "Paired key digits").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyLayout {
    /// Paired digits for every rotation key the program does not hoist (giant steps,
    /// rotate-and-sums, the sums of a first convolution: switches whose division is shared or
    /// cheap), one prime per digit for the hoisted baby steps and the relinearisation key,
    /// where paired digits cost most. ciphernet: 0.73x the key memory of [`Self::PerPrime`]
    /// for about 1.04x the server's work per image (README, "Keys paired where they cost
    /// least").
    #[default]
    Mixed,
    /// One prime per digit for every key, and the shortcut keys of hoisted rotate-and-sums
    /// ([`KeyLayout::makes_sum_shortcuts`]): the fastest key switching, the largest keys.
    PerPrime,
    /// Paired digits for every key: the smallest keys, the slowest key switching.
    Paired,
}

impl KeyLayout {
    /// Digit layout of the relinearisation key.
    pub fn relin(self) -> KeyDigits {
        match self {
            KeyLayout::Paired => KeyDigits::Paired,
            KeyLayout::PerPrime | KeyLayout::Mixed => KeyDigits::PerPrime,
        }
    }

    /// Digit layout of the key of a rotation step, hoisted (a baby step) or not.
    pub fn rotation(self, hoisted: bool) -> KeyDigits {
        match self {
            KeyLayout::Paired => KeyDigits::Paired,
            KeyLayout::Mixed if !hoisted => KeyDigits::Paired,
            KeyLayout::PerPrime | KeyLayout::Mixed => KeyDigits::PerPrime,
        }
    }

    /// Whether the plan makes the shortcut keys of hoisted rotate-and-sum stages
    /// ([`crate::sum_stages`]): with one prime per digit, the layout for latency, yes
    /// (ciphernet: 0.91x the instructions per image for 1.2x the key memory); with the
    /// others, made for memory, no: their stages are hoisted only where the shortcut is a key
    /// the program needs anyway (README, "Rotate-and-sums hoisted").
    pub fn makes_sum_shortcuts(self) -> bool {
        matches!(self, KeyLayout::PerPrime)
    }

    /// `(step, level, digits)` of each Galois key of `(step, level)` pairs, given the steps
    /// the program hoists.
    pub fn rotation_keys(
        self,
        levels: &[(i64, usize)],
        hoisted: &[i64],
    ) -> Vec<(i64, usize, KeyDigits)> {
        levels
            .iter()
            .map(|&(s, l)| (s, l, self.rotation(hoisted.contains(&s))))
            .collect()
    }
}

/// The levels, scales and keys of one program on one CKKS parameter set.
#[derive(Debug, Clone, PartialEq)]
pub struct CkksPlan {
    /// Level at which the client encrypts its input.
    pub start_level: usize,
    /// `scales[k]`: scale of the value after `k` levels (`scales[0]`: the input's).
    pub scales: Vec<f64>,
    /// `multiplier_scales[k]`: scale of the plaintexts of a linear map applied after `k` levels.
    pub multiplier_scales: Vec<f64>,
    /// Rotation step -> highest level at which its Galois key is needed (the keys no
    /// evaluation can do without).
    pub rotation_keys: BTreeMap<usize, usize>,
    /// Shortcut step `3a` of a hoisted rotate-and-sum stage ([`crate::sum_stages`]) -> the
    /// stage's other steps `(a, 2a)`. A key set without it evaluates that stage as a chain;
    /// [`Self::galois_key_levels`] says which of them a client makes.
    pub sum_shortcuts: BTreeMap<usize, (usize, usize)>,
    /// Highest level at which relinearisation is needed (`None`: no square).
    pub relin_level: Option<usize>,
    /// Rotation steps the program hoists (the baby steps of its linear maps).
    pub hoisted_steps: BTreeSet<usize>,
    /// Digit layout of the keys [`Self::make_keys`] makes.
    pub key_layout: KeyLayout,
}

impl CkksPlan {
    /// Plans `program` on `params`, or explains why it does not fit.
    pub fn new(params: &Parameters, program: &Program) -> Result<Self, crate::Error> {
        let depth = program.depth();
        let top = params.max_level();
        if depth > top {
            return Err(crate::Error::DoesNotFit(format!(
                "the circuit needs {depth} levels, preset {} has {top}",
                params.name()
            )));
        }
        if program.slots != params.slots() {
            return Err(crate::Error::DoesNotFit(format!(
                "the circuit is packed for {} slots, preset {} has {}",
                program.slots,
                params.name(),
                params.slots()
            )));
        }
        let start = depth;
        let q = params.data_primes();
        let last_linear = program
            .ops
            .iter()
            .rposition(|o| matches!(o, Op::Linear(_) | Op::Gather(_)));
        let headroom_bits = output_headroom_bits(program.output_bound);
        let headroom = f64::from(headroom_bits);
        let mut scales = vec![params.default_scale()];
        let mut multiplier_scales = Vec::new();
        let mut kept = 0usize;
        for (i, op) in program.ops.iter().enumerate() {
            let k = scales.len() - 1;
            let s = scales[k];
            let prime = q[start - k] as f64;
            match op {
                Op::Linear(_) | Op::Gather(_) => {
                    let m = if Some(i) == last_linear {
                        last_multiplier_scale(params, start - k, s, headroom_bits)
                    } else {
                        prime
                    };
                    multiplier_scales.push(m);
                    scales.push(s * m / prime);
                }
                Op::Square => {
                    multiplier_scales.push(f64::NAN);
                    scales.push(s * s / prime);
                }
                Op::Keep => kept = k,
                Op::MulKept => {
                    multiplier_scales.push(f64::NAN);
                    scales.push(s * scales[kept] / prime);
                }
                _ => {}
            }
        }
        let end_scale = scales[depth];
        if end_scale.log2() + headroom + 1.0 > params.log_q_at(0) {
            return Err(crate::Error::DoesNotFit(format!(
                "outputs at scale 2^{:.1} leave less than {headroom} bits of headroom in the last \
                 modulus (2^{:.1})",
                end_scale.log2(),
                params.log_q_at(0)
            )));
        }
        if end_scale < 2f64.powi(12) {
            return Err(crate::Error::DoesNotFit(format!(
                "outputs at scale 2^{:.1} would keep too little precision",
                end_scale.log2()
            )));
        }
        let rotation_keys = program
            .rotation_steps_by_depth()
            .into_iter()
            .map(|(step, k)| (step, start - k))
            .collect();
        let sum_shortcuts = program.sum_shortcuts();
        let mut k = 0;
        let mut relin_level = None;
        for op in &program.ops {
            match op {
                Op::Square | Op::MulKept => {
                    relin_level.get_or_insert(start - k);
                    k += 1;
                }
                Op::Linear(_) | Op::Gather(_) => k += 1,
                _ => {}
            }
        }
        let hoisted_steps = program.hoisted_steps();
        Ok(Self {
            start_level: start,
            scales,
            multiplier_scales,
            rotation_keys,
            sum_shortcuts,
            relin_level,
            hoisted_steps,
            key_layout: KeyLayout::default(),
        })
    }

    /// Level of a value after `depth` levels.
    pub fn level(&self, depth: usize) -> usize {
        self.start_level.saturating_sub(depth)
    }

    /// Scale a fresh input must be encrypted at.
    pub fn input_scale(&self) -> f64 {
        self.scales[0]
    }

    /// `(step, level)` of every Galois key, as the client generates them: the required keys,
    /// and, where [`Self::key_layout`] makes them ([`KeyLayout::makes_sum_shortcuts`]), the
    /// rotate-and-sum shortcuts that can serve: a shortcut `3a` is made at the level of its
    /// stage's keys `a` and `2a` when those two share their level and, with it, their digits
    /// (a stage is hoisted only over keys of one form).
    pub fn galois_key_levels(&self) -> Vec<(i64, usize)> {
        let mut keys = self.rotation_keys.clone();
        let digits = |s: usize| self.key_layout.rotation(self.hoisted_steps.contains(&s));
        for (&third, &(a, a2)) in &self.sum_shortcuts {
            let (Some(&level), Some(&level2)) =
                (self.rotation_keys.get(&a), self.rotation_keys.get(&a2))
            else {
                continue;
            };
            let one_form = level == level2 && digits(a) == digits(a2) && digits(a) == digits(third);
            if one_form && self.key_layout.makes_sum_shortcuts() {
                keys.entry(third).or_insert(level);
            }
        }
        keys.into_iter().map(|(s, l)| (s as i64, l)).collect()
    }

    /// The hoisted rotation steps, as a client spec lists them.
    pub fn hoisted_rotations(&self) -> Vec<i64> {
        self.hoisted_steps.iter().map(|&s| s as i64).collect()
    }

    /// `(step, level, digits)` of every Galois key, as the client generates them.
    pub fn galois_keys(&self) -> Vec<(i64, usize, KeyDigits)> {
        self.key_layout
            .rotation_keys(&self.galois_key_levels(), &self.hoisted_rotations())
    }

    /// The evaluation keys the program needs, each made for the level it is first needed at,
    /// with the digits [`Self::key_layout`] gives it.
    pub fn make_keys<R: RngCore + CryptoRng + ?Sized>(
        &self,
        sk: &SecretKey,
        rng: &mut R,
    ) -> EvaluationKeys {
        let level = self.relin_level.unwrap_or(0);
        let relin = RelinKey::generate_with(sk, level, self.key_layout.relin(), rng);
        let galois = GaloisKeys::generate_each(sk, &self.galois_keys(), false, rng, &mut |_, _| {});
        EvaluationKeys { relin, galois }
    }
}
