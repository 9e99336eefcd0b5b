//! # unseen-ckks
//!
//! An RNS-CKKS approximate homomorphic encryption engine, layered as
//!
//! * [`ring`]: RNS polynomials over NTT-friendly primes (NTT via `tfhe-ntt`),
//!   modular arithmetic, sampling and bit-packing;
//! * [`params`]: validated parameter presets (primes, special prime, security level);
//! * `poly`: the polynomial type that carries its basis (data primes up to a level, or
//!   those and the special prime) and its domain (NTT or coefficients, a type
//!   parameter), which ciphertexts, plaintexts and keys are made of;
//! * `gadget`: the special primes and digits of a key made for a level (one data prime per
//!   digit over P, SEAL style, or, paired below the top level, two over P and a spare data prime)
//!   and the base conversions between them;
//! * [`rlwe`]: secret/public keys, hybrid key switching, automorphisms; it knows nothing of
//!   plaintexts, ciphertexts or scales;
//! * [`ckks`]: the canonical-embedding encoder, encryption and decryption of
//!   plaintexts, the evaluator with scale tracking, noise flooding;
//! * [`serialize`]: a versioned compact binary format (seeded where possible).
//!
//! ## Security
//!
//! * Every parameter set is checked against the HomomorphicEncryption.org
//!   table (max `log2(QP)`, special prime included, uniform ternary secret)
//!   and refused when it does not reach 128-bit security, unless it is
//!   explicitly built with [`ParametersLiteral::insecure`] set (tests only).
//! * Secrets come from the caller's `CryptoRng` (use [`OsRng`] in
//!   production, a seeded ChaCha only in tests); errors are centered
//!   binomial with standard deviation ~3.24. Secret keys and the sampled
//!   randomness are zeroized on drop and never printed.
//! * CKKS decryptions leak the noise: before sharing decrypted values with
//!   another party, use [`SecretKey::decrypt_flooded`] (Li-Micciancio)
//!   with a [`Flooding`] that states a bound `B_ct` on the ciphertext noise
//!   (there is no default bound: the caller knows the computation). It adds
//!   uniform noise of `2^σ · N · B_ct` (σ = 40 bits of statistical security
//!   by default, at least 30) and refuses when that does not fit in the
//!   modulus.
//!   This costs about `σ + 1.5·log2(N)` bits of precision (59 at N = 8192):
//!   see [`ckks::flooding`] for what survives at which level and scale.
//! * Deserializers reject truncated, corrupt, oversized or foreign input
//!   with an error, never a panic.
//!
//! ## Precision (reference preset, scale 2^26)
//!
//! Fresh secret-key encryptions carry ~18 bits of precision, public-key
//! encryptions and each rescale ~15 bits (rounding noise of the division
//! by a prime), rotations ~13 bits when applied at scale 2^26 (key
//! switching with `q_0 ~ P`, both 31 bits). The crate tests print the
//! measured mean and worst errors of every operation.
//!
//! ```
//! use unseen_ckks::{Parameters, Preset, Encoder, Evaluator, SecretKey, PublicKey};
//! let params = Parameters::preset(Preset::Cnn8192).expect("preset");
//! let mut rng = rand_core::OsRng;
//! let sk = SecretKey::generate(&params, &mut rng);
//! let pk = PublicKey::generate(&sk, &mut rng);
//! let enc = Encoder::new(&params);
//! let pt = enc.encode_real(&[1.0, 2.0, 3.0], params.max_level(), params.default_scale()).expect("encode");
//! let ct = pk.encrypt(&pt, &mut rng).expect("encrypt");
//! let ev = Evaluator::new(&params);
//! let ct2 = ev.add(&ct, &ct).expect("add");
//! let out = enc.decode_real(&sk.decrypt(&ct2).expect("decrypt")).expect("decode");
//! assert!((out[2] - 6.0).abs() < 1e-2);
//! ```

pub mod bench;
pub mod ckks;
mod error;
mod gadget;
pub mod params;
mod poly;
pub mod ring;
pub mod rlwe;
pub mod serialize;

pub use ckks::encoder::{CompactPlaintext, Encoder, Plaintext};
pub use ckks::evaluator::{Ciphertext, Evaluator};
pub use ckks::flooding::{Flooding, FloodingPlan};
pub use error::{Error, Result};
pub use num_complex::Complex64;
pub use params::{describe_presets, Parameters, ParametersLiteral, Preset, SecurityLevel};
pub use rand_core::OsRng;
pub use rlwe::{GaloisKeys, KeyDigits, PublicKey, RelinKey, SecretKey};
