//! Encrypted numbers and their homomorphic operations, with phe's exponent rules.

use std::sync::Arc;

use rand_core::{CryptoRng, RngCore};
use rug::ops::Pow;
use rug::Integer;

use crate::encoding::{Decoded, EncodedNumber, Scalar, BASE, MAX_ABS_EXPONENT};
use crate::keys::{PrivateKey, PublicKey};
use crate::math::multi_pow;
use crate::randomizer::Randomness;
use crate::{Error, Result};

/// A Paillier ciphertext of `mantissa * 16^exponent` under a public key.
///
/// Operations return results that are *not* re-randomised; call [`Self::rerandomize`] before a
/// computed result leaves the party that computed it.
#[derive(Debug, Clone)]
pub struct EncryptedNumber {
    public_key: Arc<PublicKey>,
    ciphertext: Integer,
    exponent: i32,
}

/// Up to this many negative weights, their ciphertexts are inverted one by one (an inversion
/// costs less than the squarings a second multi-exponentiation would repeat).
const FEW_NEGATIVE_TERMS: usize = 4;

fn checked_exponent(e: i64) -> Result<i32> {
    if e.abs() > i64::from(MAX_ABS_EXPONENT) {
        return Err(Error::ExponentRange(e));
    }
    Ok(e as i32)
}

impl EncryptedNumber {
    /// Wraps a received ciphertext after checking it lies in `Z*_{n^2}` and the exponent range.
    pub fn new(public_key: Arc<PublicKey>, ciphertext: Integer, exponent: i32) -> Result<Self> {
        public_key.check_ciphertext(&ciphertext)?;
        checked_exponent(i64::from(exponent))?;
        Ok(Self {
            public_key,
            ciphertext,
            exponent,
        })
    }

    /// Encrypts an encoded number with the public key.
    pub fn encrypt_encoded<R: RngCore + CryptoRng + ?Sized>(
        pk: &Arc<PublicKey>,
        value: &EncodedNumber,
        mode: Randomness,
        rng: &mut R,
    ) -> Self {
        let mut c = pk.g_pow(&value.encoding);
        c *= pk.obfuscator(mode, rng);
        c %= pk.n_square();
        Self {
            public_key: pk.clone(),
            ciphertext: c,
            exponent: value.exponent,
        }
    }

    /// Encodes (exactly, phe's default) and encrypts a number with the public key.
    pub fn encrypt<R: RngCore + CryptoRng + ?Sized>(
        pk: &Arc<PublicKey>,
        value: &Scalar,
        mode: Randomness,
        rng: &mut R,
    ) -> Result<Self> {
        let encoded = EncodedNumber::encode(pk, value, None, None)?;
        Ok(Self::encrypt_encoded(pk, &encoded, mode, rng))
    }

    /// Encrypts with the private key: the random factor is computed mod `p^2` and `q^2` (CRT).
    pub fn encrypt_encoded_with_private_key<R: RngCore + CryptoRng + ?Sized>(
        sk: &PrivateKey,
        value: &EncodedNumber,
        mode: Randomness,
        rng: &mut R,
    ) -> Self {
        let pk = sk.public_key();
        let mut c = pk.g_pow(&value.encoding);
        c *= sk.obfuscator(mode, rng);
        c %= pk.n_square();
        Self {
            public_key: pk.clone(),
            ciphertext: c,
            exponent: value.exponent,
        }
    }

    /// Encodes and encrypts a number with the private key (CRT, faster than with the public key).
    pub fn encrypt_with_private_key<R: RngCore + CryptoRng + ?Sized>(
        sk: &PrivateKey,
        value: &Scalar,
        mode: Randomness,
        rng: &mut R,
    ) -> Result<Self> {
        let encoded = EncodedNumber::encode(sk.public_key(), value, None, None)?;
        Ok(Self::encrypt_encoded_with_private_key(
            sk, &encoded, mode, rng,
        ))
    }

    /// The public key this number is encrypted under.
    pub fn public_key(&self) -> &Arc<PublicKey> {
        &self.public_key
    }

    /// The raw ciphertext in `Z*_{n^2}`.
    pub fn ciphertext(&self) -> &Integer {
        &self.ciphertext
    }

    /// The base-16 exponent.
    pub fn exponent(&self) -> i32 {
        self.exponent
    }

    fn same_key(&self, other: &PublicKey) -> Result<()> {
        if std::ptr::eq(&*self.public_key, other) || *self.public_key == *other {
            Ok(())
        } else {
            Err(Error::KeyMismatch)
        }
    }

    fn with(&self, ciphertext: Integer, exponent: i32) -> Self {
        Self {
            public_key: self.public_key.clone(),
            ciphertext,
            exponent,
        }
    }

    /// Multiplies the ciphertext by a fresh encryption of zero (`r^n`), so that it no longer
    /// reveals how it was computed.
    pub fn rerandomize<R: RngCore + CryptoRng + ?Sized>(&mut self, mode: Randomness, rng: &mut R) {
        let obfuscator = self.public_key.obfuscator(mode, rng);
        self.rerandomize_with(&obfuscator);
    }

