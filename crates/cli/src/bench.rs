//! `unseen bench`: timings of the main operations, one JSON object per line with `--json`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use rand::{Rng, SeedableRng};
use rand_core::OsRng;
use serde_json::json;
use unseen_ml::linear::{fit_table, FitOptions, LinearModel, Metrics, MODEL_FORMAT, MODEL_VERSION};
use unseen_ml::table::Table;
use unseen_paillier::{EncryptedNumber, Integer, PrivateKey, Randomness, Scalar, DEFAULT_KEY_BITS};
use unseen_server::{AppState, Limits};
use unseen_wire::salary::{legacy_reply, PredictRequest};

use crate::encrypted::{median, ImageRun, SingleImage, Tally};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Paillier: keygen, encryption, decryption and server-side predictions.
    Paillier(PaillierBenchArgs),
    /// CKKS at N = 8192 with 7 data primes (the reference preset): encryption, decryption,
    /// multiplications, rescale, rotations.
    Ckks(CkksBenchArgs),
    /// Encrypted CNN inference of a model folder: single-image latency, client costs, key and
    /// message sizes, and batch throughput (client and server in one process, timed apart).
    Cnn(CnnBenchArgs),
    /// A bounded load test of a running server: N clients x M requests (a Paillier prediction
    /// or an encrypted image), with requests per second and p50/p99 latency.
    Load(crate::load::LoadArgs),
}

#[derive(Debug, Args)]
pub struct CnnBenchArgs {
    /// Model folder (model.json + model.safetensors).
    #[arg(long)]
    model: std::path::PathBuf,
    /// Test images timed in single-image mode (the median is reported).
    #[arg(long, default_value_t = 20)]
    images: usize,
    /// Images in the batch-mode run (one ciphertext holds 4096; 0 skips batch mode).
    #[arg(long, default_value_t = 4096)]
    batch_images: usize,
    /// Thread counts, comma-separated (`1,2,4,8,16`): one line per count, with the speed-up
    /// over the first (1 for the single-threaded reference figures). Each image runs at every
    /// count in turn, and the single-image speed-up is the median of the images' own ratios.
    /// Beside each image runs a perfectly parallel computation: its speed-up (`ceiling`) is
    /// what the machine's cores gave at that moment, and `parallel_efficiency` the images'
    /// speed-up as a fraction of it.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    threads: Vec<usize>,
    /// Folder holding mnist/ and fashion-mnist/ (default: the vendored data/).
    #[arg(long)]
    data: Option<std::path::PathBuf>,
    /// One JSON object per line (the default output is the same object, indented).
    #[arg(long)]
    json: bool,
    /// Digit layout of the evaluation keys below the top level (`unseen serve --key-digits`).
    #[arg(long, value_enum, default_value_t = KeyLayoutArg::Mixed)]
    key_digits: KeyLayoutArg,
}

/// [`unseen_circuits::KeyLayout`] on the command line.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum KeyLayoutArg {
    /// Paired digits for the keys the circuit does not hoist, one prime per digit for the
    /// hoisted ones and the relinearisation key: ciphernet's keys 0.73x the memory for about
    /// 1.04x the server's work.
    Mixed,
    /// One data prime per digit for every key, and the shortcut keys of hoisted rotate-and-sums:
    /// the fastest key switching, the largest keys.
    PerPrime,
    /// Two data primes per digit below the top level for every key: the smallest keys.
    Paired,
}

impl From<KeyLayoutArg> for unseen_circuits::KeyLayout {
    fn from(a: KeyLayoutArg) -> Self {
        match a {
            KeyLayoutArg::Mixed => unseen_circuits::KeyLayout::Mixed,
            KeyLayoutArg::PerPrime => unseen_circuits::KeyLayout::PerPrime,
            KeyLayoutArg::Paired => unseen_circuits::KeyLayout::Paired,
        }
    }
}

