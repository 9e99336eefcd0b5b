//! Command-line arguments and the dispatch to each command.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use unseen_client::keyfile::{self, KeyFormat};
use unseen_client::salary::{parse_features, predict, Server};
use unseen_ml::linear::{fit_table, FitOptions, LinearModel};
use unseen_ml::table::Table;
use unseen_paillier::{PrivateKey, Randomness, DEFAULT_KEY_BITS};
use unseen_server::{AppState, Limits};

/// Private machine-learning inference: the server computes on data it cannot read.
#[derive(Debug, Parser)]
#[command(name = "unseen", version, about)]
pub struct Cli {
    /// Log progress to stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Log lines as text or as one JSON object each (for log collectors).
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// PEM file of the CA certificates that https:// servers must chain to (a private CA);
    /// without it the Mozilla root store is used. Same as the UNSEEN_CA environment variable.
    #[arg(long, global = true, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate keys: a Paillier key file (default, or `keygen paillier`), or with `keygen ckks`
    /// a CKKS key folder for an encrypted CNN.
    Keygen(KeygenArgs),
    /// Train a model.
    #[command(subcommand)]
    Train(TrainCommand),
    /// Accuracy of a CNN model folder on its test set (plaintext).
    Eval(crate::cnn_cmd::EvalArgs),
    /// Import PyTorch weights (safetensors) of a known architecture into a model folder.
    Import(crate::cnn_cmd::ImportArgs),
    /// Serve models over HTTP and/or the legacy TCP protocol.
    Serve(ServeArgs),
    /// Run the batch jobs of a shared database (`unseen serve --key-store postgres://...`).
    Worker(WorkerArgs),
    /// Encrypt features, get an encrypted prediction from a server, decrypt it.
    Predict(PredictArgs),
    /// Encrypt an image, have a server classify it, decrypt the class.
    PredictImage(crate::image_cmd::PredictImageArgs),
    /// Train, serve and query the salary model end to end on this machine, with a report.
    Demo(crate::demo::DemoArgs),
    /// Measure operations (one JSON object per line with --json).
    #[command(subcommand)]
    Bench(crate::bench::BenchCommand),
    /// CKKS tools.
    #[command(subcommand)]
    Ckks(CkksCommand),
    /// python-paillier file tools: pheutil-compatible keys and encrypted numbers.
    #[command(subcommand)]
    Paillier(crate::paillier_cmd::PaillierCommand),
    /// API tokens for `unseen serve --tokens`.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Makes a random token: prints it (give it to the client, as UNSEEN_TOKEN) and the entry
    /// to add to the server's token file (which stores only its SHA-256).
    New {
        /// Who the token is for.
        #[arg(long)]
        tenant: String,
        /// What it allows, comma-separated: infer, keys, admin.
        #[arg(long, value_delimiter = ',', default_value = "infer,keys")]
        scopes: Vec<String>,
        /// The tenant's share of the key store, in bytes (default: the server's
        /// --tenant-quota).
        #[arg(long)]
        quota_bytes: Option<u64>,
        /// Days until the token expires (default: it does not).
        #[arg(long)]
        days: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum CkksCommand {
    /// Parameter presets with their moduli, log2(QP) and security level.
    Params {
        /// One preset by name (default: all).
        #[arg(long)]
        preset: Option<String>,
    },
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
struct KeygenArgs {
    #[command(subcommand)]
    scheme: Option<KeygenScheme>,
    #[command(flatten)]
    paillier: PaillierKeygenArgs,
}

#[derive(Debug, Subcommand)]
enum KeygenScheme {
    /// A Paillier key pair in a key file (private; keep it on the client).
    Paillier(PaillierKeygenArgs),
    /// CKKS keys for a CNN model: secret key kept in KEYDIR, evaluation keys for the server.
    Ckks(crate::image_cmd::CkksKeygenArgs),
}

#[derive(Debug, Args)]
struct PaillierKeygenArgs {
    /// Modulus size in bits (2048, 3072 or 4096).
    #[arg(long, default_value_t = DEFAULT_KEY_BITS)]
    bits: u32,
    /// Output key file.
    #[arg(long, default_value = "keys.json")]
    out: PathBuf,
    /// Layout: keys-json ({"public_key": {"n"}, "private_key": {"p", "q"}}) or jwk (pheutil).
    #[arg(long, default_value = "keys-json")]
    format: KeyFormat,
    /// Overwrite an existing file.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
enum TrainCommand {
    /// Ordinary least squares with intercept on a CSV file.
    Linear(TrainLinearArgs),
    /// An HE-friendly CNN on MNIST or Fashion-MNIST (progress bar, JSON per epoch, plots).
    Cnn(crate::cnn_cmd::TrainCnnArgs),
}

#[derive(Debug, Args)]
struct TrainLinearArgs {
    /// CSV file with a header row.
    #[arg(long)]
    csv: PathBuf,
    /// Column to predict.
    #[arg(long)]
    target: String,
    /// Feature columns, comma-separated (default: every other column, in file order).
    #[arg(long, value_delimiter = ',')]
    features: Vec<String>,
    /// Output model file.
    #[arg(long)]
    out: PathBuf,
    /// Fraction of rows held out for RMSE and R^2 (0 trains on all rows).
    #[arg(long, default_value_t = 0.2)]
    test_fraction: f64,
    /// Seed of the shuffle before the split.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Name under which the server publishes the model.
    #[arg(long, default_value = "salary")]
    name: String,
}

/// Where the evaluation keys (and, with a database, the batch jobs) are kept.
#[derive(Debug, Args)]
pub(crate) struct StoreArgs {
    /// Where clients' evaluation keys are stored on this machine (content-addressed, kept
    /// across restarts); with a database --key-store, only uploads being received.
    #[arg(long, default_value = "unseen-data")]
    data_dir: PathBuf,
    /// A PostgreSQL database (postgres://user@host:port/db) shared by every replica and worker:
    /// evaluation keys and batch jobs are kept there instead of in --data-dir. Same as the
    /// UNSEEN_KEY_STORE environment variable (keeps a password out of the process list).
    #[arg(
        long,
        env = "UNSEEN_KEY_STORE",
        value_name = "URL",
        hide_env_values = true
    )]
    key_store: Option<String>,
    /// Connections to the database kept open.
    #[arg(long, default_value_t = 8)]
    db_connections: u32,
    /// Largest evaluation-key upload, in bytes (ciphernet's keys are 22 MB, the LeNet-5 model's
    /// about 540 MB).
    #[arg(long, default_value_t = 1 << 30)]
    max_key_bytes: u64,
    /// Total bytes of stored evaluation keys; uploads beyond that are refused (507).
    #[arg(long, default_value_t = 4 << 30)]
    key_store_bytes: u64,
    /// Bytes of evaluation keys one tenant may store (a token entry's quota_bytes overrides
    /// it); past it the tenant's own least recently used keys are evicted, never another's.
    /// Without --tokens everyone is one tenant whose quota is the whole store.
    #[arg(long, default_value_t = 2 << 30)]
    tenant_quota: u64,
    /// Clients' evaluation keys kept parsed in memory (ciphernet: about 27.5 MB each, 46 MB
    /// with `--key-digits per-prime`, 22-23 MB with `--key-digits paired`).
    #[arg(long, default_value_t = 8)]
    loaded_keys: usize,
    /// Seconds a worker holds a batch job without renewing its claim; a job whose worker died
    /// is claimed again after that.
    #[arg(long, default_value_t = 30)]
    job_lease_seconds: u64,
    /// Claims of one batch job before it is failed for good (its workers died each time).
    #[arg(long, default_value_t = 3)]
    job_attempts: i32,
    /// Hours a done or failed batch job and its result are kept (0: until deleted by hand).
    #[arg(long, default_value_t = 168.0)]
    job_retention_hours: f64,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// A linear model file, or a CNN model folder served encrypted with CKKS (repeat for several
    /// models; the legacy protocol serves the first linear one). Published under the file's
    /// `name` or the folder's name.
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    /// Digit layout of the evaluation keys the CNN models' specs ask clients for, below the
    /// top level: `mixed` (two data primes per digit, a spare data prime joining the special
    /// prime, for the keys the circuit does not hoist; one per digit for the others),
    /// `per-prime` (one per digit for every key, and the shortcut keys of hoisted
    /// rotate-and-sums: the fastest key switching) or `paired` (two for every key: the smallest
    /// keys). ciphernet per client: 27.5 / 46 / 22-23 MB of memory (README, "Keys paired where
    /// they cost least", "Rotate-and-sums hoisted").
    #[arg(long, value_enum, default_value_t = crate::bench::KeyLayoutArg::Mixed)]
    key_digits: crate::bench::KeyLayoutArg,
    /// Largest encrypted batch request, in bytes (a ciphernet batch of 4096 images is about
    /// 130 MB: one ciphertext per pixel).
    #[arg(long, default_value_t = 256 << 20)]
    max_batch_body: usize,
    #[command(flatten)]
    store: StoreArgs,
    /// On SIGTERM or Ctrl-C, seconds during which /healthz answers 503 (draining) while
    /// requests are still served, before the listener closes: behind a load balancer that
    /// checks /healthz, a restart then fails no request.
    #[arg(long, default_value_t = 0.0)]
    drain_seconds: f64,
    /// Threads of this server that run batch jobs (only with a database --key-store; 0: leave
    /// them to `unseen worker` processes).
    #[arg(long, default_value_t = 1)]
    job_workers: usize,
    /// Address of the HTTP API.
    #[arg(long)]
    http: Option<SocketAddr>,
    /// Address of the legacy python-paillier TCP protocol.
    #[arg(long)]
    legacy_tcp: Option<SocketAddr>,
    /// Token file (`unseen token new` makes entries): every /v1 request then needs a token
    /// with the route's scope. Also read from the UNSEEN_TOKENS environment variable.
    #[arg(long, env = "UNSEEN_TOKENS")]
    tokens: Option<PathBuf>,
    /// PEM certificate chain: serve HTTPS instead of HTTP on --http (with --tls-key).
    #[arg(long, requires = "tls_key", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (keep it mode 600).
    #[arg(long, requires = "tls_cert", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// The browser client's page, served at / (the folder scripts/build-web.sh makes:
    /// web/dist). Keys are made and kept in the page; only evaluation keys and ciphertexts
    /// reach the server.
    #[arg(long, value_name = "DIR")]
    web: Option<PathBuf>,
    /// Serve on a non-loopback address without tokens (HTTP) or at all (the legacy protocol,
    /// which cannot carry tokens): anyone who reaches it can use it.
    #[arg(long)]
    open: bool,
    /// Largest request, in bytes.
    #[arg(long, default_value_t = 1 << 20)]
    max_body: usize,
    /// Smallest client key accepted, in bits.
    #[arg(long, default_value_t = 2048)]
    min_key_bits: u32,
    /// Largest client key accepted, in bits.
    #[arg(long, default_value_t = 4096)]
    max_key_bits: u32,
    /// Seconds a client may stay silent before it is disconnected.
    #[arg(long, default_value_t = 30)]
    idle_timeout: u64,
    /// Slowest average rate, in bytes per second, at which an HTTP body may arrive once the
    /// idle timeout has passed (slower uploads get 408; 0 turns the floor off).
    #[arg(long, default_value_t = 128 << 10)]
    min_body_rate: u64,
    /// Key uploads and large batches received at once; more get 503 with Retry-After at once.
    #[arg(long, default_value_t = 2)]
    large_uploads: usize,
    /// Re-randomisation of results: fixed-base (Damgard-Jurik-Nielsen) or standard.
    #[arg(long, default_value = "fixed-base")]
    randomness: Randomness,
    /// Client public keys kept with their precomputed tables.
    #[arg(long, default_value_t = 256)]
    key_cache: usize,
    /// Most simultaneous legacy TCP connections.
    #[arg(long, default_value_t = 256)]
    max_connections: usize,
    /// Most simultaneous HTTP connections from one client address (more get 429 at once).
    #[arg(long, default_value_t = 32)]
    max_connections_per_client: usize,
    /// Requests per second one client (its tenant with --tokens, its address without) may
    /// make on average; more get 429 with Retry-After (0: no limit).
    #[arg(long, default_value_t = 100.0)]
    rate_limit: f64,
    /// Requests one client may make at once above --rate-limit.
    #[arg(long, default_value_t = 200)]
    rate_burst: u32,
}

#[derive(Debug, Args)]
struct PredictArgs {
    /// http(s)://HOST:PORT (HTTP API) or tcp://HOST:PORT / HOST:PORT (legacy protocol).
    #[arg(long)]
    server: Server,
    /// Key file with the private key (keys.json layout or pheutil JWK).
    #[arg(long, default_value = "keys.json")]
    keys: PathBuf,
    /// Feature values, comma-separated, in the model's order (e.g. 24,4,6,1).
    #[arg(long, allow_hyphen_values = true)]
    features: String,
    /// Model name (HTTP only).
    #[arg(long, default_value = "salary")]
    model: String,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Keygen(KeygenArgs {
            scheme: Some(KeygenScheme::Ckks(a)),
            ..
        }) => crate::image_cmd::keygen_ckks(a),
        Command::Keygen(KeygenArgs {
            scheme: Some(KeygenScheme::Paillier(a)),
            ..
        }) => keygen(a),
        Command::Keygen(KeygenArgs { paillier, .. }) => keygen(paillier),
        Command::Train(TrainCommand::Linear(a)) => train_linear(a),
        Command::Train(TrainCommand::Cnn(a)) => crate::cnn_cmd::train_cnn(a),
        Command::Eval(a) => crate::cnn_cmd::eval(a),
        Command::Import(a) => crate::cnn_cmd::import(a),
        Command::Serve(a) => serve(a),
        Command::Worker(a) => worker_cmd(a),
        Command::Predict(a) => predict_cmd(a),
        Command::PredictImage(a) => crate::image_cmd::predict_image(a),
        Command::Demo(a) => crate::demo::run(a),
        Command::Bench(b) => crate::bench::run(b),
        Command::Paillier(p) => crate::paillier_cmd::run(p),
        Command::Ckks(CkksCommand::Params { preset }) => ckks_params(preset),
        Command::Token(TokenCommand::New {
            tenant,
            scopes,
            quota_bytes,
            days,
        }) => token_new(tenant, scopes, quota_bytes, days),
    }
}

fn token_new(
    tenant: String,
    scopes: Vec<String>,
    quota_bytes: Option<u64>,
    days: Option<u64>,
) -> Result<()> {
    use unseen_server::auth::{new_token, token_sha256, Scope, TokenEntry};
    let scopes = scopes
        .iter()
        .map(|s| match s.trim() {
            "infer" => Ok(Scope::Infer),
            "keys" => Ok(Scope::Keys),
            "admin" => Ok(Scope::Admin),
            other => bail!("--scopes: '{other}' is not infer, keys or admin"),
        })
        .collect::<Result<Vec<_>>>()?;
    if tenant.trim().is_empty() {
        bail!("--tenant must not be empty");
    }
    let token = new_token();
    let entry = TokenEntry {
        tenant,
        sha256: token_sha256(&token),
        scopes,
        quota_bytes,
        expires: match days {
            Some(d) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .context("the clock is before 1970")?
                    .as_secs();
                Some(now.saturating_add(d.saturating_mul(86_400)))
            }
            None => None,
        },
    };
    println!("{}", json!({"token": token, "entry": entry}));
    Ok(())
}

