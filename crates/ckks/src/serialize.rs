//! Versioned compact binary format.
//!
//! Every object starts with the 4-byte magic `UNCK`, a format version byte
//! ([`FORMAT_VERSION`]) and a kind byte. All objects but parameters then
//! carry the 64-bit fingerprint of their parameter set, so that input made
//! for other parameters is refused. Polynomials are packed at the exact bit
//! width of each prime; the uniform halves of keys and of fresh secret-key
//! ciphertexts are replaced by a 32-byte ChaCha20 seed.
//!
//! Deserializers never panic: truncated, corrupt, trailing, out-of-range or
//! mismatched input gives [`Error::Deserialize`] or
//! [`Error::ParametersMismatch`], and no allocation is made before the
//! input is known to be long enough for it.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::ckks::evaluator::Ciphertext;
use crate::params::{Parameters, ParametersLiteral};
use crate::poly::{Basis, Poly};
use crate::ring::{self, BitReader, BitWriter, Modulus};
use crate::rlwe::{GaloisKey, GaloisKeys, KeySwitchKey, PublicKey, RelinKey, SecretKey};
use crate::{Error, Result};
use zeroize::Zeroizing;

/// Magic bytes at the start of every serialized object.
pub const MAGIC: [u8; 4] = *b"UNCK";
/// Current format version.
pub const FORMAT_VERSION: u8 = 3;

/// Kind byte of each serialized object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Kind {
    Parameters = 1,
    Ciphertext = 2,
    PublicKey = 3,
    RelinKey = 4,
    GaloisKeys = 5,
    SecretKey = 6,
    CiphertextList = 7,
}

/// Serialized size of one Galois key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct GaloisKeySize {
    /// Galois element.
    pub galois_element: u64,
    /// Left rotation step in `[0, N/2)`, `None` for conjugation.
    pub step: Option<i64>,
    /// Highest ciphertext level the key switches.
    pub level: usize,
    /// Bytes taken by this key in [`GaloisKeys::to_bytes`].
    pub bytes: usize,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Deserialize(msg.into())
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn remaining(&self) -> usize {
        self.data.len() - self.pos
    }

    fn take(&mut self, k: usize, what: &str) -> Result<&'a [u8]> {
        if self.remaining() < k {
            return Err(bad(format!(
                "truncated input while reading {what} ({} bytes needed, {} left)",
                k,
                self.remaining()
            )));
        }
        let s = &self.data[self.pos..self.pos + k];
        self.pos += k;
        Ok(s)
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn seed(&mut self) -> Result<[u8; 32]> {
        let b = self.take(32, "seed")?;
        let mut s = [0u8; 32];
        s.copy_from_slice(b);
        Ok(s)
    }

    fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(bad(format!("{} trailing bytes", self.remaining())));
        }
        Ok(())
    }
}

fn header(kind: Kind) -> Vec<u8> {
    let mut v = MAGIC.to_vec();
    v.push(FORMAT_VERSION);
    v.push(kind as u8);
    v
}

fn read_header<'a>(data: &'a [u8], kind: Kind) -> Result<Reader<'a>> {
    let mut r = Reader::new(data);
    let magic = r.take(4, "magic")?;
    if magic != MAGIC {
        return Err(bad("bad magic (not an unseen-ckks object)"));
    }
    let version = r.u8("version")?;
    if version != FORMAT_VERSION {
        return Err(bad(format!(
            "unsupported format version {version} (expected {FORMAT_VERSION})"
        )));
    }
    let k = r.u8("kind")?;
    if k != kind as u8 {
        return Err(bad(format!(
            "wrong object kind {k} (expected {} for {kind:?})",
            kind as u8
        )));
    }
    Ok(r)
}

fn read_header_params<'a>(data: &'a [u8], kind: Kind, params: &Parameters) -> Result<Reader<'a>> {
    let mut r = read_header(data, kind)?;
    let fp = r.u64("parameter fingerprint")?;
    if fp != params.fingerprint() {
        return Err(Error::ParametersMismatch);
    }
    Ok(r)
}

