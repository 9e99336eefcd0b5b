//! `unseen bench load`: a bounded load test of a running server. N clients, each on its own
//! keep-alive connection, send M requests one after another (a Paillier prediction or an
//! encrypted image); the request is encrypted once beforehand, so the figures are the server's
//! (and the network's), not the client's encryption. Each client checks that its first reply
//! decrypts to the right answer; every reply must be a 2xx. Reports requests per second,
//! p50/p90/p99 latency and requests per second per core.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use unseen_client::session::Session;

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Server base URL, http(s)://HOST:PORT (loopback or a server you run).
    #[arg(long)]
    server: String,
    /// Model name on the server.
    #[arg(long)]
    model: String,
    /// Paillier key file: load the linear model's /predict route with these features.
    #[arg(long, conflicts_with = "key_dir")]
    keys: Option<PathBuf>,
    /// Feature values for --keys, comma-separated.
    #[arg(long, default_value = "35,7,2,0", allow_hyphen_values = true)]
    features: String,
    /// CKKS key folder (`unseen keygen ckks`): registers its evaluation keys, then loads the
    /// CNN's /infer route with one encrypted test image.
    #[arg(long)]
    key_dir: Option<PathBuf>,
    /// Test image sent with --key-dir.
    #[arg(long, default_value_t = 0)]
    mnist_index: usize,
    /// Folder holding mnist/ and fashion-mnist/ (default: the vendored data/).
    #[arg(long)]
    data: Option<PathBuf>,
    /// The served model's folder, when at hand: replies must decrypt to its plaintext class
    /// (without it, to the test image's label).
    #[arg(long)]
    model_dir: Option<PathBuf>,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Requests per client.
    #[arg(long, default_value_t = 50)]
    requests: usize,
    /// Stop sending after this many seconds, whatever is left.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
    /// Cores the server uses, for the per-core figure (default: this machine's).
    #[arg(long)]
    server_cores: Option<usize>,
}

/// Checks one reply (decrypts it and compares with the expected answer).
type Check = Box<dyn Fn(&[u8]) -> Result<()> + Send + Sync>;

/// One prepared request and how to check a reply to it.
struct Prepared {
    path: String,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    check: Check,
    kind: &'static str,
}

fn prepare(a: &LoadArgs) -> Result<Prepared> {
    let base = a.server.trim_end_matches('/');
    match (&a.keys, &a.key_dir) {
        (Some(keys), None) => {
            use unseen_paillier::{EncryptedNumber, Randomness};
            let sk = unseen_client::keyfile::load_private(keys)?;
            let features = unseen_client::salary::parse_features(&a.features)?;
            let cts = features
                .iter()
                .map(|x| {
                    EncryptedNumber::encrypt_with_private_key(
                        &sk,
                        x,
                        Randomness::FixedBase,
                        &mut rand_core::OsRng,
                    )
                })
                .collect::<Result<Vec<_>, _>>()?;
            let body = unseen_wire::salary::PredictRequest::to_json(&cts).into_bytes();
            let check = move |reply: &[u8]| -> Result<()> {
                let v: serde_json::Value = serde_json::from_slice(reply)?;
                let c = v["value"]["v"]
                    .as_str()
                    .context("reply has no value")?
                    .parse::<unseen_paillier::Integer>()
                    .map_err(|e| anyhow::anyhow!("bad ciphertext: {e}"))?;
                let e = v["value"]["e"].as_i64().context("reply has no exponent")?;
                let x = EncryptedNumber::new(sk.public_key().clone(), c, e as i32)?;
                let value = sk.decrypt(&x)?.to_f64();
                if !value.is_finite() {
                    bail!("the reply decrypts to {value}");
                }
                Ok(())
            };
            Ok(Prepared {
                path: format!("/v1/models/{}/predict", a.model),
                content_type: "application/json",
                headers: Vec::new(),
                body,
                check: Box::new(check),
                kind: "paillier-predict",
            })
        }
        (None, Some(dir)) => {
            let client = unseen_client::cnn::CnnClient::load(dir)?;
            let bundle = client.eval_keys(dir)?;
            let session = Session::new(base)?;
            let (status, reply) =
                session.post("/v1/keys", &[], "application/octet-stream", &bundle)?;
            if !(200..300).contains(&status) {
                bail!(
                    "registering the keys: HTTP {status}: {}",
                    String::from_utf8_lossy(&reply)
                );
            }
            let key_id = unseen_client::cnn::key_id(&bundle);
            let (pixels, label, _) =
                crate::image_cmd::load_image(&client, None, Some(a.mnist_index), a.data.clone())?;
            let body = client.encrypt_image(&pixels)?;
            let expected = match &a.model_dir {
                Some(m) => {
                    let (net, _) = unseen_model::folder::load_model(m)?;
                    let logits = net.logits_f64(&client.normalize_image(&pixels)?);
                    unseen_client::cnn::classify(logits).class
                }
                None => label.context("the test image has no label")?,
            };
            let check = move |reply: &[u8]| -> Result<()> {
                let class = unseen_client::cnn::classify(client.decrypt_logits(reply)?).class;
                if class != expected {
                    bail!("decrypted class {class}, the plaintext model says {expected} (label {label:?})");
                }
                Ok(())
            };
            Ok(Prepared {
                path: format!("/v1/models/{}/infer", a.model),
                content_type: "application/octet-stream",
                headers: vec![("unseen-key-id".into(), key_id)],
                body,
                check: Box::new(check),
                kind: "ckks-infer",
            })
        }
        _ => bail!("give --keys FILE (a Paillier model) or --key-dir DIR (a CNN model)"),
    }
}

