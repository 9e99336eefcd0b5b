//! python-paillier clients and key files against unseen.

use crate::harness::{py, repo_file, Unseen};

fn pheutil(dir: &std::path::Path, args: &[&str]) -> String {
    let mut full = vec![
        "-c",
        "import sys; from phe.command_line import cli; sys.argv[0] = 'pheutil'; cli()",
    ];
    full.extend_from_slice(args);
    py(dir, &full)
}

#[test]
fn phe_legacy_client_gets_exact_predictions_with_intercept() {
    let u = Unseen::new();
    u.train_salary("m.json");
    let server = u.serve(&["--model", "m.json"]);
    let port = server.legacy.rsplit(':').next().expect("port").to_string();
    let client = repo_file("tests/interop/legacy_client.py");
    // phe makes keys.json (2048 bits, phe's default), then two requests on one connection.
    let out = py(
        u.path("").as_path(),
        &[
            &client,
            "--port",
            &port,
            "--keys",
            "keys.json",
            "--model",
            "m.json",
            "--requests",
            "2",
        ],
    );
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("client JSON");
    let expected = v["expected"].as_f64().expect("phe's own result");
    for got in v["decrypted"].as_array().expect("results") {
        // Bit-for-bit what a phe server computes for the same model.
        assert_eq!(got.as_f64(), Some(expected), "{v}");
    }
    assert!(
        (expected - v["plain"].as_f64().expect("plain")).abs() < 1e-9,
        "{v}"
    );
    // The keys.json that phe wrote works with unseen's client too.
    let ours = u.ok(&[
        "predict",
        "--server",
        &server.legacy,
        "--keys",
        "keys.json",
        "--features",
        "24,4,6,1",
    ]);
    assert_eq!(ours.trim().parse::<f64>().ok(), Some(expected));
}

#[test]
fn keys_json_ciphertexts_decrypt_both_ways() {
    let u = Unseen::new();
    u.ok(&["keygen", "--out", "keys.json"]);
    let script = repo_file("tests/interop/keys_json.py");
    for value in [
        "42",
        "-17",
        "3.141592653589793",
        "-0.000123",
        "1e+300",
        "123456789012345678901234567890",
    ] {
        // unseen encrypts, phe decrypts.
        let ct = u.ok(&[
            "paillier",
            "encrypt",
            "--public-key",
            "keys.json",
            "--value",
            value,
        ]);
        let ct: serde_json::Value = serde_json::from_str(ct.trim()).expect("ct");
        let v = ct["v"].as_str().expect("v");
        let e = ct["e"].as_i64().expect("e").to_string();
        let phe_says = py(
            u.path("").as_path(),
            &[&script, "decrypt", "keys.json", v, &e],
        );
        // phe encrypts, unseen decrypts.
        let phe_ct = py(
            u.path("").as_path(),
            &[&script, "encrypt", "keys.json", value],
        );
        u.write("phe_ct.json", &phe_ct);
        let we_say = u.ok(&[
            "paillier",
            "decrypt",
            "--keys",
            "keys.json",
            "--ciphertext",
            "phe_ct.json",
        ]);
        let expected: f64 = value.parse().expect("number");
        assert_eq!(
            phe_says.trim().parse::<f64>().ok(),
            Some(expected),
            "phe decrypted {phe_says}"
        );
        assert_eq!(
            we_say.trim().parse::<f64>().ok(),
            Some(expected),
            "unseen decrypted {we_say}"
        );
    }
}

#[test]
fn pheutil_jwk_keys_and_files_work_both_ways() {
    let u = Unseen::new();
    let dir = u.path("");
    pheutil(&dir, &["genpkey", "--keysize", "2048", "priv.jwk"]);
    pheutil(&dir, &["extract", "priv.jwk", "pub.jwk"]);
    // pheutil encrypts, unseen decrypts with the pheutil private key.
    pheutil(&dir, &["encrypt", "pub.jwk", "12.5", "--output", "a.json"]);
    assert_eq!(
        u.ok(&[
            "paillier",
            "decrypt",
            "--keys",
            "priv.jwk",
            "--ciphertext",
            "a.json"
        ])
        .trim(),
        "12.5"
    );
    // unseen encrypts with the pheutil public key, pheutil decrypts.
    u.write(
        "b.json",
        &u.ok(&[
            "paillier",
            "encrypt",
            "--public-key",
            "pub.jwk",
            "--value",
            "-7.25",
        ]),
    );
    assert_eq!(
        pheutil(&dir, &["decrypt", "priv.jwk", "b.json"]).trim(),
        "-7.25"
    );
    // unseen's JWK keys work with pheutil.
    u.ok(&["keygen", "--format", "jwk", "--out", "ours.jwk"]);
    u.write(
        "ours_pub.jwk",
        &u.ok(&["paillier", "extract", "--keys", "ours.jwk"]),
    );
    pheutil(
        &dir,
        &["encrypt", "ours_pub.jwk", "99", "--output", "c.json"],
    );
    assert_eq!(
        u.ok(&[
            "paillier",
            "decrypt",
            "--keys",
            "ours.jwk",
            "--ciphertext",
            "c.json"
        ])
        .trim(),
        "99"
    );
    u.write(
        "d.json",
        &u.ok(&[
            "paillier",
            "encrypt",
            "--public-key",
            "ours_pub.jwk",
            "--value",
            "0.5",
        ]),
    );
    assert_eq!(
        pheutil(&dir, &["decrypt", "ours.jwk", "d.json"]).trim(),
        "0.5"
    );
}