fn header_params(kind: Kind, params: &Parameters) -> Vec<u8> {
    let mut v = header(kind);
    v.extend_from_slice(&params.fingerprint().to_le_bytes());
    v
}

fn poly_bytes(basis: &[&Modulus], n: usize) -> usize {
    basis.iter().map(|m| ring::packed_len(n, m.bits())).sum()
}

fn write_poly(out: &mut Vec<u8>, data: &[u64], basis: &[&Modulus], n: usize) {
    out.reserve(poly_bytes(basis, n));
    for (chunk, m) in data.chunks_exact(n).zip(basis) {
        ring::pack(out, chunk, m.bits());
    }
}

fn read_poly(r: &mut Reader<'_>, basis: &[&Modulus], n: usize, what: &str) -> Result<Vec<u64>> {
    use rayon::prelude::*;
    if r.remaining() < poly_bytes(basis, n) {
        return Err(bad(format!("truncated input while reading {what}")));
    }
    let residues = basis
        .iter()
        .map(|m| r.take(ring::packed_len(n, m.bits()), what))
        .collect::<Result<Vec<_>>>()?;
    let mut out = vec![0u64; n * basis.len()];
    // residue by residue, on every core
    out.par_chunks_exact_mut(n)
        .zip(residues.par_iter().zip(basis.par_iter()))
        .try_for_each(|(o, (bytes, m))| {
            ring::unpack(bytes, m.bits(), o).ok_or_else(|| bad(format!("truncated {what}")))?;
            if o.iter().fold(false, |over, &v| over | (v >= m.value())) {
                return Err(bad(format!("{what}: coefficient out of range")));
            }
            Ok(())
        })?;
    Ok(out)
}

impl Parameters {
    /// Serializes the parameter literal (and the generated primes, checked
    /// on load).
    pub fn to_bytes(&self) -> Vec<u8> {
        let lit = &self.literal;
        let mut v = header(Kind::Parameters);
        // at most 255 bytes, cut on a character boundary so that the name
        // stays valid UTF-8 (from_bytes refuses invalid UTF-8)
        let mut end = lit.name.len().min(255);
        while !lit.name.is_char_boundary(end) {
            end -= 1;
        }
        let name = &lit.name.as_bytes()[..end];
        v.push(name.len() as u8);
        v.extend_from_slice(name);
        v.push(lit.log_n as u8);
        v.push(lit.log_q.len() as u8);
        v.extend(lit.log_q.iter().map(|&b| b as u8));
        v.push(lit.log_p as u8);
        v.push(lit.log_scale as u8);
        v.push(u8::from(lit.insecure));
        for &q in self.q.iter().chain(std::iter::once(&self.p)) {
            v.extend_from_slice(&q.to_le_bytes());
        }
        v
    }

    /// Loads and re-validates serialized parameters. Insecure parameters are
    /// refused unless `allow_insecure` is set.
    pub fn from_bytes(data: &[u8], allow_insecure: bool) -> Result<Arc<Parameters>> {
        let mut r = read_header(data, Kind::Parameters)?;
        let name_len = r.u8("name length")? as usize;
        let name = std::str::from_utf8(r.take(name_len, "name")?)
            .map_err(|_| bad("parameter name is not UTF-8"))?
            .to_string();
        let log_n = r.u8("log_n")? as u32;
        let nq = r.u8("prime count")? as usize;
        let log_q: Vec<u32> = r
            .take(nq, "prime sizes")?
            .iter()
            .map(|&b| b as u32)
            .collect();
        let log_p = r.u8("log_p")? as u32;
        let log_scale = r.u8("log_scale")? as u32;
        let insecure = match r.u8("insecure flag")? {
            0 => false,
            1 => true,
            x => return Err(bad(format!("bad insecure flag {x}"))),
        };
        if insecure && !allow_insecure {
            return Err(Error::InsecureParameters(
                "serialized parameters are marked insecure".into(),
            ));
        }
        let mut primes = Vec::with_capacity(nq + 1);
        for _ in 0..=nq {
            primes.push(r.u64("prime")?);
        }
        r.finish()?;
        let params = Parameters::new(ParametersLiteral {
            name,
            log_n,
            log_q,
            log_p,
            log_scale,
            insecure,
        })
        .map_err(|e| bad(format!("invalid serialized parameters: {e}")))?;
        if params.q != primes[..nq] || params.p != primes[nq] {
            return Err(bad("serialized primes do not match the regenerated ones"));
        }
        Ok(params)
    }
}