/// Refuses to expose a server beyond this machine without protection, unless `--open`.
fn check_exposure(a: &ServeArgs) -> Result<()> {
    if a.open {
        return Ok(());
    }
    if let Some(addr) = a.http {
        if !addr.ip().is_loopback() && a.tokens.is_none() {
            bail!(
                "refusing to serve HTTP on {addr} without --tokens: anyone who reaches it could use it and fill its key store (give --tokens FILE, bind 127.0.0.1, or pass --open)"
            );
        }
    }
    if let Some(addr) = a.legacy_tcp {
        if !addr.ip().is_loopback() {
            bail!(
                "refusing to serve the legacy protocol on {addr}: it cannot carry API tokens (bind 127.0.0.1 or pass --open)"
            );
        }
    }
    Ok(())
}

fn ckks_params(preset: Option<String>) -> Result<()> {
    match preset {
        None => println!("{}", unseen_ckks::describe_presets()?),
        Some(name) => {
            let p = unseen_ckks::Preset::from_name(&name).with_context(|| {
                let known: Vec<String> =
                    unseen_ckks::Preset::ALL.iter().map(|p| p.name()).collect();
                format!("unknown preset '{name}' (known: {})", known.join(", "))
            })?;
            println!("{}", unseen_ckks::Parameters::preset(p)?.describe());
        }
    }
    Ok(())
}

