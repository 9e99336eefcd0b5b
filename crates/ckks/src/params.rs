//! CKKS parameters: named presets, validation against the
//! HomomorphicEncryption.org security table, and precomputed RNS constants.

use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};

use crate::gadget::{KeyBasis, SwitchPlan, MAX_SPECIAL_PRIMES};
use crate::ring::{self, Modulus, MAX_PRIME_BITS, MIN_PRIME_BITS};
use crate::rlwe::KeyDigits;
use crate::{Error, Result};

/// Security level of a parameter set for a uniform ternary secret, from the
/// HomomorphicEncryption.org standard (classical attacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub enum SecurityLevel {
    /// Below 128 bits (or unknown ring degree): only for tests.
    Insecure,
    /// At least 128-bit security.
    Bits128,
    /// At least 192-bit security.
    Bits192,
    /// At least 256-bit security.
    Bits256,
}

impl std::fmt::Display for SecurityLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecurityLevel::Insecure => "INSECURE (below 128-bit)",
            SecurityLevel::Bits128 => "128-bit",
            SecurityLevel::Bits192 => "192-bit",
            SecurityLevel::Bits256 => "256-bit",
        })
    }
}

/// Maximal `log2(QP)` (special primes included) for a ternary secret, from
/// the HomomorphicEncryption.org security standard (as used by SEAL).
pub fn max_log_qp(n: usize, level: SecurityLevel) -> Option<u32> {
    let row = match n {
        1024 => [27, 19, 14],
        2048 => [54, 37, 29],
        4096 => [109, 75, 58],
        8192 => [218, 152, 118],
        16384 => [438, 305, 237],
        32768 => [881, 611, 476],
        _ => return None,
    };
    match level {
        SecurityLevel::Insecure => None,
        SecurityLevel::Bits128 => Some(row[0]),
        SecurityLevel::Bits192 => Some(row[1]),
        SecurityLevel::Bits256 => Some(row[2]),
    }
}

/// Security level reached by a ring degree and a total modulus bit count.
pub fn security_level(n: usize, qp_bits: u32) -> SecurityLevel {
    for lvl in [
        SecurityLevel::Bits256,
        SecurityLevel::Bits192,
        SecurityLevel::Bits128,
    ] {
        if let Some(max) = max_log_qp(n, lvl) {
            if qp_bits <= max {
                return lvl;
            }
        }
    }
    SecurityLevel::Insecure
}

/// Named parameter presets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Preset {
    /// The reference CNN set: N = 8192, data primes 31 + 6 x 26 bits, one
    /// 31-bit special prime (218 bits), scale 2^26, depth 6. 128-bit secure.
    Cnn8192,
    /// More precision: N = 8192, data primes 49 + 3 x 40 bits, 49-bit special
    /// prime (218 bits), scale 2^40, depth 3. 128-bit secure.
    Precise8192,
    /// Deeper and more precise: N = 16384, data primes 50 + 8 x 40 bits,
    /// 50-bit special prime (420 bits), scale 2^40, depth 8. 128-bit secure.
    Deep16384,
    /// Small and fast: N = 4096, data primes 39 + 30 bits, 40-bit special
    /// prime (109 bits), scale 2^30, depth 1. 128-bit secure.
    Small4096,
    /// Deeper CNNs: N = 16384, data primes 40 + 11 x 30 bits, one 40-bit
    /// special prime (410 bits of at most 438), scale 2^30, depth 11.
    /// 128-bit secure.
    Cnn16384,
    /// Deepest CNNs: N = 32768, data primes 40 + 25 x 30 bits, one 40-bit
    /// special prime (830 bits of at most 881), scale 2^30, depth 25.
    /// 128-bit secure.
    Cnn32768,
}

impl Preset {
    /// All presets.
    pub const ALL: [Preset; 6] = [
        Preset::Cnn8192,
        Preset::Precise8192,
        Preset::Deep16384,
        Preset::Small4096,
        Preset::Cnn16384,
        Preset::Cnn32768,
    ];