impl Ciphertext {
    /// Serializes the ciphertext at its current level (drop it to the lowest
    /// level needed first to save space). Fresh secret-key ciphertexts are
    /// written seeded (half size).
    pub fn to_bytes(&self) -> Vec<u8> {
        let params = &self.params;
        let n = params.n();
        let basis = self.c0.basis().moduli(params);
        let mut v = header_params(Kind::Ciphertext, params);
        v.push(self.level() as u8);
        v.extend_from_slice(&self.scale.to_bits().to_le_bytes());
        match &self.seed {
            Some(seed) => {
                v.push(1);
                v.extend_from_slice(seed);
                write_poly(&mut v, &self.c0, &basis, n);
            }
            None => {
                v.push(0);
                write_poly(&mut v, &self.c0, &basis, n);
                write_poly(&mut v, &self.c1, &basis, n);
            }
        }
        v
    }

    /// Size in bytes of [`Self::to_bytes`].
    pub fn serialized_size(&self) -> usize {
        let basis = self.c0.basis().moduli(&self.params);
        let polys = if self.seed.is_some() { 1 } else { 2 };
        4 + 2
            + 8
            + 1
            + 8
            + 1
            + if self.seed.is_some() { 32 } else { 0 }
            + polys * poly_bytes(&basis, self.params.n())
    }

    /// Loads a ciphertext made for `params`.
    pub fn from_bytes(data: &[u8], params: &Arc<Parameters>) -> Result<Ciphertext> {
        let mut r = read_header_params(data, Kind::Ciphertext, params)?;
        let n = params.n();
        let level = r.u8("level")? as usize;
        if level > params.max_level() {
            return Err(bad(format!("level {level} above the maximum")));
        }
        let scale = f64::from_bits(r.u64("scale")?);
        if !(scale.is_finite() && scale > 0.0) {
            return Err(bad("invalid scale"));
        }
        let basis = params.basis(level);
        let (c0, c1, seed) = match r.u8("flags")? {
            1 => {
                let seed = r.seed()?;
                let c0 = read_poly(&mut r, &basis, n, "c0")?;
                (c0, ring::expand_uniform(&seed, 0, &basis, n), Some(seed))
            }
            0 => {
                let c0 = read_poly(&mut r, &basis, n, "c0")?;
                let c1 = read_poly(&mut r, &basis, n, "c1")?;
                (c0, c1, None)
            }
            x => return Err(bad(format!("bad ciphertext flags {x}"))),
        };
        r.finish()?;
        let at = Basis::Data(level);
        Ok(Ciphertext {
            params: params.clone(),
            c0: Poly::from_vec(c0, at, n),
            c1: Poly::from_vec(c1, at, n),
            scale,
            seed,
        })
    }
}

/// Whether `data` is a serialized ciphertext list (as opposed to one ciphertext).
pub fn is_ciphertext_list(data: &[u8]) -> bool {
    data.len() >= 6 && data[..4] == MAGIC && data[5] == Kind::CiphertextList as u8
}

/// Serializes several ciphertexts as one object: their count (u32), then each one's length (u64)
/// and bytes. For batches: one ciphertext per input feature.
pub fn ciphertexts_to_bytes(cts: &[Ciphertext]) -> Vec<u8> {
    let mut w = CiphertextListWriter::new();
    w.push_all(cts);
    w.finish()
}

/// A ciphertext list written a ciphertext at a time (the format of [`ciphertexts_to_bytes`]),
/// so that a batch never has to exist as ciphertexts and as bytes at once.
pub struct CiphertextListWriter {
    bytes: Vec<u8>,
    count: u32,
}

