//! End-to-end tests of the `unseen` binary, and interoperability with python-paillier.
//!
//! The phe tests need a Python with `phe` (and `click` for pheutil): `UNSEEN_PHE_PYTHON`, or
//! `target/phe-venv/bin/python` as made by `scripts/test.sh`. Without one they fail with a
//! message saying how to get it.

mod harness;
mod interop_phe;

use harness::{repo_file, Unseen};

#[test]
fn train_linear_prints_metrics_and_writes_model() {
    let u = Unseen::new();
    let out = u.ok(&[
        "train",
        "linear",
        "--csv",
        &repo_file("data/employee/employee_data.csv"),
        "--target",
        "salary",
        "--out",
        "m.json",
    ]);
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
    u.ok(&[
        "train",
        "linear",
        "--csv",
        &repo_file("data/employee/employee_data.csv"),
        "--target",
        "salary",
        "--out",
        "m.json",
    ]);
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
    let out = u.ok_in(&harness::repo_root(), &["demo"]);
    assert!(out.contains("RMSE"), "{out}");
    assert_eq!(out.matches("encrypted ").count(), 2, "{out}");
}
