//! Shared fixtures for the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use unseen_ckks::{
    Complex64, Encoder, Evaluator, GaloisKeys, Parameters, Preset, PublicKey, RelinKey, SecretKey,
};

/// Keys and helpers at the reference preset.
pub struct Ctx {
    pub params: Arc<Parameters>,
    pub sk: SecretKey,
    pub pk: PublicKey,
    pub rlk: RelinKey,
    pub gk: GaloisKeys,
    pub enc: Encoder,
    pub ev: Evaluator,
}

/// Rotation steps with Galois keys in the shared context.
pub const STEPS: [i64; 8] = [1, 2, 4, 5, -1, -3, 100, 2047];

pub fn ctx() -> &'static Ctx {
    static CTX: OnceLock<Ctx> = OnceLock::new();
    CTX.get_or_init(|| {
        let params = Parameters::preset(Preset::Cnn8192).expect("preset");
        let mut rng = ChaCha20Rng::seed_from_u64(42);
        let sk = SecretKey::generate(&params, &mut rng);
        let pk = PublicKey::generate(&sk, &mut rng);
        let rlk = RelinKey::generate(&sk, &mut rng);
        let mut steps = STEPS.to_vec();
        steps.extend(Evaluator::inner_sum_steps(1, 16));
        let gk = GaloisKeys::generate(&sk, &steps, true, &mut rng);
        Ctx {
            enc: Encoder::new(&params),
            ev: Evaluator::new(&params),
            params,
            sk,
            pk,
            rlk,
            gk,
        }
    })
}

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Uniform complex values with real and imaginary parts in `[-bound, bound]`.
pub fn random_complex(rng: &mut ChaCha20Rng, len: usize, bound: f64) -> Vec<Complex64> {
    (0..len)
        .map(|_| Complex64::new(uniform(rng, bound), uniform(rng, bound)))
        .collect()
}

pub fn random_real(rng: &mut ChaCha20Rng, len: usize, bound: f64) -> Vec<f64> {
    (0..len).map(|_| uniform(rng, bound)).collect()
}

pub fn uniform(rng: &mut ChaCha20Rng, bound: f64) -> f64 {
    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (2.0 * u - 1.0) * bound
}

/// (mean, max) absolute errors, expressed as bits of precision `-log2(err)`.
pub fn precision(expected: &[Complex64], got: &[Complex64]) -> (f64, f64) {
    assert_eq!(expected.len(), got.len());
    let errs: Vec<f64> = expected
        .iter()
        .zip(got)
        .map(|(a, b)| (a - b).norm())
        .collect();
    let mean = errs.iter().sum::<f64>() / errs.len() as f64;
    let max = errs.iter().copied().fold(0.0, f64::max);
    (-mean.log2(), -max.log2())
}

pub fn report(name: &str, expected: &[Complex64], got: &[Complex64]) -> (f64, f64) {
    let (mean, max) = precision(expected, got);
    println!("{name:<28} precision: mean {mean:6.2} bits, worst {max:6.2} bits");
    (mean, max)
}

pub fn to_complex(v: &[f64]) -> Vec<Complex64> {
    v.iter().map(|&x| Complex64::new(x, 0.0)).collect()
}
