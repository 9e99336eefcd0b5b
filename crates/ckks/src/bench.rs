//! Micro-benchmarks of the main operations at the reference preset
//! (N = 8192, 7 data primes + 1 special prime), for `unseen bench ckks`.
//!
//! `decrypt` stops at the NTT-form plaintext (`c0 + c1·s`), as SEAL's
//! `Decryptor::decrypt` does for CKKS. `decrypt_decode` measures decryption
//! to values (inverse NTT, CRT reconstruction and the canonical-embedding
//! FFT), i.e. SEAL's decrypt plus `CKKSEncoder::decode`.
//!
//! The rotations write into results kept from one run to the next, as SEAL's
//! `rotate_vector(ct, step, gk, dst)` does. `rotate_16` rotates by 1..=16 one
//! step at a time, each with its own key: the baseline of `rotate_hoisted_16`,
//! the same 16 rotations sharing one decomposition. `expand_key_a` expands the
//! uniform half of one top-level key-switching key from its seed: what every key
//! switch would add if a server kept only the seeds of its keys' uniform halves.

use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

use crate::{
    Encoder, Error, Evaluator, GaloisKeys, Parameters, Preset, PublicKey, RelinKey, Result,
    SecretKey,
};

/// One benchmark result.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BenchRecord {
    /// Operation name (`encrypt_pk`, `mul_relin`, ...).
    pub op: String,
    /// Ring degree.
    pub n: usize,
    /// Number of data primes of the input ciphertext.
    pub levels: usize,
    /// Median wall time in milliseconds.
    pub ms_median: f64,
}

/// Operations measured by [`run`].
pub const OPS: [&str; 11] = [
    "encrypt_pk",
    "encrypt_sk",
    "decrypt",
    "decrypt_decode",
    "mul_plain",
    "mul_relin",
    "rescale",
    "rotate",
    "rotate_16",
    "rotate_hoisted_16",
    "expand_key_a",
];

fn median_ms<F: FnMut() -> Result<()>>(iters: usize, mut f: F) -> Result<f64> {
    f()?; // warm-up
    let mut t = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// Runs every operation of [`OPS`] `iters` times at the reference preset on
/// `threads` threads (1 = single-threaded, the reference setting) and
/// returns the median times.
pub fn run(iters: usize, threads: usize) -> Result<Vec<BenchRecord>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.max(1))
        .build()
        .map_err(|e| Error::InvalidArgument(format!("thread pool: {e}")))?;
    pool.install(|| run_inner(iters))
}

fn run_inner(iters: usize) -> Result<Vec<BenchRecord>> {
    let params = Parameters::preset(Preset::Cnn8192)?;
    // Deterministic RNG: benchmark inputs only, never real keys.
    let mut rng = ChaCha20Rng::from_seed([7u8; 32]);
    let sk = SecretKey::generate(&params, &mut rng);
    let pk = PublicKey::generate(&sk, &mut rng);
    let rlk = RelinKey::generate(&sk, &mut rng);
    let steps: Vec<i64> = (1..=16).collect();
    let gk = GaloisKeys::generate(&sk, &steps, false, &mut rng);
    let enc = Encoder::new(&params);
    let ev = Evaluator::new(&params);
    let level = params.max_level();
    let scale = params.default_scale();
    let vals: Vec<f64> = (0..params.slots())
        .map(|i| (i as f64 * 0.01).sin())
        .collect();
    let pt = enc.encode_real(&vals, level, scale)?;
    let ct = pk.encrypt(&pt, &mut rng)?;
    let ct2 = sk.encrypt(&pt, &mut rng)?;
    let prod = ev.mul_relin(&ct, &ct2, &rlk)?;
    let n = params.n();
    let levels = level + 1;
    let mut out = Vec::new();
    let mut rec = |op: &str, ms: f64| {
        out.push(BenchRecord {
            op: op.to_string(),
            n,
            levels,
            ms_median: ms,
        })
    };
    rec(
        "encrypt_pk",
        median_ms(iters, || pk.encrypt(&pt, &mut rng).map(drop))?,
    );
    let mut rng2 = ChaCha20Rng::from_seed([8u8; 32]);
    rec(
        "encrypt_sk",
        median_ms(iters, || sk.encrypt(&pt, &mut rng2).map(drop))?,
    );
    rec("decrypt", median_ms(iters, || sk.decrypt(&ct).map(drop))?);
    rec(
        "decrypt_decode",
        median_ms(iters, || enc.decode(&sk.decrypt(&ct)?).map(drop))?,
    );
    rec(
        "mul_plain",
        median_ms(iters, || ev.mul_plain(&ct, &pt).map(drop))?,
    );
    rec(
        "mul_relin",
        median_ms(iters, || ev.mul_relin(&ct, &ct2, &rlk).map(drop))?,
    );
    rec("rescale", median_ms(iters, || ev.rescale(&prod).map(drop))?);
    // the rotations write into results kept from one run to the next, as SEAL's benchmark
    // does (`rotate_vector(ct, step, gk, dst)`), so that none of them maps fresh memory
    let mut dst = ct.clone();
    rec(
        "rotate",
        median_ms(iters, || ev.rotate_into(&ct, 1, &gk, &mut dst))?,
    );
    let mut outs = vec![ct.clone(); steps.len()];
    // the same 16 rotations one at a time: the baseline hoisting is measured against (each
    // reads its own key, as the hoisted ones do; `rotate` reads one key again and again)
    rec(
        "rotate_16",
        median_ms(iters, || {
            steps
                .iter()
                .zip(outs.iter_mut())
                .try_for_each(|(&s, out)| ev.rotate_into(&ct, s, &gk, out))
        })?,
    );
    rec(
        "rotate_hoisted_16",
        median_ms(iters, || {
            ev.rotate_hoisted_into(&ct, &steps, &gk, &mut outs)
        })?,
    );
    rec(
        "expand_key_a",
        median_ms(iters, || {
            drop(crate::rlwe::KeySwitchKey::expand_a(
                &params,
                (level, 1),
                &[9; 32],
            ));
            Ok(())
        })?,
    );
    Ok(out)
}

/// Independent tasks of [`parallel_ceiling_ms`]: a multiple of every thread count up to 4 and
/// of 6, 8, 12, 16 and 24, so that those counts share them evenly.
pub const CEILING_TASKS: usize = 48;

/// The wall time in milliseconds of a perfectly parallel computation on the current thread
/// pool: [`CEILING_TASKS`] independent tasks, each `round_trips` forward and inverse NTTs of
/// its own `params.n()` values modulo the first data prime (in the core's cache; no shared
/// data, no synchronisation but the final join). It loses nothing to imbalance or to waiting,
/// so its speed-up between two thread counts is what the machine's cores gave at that moment
/// (they may be shared, throttled or hyperthreads): measured beside another computation's, the
/// yardstick that one's speed-up is judged against.
pub fn parallel_ceiling_ms(params: &Parameters, round_trips: usize) -> f64 {
    use rayon::prelude::*;
    let m = params.basis(0)[0];
    let n = params.n();
    let start = Instant::now();
    (0..CEILING_TASKS).into_par_iter().for_each(|t| {
        let mut values: Vec<u64> = (0..n as u64)
            .map(|i| (i.wrapping_mul(0x9e37_79b9) ^ t as u64) % m.value())
            .collect();
        for _ in 0..round_trips {
            m.ntt(&mut values);
            m.intt(&mut values);
        }
        std::hint::black_box(&values);
    });
    start.elapsed().as_secs_f64() * 1e3
}