    /// The presets a compiled network may run at, smallest first: the compiler picks the first
    /// one its circuit fits.
    pub const CNN: [Preset; 3] = [Preset::Cnn8192, Preset::Cnn16384, Preset::Cnn32768];

    /// The unchecked literal of the preset.
    pub fn literal(self) -> ParametersLiteral {
        let (name, log_n, log_q, log_p, log_scale) = match self {
            Preset::Cnn8192 => ("n8192-cnn", 13, vec![31, 26, 26, 26, 26, 26, 26], 31, 26),
            Preset::Precise8192 => ("n8192-precise", 13, vec![49, 40, 40, 40], 49, 40),
            Preset::Deep16384 => (
                "n16384-deep",
                14,
                vec![50, 40, 40, 40, 40, 40, 40, 40, 40],
                50,
                40,
            ),
            Preset::Small4096 => ("n4096-small", 12, vec![39, 30], 40, 30),
            Preset::Cnn16384 => (
                "n16384-cnn",
                14,
                std::iter::once(40)
                    .chain(std::iter::repeat_n(30, 11))
                    .collect(),
                40,
                30,
            ),
            Preset::Cnn32768 => (
                "n32768-cnn",
                15,
                std::iter::once(40)
                    .chain(std::iter::repeat_n(30, 25))
                    .collect(),
                40,
                30,
            ),
        };
        ParametersLiteral {
            name: name.to_string(),
            log_n,
            log_q,
            log_p,
            log_scale,
            insecure: false,
        }
    }

    /// The preset's short name (e.g. `n8192-cnn`).
    pub fn name(self) -> String {
        self.literal().name
    }

    /// Looks a preset up by its short name.
    pub fn from_name(name: &str) -> Option<Preset> {
        Preset::ALL.into_iter().find(|p| p.name() == name)
    }
}

/// Unchecked description of a parameter set; turn it into [`Parameters`]
/// with [`Parameters::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParametersLiteral {
    /// Human-readable name.
    pub name: String,
    /// log2 of the ring degree N.
    pub log_n: u32,
    /// Bit sizes of the data primes `q_0, ..., q_L` (q_0 first, consumed last).
    pub log_q: Vec<u32>,
    /// Bit size of the special (key-switching) prime P.
    pub log_p: u32,
    /// log2 of the default encoding scale.
    pub log_scale: u32,
    /// Allows parameters below 128-bit security. For tests only.
    pub insecure: bool,
}

/// Validated, immutable CKKS parameters with precomputed RNS tables; share
/// them with `Arc`.
pub struct Parameters {
    pub(crate) literal: ParametersLiteral,
    pub(crate) n: usize,
    pub(crate) q: Vec<u64>,
    pub(crate) p: u64,
    pub(crate) security: SecurityLevel,
    pub(crate) qp_bits: u32,
    pub(crate) log_qp: f64,
    /// Data primes then the special prime (index `q.len()`).
    pub(crate) moduli: Vec<Modulus>,
    pub(crate) exp_of_pos: Vec<u32>,
    pub(crate) pos_of_exp: Vec<u32>,
    /// `rescale_inv[t][j] = (q_t^-1 mod q_j, shoup)` for `j < t`.
    pub(crate) rescale_inv: Vec<Vec<(u64, u64)>>,
    /// `(P^-1 mod q_j, shoup)`.
    pub(crate) p_inv: Vec<(u64, u64)>,
    /// `garner[i][j] = (q_j^-1 mod q_i, shoup)` for `j < i`.
    pub(crate) garner: Vec<Vec<(u64, u64)>>,
    pub(crate) fingerprint: u64,
    /// `key_bases[L][k - 1]`: the special primes and digits of a key made for level `L` with
    /// `k` special primes.
    pub(crate) key_bases: Vec<Vec<KeyBasis>>,
    /// `plans[((L * MAX_SPECIAL_PRIMES) + k - 1) * nq + l]`: a key switch at level `l` with a
    /// key made for level `L` with `k` special primes, built when first needed.
    pub(crate) plans: Vec<OnceLock<Arc<SwitchPlan>>>,
}