impl Default for CiphertextListWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl CiphertextListWriter {
    /// Where the count field sits: after the header.
    const COUNT_AT: usize = 6;

    /// An empty list.
    pub fn new() -> Self {
        let mut bytes = header(Kind::CiphertextList);
        debug_assert_eq!(bytes.len(), Self::COUNT_AT);
        bytes.extend_from_slice(&0u32.to_le_bytes());
        Self { bytes, count: 0 }
    }

    /// Appends the next ciphertext.
    pub fn push(&mut self, ct: &Ciphertext) {
        self.append(&ct.to_bytes());
    }

    /// Appends `cts` in order, serialized on every core.
    pub fn push_all(&mut self, cts: &[Ciphertext]) {
        use rayon::prelude::*;
        let serialized: Vec<Vec<u8>> = cts.par_iter().map(Ciphertext::to_bytes).collect();
        serialized.iter().for_each(|b| self.append(b));
    }

    /// Appends one serialized ciphertext.
    fn append(&mut self, b: &[u8]) {
        self.bytes
            .extend_from_slice(&(b.len() as u64).to_le_bytes());
        self.bytes.extend_from_slice(b);
        self.count += 1;
        self.bytes[Self::COUNT_AT..Self::COUNT_AT + 4].copy_from_slice(&self.count.to_le_bytes());
    }

    /// The serialized list.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// A serialized ciphertext list whose framing (count, lengths, no trailing bytes) has been
/// checked, read a ciphertext at a time: a large batch is parsed as it is used, never all at
/// once.
pub struct CiphertextList<'a> {
    entries: Vec<&'a [u8]>,
}

impl<'a> CiphertextList<'a> {
    /// Checks the framing of a list of at most `max_count` ciphertexts.
    pub fn parse(data: &'a [u8], max_count: usize) -> Result<Self> {
        let mut r = read_header(data, Kind::CiphertextList)?;
        let count = r.u32("ciphertext count")? as usize;
        if count > max_count {
            return Err(bad(format!(
                "{count} ciphertexts in the list, at most {max_count} expected"
            )));
        }
        // each entry takes at least its length field and a ciphertext header
        if count > r.remaining() / 8 {
            return Err(bad(format!("truncated list of {count} ciphertexts")));
        }
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let len = r.u64("ciphertext length")?;
            if len > r.remaining() as u64 {
                return Err(bad(format!("ciphertext {i} of the list is truncated")));
            }
            entries.push(r.take(len as usize, "ciphertext")?);
        }
        r.finish()?;
        Ok(Self { entries })
    }

    /// Number of ciphertexts.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Loads ciphertexts `range` (made for `params`), in parallel.
    pub fn read(
        &self,
        range: std::ops::Range<usize>,
        params: &Arc<Parameters>,
    ) -> Result<Vec<Ciphertext>> {
        use rayon::prelude::*;
        let entries = self.entries.get(range.clone()).ok_or_else(|| {
            bad(format!(
                "ciphertexts {range:?} of a list of {}",
                self.entries.len()
            ))
        })?;
        entries
            .par_iter()
            .map(|b| Ciphertext::from_bytes(b, params))
            .collect()
    }
}

/// Loads a ciphertext list made for `params` with at most `max_count` ciphertexts.
pub fn ciphertexts_from_bytes(
    data: &[u8],
    params: &Arc<Parameters>,
    max_count: usize,
) -> Result<Vec<Ciphertext>> {
    let list = CiphertextList::parse(data, max_count)?;
    list.read(0..list.len(), params)
}

impl PublicKey {
    /// Serializes the public key (seeded: `b` and the seed of `a`).
    pub fn to_bytes(&self) -> Vec<u8> {
        let params = &self.params;
        let mut v = header_params(Kind::PublicKey, params);
        v.extend_from_slice(&self.seed);
        write_poly(
            &mut v,
            &self.b,
            &params.ext_basis(params.max_level()),
            params.n(),
        );
        v
    }