#[derive(Debug, Args)]
pub struct CkksBenchArgs {
    /// Timed repetitions per operation.
    #[arg(long, default_value_t = 30)]
    iters: usize,
    /// Threads (1 for the single-threaded reference figures).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct PaillierBenchArgs {
    /// Modulus size in bits.
    #[arg(long, default_value_t = DEFAULT_KEY_BITS)]
    bits: u32,
    /// Timed repetitions per operation (keygen uses a fifth of them, at least 3).
    #[arg(long, default_value_t = 50)]
    iters: usize,
    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

/// Median, minimum and maximum of timed runs, in milliseconds.
struct Stats {
    median: f64,
    min: f64,
    max: f64,
    iters: usize,
}

fn measure(iters: usize, mut f: impl FnMut()) -> Stats {
    f(); // warm-up
    let mut t: Vec<f64> = (0..iters.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    Stats {
        median: t[t.len() / 2],
        min: t[0],
        max: t[t.len() - 1],
        iters: t.len(),
    }
}

fn report(json_out: bool, op: &str, bits: u32, s: &Stats, note: &str) {
    if json_out {
        println!(
            "{}",
            json!({"impl": "unseen", "op": op, "bits": bits, "ms_median": s.median, "ms_min": s.min, "ms_max": s.max, "iters": s.iters, "note": note})
        );
    } else {
        println!(
            "{op:<28} {:>10.3} ms  (min {:.3}, max {:.3}, n={})  {note}",
            s.median, s.min, s.max, s.iters
        );
    }
}

/// A model with `d` features and seeded random weights.
fn synthetic_model(d: usize) -> LinearModel {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(d as u64);
    LinearModel {
        format: MODEL_FORMAT.into(),
        version: MODEL_VERSION,
        name: format!("d{d}"),
        target: "y".into(),
        features: (0..d).map(|i| format!("x{i}")).collect(),
        coefficients: (0..d).map(|_| rng.gen_range(-1000.0..1000.0)).collect(),
        intercept: rng.gen_range(-1000.0..1000.0),
        metrics: Metrics {
            rmse: 0.0,
            r2: 0.0,
            rows_train: 0,
            rows_test: 0,
            evaluated_on: "synthetic".into(),
            test_fraction: 0.0,
            seed: d as u64,
        },
    }
}

/// Runs a bench subcommand.
pub fn run(cmd: BenchCommand) -> Result<()> {
    match cmd {
        BenchCommand::Paillier(a) => paillier(a),
        BenchCommand::Ckks(a) => ckks(a),
        BenchCommand::Cnn(a) => cnn(a),
        BenchCommand::Load(a) => crate::load::run(a),
    }
}

fn cnn(a: CnnBenchArgs) -> Result<()> {
    use unseen_ml::digits::{Images, Split};
    if a.threads.is_empty() || a.threads.contains(&0) {
        bail!("--threads takes thread counts of at least 1, such as 1,2,4");
    }
    let (net, card) = unseen_model::folder::load_model(&a.model)?;
    let root = crate::cnn_cmd::data_root(a.data.clone())?;
    let dataset = unseen_ml::cnn::files::card_dataset(&card)
        .context("the model card names no data set unseen ships (mnist, fashion-mnist)")?;
    let test = crate::samples::Samples::from_images(
        &Images::load(&root, dataset, Split::Test)?,
        net.arch.input,
        &card.normalization,
        format!("{dataset} test set"),
    )?;
    let mut compiled = unseen_circuits::compile_card(&net, &card)
        .context("compiling the network to a CKKS circuit")?;
    compiled.plan.key_layout = a.key_digits.into();
    let pools = a
        .threads
        .iter()
        .map(|&t| rayon::ThreadPoolBuilder::new().num_threads(t).build())
        .collect::<Result<Vec<_>, _>>()?;
    // the server's model once; a client (its keys made on its count's pool) per thread count
    let (server, prepare_ms) =
        pools[0].install(|| crate::encrypted::serve_compiled(&a.model, &card, compiled.clone()))?;
    let harnesses = pools
        .iter()
        .map(|pool| pool.install(|| SingleImage::with_server(&a.model, server.clone(), prepare_ms)))
        .collect::<Result<Vec<_>>>()?;
    // every image at every thread count in turn, starting from another count each time, so
    // that the counts share the machine's slow and quiet spells and each image's ratio
    // compares like with like
    // after each image, at the same count, the machine's ceiling: a perfectly parallel
    // computation, whose speed-up is what the cores gave at that moment
    let single = test.first(a.images.max(1));
    let mut runs: Vec<Vec<ImageRun>> = pools.iter().map(|_| Vec::new()).collect();
    let mut ceilings: Vec<Vec<f64>> = pools.iter().map(|_| Vec::new()).collect();
    let mut tallies: Vec<Tally> = pools.iter().map(|_| Tally::default()).collect();
    for i in 0..single.len() {
        let x = single.sample(i);
        let plain = net.logits(x, 1);
        for k in 0..pools.len() {
            let p = (i + k) % pools.len();
            let run = pools[p].install(|| harnesses[p].run(x))?;
            ceilings[p].push(pools[p].install(|| {
                unseen_ckks::bench::parallel_ceiling_ms(&compiled.params, CEILING_ROUND_TRIPS)
            }));
            tallies[p].record(&run.logits, &plain, single.labels[i]);
            runs[p].push(run);
        }
    }
    let mut first_batch: Option<f64> = None;
    for (p, pool) in pools.iter().enumerate() {
        let s = harnesses[p].report(&runs[p], &tallies[p]);
        // the medians of the images' own ratios (first count's time over this count's), of
        // the ceiling's measured beside them, and of the images' ratios over the ceiling's
        let mut ratios: Vec<f64> = runs[0]
            .iter()
            .zip(&runs[p])
            .map(|(r, t)| r.server_ms / t.server_ms)
            .collect();
        let mut ceiling: Vec<f64> = ceilings[0]
            .iter()
            .zip(&ceilings[p])
            .map(|(r, t)| r / t)
            .collect();
        let mut efficiency: Vec<f64> = ratios.iter().zip(&ceiling).map(|(r, c)| r / c).collect();
        let mut out = json!({
            "model": a.model.display().to_string(),
            "threads": a.threads[p],
            "preset": s["preset"],
            "key_digits": compiled.plan.key_layout,
            "images": s["images"],
            "server_single_image_ms": s["server_single_image_ms"],
            "single_speedup": median(&mut ratios),
            "ceiling_speedup": median(&mut ceiling),
            "parallel_efficiency": median(&mut efficiency),
            "client_encrypt_ms": s["client_encrypt_ms"],
            "client_decrypt_ms": s["client_decrypt_ms"],
            "client_keygen_ms": s["client_keygen_ms"],
            "eval_keys_bytes": s["eval_keys_bytes"],
            "eval_keys_memory_bytes": s["eval_keys_memory_bytes"],
            "rotation_keys": s["rotation_keys"],
            "upload_bytes": s["upload_bytes"],
            "download_bytes": s["download_bytes"],
            "single_agreement": s["agreement"],
            "single_max_logit_error": s["max_logit_error"],
        });
        if a.batch_images > 0 {
            let batch = test.first(a.batch_images);
            let (b, _) = pool.install(|| {
                crate::encrypted::eval_encrypted_batch(&a.model, &net, compiled.clone(), &batch)
            })?;
            let per_image = b["batch_server_ms_per_image"].as_f64();
            let reference = *first_batch.get_or_insert(per_image.unwrap_or(f64::NAN));
            if let Some(o) = out.as_object_mut() {
                o.insert("batch_images".into(), b["images"].clone());
                o.insert("batch_slots".into(), b["batch_images"].clone());
                for k in [
                    "batch_server_ms_per_image",
                    "client_encrypt_ms_per_image",
                    "client_decrypt_ms_per_image",
                    "upload_bytes_per_image",
                    "download_bytes_per_image",
                ] {
                    let name = if k.starts_with("batch_") {
                        k.to_string()
                    } else {
                        format!("batch_{k}")
                    };
                    o.insert(name, b[k].clone());
                }
                o.insert("batch_eval_keys_bytes".into(), b["eval_keys_bytes"].clone());
                o.insert("batch_agreement".into(), b["agreement"].clone());
                o.insert(
                    "batch_speedup".into(),
                    json!(per_image.map(|t| reference / t)),
                );
            }
        }
        if a.json {
            println!("{out}");
        } else {
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
    }
    Ok(())
}

/// NTT round trips per task of the machine's ceiling in `bench cnn`: about as long on one
/// thread as a ciphernet image.
const CEILING_ROUND_TRIPS: usize = 12;

fn ckks(a: CkksBenchArgs) -> Result<()> {
    let records = unseen_ckks::bench::run(a.iters.max(1), a.threads.max(1))?;
    for r in records {
        if a.json {
            println!(
                "{}",
                json!({"impl": "unseen", "op": r.op, "n": r.n, "levels": r.levels, "ms_median": r.ms_median, "threads": a.threads})
            );
        } else {
            println!(
                "{:<20} {:>9.3} ms  (N = {}, {} primes, {} thread(s))",
                r.op, r.ms_median, r.n, r.levels, a.threads
            );
        }
    }
    Ok(())
}

fn paillier(a: PaillierBenchArgs) -> Result<()> {
    let bits = a.bits;
    let iters = a.iters;
    let s = measure((iters / 5).max(3), || {
        let _ = PrivateKey::generate(bits);
    });
    report(
        a.json,
        "keygen",
        bits,
        &s,
        "two primes of bits/2 with top bits set; GMP next_prime + 40 Miller-Rabin rounds",
    );

    let sk = PrivateKey::generate(bits)?;
    let pk = sk.public_key().clone();
    let t = Instant::now();
    pk.fixed_base();
    let setup = t.elapsed().as_secs_f64() * 1e3;
    let one = Scalar::Float(1234.5678);
    let s = measure(iters, || {
        let _ = EncryptedNumber::encrypt(&pk, &one, Randomness::FixedBase, &mut OsRng);
    });
    report(
        a.json,
        "encrypt",
        bits,
        &s,
        &format!("public key, fixed-base DJN randomness (one-time table setup {setup:.1} ms)"),
    );
    let s = measure(iters, || {
        let _ = EncryptedNumber::encrypt(&pk, &one, Randomness::Standard, &mut OsRng);
    });
    report(
        a.json,
        "encrypt_standard",
        bits,
        &s,
        "public key, r^n with uniform r (as phe)",
    );
    let s = measure(iters, || {
        let _ =
            EncryptedNumber::encrypt_with_private_key(&sk, &one, Randomness::FixedBase, &mut OsRng);
    });
    report(
        a.json,
        "encrypt_with_private_key",
        bits,
        &s,
        "CRT mod p^2 and q^2, fixed-base randomness",
    );
    let s = measure(iters, || {
        let _ =
            EncryptedNumber::encrypt_with_private_key(&sk, &one, Randomness::Standard, &mut OsRng);
    });
    report(
        a.json,
        "encrypt_with_private_key_standard",
        bits,
        &s,
        "CRT mod p^2 and q^2, uniform r",
    );
    let ct = EncryptedNumber::encrypt(&pk, &one, Randomness::FixedBase, &mut OsRng)?;
    let s = measure(iters, || {
        let _ = sk.decrypt(&ct);
    });
    report(a.json, "decrypt", bits, &s, "CRT (as phe)");

    let salary = {
        let csv = crate::demo::data_file("employee/employee_data.csv")?;
        let table = Table::read_csv(&csv)?;
        fit_table(
            &table,
            &FitOptions {
                target: "salary".into(),
                features: vec![],
                test_fraction: 0.2,
                seed: 42,
                name: "salary".into(),
            },
        )?
    };
    let limits = Limits {
        min_key_bits: bits.min(2048),
        ..Limits::default()
    };
    for (op, model, features) in [
        ("predict_d4", salary, vec![24i64, 4, 6, 1]),
        (
            "predict_d100",
            synthetic_model(100),
            (0..100).map(|i| (i * 37 % 90) + 10).collect(),
        ),
    ] {
        let cts: Vec<EncryptedNumber> = features
            .iter()
            .map(|x| {
                EncryptedNumber::encrypt_with_private_key(
                    &sk,
                    &Scalar::Int(Integer::from(*x)),
                    Randomness::FixedBase,
                    &mut OsRng,
                )
            })
            .collect::<Result<_, _>>()?;
        let body = PredictRequest::to_json(&cts);
        let model = Arc::new(model);
        let expected = model.predict(&features.iter().map(|&x| x as f64).collect::<Vec<_>>());
        let state =
            AppState::new(vec![(*model).clone()], limits.clone()).map_err(anyhow::Error::msg)?;
        // What a server does per request: parse, compute, re-randomise, serialise.
        let serve_one = |state: &AppState| -> Result<String> {
            let req = PredictRequest::parse(body.as_bytes()).map_err(anyhow::Error::msg)?;
            let r =
                unseen_server::predict::predict(state, &model, req).map_err(anyhow::Error::msg)?;
            Ok(legacy_reply(&r))
        };
        let reply = serve_one(&state)?;
        let (_, c, e) = unseen_wire::salary::parse_legacy_reply(reply.as_bytes())
            .map_err(anyhow::Error::msg)?;
        let got = sk
            .decrypt(&EncryptedNumber::new(pk.clone(), c, e)?)?
            .to_f64();
        if (got - expected).abs() > 1e-6 * expected.abs().max(1.0) {
            anyhow::bail!("{op}: decrypted {got}, expected {expected}");
        }
        let s = measure(iters, || {
            let _ = serve_one(&state);
        });
        report(a.json, op, bits, &s, "server side: parse request, weighted sum + intercept, re-randomise, reply JSON (client key cached)");
        let s = measure((iters / 5).max(3), || {
            let fresh = AppState::new(vec![(*model).clone()], limits.clone()).expect("one model");
            let _ = serve_one(&fresh);
        });
        report(
            a.json,
            &format!("{op}_new_key"),
            bits,
            &s,
            "same, first request of a client key (builds its re-randomisation table)",
        );
    }
    Ok(())
}
