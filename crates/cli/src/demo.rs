//! `unseen demo`: on this machine, the salary model trained, served and queried on Paillier
//! ciphertexts, then a handwritten digit classified by the shipped CNN on a CKKS ciphertext.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::Args;
use unseen_client::salary::{parse_features, predict, Prediction, Server};
use unseen_ml::linear::{fit_table, FitOptions};
use unseen_ml::table::Table;
use unseen_paillier::{PrivateKey, Scalar, DEFAULT_KEY_BITS};
use unseen_server::{AppState, Limits};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Employee CSV (default: the vendored data/employee/employee_data.csv).
    #[arg(long)]
    csv: Option<PathBuf>,
    /// Features of the employee to predict: age,healthy_eating,active_lifestyle,Gender.
    #[arg(long, default_value = "24,4,6,1")]
    features: String,
    /// Paillier modulus size in bits.
    #[arg(long, default_value_t = DEFAULT_KEY_BITS)]
    bits: u32,
    /// CNN model folder for the encrypted digit (default: the shipped models/ciphernet-mnist).
    #[arg(long)]
    cnn_model: Option<PathBuf>,
    /// Index of the MNIST test image to classify.
    #[arg(long, default_value_t = 0)]
    digit_index: usize,
    /// Folder for the demo's outputs: the digit PNG, the client's key folder, the server's key
    /// store.
    #[arg(long, default_value = "unseen-demo")]
    out: PathBuf,
}

/// Finds a vendored data file from the working directory or the source tree.
pub fn data_file(relative: &str) -> Result<PathBuf> {
    let candidates = [
        PathBuf::from("data").join(relative),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data")
            .join(relative),
    ];
    candidates
        .iter()
        .find(|p| p.exists())
        .cloned()
        .with_context(|| {
            format!("data/{relative} not found (run from the repository root or pass the path)")
        })
}