    /// Loads a public key made for `params`.
    pub fn from_bytes(data: &[u8], params: &Arc<Parameters>) -> Result<PublicKey> {
        let mut r = read_header_params(data, Kind::PublicKey, params)?;
        let n = params.n();
        let basis = params.ext_basis(params.max_level());
        let seed = r.seed()?;
        let b = read_poly(&mut r, &basis, n, "public key")?;
        r.finish()?;
        let a = ring::expand_uniform(&seed, 0, &basis, n);
        let at = Basis::Extended(params.max_level());
        Ok(PublicKey {
            params: params.clone(),
            seed,
            b: Poly::from_vec(b, at, n),
            a: Poly::from_vec(a, at, n),
        })
    }
}

/// Bytes of a serialized key-switching key made for `level` with `special` special primes:
/// its seed, level and special-prime count, and the `b` half of each digit over the key's
/// primes.
fn ksk_bytes(params: &Parameters, level: usize, special: usize) -> usize {
    let digits = params.key_basis(level, special).groups.len();
    32 + 2 + digits * poly_bytes(&params.key_moduli(level, special), params.n())
}

/// Writes a key-switching key; `perm` undoes the permutation a Galois key is held in.
fn write_ksk(v: &mut Vec<u8>, params: &Parameters, key: &KeySwitchKey, perm: Option<&[u32]>) {
    let n = params.n();
    let basis = params.key_moduli(key.level, key.special);
    v.extend_from_slice(&key.seed);
    // levels are below 256: presets have at most a few dozen primes
    v.push(key.level as u8);
    v.push(key.special as u8);
    for i in 0..params.key_basis(key.level, key.special).groups.len() {
        let digit = key.b.digit(i, n);
        match perm {
            Some(perm) => write_poly(v, &crate::rlwe::permute(&digit, perm, n), &basis, n),
            None => write_poly(v, &digit, &basis, n),
        }
    }
}

/// Reads a key-switching key, held permuted by `hold` if given (a Galois key).
fn read_ksk(r: &mut Reader<'_>, params: &Parameters, hold: Option<&[u32]>) -> Result<KeySwitchKey> {
    let n = params.n();
    let seed = r.seed()?;
    let level = r.u8("key level")? as usize;
    if level > params.max_level() {
        return Err(bad(format!(
            "key level {level} above the parameters' top level {}",
            params.max_level()
        )));
    }
    let special = r.u8("special prime count")? as usize;
    if !(1..=params.most_special_primes(level)).contains(&special) {
        return Err(bad(format!(
            "{special} special primes for a key at level {level} (1 to {})",
            params.most_special_primes(level)
        )));
    }
    if r.remaining() < ksk_bytes(params, level, special) - 34 {
        return Err(bad("truncated key-switching key"));
    }
    let basis = params.key_moduli(level, special);
    let digits = params.key_basis(level, special).groups.len();
    // digit by digit into the key's widths: a loaded key never holds a 64-bit copy of itself
    let b = crate::rlwe::KeyHalf::from_digit_iter(
        (0..digits).map(|_| read_poly(r, &basis, n, "key-switching key")),
        &basis,
        digits,
        n,
        hold,
    )?;
    let a = KeySwitchKey::expand_a_half(params, (level, special), &seed, hold);
    Ok(KeySwitchKey {
        seed,
        level,
        special,
        b,
        a,
    })
}

impl RelinKey {
    /// Serializes the relinearisation key (seeded).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = header_params(Kind::RelinKey, &self.params);
        write_ksk(&mut v, &self.params, &self.key, None);
        v
    }

    /// Loads a relinearisation key made for `params`.
    pub fn from_bytes(data: &[u8], params: &Arc<Parameters>) -> Result<RelinKey> {
        let mut r = read_header_params(data, Kind::RelinKey, params)?;
        let key = read_ksk(&mut r, params, None)?;
        r.finish()?;
        Ok(RelinKey {
            params: params.clone(),
            key,
        })
    }
}