fn keygen(a: PaillierKeygenArgs) -> Result<()> {
    if a.out.exists() && !a.force {
        bail!(
            "{} already exists (use --force to overwrite it)",
            a.out.display()
        );
    }
    let sk = PrivateKey::generate(a.bits)?;
    keyfile::save(&a.out, &sk, a.format)?;
    println!(
        "{}",
        json!({"keys": a.out.display().to_string(), "bits": sk.public_key().bits(), "format": format!("{:?}", a.format)})
    );
    Ok(())
}

fn train_linear(a: TrainLinearArgs) -> Result<()> {
    let table = Table::read_csv(&a.csv)?;
    let opts = FitOptions {
        target: a.target,
        features: a.features,
        test_fraction: a.test_fraction,
        seed: a.seed,
        name: a.name,
    };
    let model = fit_table(&table, &opts)?;
    model.save(&a.out)?;
    println!(
        "{}",
        json!({
            "model": a.out.display().to_string(),
            "rmse": model.metrics.rmse,
            "r2": model.metrics.r2,
            "evaluated_on": model.metrics.evaluated_on,
            "coefficients": model.features.iter().zip(&model.coefficients).map(|(f, c)| json!({"feature": f, "weight": c})).collect::<Vec<_>>(),
            "intercept": model.intercept,
            "rows_train": model.metrics.rows_train,
            "rows_test": model.metrics.rows_test,
        })
    );
    Ok(())
}

