//! Encryption of CKKS plaintexts and decryption of CKKS ciphertexts with the RLWE keys of
//! [`crate::rlwe`] (which knows nothing of plaintexts, ciphertexts or scales).

use rand_core::{CryptoRng, RngCore};
use rayon::prelude::*;
use zeroize::Zeroizing;

use crate::ckks::encoder::Plaintext;
use crate::ckks::evaluator::Ciphertext;
use crate::ckks::flooding::Flooding;
use crate::poly::{Basis, Coeff, Poly};
use crate::ring;
use crate::rlwe::{mod_down, PublicKey, SecretKey, Wipe};
use crate::{Error, Result};

impl SecretKey {
    /// Encrypts with the secret key. The uniform half is expanded from a
    /// fresh 32-byte seed, so the ciphertext serializes at half size while
    /// it is not modified.
    pub fn encrypt<R: RngCore + CryptoRng + ?Sized>(
        &self,
        pt: &Plaintext,
        rng: &mut R,
    ) -> Result<Ciphertext> {
        if !self.params.same_as(&pt.params) {
            return Err(Error::ParametersMismatch);
        }
        let params = &self.params;
        let n = params.n();
        let at = pt.data.basis();
        let basis = at.moduli(params);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let c1 = Poly::from_vec(ring::expand_uniform(&seed, 0, &basis, n), at, n);
        let e = Zeroizing::new(ring::sample_error(rng, n));
        let mut c0 = Poly::<Coeff>::from_signed(&e, at, params).into_ntt(params);
        let as_ = Zeroizing::new(ring::mul(&c1, self.data_part(at.level()), &basis, n));
        ring::sub_assign(&mut c0, &as_, &basis, n);
        c0.add_assign(&pt.data, params);
        Ok(Ciphertext {
            params: params.clone(),
            c0,
            c1,
            scale: pt.scale,
            seed: Some(seed),
        })
    }

    /// Decrypts to a plaintext (decode it with the encoder).
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Plaintext> {
        if !self.params.same_as(&ct.params) {
            return Err(Error::ParametersMismatch);
        }
        let params = &self.params;
        let n = params.n();
        let at = ct.c0.basis();
        let basis = at.moduli(params);
        let mut m = Poly::from_vec(
            ring::mul(&ct.c1, self.data_part(at.level()), &basis, n),
            at,
            n,
        );
        m.add_assign(&ct.c0, params);
        Ok(Plaintext {
            params: params.clone(),
            data: m,
            scale: ct.scale,
        })
    }

    /// Decrypts for sharing the result with another party: adds uniform
    /// noise in `[-2^b, 2^b]` to every
    /// coefficient, with `b = ⌈σ + log2(N) + log2(B_ct)⌉` so that the result
    /// is within statistical distance `N · B_ct / (2^(b+1) + 1) <= 2^-σ` of
    /// one that does not depend on the ciphertext noise (countermeasure to
    /// the Li-Micciancio key-recovery attack on shared CKKS decryptions).
    /// `B_ct` and σ come from `flooding` ([`Flooding::plan`] shows `b`, the
    /// headroom and the expected precision without decrypting).
    ///
    /// Refused with [`Error::InvalidArgument`] when σ is below 30 bits or
    /// the flood and the message do not fit below `Q_level / 2` (decrypt at
    /// a higher level, use a larger preset or give a tighter noise bound),
    /// and with [`Error::ParametersMismatch`] for a foreign ciphertext. The
    /// noise is drawn from `rng` (use [`OsRng`]) and zeroized after use.
    pub fn decrypt_flooded<R: RngCore + CryptoRng + ?Sized>(
        &self,
        ct: &Ciphertext,
        flooding: &Flooding,
        rng: &mut R,
    ) -> Result<Plaintext> {
        if !self.params.same_as(&ct.params) {
            return Err(Error::ParametersMismatch);
        }
        let plan = flooding.plan(&self.params, ct.level(), ct.scale)?;
        let mut pt = self.decrypt(ct)?;
        let params = &self.params;
        let noise = Zeroizing::new(ring::sample_flood(rng, params.n(), plan.flood_bits));
        let e = Poly::<Coeff>::from_signed_wide(&noise, pt.data.basis(), params);
        let e = Zeroizing::new(e.into_ntt(params));
        pt.data.add_assign(&e, params);
        Ok(pt)
    }
}

impl PublicKey {
    /// Encrypts with the public key: `(u b + e0, u a + e1) / P + (m, 0)`.
    pub fn encrypt<R: RngCore + CryptoRng + ?Sized>(
        &self,
        pt: &Plaintext,
        rng: &mut R,
    ) -> Result<Ciphertext> {
        if !self.params.same_as(&pt.params) {
            return Err(Error::ParametersMismatch);
        }
        let params = &self.params;
        let n = params.n();
        let level = pt.level();
        let nq = params.nq();
        let basis = params.ext_basis(level);
        let u = Zeroizing::new(ring::sample_ternary(rng, n));
        let e0 = Zeroizing::new(ring::sample_error(rng, n));
        let e1 = Zeroizing::new(ring::sample_error(rng, n));
        let mut u_ntt = Zeroizing::new(ring::from_signed(&u, &basis));
        let mut c0 = ring::from_signed(&e0, &basis);
        let mut c1 = ring::from_signed(&e1, &basis);
        let slots = level + 2;
        // NTT of u, e0, e1 in one parallel pass
        u_ntt
            .par_chunks_exact_mut(n)
            .chain(c0.par_chunks_exact_mut(n))
            .chain(c1.par_chunks_exact_mut(n))
            .enumerate()
            .for_each(|(i, c)| basis[i % slots].ntt(c));
        let key_chunk = |j: usize| if j <= level { j } else { nq };
        c0.par_chunks_exact_mut(n)
            .zip(c1.par_chunks_exact_mut(n))
            .zip(u_ntt.par_chunks_exact(n))
            .enumerate()
            .for_each(|(j, ((x0, x1), uu))| {
                let m = basis[j];
                let kc = key_chunk(j);
                let kb = &self.b[kc * n..(kc + 1) * n];
                let ka = &self.a[kc * n..(kc + 1) * n];
                m.mul_acc_vec(x0, uu, kb);
                m.mul_acc_vec(x1, uu, ka);
            });
        // `u pk + e` carries the encryption's randomness: the dropped residue's copies are
        // wiped, and so is the whole undivided sum
        let (c0, c1) = (Zeroizing::new(c0), Zeroizing::new(c1));
        let at = Basis::Data(level);
        let mut c0 = Poly::from_vec(mod_down(params, &c0, level, Wipe::Copies), at, n);
        let c1 = Poly::from_vec(mod_down(params, &c1, level, Wipe::Copies), at, n);
        c0.add_assign(&pt.data, params);
        Ok(Ciphertext {
            params: params.clone(),
            c0,
            c1,
            scale: pt.scale,
            seed: None,
        })
    }
}
