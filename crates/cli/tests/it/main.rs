//! End-to-end tests of the `unseen` binary, and interoperability with python-paillier.
//!
//! The interop tests need a Python with `phe`, `click` (pheutil), `numpy` and `safetensors`:
//! `UNSEEN_PYTHON`, or `target/phe-venv/bin/python` as made by `scripts/test.sh`. Without one
//! they fail with a message saying how to get it.

mod cluster;
mod cnn_service;
mod harness;
mod interop_phe;
mod interop_torch;
mod onnx_models;

use harness::{repo_file, Unseen};

#[test]
fn train_linear_prints_metrics_and_writes_model() {
    let u = Unseen::new();
    let out = u.train_salary("m.json");
    let line: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    assert_eq!(line["rows_train"], 800);
    assert_eq!(line["rows_test"], 200);
    assert!(line["rmse"].as_f64().expect("rmse") > 0.0);
    assert!(line["r2"].as_f64().expect("r2") > 0.5);
    assert_eq!(line["coefficients"].as_array().map(Vec::len), Some(4));
    let model: serde_json::Value = serde_json::from_str(&u.read("m.json")).expect("model JSON");
    assert_eq!(model["features"][3], "Gender");
    // All rows when the test fraction is 0.
    let out = u.ok(&[
        "train",
        "linear",
        "--csv",
        &repo_file("data/employee/employee_data.csv"),
        "--target",
        "salary",
        "--out",
        "all.json",
        "--test-fraction",
        "0",
    ]);
    assert!(out.contains("\"rows_train\":1000"));
}