fn serve(a: ServeArgs) -> Result<()> {
    if a.http.is_none() && a.legacy_tcp.is_none() {
        bail!("nothing to serve: give --http ADDR and/or --legacy-tcp ADDR");
    }
    check_exposure(&a)?;
    let tokens = match &a.tokens {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
            Some(
                unseen_server::auth::Tokens::parse(&text)
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?,
            )
        }
        None => None,
    };
    let mut models = Vec::new();
    let mut cnn_models = Vec::new();
    for p in &a.model {
        if !p.exists() {
            bail!(
                "{}: not found (give a linear model file or a CNN model folder)",
                p.display()
            );
        }
        if p.is_dir() {
            let name = crate::image_cmd::folder_name(p);
            let model = unseen_server::cnn::CnnModel::load_with(p, &name, a.key_digits.into());
            cnn_models.push(model.map_err(anyhow::Error::msg)?);
        } else {
            models.push(LinearModel::load(p)?);
        }
    }
    let (store, queue) = open_store(&a.store, &cnn_models)?;
    let limits = Limits {
        max_body: a.max_body,
        min_key_bits: a.min_key_bits,
        max_key_bits: a.max_key_bits.max(a.min_key_bits),
        idle_timeout: Duration::from_secs(a.idle_timeout.max(1)),
        min_body_rate: a.min_body_rate,
        large_bodies: a.large_uploads.max(1),
        randomness: a.randomness,
        key_cache: a.key_cache,
        max_connections: a.max_connections.max(1),
        max_connections_per_client: a.max_connections_per_client.max(1),
        rate_limit: if a.rate_limit.is_finite() {
            a.rate_limit.max(0.0)
        } else {
            0.0
        },
        rate_burst: a.rate_burst.max(1),
        max_batch_body: a.max_batch_body,
        drain: Duration::from_millis((a.drain_seconds.clamp(0.0, 3600.0) * 1e3) as u64),
    };
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => {
            if a.http.is_none() {
                bail!("--tls-cert is for the HTTP API: give --http ADDR too");
            }
            Some(unseen_server::tls::load(cert, key).map_err(anyhow::Error::msg)?)
        }
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut state = AppState::with_tokens(models, cnn_models, store, limits, tokens)
        .map_err(anyhow::Error::msg)?;
    if let Some(queue) = &queue {
        state = AppState::with_jobs(state, queue.clone()).map_err(anyhow::Error::msg)?;
    }
    if let Some(dir) = &a.web {
        if a.http.is_none() {
            bail!("--web is served over HTTP: give --http ADDR too");
        }
        let site = unseen_server::web::Site::load(dir).map_err(anyhow::Error::msg)?;
        state = AppState::with_web(state, site).map_err(anyhow::Error::msg)?;
    }
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let http = match a.http {
            Some(addr) => Some(unseen_server::bind(addr).await?),
            None => None,
        };
        let legacy = match a.legacy_tcp {
            Some(addr) => Some(unseen_server::bind(addr).await?),
            None => None,
        };
        let names: Vec<&String> = state.models.keys().chain(state.cnn_models.keys()).collect();
        if let Some(l) = &http {
            eprintln!(
                "unseen: HTTP API on {scheme}://{} (models: {names:?})",
                l.local_addr()?
            );
            if state.web.is_some() {
                eprintln!("unseen: browser page on {scheme}://{}/", l.local_addr()?);
            }
        }
        if let Some(l) = &legacy {
            eprintln!(
                "unseen: legacy TCP protocol on {} (model: {})",
                l.local_addr()?,
                state
                    .legacy_model
                    .as_ref()
                    .map(|m| m.name.as_str())
                    .unwrap_or("none")
            );
        }
        let workers = match queue {
            Some(queue) if a.job_workers > 0 => {
                eprintln!("unseen: {} batch-job worker thread(s)", a.job_workers);
                let run = AppState::job_runner(state.clone());
                Some(unseen_server::jobs::Workers::spawn(
                    queue,
                    run,
                    a.job_workers,
                )?)
            }
            _ => None,
        };
        unseen_server::serve_with_tls(state.clone(), http, tls, legacy, shutdown_signal()).await?;
        if let Some(w) = workers {
            // a job being run is finished (and stored) before the process ends
            tokio::task::spawn_blocking(move || w.stop()).await?;
        }
        eprintln!("unseen: stopped");
        Ok(())
    })
}

