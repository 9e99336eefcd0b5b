//! Encrypted image classification through the server: key folders, key registration, inference,
//! restarts, and clear errors for every bad request.

use std::io::{Read, Write};
use std::net::TcpStream;

use crate::harness::{repo_file, Unseen};

/// One raw HTTP/1.1 request; returns (status, body).
fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).expect("write head");
    s.write_all(body).expect("write body");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read reply");
    let split = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("reply head");
    let status: u16 = String::from_utf8_lossy(&out[9..12])
        .parse()
        .expect("status");
    (status, out[split + 4..].to_vec())
}

fn error_code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON error body");
    v["error"]["code"].as_str().expect("code").to_string()
}

/// `predict-image` against `server` with key folder `keys` on test image `index`, then `extra`.
fn predict_args<'a>(
    server: &'a str,
    keys: &'a str,
    index: &'a str,
    data: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "predict-image",
        "--server",
        server,
        "--keys",
        keys,
        "--mnist-index",
        index,
        "--data",
        data,
    ];
    args.extend_from_slice(extra);
    args
}

/// Method, path, headers, body, expected status, expected error code.
type Case<'a> = (
    &'a str,
    &'a str,
    Vec<(&'a str, String)>,
    Vec<u8>,
    u16,
    &'a str,
);