impl std::fmt::Debug for Parameters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parameters")
            .field("name", &self.literal.name)
            .field("n", &self.n)
            .field("q", &self.q)
            .field("p", &self.p)
            .field("log_scale", &self.literal.log_scale)
            .field("security", &self.security)
            .finish()
    }
}

fn fnv1a(h: &mut u64, bytes: &[u8]) {
    for &b in bytes {
        *h ^= b as u64;
        *h = h.wrapping_mul(0x100_0000_01b3);
    }
}

impl Parameters {
    /// Builds a named preset.
    pub fn preset(preset: Preset) -> Result<Arc<Parameters>> {
        Parameters::new(preset.literal())
    }

    /// Validates a literal and precomputes everything. Refuses parameters
    /// below 128-bit security unless `literal.insecure` is set.
    pub fn new(literal: ParametersLiteral) -> Result<Arc<Parameters>> {
        let inv = |s: String| Err(Error::InvalidParameters(s));
        if !(4..=16).contains(&literal.log_n) {
            return inv(format!("log_n = {} not in [4, 16]", literal.log_n));
        }
        let n = 1usize << literal.log_n;
        if literal.log_q.is_empty() || literal.log_q.len() > 60 {
            return inv(format!(
                "need 1 to 60 data primes, got {}",
                literal.log_q.len()
            ));
        }
        for &b in literal.log_q.iter().chain(std::iter::once(&literal.log_p)) {
            if !(MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(&b) {
                return inv(format!(
                    "prime size {b} bits not in [{MIN_PRIME_BITS}, {MAX_PRIME_BITS}]"
                ));
            }
            if b <= literal.log_n + 1 {
                return inv(format!("prime size {b} bits too small for N = {n}"));
            }
        }
        let max_q = literal.log_q.iter().copied().max().unwrap_or(0);
        if literal.log_p < max_q {
            return inv(format!(
                "special prime ({} bits) must be at least as large as the largest data prime ({max_q} bits) for key-switching noise",
                literal.log_p
            ));
        }
        if literal.log_scale == 0 || literal.log_scale >= literal.log_q[0] {
            return inv(format!(
                "log_scale = {} must be in [1, {}) (below the first prime)",
                literal.log_scale, literal.log_q[0]
            ));
        }
        let qp_bits: u32 = literal.log_q.iter().sum::<u32>() + literal.log_p;
        let security = security_level(n, qp_bits);
        if security == SecurityLevel::Insecure && !literal.insecure {
            let why = match max_log_qp(n, SecurityLevel::Bits128) {
                Some(max) => format!(
                    "log2(QP) = {qp_bits} bits exceeds the 128-bit bound of {max} bits for N = {n} (HomomorphicEncryption.org standard, ternary secret); use fewer or smaller primes or a larger N"
                ),
                None => format!(
                    "N = {n} is not covered by the HomomorphicEncryption.org table (N in 1024..=32768 required for 128-bit security)"
                ),
            };
            return Err(Error::InsecureParameters(why));
        }
        let mut sizes = literal.log_q.clone();
        sizes.push(literal.log_p);
        let primes = ring::generate_primes(&sizes, n).ok_or_else(|| {
            Error::InvalidParameters("not enough NTT-friendly primes of the requested sizes".into())
        })?;
        let l = literal.log_q.len();
        let q = primes[..l].to_vec();
        let p = primes[l];
        let moduli = primes
            .iter()
            .map(|&x| Modulus::new(x, n))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| Error::InvalidParameters("NTT plan creation failed".into()))?;
        let (exp_of_pos, pos_of_exp) = ring::ntt_exponents(&moduli[0], n)
            .ok_or_else(|| Error::InvalidParameters("unexpected NTT ordering".into()))?;
        for m in &moduli[1..] {
            let (e2, _) = ring::ntt_exponents(m, n)
                .ok_or_else(|| Error::InvalidParameters("unexpected NTT ordering".into()))?;
            if e2 != exp_of_pos {
                return inv("NTT orderings differ between primes".into());
            }
        }
        let rescale_inv = (0..l)
            .map(|t| {
                (0..t)
                    .map(|j| {
                        let m = &moduli[j];
                        let w = m.inv(m.reduce(q[t]));
                        (w, m.shoup(w))
                    })
                    .collect()
            })
            .collect();
        let p_inv = (0..l)
            .map(|j| {
                let m = &moduli[j];
                let w = m.inv(m.reduce(p));
                (w, m.shoup(w))
            })
            .collect();
        let garner = (0..l)
            .map(|i| {
                (0..i)
                    .map(|j| {
                        let m = &moduli[i];
                        let w = m.inv(m.reduce(q[j]));
                        (w, m.shoup(w))
                    })
                    .collect()
            })
            .collect();
        let log_primes: Vec<f64> = primes.iter().map(|&x| (x as f64).log2()).collect();
        let key_bases = (0..l)
            .map(|level| KeyBasis::candidates(&log_primes, l, level))
            .collect();
        let log_qp = log_primes.iter().sum();
        let mut fingerprint = 0xcbf2_9ce4_8422_2325u64;
        fnv1a(&mut fingerprint, &(n as u64).to_le_bytes());
        for x in &primes {
            fnv1a(&mut fingerprint, &x.to_le_bytes());
        }
        fnv1a(&mut fingerprint, &literal.log_scale.to_le_bytes());
        Ok(Arc::new(Parameters {
            literal,
            n,
            q,
            p,
            security,
            qp_bits,
            log_qp,
            moduli,
            exp_of_pos,
            pos_of_exp,
            rescale_inv,
            p_inv,
            garner,
            fingerprint,
            key_bases,
            plans: (0..l * MAX_SPECIAL_PRIMES * l)
                .map(|_| OnceLock::new())
                .collect(),
        }))
    }