fn ms(d: std::time::Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// Runs the demo.
pub fn run(a: DemoArgs) -> Result<()> {
    let csv = match &a.csv {
        Some(p) => p.clone(),
        None => data_file("employee/employee_data.csv")?,
    };
    println!("== unseen demo: private salary prediction with Paillier ==");
    let table = Table::read_csv(&csv)?;
    let opts = FitOptions {
        target: "salary".into(),
        features: vec![],
        test_fraction: 0.2,
        seed: 42,
        name: "salary".into(),
    };
    let model = fit_table(&table, &opts)?;
    println!("data        {} ({} rows)", csv.display(), table.rows.len());
    println!(
        "model       salary = {:.4} + {}",
        model.intercept,
        model
            .features
            .iter()
            .zip(&model.coefficients)
            .map(|(f, w)| format!("{w:.4}*{f}"))
            .collect::<Vec<_>>()
            .join(" + ")
    );
    println!(
        "held out    {} rows: RMSE {:.2}, R^2 {:.4} (trained on {})",
        model.metrics.rows_test, model.metrics.rmse, model.metrics.r2, model.metrics.rows_train
    );

    let features = parse_features(&a.features)?;
    if features.len() != model.features.len() {
        bail!(
            "--features needs {} values ({})",
            model.features.len(),
            model.features.join(",")
        );
    }
    let plain: Vec<f64> = features
        .iter()
        .map(|s| match s {
            Scalar::Int(i) => i.to_f64(),
            Scalar::Float(f) => *f,
        })
        .collect();
    let expected = model.predict(&plain);

    let t = Instant::now();
    let sk = PrivateKey::generate(a.bits)?;
    println!(
        "keys        {}-bit Paillier key pair in {}",
        a.bits,
        ms(t.elapsed())
    );

    let cnn_dir = match &a.cnn_model {
        Some(p) => p.clone(),
        None => data_file("../models/ciphernet-mnist")?,
    };
    let cnn_name = crate::image_cmd::folder_name(&cnn_dir);
    let cnn =
        unseen_server::cnn::CnnModel::load(&cnn_dir, &cnn_name).map_err(anyhow::Error::msg)?;
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let mut store = unseen_server::keystore::KeyStore::open(
        &a.out.join("server-data"),
        vec![cnn.params().clone()],
        Default::default(),
    )?;
    store.expect_shapes(vec![cnn.key_shape()]);
    let state = AppState::with_cnn(vec![model], vec![cnn], Some(store), Limits::default())
        .map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let (http_addr, legacy_addr, stop) = rt.block_on(start_server(state))?;

    let servers = [
        Server::Http(format!("http://{http_addr}")),
        Server::Legacy(legacy_addr.to_string()),
    ];
    let mut results: Vec<(String, Prediction)> = Vec::new();
    for server in &servers {
        // The first request of a key builds the server's re-randomisation table; report the second.
        predict(server, "salary", &sk, &features)?;
        let p = predict(server, "salary", &sk, &features)?;
        results.push((server.to_string(), p));
    }
    println!("employee    {}", a.features);
    println!("plaintext   {expected:.6}");
    for (name, p) in &results {
        let got = p.value.to_f64();
        println!(
            "encrypted   {got:.6} via {name} (|diff| {:.1e}): encrypt {}, server round trip {}, decrypt {}, sent {} B, received {} B",
            (got - expected).abs(),
            ms(p.encrypt),
            ms(p.round_trip),
            ms(p.decrypt),
            p.bytes_sent,
            p.bytes_received
        );
        if (got - expected).abs() > 1e-6 * expected.abs().max(1.0) {
            bail!("decrypted prediction {got} differs from the plaintext {expected}");
        }
    }
    println!("the server saw only ciphertexts; its reply was re-randomised before it left.");
    let digit = encrypted_digit(&a, &cnn_dir, &cnn_name, &format!("http://{http_addr}"));
    let _ = stop.send(());
    digit
}

/// The shipped MNIST model classifies one test digit on a CKKS ciphertext through the server.
fn encrypted_digit(a: &DemoArgs, model_dir: &Path, name: &str, base: &str) -> Result<()> {
    use unseen_client::cnn::CnnClient;
    println!();
    println!("== unseen demo: encrypted digit with CKKS ({name}) ==");
    let keys = a.out.join("client-keys");
    let made = CnnClient::keygen(model_dir, name, &keys)?;
    println!(
        "keys        CKKS n8192-cnn (128-bit): secret key in {}, {} B of evaluation keys ({} rotations) in {}",
        keys.display(),
        made.eval_keys_bytes,
        made.rotation_keys,
        ms(made.elapsed)
    );
    let client = CnnClient::load(&keys)?;
    let (pixels, label, what) =
        crate::image_cmd::load_image(&client, None, Some(a.digit_index), None)?;
    let (first, _) = crate::image_cmd::remote(base, &keys, &client, &pixels)?;
    if let Some(bytes) = first.costs.registered_keys {
        println!("register    {bytes} B of evaluation keys sent once, stored under their SHA-256");
    }
    // The first request also loaded the keys; the second shows the steady state.
    let (r, _) = crate::image_cmd::remote(base, &keys, &client, &pixels)?;
    let (net, card) = unseen_model::folder::load_model(model_dir)?;
    let x = card.normalization.image(&pixels, net.arch.input);
    let plain = unseen_model::argmax(&net.logits(&x, 1));
    let class = r.result.class;
    println!("image       {what} (true class {})", label.unwrap_or(plain));
    println!(
        "encrypted   class {class} with probability {:.4}: encrypt {}, server {} (round trip {}), decrypt {}, sent {} B, received {} B",
        r.result.probabilities[class],
        ms(r.costs.encrypt),
        r.costs.server_ms.map(|m| format!("{m:.2} ms")).unwrap_or_else(|| "n/a".into()),
        ms(r.costs.round_trip),
        ms(r.costs.decrypt),
        r.costs.upload_bytes,
        r.costs.download_bytes
    );
    println!("plaintext   class {plain} (the same model without encryption)");
    let png = a.out.join("digit.png");
    unseen_ml::plots::image_card(
        &png,
        &pixels,
        client.spec.gray_image()?.0,
        client.spec.gray_image()?.1,
        &format!("{what}, classified on a CKKS ciphertext"),
        &[
            format!(
                "encrypted: {class} (p = {:.3}), server {}",
                r.result.probabilities[class],
                r.costs
                    .server_ms
                    .map(|m| format!("{m:.1} ms"))
                    .unwrap_or_default()
            ),
            format!("plaintext: {plain}"),
            format!(
                "true label: {}",
                label.map(|l| l.to_string()).unwrap_or_default()
            ),
        ],
    )?;
    println!("picture     {}", png.display());
    if class != plain {
        bail!("the encrypted class {class} differs from the plaintext class {plain}");
    }
    if Path::new("web/dist/index.html").exists() {
        println!(
            "browser     unseen serve --model {} --http 127.0.0.1:8080 --web web/dist, then open \
             http://127.0.0.1:8080/ (keys made and kept in the page)",
            model_dir.display()
        );
    }
    Ok(())
}

async fn start_server(
    state: Arc<AppState>,
) -> Result<(
    std::net::SocketAddr,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
)> {
    let loopback: std::net::SocketAddr = ([127, 0, 0, 1], 0).into();
    let http = unseen_server::bind(loopback).await?;
    let legacy = unseen_server::bind(loopback).await?;
    let (http_addr, legacy_addr) = (http.local_addr()?, legacy.local_addr()?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(unseen_server::serve(
        state,
        Some(http),
        Some(legacy),
        async move {
            let _ = rx.await;
        },
    ));
    Ok((http_addr, legacy_addr, tx))
}