/// The key store the flags describe (none without CNN models), and the batch-job queue when it
/// is a database.
fn open_store(
    a: &StoreArgs,
    cnn_models: &[unseen_server::cnn::CnnModel],
) -> Result<(
    Option<unseen_server::keystore::KeyStore>,
    Option<unseen_server::jobs::JobQueue>,
)> {
    if cnn_models.is_empty() {
        if a.key_store.is_some() {
            bail!("--key-store keeps evaluation keys of encrypted CNN models: give a CNN model folder");
        }
        return Ok((None, None));
    }
    // every served model's parameters (they may differ: the compiler picks each model's preset)
    let mut params: Vec<std::sync::Arc<unseen_ckks::Parameters>> = Vec::new();
    for m in cnn_models {
        if !params.iter().any(|p| p.same_as(m.params())) {
            params.push(m.params().clone());
        }
    }
    let limits = unseen_server::keystore::StoreLimits {
        max_key_bytes: a.max_key_bytes,
        max_total_bytes: a.key_store_bytes,
        tenant_bytes: a.tenant_quota,
        loaded: a.loaded_keys.max(1),
    };
    let (mut store, queue) = match &a.key_store {
        None => {
            let store = unseen_server::keystore::KeyStore::open(&a.data_dir, params, limits)
                .with_context(|| format!("opening the key store in {}", a.data_dir.display()))?;
            (store, None)
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let pool = unseen_server::db::connect(url, a.db_connections)
                .map_err(|e| anyhow::anyhow!("--key-store: {e}"))?;
            let storage = unseen_server::keystore::postgres::PgStorage::new(pool.clone());
            let store = unseen_server::keystore::KeyStore::with_storage(
                Box::new(storage),
                a.data_dir.join("uploads"),
                params,
                limits,
            )
            .context("opening the key store in the database")?;
            let policy = unseen_server::jobs::QueuePolicy {
                lease: Duration::from_secs(a.job_lease_seconds.max(1)),
                max_attempts: a.job_attempts.max(1),
                retention: (a.job_retention_hours > 0.0)
                    .then(|| Duration::from_secs_f64(a.job_retention_hours.min(1e6) * 3600.0)),
            };
            (
                store,
                Some(unseen_server::jobs::JobQueue::new(pool, url, policy)),
            )
        }
        Some(_) => bail!("--key-store takes a postgres:// URL (without it keys go to --data-dir)"),
    };
    store.expect_shapes(cnn_models.iter().map(|m| m.key_shape()).collect());
    Ok((Some(store), queue))
}