    /// Re-randomises with an obfuscator drawn beforehand by [`PublicKey::obfuscator`] for this
    /// key (for example on another core while the result is being computed). Each obfuscator
    /// must be used once only.
    pub fn rerandomize_with(&mut self, obfuscator: &Integer) {
        self.ciphertext *= obfuscator;
        self.ciphertext %= self.public_key.n_square();
    }

    /// `c^k mod n^2` for a plaintext multiplier `k` in `[0, n)`, using an inverse for encodings
    /// of negative numbers (as phe does).
    fn raw_mul(&self, k: &Integer) -> Result<Integer> {
        let pk = &self.public_key;
        if *k < 0 || *k >= *pk.n() {
            return Err(Error::CorruptedEncoding);
        }
        let threshold = Integer::from(pk.n() - pk.max_int());
        if *k >= threshold {
            let neg = Integer::from(pk.n() - k);
            let inv = Integer::from(
                self.ciphertext
                    .invert_ref(pk.n_square())
                    .ok_or(Error::InvalidCiphertext("not invertible mod n^2"))?,
            );
            Ok(Integer::from(inv.pow_mod_ref(&neg, pk.n_square()).ok_or(
                Error::InvalidCiphertext("not invertible mod n^2"),
            )?))
        } else {
            Ok(Integer::from(
                self.ciphertext
                    .pow_mod_ref(k, pk.n_square())
                    .ok_or(Error::InvalidCiphertext("power failed"))?,
            ))
        }
    }

    /// Same value with a lower exponent (multiplies by `16^(exponent - new)`).
    pub fn decrease_exponent_to(&self, new_exponent: i32) -> Result<Self> {
        if new_exponent > self.exponent {
            return Err(Error::ExponentIncrease {
                from: self.exponent,
                to: new_exponent,
            });
        }
        let diff = (self.exponent - new_exponent) as u32;
        let factor =
            EncodedNumber::from_int_rep(&self.public_key, Integer::from(BASE).pow(diff), 0)?;
        let c = self.raw_mul(&factor.encoding)?;
        Ok(self.with(c, checked_exponent(i64::from(new_exponent))?))
    }

    /// Encrypted + encrypted.
    pub fn add(&self, other: &EncryptedNumber) -> Result<Self> {
        self.same_key(&other.public_key)?;
        let (a, b) = align(self, other)?;
        let mut c = Integer::from(&a.ciphertext * &b.ciphertext);
        c %= self.public_key.n_square();
        Ok(a.with(c, a.exponent))
    }

    /// Encrypted - encrypted.
    pub fn sub(&self, other: &EncryptedNumber) -> Result<Self> {
        self.add(&other.neg()?)
    }

    /// Encrypted + encoded plaintext (phe's `_add_encoded`).
    pub fn add_encoded(&self, encoded: &EncodedNumber) -> Result<Self> {
        let pk = &self.public_key;
        let (a, b) = if self.exponent > encoded.exponent {
            (
                self.decrease_exponent_to(encoded.exponent)?,
                encoded.clone(),
            )
        } else if self.exponent < encoded.exponent {
            (
                self.clone(),
                encoded.decrease_exponent_to(pk, self.exponent)?,
            )
        } else {
            (self.clone(), encoded.clone())
        };
        let mut c = pk.g_pow(&b.encoding);
        c *= &a.ciphertext;
        c %= pk.n_square();
        Ok(a.with(c, a.exponent))
    }

    /// Encrypted + plaintext scalar, encoded with `max_exponent = self.exponent` (as phe).
    pub fn add_scalar(&self, scalar: &Scalar) -> Result<Self> {
        let encoded = EncodedNumber::encode(&self.public_key, scalar, None, Some(self.exponent))?;
        self.add_encoded(&encoded)
    }

    /// Encrypted * encoded plaintext: exponents add.
    pub fn mul_encoded(&self, encoded: &EncodedNumber) -> Result<Self> {
        let c = self.raw_mul(&encoded.encoding)?;
        Ok(self.with(
            c,
            checked_exponent(i64::from(self.exponent) + i64::from(encoded.exponent))?,
        ))
    }

    /// Encrypted * plaintext scalar (encoded exactly).
    pub fn mul_scalar(&self, scalar: &Scalar) -> Result<Self> {
        let encoded = EncodedNumber::encode(&self.public_key, scalar, None, None)?;
        self.mul_encoded(&encoded)
    }

    /// `-x`: the inverse ciphertext, same exponent.
    pub fn neg(&self) -> Result<Self> {
        let inv = self
            .ciphertext
            .invert_ref(self.public_key.n_square())
            .ok_or(Error::InvalidCiphertext("not invertible mod n^2"))?;
        Ok(self.with(Integer::from(inv), self.exponent))
    }