impl GaloisKeys {
    /// Serializes all Galois keys (seeded).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = header_params(Kind::GaloisKeys, &self.params);
        v.extend_from_slice(&(self.keys.len() as u32).to_le_bytes());
        for (g, k) in &self.keys {
            v.extend_from_slice(&g.to_le_bytes());
            write_ksk(&mut v, &self.params, &k.key, Some(&k.perm));
        }
        v
    }

    /// Serialized size of each key (its share of [`Self::to_bytes`]).
    pub fn key_sizes(&self) -> Vec<GaloisKeySize> {
        self.keys
            .iter()
            .map(|(&g, k)| GaloisKeySize {
                galois_element: g,
                step: self.step_of(g),
                level: k.key.level,
                bytes: 8 + ksk_bytes(&self.params, k.key.level, k.key.special),
            })
            .collect()
    }

    /// Loads Galois keys made for `params`; the keys must come in increasing order of their
    /// Galois element, as [`Self::to_bytes`] writes them.
    pub fn from_bytes(data: &[u8], params: &Arc<Parameters>) -> Result<GaloisKeys> {
        let mut r = read_header_params(data, Kind::GaloisKeys, params)?;
        let count = r.u32("key count")? as usize;
        // every key takes at least the size of a level-0 key
        let least = 8 + ksk_bytes(params, 0, 1);
        if count > r.remaining() / least {
            return Err(bad(format!(
                "{count} Galois keys need at least {} bytes, {} present",
                count.saturating_mul(least),
                r.remaining()
            )));
        }
        let two_n = 2 * params.n() as u64;
        let mut keys = BTreeMap::new();
        for _ in 0..count {
            let g = r.u64("galois element")?;
            if g % 2 == 0 || g >= two_n || g == 1 {
                return Err(bad(format!("invalid Galois element {g}")));
            }
            // `to_bytes` writes the keys in increasing order of their element: any other order
            // (or a repeated element) would load and then re-encode to other bytes
            if let Some((&last, _)) = keys.last_key_value() {
                if g == last {
                    return Err(bad(format!("duplicate Galois element {g}")));
                }
                if g < last {
                    return Err(bad(format!(
                        "Galois element {g} after {last}: keys must come in increasing order"
                    )));
                }
            }
            let perm = params.permutation(g);
            let key = read_ksk(
                &mut r,
                params,
                Some(&crate::rlwe::inverse_permutation(&perm)),
            )?;
            keys.insert(g, GaloisKey { key, perm });
        }
        r.finish()?;
        Ok(GaloisKeys {
            params: params.clone(),
            keys,
        })
    }
}

impl SecretKey {
    /// Serializes the secret key (2 bits per coefficient). Keep it private;
    /// the buffer is wiped when dropped.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut v = header_params(Kind::SecretKey, &self.params);
        // allocate once: a reallocation would leave a copy of the partially
        // written key in freed memory
        v.reserve_exact(ring::packed_len(self.coeffs.len(), 2) + 1);
        let mut w = BitWriter::new(v);
        for &c in &self.coeffs {
            w.write(
                match c {
                    1 => 1,
                    -1 => 2,
                    _ => 0,
                },
                2,
            );
        }
        Zeroizing::new(w.finish())
    }

    /// Loads a secret key made for `params`.
    pub fn from_bytes(data: &[u8], params: &Arc<Parameters>) -> Result<SecretKey> {
        let mut r = read_header_params(data, Kind::SecretKey, params)?;
        let n = params.n();
        let bytes = r.take(ring::packed_len(n, 2), "secret key")?;
        r.finish()?;
        let mut br = BitReader::new(bytes);
        let mut coeffs = Zeroizing::new(Vec::with_capacity(n));
        for _ in 0..n {
            coeffs.push(match br.read(2) {
                Some(0) => 0i8,
                Some(1) => 1,
                Some(2) => -1,
                _ => return Err(bad("invalid secret key coefficient")),
            });
        }
        Ok(SecretKey::from_coeffs(params, std::mem::take(&mut *coeffs)))
    }
}