#[test]
fn bad_inputs_give_one_line_errors() {
    let u = Unseen::new();
    u.write("bad.csv", "a,b\n1,2\n3\n");
    u.write("notjson.json", "{");
    u.write(
        "model.json",
        "{\"format\": \"unseen-linear-model\", \"version\": 1}",
    );
    let cases: &[&[&str]] = &[
        &[
            "train",
            "linear",
            "--csv",
            "missing.csv",
            "--target",
            "salary",
            "--out",
            "m.json",
        ],
        &[
            "train", "linear", "--csv", "bad.csv", "--target", "b", "--out", "m.json",
        ],
        &[
            "train", "linear", "--csv", "bad.csv", "--target", "zzz", "--out", "m.json",
        ],
        &["serve", "--model", "notjson.json", "--http", "127.0.0.1:0"],
        &["serve", "--model", "model.json", "--http", "127.0.0.1:0"],
        &[
            "predict",
            "--server",
            "http://127.0.0.1:1",
            "--keys",
            "notjson.json",
            "--features",
            "1,2",
        ],
        &["keygen", "--bits", "1000", "--out", "k.json"],
        &[
            "paillier",
            "decrypt",
            "--keys",
            "notjson.json",
            "--ciphertext",
            "notjson.json",
        ],
    ];
    for args in cases {
        let err = u.fails(args);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn keygen_writes_a_private_file_and_refuses_to_overwrite() {
    let u = Unseen::new();
    u.ok(&["keygen", "--out", "keys.json"]);
    let keys = u.read("keys.json");
    // Integers are bare JSON numbers, as Python's json.dump writes them.
    assert!(
        keys.starts_with("{\"public_key\": {\"n\": 1")
            || keys.starts_with("{\"public_key\": {\"n\": "),
        "{keys}"
    );
    let p_at = keys.find("\"private_key\": {\"p\": ").expect("private key");
    assert!(
        keys[p_at + 21..].starts_with(|c: char| c.is_ascii_digit()),
        "{keys}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(u.path("keys.json"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let err = u.fails(&["keygen", "--out", "keys.json"]);
    assert!(err.contains("already exists"));
}

#[test]
fn predict_over_http_and_legacy_tcp_matches_plaintext() {
    let u = Unseen::new();
    u.train_salary("m.json");
    u.ok(&["keygen", "--out", "keys.json"]);
    let model: serde_json::Value = serde_json::from_str(&u.read("m.json")).expect("model");
    let w: Vec<f64> = model["coefficients"]
        .as_array()
        .expect("coefs")
        .iter()
        .map(|v| v.as_f64().expect("f64"))
        .collect();
    let expected = model["intercept"].as_f64().expect("b") + w[0] * 35.0 + w[1] * 7.0 + w[2] * 2.0;
    let server = u.serve(&["--model", "m.json"]);
    for addr in [
        format!("http://{}", server.http),
        format!("tcp://{}", server.legacy),
    ] {
        let out = u.ok(&[
            "predict",
            "--server",
            &addr,
            "--keys",
            "keys.json",
            "--features",
            "35,7,2,0",
            "--json",
        ]);
        let v: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
        let got = v["prediction"].as_f64().expect("prediction");
        assert!((got - expected).abs() < 1e-9, "{addr}: {got} vs {expected}");
        assert!(v["bytes_sent"].as_u64().expect("bytes") > 2000);
    }
    let err = u.fails(&[
        "predict",
        "--server",
        &format!("http://{}", server.http),
        "--keys",
        "keys.json",
        "--features",
        "1,2,3",
    ]);
    assert!(err.contains("expects 4 features"), "{err}");
}

#[test]
fn demo_runs_end_to_end() {
    let u = Unseen::new();
    let out_dir = u.path("demo-out").display().to_string();
    let out = u.ok_in(&harness::repo_root(), &["demo", "--out", &out_dir]);
    assert!(out.contains("RMSE"), "{out}");
    // two salary predictions (HTTP, legacy TCP) and the encrypted digit
    let results = out.lines().filter(|l| l.starts_with("encrypted ")).count();
    assert_eq!(results, 3, "{out}");
    assert!(out.contains("encrypted   class 7"), "{out}");
    assert!(u.path("demo-out/digit.png").exists());
    assert!(u.path("demo-out/client-keys/secret.key").exists());
}

#[test]
fn train_cnn_writes_model_plots_and_json_lines() {
    let u = Unseen::new();
    let data = repo_file("data");
    let out = u.ok(&[
        "train",
        "cnn",
        "--dataset",
        "mnist",
        "--epochs",
        "2",
        "--limit-train",
        "3000",
        "--out",
        "m",
        "--data",
        &data,
    ]);
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert_eq!(lines[1]["epoch"], 2);
    for key in ["train_loss", "train_accuracy", "test_accuracy"] {
        assert!(lines[0][key].is_number(), "{key}");
    }
    assert!(lines[2]["test_accuracy"].as_f64().expect("acc") > 0.8);
    assert_eq!(lines[2]["test_images"], 10000);
    for f in [
        "model.json",
        "model.safetensors",
        "loss.png",
        "accuracy.png",
        "confusion.png",
    ] {
        let meta = std::fs::metadata(u.path("m").join(f)).unwrap_or_else(|_| panic!("{f} missing"));
        assert!(meta.len() > 100, "{f}");
    }
    // Same seed, same weights.
    u.ok(&[
        "train",
        "cnn",
        "--dataset",
        "mnist",
        "--epochs",
        "2",
        "--limit-train",
        "3000",
        "--out",
        "m2",
        "--data",
        &data,
    ]);
    assert_eq!(
        std::fs::read(u.path("m/model.safetensors")).expect("a"),
        std::fs::read(u.path("m2/model.safetensors")).expect("b")
    );
    let eval = u.ok(&["eval", "--model", "m", "--limit", "100", "--data", &data]);
    assert!(eval.contains("\"images\":100"), "{eval}");
}

#[test]
fn bad_datasets_and_models_give_one_line_errors() {
    let u = Unseen::new();
    std::fs::create_dir_all(u.path("d/mnist")).expect("mkdir");
    let labels = std::fs::read(repo_file("data/mnist/t10k-labels-idx1-ubyte.gz")).expect("labels");
    std::fs::write(u.path("d/mnist/t10k-labels-idx1-ubyte.gz"), &labels).expect("write");
    std::fs::write(u.path("d/mnist/train-labels-idx1-ubyte.gz"), &labels).expect("write");
    let images = std::fs::read(repo_file("data/mnist/t10k-images-idx3-ubyte.gz")).expect("images");
    // A truncated gzip file and a raw file cut short.
    std::fs::write(
        u.path("d/mnist/train-images-idx3-ubyte.gz"),
        &images[..images.len() / 2],
    )
    .expect("write");
    std::fs::write(
        u.path("d/mnist/t10k-images-idx3-ubyte"),
        [0u8, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3],
    )
    .expect("write");
    std::fs::create_dir_all(u.path("m")).expect("mkdir");
    u.write("m/model.json", "{\"format\": \"unseen-cnn\"}");
    let cases: &[&[&str]] = &[
        &[
            "train",
            "cnn",
            "--dataset",
            "mnist",
            "--out",
            "x",
            "--data",
            "d",
        ],
        &[
            "train",
            "cnn",
            "--dataset",
            "mnist",
            "--arch",
            "resnet",
            "--out",
            "x",
            "--data",
            "d",
        ],
        &["eval", "--model", "m"],
        &["eval", "--model", "nowhere"],
    ];
    for args in cases {
        let err = u.fails(args);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
    }
}

#[test]
fn usage_errors_are_one_line_with_exit_code_2() {
    let u = Unseen::new();
    for (args, names) in [
        (
            &["train", "cnn", "--dataset", "cifar", "--out", "x"][..],
            "cifar",
        ),
        (&["serve"][..], "--model"),
        (&["predict", "--server", "x"][..], "--"),
        (&["frobnicate"][..], "frobnicate"),
        (
            &["eval", "--model", "m", "--key-digits", "paired"][..],
            "--encrypted",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_unseen"))
            .args(args)
            .current_dir(u.path(""))
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("error: "), "{args:?}: {err}");
        // the line names what is wrong, not only that something is
        assert!(err.contains(names), "{args:?}: {err}");
    }
}

#[test]
fn encrypted_eval_agrees_with_plaintext() {
    let u = Unseen::new();
    let out = u.ok(&[
        "eval",
        "--model",
        &repo_file("models/ciphernet-mnist"),
        "--encrypted",
        "--limit",
        "3",
        "--data",
        &repo_file("data"),
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON line");
    assert_eq!(v["images"], 3);
    assert_eq!(v["agreement"], 1.0, "{v}");
    assert!(v["max_logit_error"].as_f64().expect("err") < 0.05, "{v}");
    for key in [
        "server_single_image_ms",
        "client_encrypt_ms",
        "client_decrypt_ms",
        "eval_keys_bytes",
        "upload_bytes",
        "download_bytes",
    ] {
        assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {v}");
    }
}

#[test]
fn encrypted_batch_eval_agrees_with_plaintext() {
    let u = Unseen::new();
    let out = u.ok(&[
        "eval",
        "--model",
        &repo_file("models/ciphernet-mnist"),
        "--encrypted",
        "--mode",
        "batch",
        "--limit",
        "2",
        "--data",
        &repo_file("data"),
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON line");
    assert_eq!(v["images"], 2);
    assert_eq!(v["agreement"], 1.0, "{v}");
    assert!(v["max_logit_error"].as_f64().expect("err") < 0.05, "{v}");
    assert!(
        v["batch_server_ms_per_image"]
            .as_f64()
            .is_some_and(|x| x > 0.0),
        "{v}"
    );
}

#[test]
fn servers_beyond_loopback_need_tokens_and_clients_send_them() {
    let u = Unseen::new();
    u.train_salary("m.json");
    for args in [
        &["serve", "--model", "m.json", "--http", "0.0.0.0:0"][..],
        &["serve", "--model", "m.json", "--legacy-tcp", "0.0.0.0:0"][..],
    ] {
        let err = u.fails(args);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("refusing") && err.contains("--open"), "{err}");
    }
    let made: serde_json::Value =
        serde_json::from_str(u.ok(&["token", "new", "--tenant", "acme"]).trim()).expect("json");
    let token = made["token"].as_str().expect("token").to_string();
    u.write("tokens.json", &format!("[{}]", made["entry"]));
    assert!(!u.read("tokens.json").contains(&token));
    u.ok(&["keygen", "--out", "keys.json", "--bits", "2048"]);
    let server = u.serve(&["--model", "m.json", "--tokens", "tokens.json"]);
    let base = format!("http://{}", server.http);
    let predict = |token: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_unseen"));
        c.args([
            "predict",
            "--server",
            &base,
            "--keys",
            "keys.json",
            "--features",
            "35,7,2,0",
        ])
        .current_dir(u.path(""))
        .env_remove("UNSEEN_TOKEN");
        if let Some(t) = token {
            c.env("UNSEEN_TOKEN", t);
        }
        c.output().expect("run")
    };
    let refused = predict(None);
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && err.contains("unauthorized"),
        "{err}"
    );
    let served = predict(Some(&token));
    assert!(
        served.status.success(),
        "{}",
        String::from_utf8_lossy(&served.stderr)
    );
    // the token file may come from the environment instead: then a wide address is allowed
    let mut wide = std::process::Command::new(env!("CARGO_BIN_EXE_unseen"))
        .args(["serve", "--model", "m.json", "--http", "0.0.0.0:0"])
        .env("UNSEEN_TOKENS", "tokens.json")
        .current_dir(u.path(""))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(wide.stderr.take().expect("stderr")),
        &mut first,
    )
    .expect("read");
    let _ = wide.kill();
    let _ = wide.wait();
    assert!(first.contains("HTTP API on"), "{first}");
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// A CA and a certificate it signed for `localhost` and 127.0.0.1: (ca.pem, cert.pem, key.pem).
fn test_pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).expect("ca");
    let key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .expect("params")
        .signed_by(&key, &ca, &ca_key)
        .expect("leaf");
    (ca.pem(), leaf.pem(), key.serialize_pem())
}

#[test]
fn https_with_a_private_ca() {
    let u = Unseen::new();
    u.train_salary("m.json");
    let (ca, cert, key) = test_pki();
    u.write("ca.pem", &ca);
    u.write("cert.pem", &cert);
    u.write("key.pem", &key);
    std::fs::set_permissions(
        u.path("key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    u.write("other-ca.pem", &test_pki().0);
    u.ok(&["keygen", "--out", "keys.json", "--bits", "2048"]);
    let server = u.serve(&[
        "--model",
        "m.json",
        "--tls-cert",
        "cert.pem",
        "--tls-key",
        "key.pem",
    ]);
    let https = format!("https://{}", server.http);
    let predict = |server: &str, ca: Option<&str>| {
        let mut args = vec![
            "predict",
            "--server",
            server,
            "--keys",
            "keys.json",
            "--features",
            "35,7,2,0",
        ];
        if let Some(ca) = ca {
            args.extend(["--ca", ca]);
        }
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>()
    };
    // trusted through the private CA: the same prediction as over the legacy port
    let over_tls: serde_json::Value =
        serde_json::from_str(&u.ok(&strs(&predict(&https, Some("ca.pem"))))).expect("json");
    let legacy = format!("tcp://{}", server.legacy);
    let plain: serde_json::Value = serde_json::from_str(&u.ok(&[
        "predict",
        "--server",
        &legacy,
        "--keys",
        "keys.json",
        "--features",
        "35,7,2,0",
    ]))
    .expect("json");
    assert_eq!(over_tls["prediction"], plain["prediction"], "{over_tls}");
    // the Mozilla roots, another CA, or plain HTTP to the TLS port: one clear line each
    for (args, expect) in [
        (predict(&https, None), "certificate"),
        (predict(&https, Some("other-ca.pem")), "certificate"),
        (predict(&https, Some("cert.pem")), "certificate"),
        (predict(&format!("http://{}", server.http), None), ""),
        (predict(&https, Some("missing.pem")), "missing.pem"),
        (predict(&https, Some("m.json")), "m.json"),
    ] {
        let err = u.fails(&strs(&args));
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(expect), "{expect}: {err}");
    }
    // bad server-side files are refused with one line
    for (c, k) in [
        ("key.pem", "key.pem"),
        ("cert.pem", "cert.pem"),
        ("cert.pem", "nope.pem"),
    ] {
        let err = u.fails(&[
            "serve",
            "--model",
            "m.json",
            "--http",
            "127.0.0.1:0",
            "--tls-cert",
            c,
            "--tls-key",
            k,
        ]);
        let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{err}");
        assert!(errors[0].contains(".pem"), "{err}");
    }
}

#[test]
fn bench_load_reports_latency_and_fails_on_errors() {
    let u = Unseen::new();
    u.train_salary("m.json");
    u.ok(&["keygen", "--out", "keys.json", "--bits", "2048"]);
    let server = u.serve(&["--model", "m.json"]);
    let base = format!("http://{}", server.http);
    let out = u.ok(&[
        "bench",
        "load",
        "--server",
        &base,
        "--model",
        "salary",
        "--keys",
        "keys.json",
        "--clients",
        "3",
        "--requests",
        "4",
    ]);
    let r: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(r["requests"], 12, "{r}");
    assert_eq!(r["errors"], 0, "{r}");
    let (p50, p99) = (
        r["p50_ms"].as_f64().expect("p50"),
        r["p99_ms"].as_f64().expect("p99"),
    );
    assert!(p50 > 0.0 && p50 <= p99, "{r}");
    // every failing request is reported, with one line
    let err = u.fails(&[
        "bench",
        "load",
        "--server",
        &base,
        "--model",
        "nope",
        "--keys",
        "keys.json",
        "--clients",
        "2",
        "--requests",
        "2",
    ]);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("2 of 2 clients failed") && err.contains("unknown_model"),
        "{err}"
    );
}