#[test]
fn keygen_predict_image_restart_and_bad_requests() {
    let u = Unseen::new();
    let model = repo_file("models/ciphernet-mnist");
    let data = repo_file("data");
    let made = u.ok(&["keygen", "ckks", "--model", &model, "--out", "k"]);
    let made: serde_json::Value = serde_json::from_str(made.trim()).expect("JSON");
    assert!(
        made["eval_keys_bytes"].as_u64().expect("bytes") <= 24_000_000,
        "{made}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(u.path("k/secret.key"))
            .expect("sk")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let err = u.fails(&["keygen", "ckks", "--model", &model, "--out", "k"]);
    assert!(err.contains("--force"), "{err}");
    let key_id = made["key_id"].as_str().expect("id").to_string();

    let server = u.serve(&["--model", &model, "--data-dir", "store"]);
    let base = format!("http://{}", server.http);
    let predict = |index: &str| -> serde_json::Value {
        let out = u.ok(&predict_args(&base, "k", index, &data, &["--json"]));
        serde_json::from_str(out.trim()).expect("JSON")
    };
    let first = predict("0");
    assert_eq!(first["class"], 7, "{first}");
    assert_eq!(first["true_class"], 7, "{first}");
    assert!(first["registered_keys_bytes"].as_u64().is_some(), "{first}");
    let second = predict("1");
    assert_eq!(second["class"], second["true_class"], "{second}");
    assert!(
        second["registered_keys_bytes"].is_null(),
        "keys registered once: {second}"
    );
    assert!(u.path(&format!("store/keys/{key_id}.keys")).exists());
    // the same keys classify a batch (one image per slot) in one request
    let out = u.ok(&predict_args(
        &base,
        "k",
        "0",
        &data,
        &["--batch", "3", "--json"],
    ));
    let batch: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(batch["classes"], serde_json::json!([7, 2, 1]), "{batch}");
    assert_eq!(batch["accuracy"], 1.0, "{batch}");

    // bad requests get a 4xx with a JSON error, and the server keeps serving
    let infer = "/v1/models/ciphernet-mnist/infer";
    let eval_keys = std::fs::read(u.path("k/eval.keys")).expect("eval keys");
    let cases: Vec<Case> = vec![
        ("POST", infer, vec![], b"x".to_vec(), 400, "missing_key_id"),
        (
            "POST",
            infer,
            vec![("unseen-key-id", "zz".into())],
            b"x".to_vec(),
            400,
            "bad_key_id",
        ),
        (
            "POST",
            infer,
            vec![("unseen-key-id", "a".repeat(64))],
            // larger than any socket buffer: the 404 comes after the body is read, so a client
            // that sends a whole request before it reads the reply gets it (no broken pipe)
            vec![0u8; 16 << 20],
            404,
            "unknown_key",
        ),
        (
            "POST",
            infer,
            vec![("unseen-key-id", key_id.clone())],
            b"garbage".to_vec(),
            400,
            "bad_ciphertext",
        ),
        (
            "POST",
            "/v1/models/nope/infer",
            vec![("unseen-key-id", key_id.clone())],
            vec![],
            404,
            "unknown_model",
        ),
        (
            "POST",
            "/v1/keys",
            vec![],
            b"not keys".to_vec(),
            400,
            "bad_keys",
        ),
        (
            "POST",
            "/v1/keys",
            vec![],
            eval_keys[..eval_keys.len() / 2].to_vec(),
            400,
            "bad_keys",
        ),
    ];
    for (method, path, headers, body, status, code) in cases {
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (got, reply) = http(&server.http, method, path, &h, &body);
        assert_eq!(
            got,
            status,
            "{path} {code}: {}",
            String::from_utf8_lossy(&reply)
        );
        assert_eq!(error_code(&reply), code);
    }
    // valid keys for the same parameters, but another model's (ciphernet-wide's 44 rotation
    // keys): not what this server's model needs, so not stored
    u.ok(&[
        "keygen",
        "ckks",
        "--model",
        &repo_file("models/ciphernet-wide-mnist"),
        "--out",
        "wide",
    ]);
    let wide = std::fs::read(u.path("wide/eval.keys")).expect("wide keys");
    let (status, reply) = http(&server.http, "POST", "/v1/keys", &[], &wide);
    assert_eq!(
        (status, error_code(&reply).as_str()),
        (400, "keys_mismatch"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    // registering the same keys again gives the same id (content-addressed)
    let (status, reply) = http(&server.http, "POST", "/v1/keys", &[], &eval_keys);
    assert_eq!(status, 201, "{}", String::from_utf8_lossy(&reply));
    let v: serde_json::Value = serde_json::from_slice(&reply).expect("JSON");
    assert_eq!(v["key_id"], key_id.as_str());
    // no upload leftovers: the bundle and its owners
    let mut names: Vec<String> = std::fs::read_dir(u.path("store/keys"))
        .expect("store")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![format!("{key_id}.keys"), format!("{key_id}.owners")]
    );

    // keys survive a restart
    drop(server);
    let server = u.serve(&["--model", &model, "--data-dir", "store"]);
    let base = format!("http://{}", server.http);
    let out = u.ok(&predict_args(&base, "k", "2", &data, &["--json"]));
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert!(v["registered_keys_bytes"].is_null(), "{v}");
    assert_eq!(v["class"], v["true_class"], "{v}");

    // a key folder whose eval.keys no longer matches its key id is caught before uploading
    drop(server);
    let server = u.serve(&["--model", &model, "--data-dir", "store2"]);
    let base = format!("http://{}", server.http);
    std::fs::create_dir_all(u.path("changed")).expect("dir");
    for f in ["secret.key", "client.json"] {
        std::fs::copy(u.path(&format!("k/{f}")), u.path(&format!("changed/{f}"))).expect("copy");
    }
    std::fs::write(u.path("changed/eval.keys"), &eval_keys[..1000]).expect("write");
    let err = u.fails(&predict_args(&base, "changed", "0", &data, &[]));
    assert!(err.contains("does not match the key id"), "{err}");

    // client-side errors are one line
    let err = u.fails(&predict_args(&base, "k", "99999", &data, &[]));
    assert!(err.contains("out of range"), "{err}");
    let err = u.fails(&predict_args(&base, "missing", "0", &data, &[]));
    assert!(err.contains("client.json"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn bench_cnn_prints_the_promised_fields() {
    let u = Unseen::new();
    let out = u.ok(&[
        "bench",
        "cnn",
        "--model",
        &repo_file("models/ciphernet-mnist"),
        "--images",
        "3",
        "--batch-images",
        "3",
        "--threads",
        "1,2",
        "--data",
        &repo_file("data"),
        "--json",
    ]);
    // one line per thread count
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    for (v, threads) in lines.iter().zip([1, 2]) {
        assert_eq!(v["threads"], threads, "{v}");
        for key in [
            "server_single_image_ms",
            "single_speedup",
            "ceiling_speedup",
            "parallel_efficiency",
            "client_encrypt_ms",
            "client_decrypt_ms",
            "eval_keys_bytes",
            "upload_bytes",
            "download_bytes",
            "batch_images",
            "batch_server_ms_per_image",
            "batch_speedup",
        ] {
            assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key}: {v}");
        }
        assert_eq!(v["images"], 3, "{v}");
        assert_eq!(v["single_agreement"], 1.0, "{v}");
        assert_eq!(v["batch_agreement"], 1.0, "{v}");
        // the same requests and keys at every count
        assert_eq!(v["upload_bytes"], lines[0]["upload_bytes"], "{v}");
        assert_eq!(v["eval_keys_bytes"], lines[0]["eval_keys_bytes"], "{v}");
    }
    // the speed-ups are over the first count: its own are 1 exactly
    assert_eq!(lines[0]["single_speedup"], 1.0, "{out}");
    assert_eq!(lines[0]["ceiling_speedup"], 1.0, "{out}");
    assert_eq!(lines[0]["parallel_efficiency"], 1.0, "{out}");
    assert_eq!(lines[0]["batch_speedup"], 1.0, "{out}");
}