    /// The literal these parameters were built from.
    pub fn literal(&self) -> &ParametersLiteral {
        &self.literal
    }

    /// Name of the parameter set.
    pub fn name(&self) -> &str {
        &self.literal.name
    }

    /// Ring degree N.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Number of complex slots (N/2).
    pub fn slots(&self) -> usize {
        self.n / 2
    }

    /// The data primes q_0..q_L.
    pub fn data_primes(&self) -> &[u64] {
        &self.q
    }

    /// The special key-switching prime P.
    pub fn special_prime(&self) -> u64 {
        self.p
    }

    /// Highest level of a fresh ciphertext (number of data primes - 1).
    pub fn max_level(&self) -> usize {
        self.q.len() - 1
    }

    /// Default encoding scale `2^log_scale`.
    pub fn default_scale(&self) -> f64 {
        (self.literal.log_scale as f64).exp2()
    }

    /// Security level of these parameters.
    pub fn security_level(&self) -> SecurityLevel {
        self.security
    }

    /// Exact `log2(QP)` (special prime included).
    pub fn log_qp(&self) -> f64 {
        self.log_qp
    }

    /// Sum of the prime bit sizes (the quantity bounded by the security table).
    pub fn qp_bits(&self) -> u32 {
        self.qp_bits
    }

    /// `log2(Q_level)` of the data primes up to `level`.
    pub fn log_q_at(&self, level: usize) -> f64 {
        self.q[..=level.min(self.q.len() - 1)]
            .iter()
            .map(|&x| (x as f64).log2())
            .sum()
    }

    /// A 64-bit fingerprint identifying the parameter set (stored in
    /// serialized objects to detect mismatches).
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Whether two parameter handles describe the same parameter set.
    pub fn same_as(&self, other: &Parameters) -> bool {
        std::ptr::eq(self, other) || self.fingerprint == other.fingerprint
    }

    pub(crate) fn basis(&self, level: usize) -> Vec<&Modulus> {
        self.moduli[..=level].iter().collect()
    }