pub fn run(a: LoadArgs) -> Result<()> {
    if a.clients == 0 || a.requests == 0 {
        bail!("--clients and --requests must be at least 1");
    }
    let prepared = prepare(&a)?;
    let deadline = Instant::now() + Duration::from_secs(a.max_seconds.max(1));
    let started = Instant::now();
    let results: Vec<Result<Vec<f64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..a.clients)
            .map(|_| {
                let p = &prepared;
                let base = a.server.trim_end_matches('/');
                scope.spawn(move || -> Result<Vec<f64>> {
                    let session = Session::new(base)?;
                    let headers: Vec<(&str, &str)> = p
                        .headers
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect();
                    let mut latencies = Vec::with_capacity(a.requests);
                    for i in 0..a.requests {
                        if Instant::now() > deadline {
                            break;
                        }
                        let t = Instant::now();
                        let (status, reply) =
                            session.post(&p.path, &headers, p.content_type, &p.body)?;
                        latencies.push(t.elapsed().as_secs_f64() * 1e3);
                        if !(200..300).contains(&status) {
                            bail!("HTTP {status}: {}", String::from_utf8_lossy(&reply));
                        }
                        if i == 0 {
                            (p.check)(&reply)?;
                        }
                    }
                    Ok(latencies)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a client thread panicked"))
            })
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for r in results {
        match r {
            Ok(l) => latencies.extend(l),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return f64::NAN;
        }
        latencies[((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1]
    };
    let cores = a.server_cores.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let rps = latencies.len() as f64 / seconds;
    println!(
        "{}",
        json!({
            "kind": prepared.kind,
            "model": a.model,
            "clients": a.clients,
            "requests": latencies.len(),
            "errors": errors.len(),
            "seconds": seconds,
            "requests_per_second": rps,
            "server_cores": cores,
            "requests_per_second_per_core": rps / cores as f64,
            "p50_ms": pct(0.50),
            "p90_ms": pct(0.90),
            "p99_ms": pct(0.99),
            "max_ms": latencies.last().copied().unwrap_or(f64::NAN),
            "request_bytes": prepared.body.len(),
        })
    );
    if let Some(first) = errors.first() {
        bail!(
            "{} of {} clients failed; the first: {first}",
            errors.len(),
            a.clients
        );
    }
    Ok(())
}