    /// `bias + sum_i inputs[i] * weights[i]` with phe's semantics (the result decrypts exactly to
    /// what phe computes with `sum(x * w) + b`), in one multi-exponentiation: the squarings are
    /// shared by all terms and negative weights cost one inversion in total.
    ///
    /// The result is not re-randomised.
    pub fn weighted_sum(
        inputs: &[EncryptedNumber],
        weights: &[EncodedNumber],
        bias: Option<&Scalar>,
    ) -> Result<Self> {
        if inputs.len() != weights.len() {
            return Err(Error::LengthMismatch(inputs.len(), weights.len()));
        }
        let first = inputs
            .first()
            .ok_or(Error::LengthMismatch(0, weights.len()))?;
        let pk = first.public_key.clone();
        for x in inputs {
            x.same_key(&pk)?;
        }
        let term_exponents: Vec<i64> = inputs
            .iter()
            .zip(weights)
            .map(|(x, w)| i64::from(x.exponent) + i64::from(w.exponent))
            .collect();
        let mut exponent = checked_exponent(term_exponents.iter().copied().min().unwrap_or(0))?;
        let bias = match bias {
            Some(b) => {
                let enc = EncodedNumber::encode(&pk, b, None, Some(exponent))?;
                exponent = enc.exponent;
                Some(enc)
            }
            None => None,
        };
        let max_int = pk.max_int();
        let n2 = pk.n_square();
        let mut positive: Vec<(&Integer, Integer)> = Vec::with_capacity(inputs.len());
        let mut negative: Vec<(&Integer, Integer)> = Vec::new();
        for ((x, w), e) in inputs.iter().zip(weights).zip(&term_exponents) {
            let mantissa = w.mantissa(&pk)?;
            let shift = (e - i64::from(exponent)) as u32;
            // The weight scaled to the common exponent must itself be encodable (phe raises
            // the same error in decrease_exponent_to).
            let scale = Integer::from(BASE).pow(shift);
            if shift > 0 && scale > *max_int {
                return Err(Error::EncodeOverflow {
                    value: format!("16^{shift}"),
                    max_bits: max_int.significant_bits(),
                });
            }
            let k = mantissa * scale;
            if Integer::from(k.abs_ref()) > *max_int {
                return Err(Error::EncodeOverflow {
                    value: "scaled weight".into(),
                    max_bits: max_int.significant_bits(),
                });
            }
            match k.cmp0() {
                std::cmp::Ordering::Greater => positive.push((&x.ciphertext, k)),
                std::cmp::Ordering::Less => negative.push((&x.ciphertext, -k)),
                std::cmp::Ordering::Equal => {}
            }
        }
        let not_invertible = Error::InvalidCiphertext("not invertible mod n^2");
        let mut c = if negative.len() <= FEW_NEGATIVE_TERMS {
            // Few negative weights: invert those ciphertexts and share every squaring.
            let inverses = negative
                .iter()
                .map(|(c, _)| {
                    c.invert_ref(n2)
                        .map(Integer::from)
                        .ok_or(not_invertible.clone())
                })
                .collect::<Result<Vec<_>>>()?;
            let mut bases: Vec<&Integer> = positive.iter().map(|(c, _)| *c).collect();
            bases.extend(inverses.iter());
            let exps: Vec<Integer> = positive
                .into_iter()
                .chain(negative)
                .map(|(_, k)| k)
                .collect();
            multi_pow(&bases, &exps, n2)
        } else {
            // Many: one product per sign (on two cores) and a single inversion.
            let split = |terms: Vec<(&Integer, Integer)>| {
                let (bases, exps): (Vec<&Integer>, Vec<Integer>) = terms.into_iter().unzip();
                multi_pow(&bases, &exps, n2)
            };
            let (pos, neg) = rayon::join(|| split(positive), || split(negative));
            let inv = neg.invert(n2).map_err(|_| not_invertible)?;
            pos * inv % n2
        };
        if let Some(b) = bias {
            c *= pk.g_pow(&b.encoding);
            c %= n2;
        }
        Ok(Self {
            public_key: pk,
            ciphertext: c,
            exponent,
        })
    }
}

/// Lowers the larger exponent of two ciphertexts to the smaller one.
fn align(a: &EncryptedNumber, b: &EncryptedNumber) -> Result<(EncryptedNumber, EncryptedNumber)> {
    if a.exponent > b.exponent {
        Ok((a.decrease_exponent_to(b.exponent)?, b.clone()))
    } else if a.exponent < b.exponent {
        Ok((a.clone(), b.decrease_exponent_to(a.exponent)?))
    } else {
        Ok((a.clone(), b.clone()))
    }
}

impl PrivateKey {
    /// Decrypts to the encoded number (mantissa mod `n` and exponent).
    pub fn decrypt_encoded(&self, x: &EncryptedNumber) -> Result<EncodedNumber> {
        if **self.public_key() != *x.public_key {
            return Err(Error::KeyMismatch);
        }
        Ok(EncodedNumber {
            encoding: self.raw_decrypt(&x.ciphertext)?,
            exponent: x.exponent,
        })
    }

    /// Decrypts and decodes (phe's `decrypt`): an integer for exponents >= 0, else a float.
    pub fn decrypt(&self, x: &EncryptedNumber) -> Result<Decoded> {
        self.decrypt_encoded(x)?.decode(self.public_key())
    }
}