#[derive(Debug, Args)]
pub(crate) struct WorkerArgs {
    /// The CNN model folders whose jobs it runs (published under the folder's name, as by
    /// `unseen serve`).
    #[arg(long, required = true)]
    model: Vec<PathBuf>,
    #[command(flatten)]
    store: StoreArgs,
    /// Jobs run at once (each on every core).
    #[arg(long, default_value_t = 1)]
    workers: usize,
}

/// `unseen worker`: runs the batch jobs of a database until SIGTERM or Ctrl-C, finishing the
/// job in hand first.
fn worker_cmd(a: WorkerArgs) -> Result<()> {
    if a.store.key_store.is_none() {
        bail!("a worker takes its jobs from a database: give --key-store postgres://...");
    }
    let mut cnn_models = Vec::new();
    for p in &a.model {
        if !p.is_dir() {
            bail!("{}: not a CNN model folder", p.display());
        }
        let name = crate::image_cmd::folder_name(p);
        cnn_models.push(unseen_server::cnn::CnnModel::load(p, &name).map_err(anyhow::Error::msg)?);
    }
    let (store, queue) = open_store(&a.store, &cnn_models)?;
    let queue = queue.context("no job queue")?;
    let names: Vec<String> = cnn_models.iter().map(|m| m.name.clone()).collect();
    let state = AppState::with_cnn(Vec::new(), cnn_models, store, Limits::default())
        .map_err(anyhow::Error::msg)?;
    let workers =
        unseen_server::jobs::Workers::spawn(queue, AppState::job_runner(state), a.workers.max(1))?;
    eprintln!(
        "unseen: worker running batch jobs ({} at once; models: {names:?})",
        a.workers.max(1)
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the signal handler")?;
    rt.block_on(shutdown_signal());
    eprintln!("unseen: stopping after the jobs in hand");
    workers.stop();
    eprintln!("unseen: stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

fn predict_cmd(a: PredictArgs) -> Result<()> {
    let sk = keyfile::load_private(&a.keys)?;
    let features = parse_features(&a.features)?;
    let p = predict(&a.server, &a.model, &sk, &features)?;
    if a.json {
        println!(
            "{}",
            json!({
                "prediction": p.value.to_f64(),
                "encrypt_ms": p.encrypt.as_secs_f64() * 1e3,
                "round_trip_ms": p.round_trip.as_secs_f64() * 1e3,
                "decrypt_ms": p.decrypt.as_secs_f64() * 1e3,
                "bytes_sent": p.bytes_sent,
                "bytes_received": p.bytes_received,
            })
        );
    } else {
        println!("{}", p.value);
    }
    Ok(())
}