    /// Data primes up to `level` followed by the special prime.
    pub(crate) fn ext_basis(&self, level: usize) -> Vec<&Modulus> {
        let mut b = self.basis(level);
        b.push(&self.moduli[self.q.len()]);
        b
    }

    /// The special primes and digits of a key made for `level` with `special` special primes
    /// (`1..=`[`Self::most_special_primes`]).
    pub(crate) fn key_basis(&self, level: usize, special: usize) -> &KeyBasis {
        &self.key_bases[level][special - 1]
    }

    /// The most special primes a key made for `level` can have: `P`, and a spare data prime
    /// below the top level.
    pub(crate) fn most_special_primes(&self, level: usize) -> usize {
        self.key_bases[level].len()
    }

    /// Special primes of a key made for `level` with digits `digits`: one for
    /// [`KeyDigits::PerPrime`]; for [`KeyDigits::Paired`], the count that makes the key
    /// smallest (the fewer on a tie).
    pub(crate) fn special_primes(&self, level: usize, digits: KeyDigits) -> usize {
        match digits {
            KeyDigits::PerPrime => 1,
            KeyDigits::Paired => {
                let bases = &self.key_bases[level];
                (1..=bases.len())
                    .min_by_key(|&k| (bases[k - 1].size(), k))
                    .unwrap_or(1)
            }
        }
    }

    /// The residues' moduli of a key made for `level` with `special` special primes: data
    /// primes `0..=level`, then its special primes.
    pub(crate) fn key_moduli(&self, level: usize, special: usize) -> Vec<&Modulus> {
        self.key_basis(level, special)
            .moduli()
            .into_iter()
            .map(|i| &self.moduli[i])
            .collect()
    }

    /// The plan of a key switch at `level` with a key made for `key_level` (`level <=
    /// key_level`) with `special` special primes.
    pub(crate) fn switch_plan(
        &self,
        key_level: usize,
        special: usize,
        level: usize,
    ) -> Arc<SwitchPlan> {
        let at = (key_level * MAX_SPECIAL_PRIMES + special - 1) * self.q.len() + level;
        self.plans[at]
            .get_or_init(|| {
                Arc::new(SwitchPlan::new(
                    &self.moduli,
                    self.key_basis(key_level, special).clone(),
                    level,
                ))
            })
            .clone()
    }

    pub(crate) fn special(&self) -> &Modulus {
        &self.moduli[self.q.len()]
    }

    /// Number of data primes (L + 1).
    pub(crate) fn nq(&self) -> usize {
        self.q.len()
    }

    /// Galois element of a left rotation by `step` slots (negative: right).
    pub fn galois_element(&self, step: i64) -> u64 {
        let slots = self.slots() as i64;
        let k = step.rem_euclid(slots) as u64;
        let two_n = 2 * self.n as u64;
        let mut g = 1u64;
        let mut b = 5u64;
        let mut e = k;
        while e > 0 {
            if e & 1 == 1 {
                g = g * b % two_n;
            }
            b = b * b % two_n;
            e >>= 1;
        }
        g
    }

    /// Galois element of complex conjugation.
    pub fn conjugation_element(&self) -> u64 {
        2 * self.n as u64 - 1
    }

    pub(crate) fn permutation(&self, g: u64) -> Vec<u32> {
        ring::automorphism_permutation(&self.exp_of_pos, &self.pos_of_exp, g)
    }

    /// Human-readable description (as printed by `unseen ckks params`).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        let lit = &self.literal;
        let _ = writeln!(s, "CKKS parameters `{}`", lit.name);
        let _ = writeln!(
            s,
            "  ring degree N      : {} (2^{}), {} complex slots",
            self.n,
            lit.log_n,
            self.slots()
        );
        let _ = writeln!(
            s,
            "  data primes        : {} x {:?} bits",
            self.q.len(),
            lit.log_q
        );
        for (i, q) in self.q.iter().enumerate() {
            let _ = writeln!(s, "    q{i:<2} = {q}");
        }
        let _ = writeln!(s, "  special prime P    : {} ({} bits)", self.p, lit.log_p);
        let bound = max_log_qp(self.n, SecurityLevel::Bits128)
            .map(|b| b.to_string())
            .unwrap_or_else(|| "n/a".into());
        let _ = writeln!(
            s,
            "  log2(QP)           : {:.2} ({} bits total; 128-bit bound for N = {}: {})",
            self.log_qp, self.qp_bits, self.n, bound
        );
        let _ = writeln!(s, "  default scale      : 2^{}", lit.log_scale);
        let _ = writeln!(s, "  multiplicative depth: {}", self.q.len() - 1);
        let _ = writeln!(
            s,
            "  security           : {} (HomomorphicEncryption.org standard, uniform ternary secret, classical)",
            self.security
        );
        let _ = write!(
            s,
            "  key switching      : hybrid, 1 special prime, {} digits (one per data prime)",
            self.q.len()
        );
        s
    }
}

/// Descriptions of every preset, separated by blank lines.
pub fn describe_presets() -> Result<String> {
    let mut out = Vec::new();
    for p in Preset::ALL {
        out.push(Parameters::preset(p)?.describe());
    }
    Ok(out.join("\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_secure() {
        for p in Preset::ALL {
            let params = Parameters::preset(p).expect("preset");
            assert!(params.security_level() >= SecurityLevel::Bits128, "{p:?}");
            let max = max_log_qp(params.n(), SecurityLevel::Bits128).expect("table");
            assert!(params.qp_bits() <= max);
            assert!(params.log_qp() <= max as f64);
            println!("{}\n", params.describe());
        }
        let cnn = Parameters::preset(Preset::Cnn8192).expect("cnn");
        assert_eq!(cnn.qp_bits(), 218);
        let text = cnn.describe();
        assert!(text.contains("log2(QP)") && text.contains("128-bit") && text.contains("8192"));
        assert!(describe_presets().expect("all").contains("n16384-deep"));
        assert_eq!(cnn.data_primes().len(), 7);
        assert_eq!(Preset::from_name("n8192-cnn"), Some(Preset::Cnn8192));
    }

    #[test]
    fn insecure_parameters_refused_unless_flagged() {
        let mut lit = Preset::Cnn8192.literal();
        lit.log_q.push(26);
        let err = Parameters::new(lit.clone()).expect_err("must be refused");
        let msg = err.to_string();
        assert!(matches!(err, Error::InsecureParameters(_)));
        assert!(msg.contains("244") && msg.contains("218"), "{msg}");
        lit.insecure = true;
        let params = Parameters::new(lit).expect("explicitly insecure");
        assert_eq!(params.security_level(), SecurityLevel::Insecure);
        assert!(params.describe().contains("INSECURE"));

        let small = ParametersLiteral {
            name: "tiny".into(),
            log_n: 6,
            log_q: vec![30, 25],
            log_p: 30,
            log_scale: 20,
            insecure: false,
        };
        assert!(matches!(
            Parameters::new(small.clone()),
            Err(Error::InsecureParameters(_))
        ));
        assert!(Parameters::new(ParametersLiteral {
            insecure: true,
            ..small
        })
        .is_ok());
    }

    #[test]
    fn malformed_parameters_refused() {
        let mut lit = Preset::Cnn8192.literal();
        lit.log_p = 26;
        assert!(matches!(
            Parameters::new(lit),
            Err(Error::InvalidParameters(_))
        ));
        let mut lit = Preset::Cnn8192.literal();
        lit.log_scale = 40;
        assert!(matches!(
            Parameters::new(lit),
            Err(Error::InvalidParameters(_))
        ));
        let mut lit = Preset::Cnn8192.literal();
        lit.log_q = vec![];
        assert!(matches!(
            Parameters::new(lit),
            Err(Error::InvalidParameters(_))
        ));
        let mut lit = Preset::Cnn8192.literal();
        lit.log_q[1] = 62;
        assert!(matches!(
            Parameters::new(lit),
            Err(Error::InvalidParameters(_))
        ));
    }
}
