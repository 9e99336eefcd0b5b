//! The server through its router (HTTP) and on a loopback port (legacy TCP), with good and bad
//! clients.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use http_body_util::BodyExt;
use rand_chacha::rand_core::SeedableRng;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tower::ServiceExt;
use unseen_paillier::{Integer, PrivateKey};
use unseen_server::{AppState, Limits};

mod common;
use common::*;
use unseen_wire::salary::parse_legacy_reply;

fn state(idle: Duration) -> Arc<AppState> {
    let limits = Limits {
        min_key_bits: 1024,
        max_body: 64 * 1024,
        idle_timeout: idle,
        max_connections: 64,
        ..Limits::default()
    };
    AppState::new(vec![model()], limits).expect("state")
}

async fn call(
    app: axum::Router,
    method: &str,
    uri: &str,
    body: impl Into<Body>,
) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header("content-type", "application/json")
        .body(body.into())
        .expect("request");
    let resp = app.oneshot(req).await.expect("response");
    let status = resp.status();
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
        panic!(
            "non-JSON body for {uri}: {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, json)
}

#[tokio::test]
async fn http_predict_includes_intercept_and_is_rerandomised() {
    let app = unseen_server::http::app(state(Duration::from_secs(5)));
    let body = request_body(&FEATURES);
    let (status, json) = call(
        app.clone(),
        "POST",
        "/v1/models/salary/predict",
        body.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{json}");
    let c: Integer = json["value"]["v"]
        .as_str()
        .expect("v")
        .parse()
        .expect("int");
    let e = json["value"]["e"].as_i64().expect("e") as i32;
    let got = decrypt(c.clone(), e);
    assert!((got - expected()).abs() < 1e-9, "{got} vs {}", expected());
    // Same request again: a different ciphertext (re-randomised), the same value.
    let (_, json2) = call(app, "POST", "/v1/models/salary/predict", body).await;
    let c2: Integer = json2["value"]["v"]
        .as_str()
        .expect("v")
        .parse()
        .expect("int");
    assert_ne!(c, c2);
    assert_eq!(decrypt(c2, e), got);
}

#[tokio::test]
async fn http_metadata_routes() {
    let app = unseen_server::http::app(state(Duration::from_secs(5)));
    let (s, j) = call(app.clone(), "GET", "/healthz", Body::empty()).await;
    assert_eq!((s, j["status"].as_str()), (StatusCode::OK, Some("ok")));
    let (s, j) = call(app.clone(), "GET", "/v1/models", Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(j["models"][0]["features"].as_array().map(Vec::len), Some(4));
    let (s, j) = call(app.clone(), "GET", "/openapi.json", Body::empty()).await;
    assert_eq!(s, StatusCode::OK);
    for path in [
        "/v1/models/{name}/predict",
        "/v1/models/{name}/infer",
        "/v1/keys",
        "/v1/jobs",
    ] {
        assert!(j["paths"][path]["post"].is_object(), "{path}");
    }
    // a server without a database takes no batch jobs; malformed job ids are refused first
    for (method, path, status, code) in [
        (
            "POST",
            "/v1/jobs?model=salary",
            StatusCode::NOT_FOUND,
            "no_job_queue",
        ),
        (
            "GET",
            "/v1/jobs/0123456789abcdef0123456789abcdef",
            StatusCode::NOT_FOUND,
            "no_job_queue",
        ),
        (
            "GET",
            "/v1/jobs/0123456789abcdef0123456789abcdef/result",
            StatusCode::NOT_FOUND,
            "no_job_queue",
        ),
    ] {
        let (s, j) = call(app.clone(), method, path, Body::from("x")).await;
        assert_eq!(
            (s, j["error"]["code"].as_str()),
            (status, Some(code)),
            "{path}"
        );
    }
    // a server without encrypted CNN models takes no evaluation keys
    let (s, j) = call(app.clone(), "POST", "/v1/keys", Body::from("x")).await;
    assert_eq!(
        (s, j["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("no_encrypted_models"))
    );
    let (s, j) = call(
        app.clone(),
        "POST",
        "/v1/models/salary/infer",
        Body::from("x"),
    )
    .await;
    assert_eq!(
        (s, j["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("unknown_model"))
    );
    let (s, j) = call(app, "GET", "/nope", Body::empty()).await;
    assert_eq!(
        (s, j["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
}

#[tokio::test]
async fn http_bad_inputs_get_json_4xx() {
    let app = unseen_server::http::app(state(Duration::from_secs(5)));
    let good = request_body(&FEATURES);
    let n = key().public_key().n().to_string();
    let n2 = key().public_key().n_square().to_string();
    let small = PrivateKey::generate_insecure(512, &mut rand_chacha::ChaCha20Rng::seed_from_u64(5))
        .expect("keygen");
    let cases: Vec<(String, String, StatusCode, &str)> = vec![
        ("salary".into(), "not json".into(), StatusCode::BAD_REQUEST, "bad_request"),
        ("salary".into(), "{\"public_key\": {\"n\": 5}}".into(), StatusCode::BAD_REQUEST, "bad_request"),
        ("salary".into(), format!("{{\"public_key\": {{\"n\": \"{n}\"}}, \"values\": 7}}"), StatusCode::BAD_REQUEST, "bad_request"),
        ("salary".into(), request_body(&[1, 2, 3]), StatusCode::BAD_REQUEST, "wrong_feature_count"),
        ("salary".into(), good.replace(&n, &small.public_key().n().to_string()), StatusCode::BAD_REQUEST, "bad_key"),
        ("salary".into(), format!("{{\"public_key\": {{\"n\": {n}}}, \"values\": [[\"{n2}\", 0], [\"1\", 0], [\"1\", 0], [\"1\", 0]]}}"), StatusCode::BAD_REQUEST, "bad_ciphertext"),
        ("salary".into(), format!("{{\"public_key\": {{\"n\": {n}}}, \"values\": [[\"{n}\", 0], [\"1\", 0], [\"1\", 0], [\"1\", 0]]}}"), StatusCode::BAD_REQUEST, "bad_ciphertext"),
        ("salary".into(), "x".repeat(100_000), StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        ("other".into(), good.clone(), StatusCode::NOT_FOUND, "unknown_model"),
        ("%FF".into(), good.clone(), StatusCode::BAD_REQUEST, "bad_path"),
        ("%C0%80".into(), good, StatusCode::BAD_REQUEST, "bad_path"),
    ];
    for (model, body, status, code) in cases {
        let (s, j) = call(
            app.clone(),
            "POST",
            &format!("/v1/models/{model}/predict"),
            body.clone(),
        )
        .await;
        assert_eq!(
            (s, j["error"]["code"].as_str()),
            (status, Some(code)),
            "{}: {j}",
            &body[..body.len().min(80)]
        );
        assert!(j["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    // a route that exists with another method: a JSON 405
    for (method, uri) in [
        ("DELETE", "/v1/models"),
        ("GET", "/v1/models/salary/predict"),
    ] {
        let (s, j) = call(app.clone(), method, uri, "").await;
        assert_eq!(
            (s, j["error"]["code"].as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, Some("method_not_allowed")),
            "{method} {uri}"
        );
    }
    let (s, j) = call(app, "GET", "/v1/models/%FF", "").await;
    assert_eq!(j["error"]["code"], "bad_path", "{s} {j}");
}

#[tokio::test]
async fn http_stalled_body_gets_a_json_408() {
    let app = unseen_server::http::app(state(Duration::from_millis(300)));
    // A body that sends a few bytes and then nothing.
    let stream = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"{\"public_key\""))
    })
    .chain(futures_util::stream::pending());
    let (s, j) = call(
        app,
        "POST",
        "/v1/models/salary/predict",
        Body::from_stream(stream),
    )
    .await;
    assert_eq!(
        (s, j["error"]["code"].as_str()),
        (StatusCode::REQUEST_TIMEOUT, Some("timeout"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_slow_header_clients_are_disconnected() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(unseen_server::serve(
        state(Duration::from_millis(300)),
        Some(listener),
        None,
        async move {
            let _ = rx.await;
        },
    ));
    let mut slow = TcpStream::connect(addr).await.expect("connect");
    slow.write_all(b"POST /v1/models/salary/predict HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut out))
        .await
        .expect("closed by the server")
        .expect("read");
    // A well-behaved client on the same server still gets answers.
    let mut ok = TcpStream::connect(addr).await.expect("connect");
    ok.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut resp = Vec::new();
    ok.read_to_end(&mut resp).await.expect("read");
    assert!(
        String::from_utf8_lossy(&resp).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&resp)
    );
    let _ = tx.send(());
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("graceful stop")
        .expect("task")
        .expect("serve");
}

/// `GET path` on a fresh connection: the reply's status line.
async fn status_line(addr: std::net::SocketAddr, path: &str) -> String {
    let mut c = TcpStream::connect(addr).await.expect("connect");
    c.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut resp = Vec::new();
    c.read_to_end(&mut resp).await.expect("read");
    String::from_utf8_lossy(&resp)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_drains_before_it_closes() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let limits = Limits {
        drain: Duration::from_millis(1500),
        ..Limits::default()
    };
    let state = AppState::new(vec![model()], limits).expect("state");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(unseen_server::serve(
        state,
        Some(listener),
        None,
        async move {
            let _ = rx.await;
        },
    ));
    assert!(status_line(addr, "/healthz")
        .await
        .starts_with("HTTP/1.1 200"));
    let _ = tx.send(());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // draining: the balancer's check fails, requests are still served
    assert!(status_line(addr, "/healthz")
        .await
        .starts_with("HTTP/1.1 503"));
    assert!(status_line(addr, "/v1/models")
        .await
        .starts_with("HTTP/1.1 200"));
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("stops after the drain")
        .expect("task")
        .expect("serve");
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed"
    );
}

async fn legacy_server(idle: Duration) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(unseen_server::serve(
        state(idle),
        None,
        Some(listener),
        async move {
            let _ = rx.await;
        },
    ));
    (addr, tx)
}

/// Reads until the reply ends in `]}` (as the original client does) or the server closes.
async fn read_reply(sock: &mut TcpStream) -> Vec<u8> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while !data.ends_with(b"]}") {
        let n = tokio::time::timeout(Duration::from_secs(20), sock.read(&mut buf))
            .await
            .expect("reply in time")
            .expect("read");
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_serves_back_to_back_requests_on_one_connection() {
    let (addr, _stop) = legacy_server(Duration::from_secs(5)).await;
    let mut sock = TcpStream::connect(addr).await.expect("connect");
    // Two requests written at once, with no delimiter.
    let two = format!("{}{}", request_body(&FEATURES), request_body(&FEATURES));
    sock.write_all(two.as_bytes()).await.expect("write");
    for _ in 0..2 {
        let reply = read_reply(&mut sock).await;
        assert!(reply.ends_with(b"]}") && !reply.ends_with(b"\n"));
        let (n, c, e) = parse_legacy_reply(&reply).expect("reply");
        assert_eq!(&n, key().public_key().n());
        assert!((decrypt(c, e) - expected()).abs() < 1e-9);
    }
    // A third request split over several writes.
    let body = request_body(&FEATURES);
    let (a, b) = body.as_bytes().split_at(body.len() / 2);
    sock.write_all(a).await.expect("write");
    tokio::time::sleep(Duration::from_millis(50)).await;
    sock.write_all(b).await.expect("write");
    let (_, c, e) = parse_legacy_reply(&read_reply(&mut sock).await).expect("reply");
    assert!((decrypt(c, e) - expected()).abs() < 1e-9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_bad_clients_get_an_error_and_others_are_served() {
    let (addr, _stop) = legacy_server(Duration::from_millis(500)).await;
    // A client that stalls mid-request, holding its connection.
    let mut stalled = TcpStream::connect(addr).await.expect("connect");
    stalled
        .write_all(b"{\"public_key\": {\"n\": 12")
        .await
        .expect("write");
    // Garbage, oversized, wrong shape: each gets an error object and a closed connection.
    let oversized = format!("{{\"public_key\": {{\"n\": \"{}\"}}}}", "1".repeat(100_000));
    for bad in [
        b"hello".to_vec(),
        b"{\"public_key\": 5, \"values\": []}".to_vec(),
        oversized.into_bytes(),
        request_body(&[1, 2]).into_bytes(),
    ] {
        let mut sock = TcpStream::connect(addr).await.expect("connect");
        let _ = sock.write_all(&bad).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut out))
            .await
            .expect("closed in time");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("error JSON");
        assert!(v["error"]["code"].is_string(), "{v}");
    }
    // Meanwhile a good client is served.
    let mut good = TcpStream::connect(addr).await.expect("connect");
    good.write_all(request_body(&FEATURES).as_bytes())
        .await
        .expect("write");
    let (_, c, e) = parse_legacy_reply(&read_reply(&mut good).await).expect("reply");
    assert!((decrypt(c, e) - expected()).abs() < 1e-9);
    // The stalled client is disconnected after the idle timeout with an error.
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut out))
        .await
        .expect("closed")
        .expect("read");
    let v: serde_json::Value = serde_json::from_slice(&out).expect("error JSON");
    assert_eq!(v["error"]["code"].as_str(), Some("timeout"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_serves_many_clients_at_once() {
    let (addr, _stop) = legacy_server(Duration::from_secs(10)).await;
    let body = Arc::new(request_body(&FEATURES));
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut sock = TcpStream::connect(addr).await.expect("connect");
            sock.write_all(body.as_bytes()).await.expect("write");
            read_reply(&mut sock).await
        }));
    }
    for t in tasks {
        let (_, c, e) = parse_legacy_reply(&t.await.expect("task")).expect("reply");
        assert!((decrypt(c, e) - expected()).abs() < 1e-9);
    }
}

#[test]
fn legacy_protocol_serves_the_first_model_given() {
    let mut second = model();
    second.name = "aaa-listed-first-by-name".into();
    let state = AppState::new(vec![model(), second], Limits::default()).expect("state");
    assert_eq!(
        state.legacy_model.as_ref().map(|m| m.name.as_str()),
        Some("salary")
    );
    let mut dup = model();
    dup.intercept = 1.0;
    assert!(AppState::new(vec![model(), dup], Limits::default()).is_err());
}

/// A server with a key store (no CNN model needed to receive keys) and tight body limits: one
/// large-body slot, bodies must keep up 1000 bytes per second after a 400 ms grace.
fn state_with_key_store() -> Arc<AppState> {
    let dir = std::env::temp_dir().join(format!(
        "unseen-body-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let params = unseen_ckks::Parameters::preset(unseen_ckks::Preset::Cnn8192).expect("preset");
    let store = unseen_server::keystore::KeyStore::open(
        &dir,
        vec![params],
        unseen_server::keystore::StoreLimits::default(),
    )
    .expect("key store");
    let limits = Limits {
        min_key_bits: 1024,
        max_body: 64 * 1024,
        idle_timeout: Duration::from_millis(400),
        min_body_rate: 1000,
        large_bodies: 1,
        ..Limits::default()
    };
    AppState::with_cnn(vec![model()], Vec::new(), Some(store), limits).expect("state")
}

/// Status, `Retry-After` and error code of one request.
async fn send(
    app: axum::Router,
    uri: &str,
    headers: &[(&str, &str)],
    body: Body,
) -> (StatusCode, Option<String>, String) {
    let mut req = Request::builder().method("POST").uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = app
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("response");
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = resp.into_body().collect().await.expect("body").to_bytes();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
    let code = json["error"]["code"].as_str().unwrap_or("").to_string();
    (status, retry, code)
}

/// A body that sends one byte every 200 ms, for ever.
fn trickle() -> Body {
    Body::from_stream(futures_util::stream::unfold((), |_| async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        Some((
            Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b"x")),
            (),
        ))
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_or_oversized_uploads_cannot_hold_the_server() {
    let state = state_with_key_store();
    let app = unseen_server::http::app(state.clone());
    // A declared length over the limit is refused before anything is read or reserved.
    let t = std::time::Instant::now();
    let (s, _, code) = send(
        app.clone(),
        "/v1/keys",
        &[("content-length", "1000000000000")],
        Body::empty(),
    )
    .await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
    assert!(t.elapsed() < Duration::from_secs(1));
    // A slow upload takes the only large-body slot...
    let slow = tokio::spawn(send(app.clone(), "/v1/keys", &[], trickle()));
    tokio::time::sleep(Duration::from_millis(150)).await;
    // ...so another upload is turned away at once, with Retry-After,
    let t = std::time::Instant::now();
    let (s, retry, code) = send(app.clone(), "/v1/keys", &[], Body::from(vec![0u8; 100])).await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, "busy")
    );
    assert_eq!(retry.as_deref(), Some("2"));
    assert!(t.elapsed() < Duration::from_millis(500));
    // while small requests are served as usual,
    let (s, j) = call(
        app.clone(),
        "POST",
        "/v1/models/salary/predict",
        request_body(&FEATURES),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{j}");
    // and the slow client is cut off once it falls below the rate floor.
    let (s, _, code) = tokio::time::timeout(Duration::from_secs(5), slow)
        .await
        .expect("the slow upload ends")
        .expect("task");
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::REQUEST_TIMEOUT, "too_slow")
    );
    // The slot is free again: a (bad) upload gets as far as the key check.
    let (s, _, code) = send(app, "/v1/keys", &[], Body::from(vec![0u8; 100])).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{code}");
}

#[tokio::test]
async fn abusive_keys_and_exponents_are_refused_without_leaking_the_model() {
    let app = unseen_server::http::app(state(Duration::from_secs(5)));
    let n = key().public_key().n().to_string();
    let ones = |e: i32| format!("[[\"1\", {e}], [\"1\", {e}], [\"1\", {e}], [\"1\", {e}]]");
    // A modulus over the 4096-bit default is refused before any table is built.
    let huge = (Integer::from(1) << 8192u32) + 1u32;
    let (s, j) = call(
        app.clone(),
        "POST",
        "/v1/models/salary/predict",
        format!(
            "{{\"public_key\": {{\"n\": {huge}}}, \"values\": {}}}",
            ones(0)
        ),
    )
    .await;
    assert_eq!(
        (s, j["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_key")),
        "{j}"
    );
    assert!(
        j["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("4096"),
        "{j}"
    );
    // Exponents phe never produces are refused.
    for e in [-4000, -283, 243] {
        let (s, j) = call(
            app.clone(),
            "POST",
            "/v1/models/salary/predict",
            format!(
                "{{\"public_key\": {{\"n\": {n}}}, \"values\": {}}}",
                ones(e)
            ),
        )
        .await;
        assert_eq!(
            (s, j["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("exponent_range")),
            "{e}: {j}"
        );
    }
    // At the most negative allowed exponent the intercept (1026.9909) encoded for a 1024-bit
    // key overflows: the error says so without a digit of the model in it.
    let (s, j) = call(
        app,
        "POST",
        "/v1/models/salary/predict",
        format!(
            "{{\"public_key\": {{\"n\": {n}}}, \"values\": {}}}",
            ones(-282)
        ),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{j}");
    let message = j["error"]["message"].as_str().unwrap_or("");
    assert!(!message.is_empty(), "{j}");
    let longest_digit_run = message
        .split(|c: char| !c.is_ascii_digit())
        .map(str::len)
        .max()
        .unwrap_or(0);
    assert!(longest_digit_run < 4, "digits in {message}");
    assert!(
        !message.contains("1026") && !message.contains("9909"),
        "{message}"
    );
}

#[tokio::test]
async fn with_tokens_every_api_route_needs_one_with_its_scope() {
    use unseen_server::auth::{new_token, token_sha256, Tokens};
    let (infer, keys) = (new_token(), new_token());
    let file = format!(
        "[{{\"tenant\": \"reader\", \"sha256\": \"{}\", \"scopes\": [\"infer\"]}},
          {{\"tenant\": \"uploader\", \"sha256\": \"{}\", \"scopes\": [\"keys\"]}}]",
        token_sha256(&infer),
        token_sha256(&keys)
    );
    let limits = Limits {
        min_key_bits: 1024,
        ..Limits::default()
    };
    let state = AppState::with_tokens(
        vec![model()],
        Vec::new(),
        None,
        limits,
        Some(Tokens::parse(&file).expect("tokens")),
    )
    .expect("state");
    let app = unseen_server::http::app(state);
    let request = |uri: &str, token: Option<&str>, body: String| {
        let mut r = Request::builder().method("POST").uri(uri);
        if let Some(t) = token {
            r = r.header("authorization", format!("Bearer {t}"));
        }
        r.body(Body::from(body)).expect("request")
    };
    let status_code = |resp: axum::response::Response| async move {
        let status = resp.status();
        let www = resp.headers().get("www-authenticate").is_some();
        let bytes = resp.into_body().collect().await.expect("body").to_bytes();
        let j: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        (
            status,
            j["error"]["code"].as_str().unwrap_or("").to_string(),
            www,
        )
    };
    let predict = "/v1/models/salary/predict";
    for token in [None, Some("unseen_wrong"), Some(&infer[..infer.len() - 1])] {
        let resp = app
            .clone()
            .oneshot(request(predict, token, request_body(&FEATURES)))
            .await
            .expect("response");
        let (s, code, www) = status_code(resp).await;
        assert_eq!(
            (s, code.as_str(), www),
            (StatusCode::UNAUTHORIZED, "unauthorized", true),
            "{token:?}"
        );
    }
    // the right scope is served, the wrong one refused
    let resp = app
        .clone()
        .oneshot(request(predict, Some(&infer), request_body(&FEATURES)))
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    // the scheme name is case-insensitive
    let mut lower = request(predict, None, request_body(&FEATURES));
    lower.headers_mut().insert(
        "authorization",
        format!("bearer  {infer}").parse().expect("header"),
    );
    let resp = app.clone().oneshot(lower).await.expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app
        .clone()
        .oneshot(request(predict, Some(&keys), request_body(&FEATURES)))
        .await
        .expect("response");
    assert_eq!(status_code(resp).await.1, "forbidden");
    let resp = app
        .clone()
        .oneshot(request("/v1/keys", Some(&infer), String::new()))
        .await
        .expect("response");
    assert_eq!(status_code(resp).await.1, "forbidden");
    // the uploader gets past the token check (this server has no key store)
    let resp = app
        .clone()
        .oneshot(request("/v1/keys", Some(&keys), String::new()))
        .await
        .expect("response");
    assert_eq!(status_code(resp).await.1, "no_encrypted_models");
    // health and the API description stay open
    let resp = app
        .clone()
        .oneshot(
            Request::builder()
                .uri("/healthz")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = app
        .oneshot(
            Request::builder()
                .uri("/v1/models")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn metrics_count_requests_latency_and_rejections() {
    let app = unseen_server::http::app(state(Duration::from_secs(5)));
    let (s, _) = call(
        app.clone(),
        "POST",
        "/v1/models/salary/predict",
        request_body(&FEATURES),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    for _ in 0..2 {
        let (s, _) = call(app.clone(), "POST", "/v1/models/salary/predict", "not json").await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
    }
    let resp = app
        .oneshot(
            Request::builder()
                .uri("/metrics")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(resp.status(), StatusCode::OK);
    let text = String::from_utf8(
        resp.into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes()
            .to_vec(),
    )
    .expect("utf-8");
    for line in [
        "unseen_http_requests_total{route=\"/v1/models/{name}/predict\",status=\"200\"} 1",
        "unseen_http_requests_total{route=\"/v1/models/{name}/predict\",status=\"400\"} 2",
        "unseen_http_rejections_total{code=\"bad_request\"} 2",
        "unseen_http_request_duration_seconds_count{route=\"/v1/models/{name}/predict\"} 3",
        // the one valid request waited for a compute slot
        "unseen_compute_queue_wait_seconds_count 1",
        "unseen_refused_connections_total 0",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    let sent: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("unseen_http_sent_bytes_total "))
        .and_then(|v| v.parse().ok())
        .expect("sent bytes");
    assert!(sent > 100, "{text}");
    // nothing of a request's content: no ciphertext digits, no key
    assert!(!text.contains(&key().public_key().n().to_string()[..20]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_connection() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let limits = Limits {
        idle_timeout: Duration::from_secs(5),
        max_connections_per_client: 2,
        ..Limits::default()
    };
    let state = AppState::new(vec![model()], limits).expect("state");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(unseen_server::serve(
        state,
        Some(listener),
        None,
        async move {
            let _ = rx.await;
        },
    ));
    let get = |mut s: TcpStream| async move {
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
            .await
            .expect("answered")
            .expect("read");
        String::from_utf8_lossy(&out).into_owned()
    };
    // two idle connections from this address fill its share...
    let first = TcpStream::connect(addr).await.expect("connect");
    let _second = TcpStream::connect(addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    // ...so a third is answered 429 at once,
    let third = get(TcpStream::connect(addr).await.expect("connect")).await;
    assert!(third.starts_with("HTTP/1.1 429"), "{third}");
    assert!(
        third.contains("too_many_connections") && third.contains("retry-after"),
        "{third}"
    );
    // and once one closes, the address is served again.
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let again = get(TcpStream::connect(addr).await.expect("connect")).await;
    assert!(again.starts_with("HTTP/1.1 200"), "{again}");
    let mut m = TcpStream::connect(addr).await.expect("connect");
    m.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), m.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.lines()
            .any(|l| l == "unseen_refused_connections_total 1"),
        "{text}"
    );
    let _ = tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(15), server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_have_quotas_and_request_rates() {
    use unseen_server::auth::{new_token, token_sha256, Tokens};
    let bundles: Vec<Vec<u8>> = (0..4).map(|_| small_bundle()).collect();
    let one = bundles[0].len() as u64;
    let (acme, evil) = (new_token(), new_token());
    let file = format!(
        "[{{\"tenant\": \"acme\", \"sha256\": \"{}\", \"scopes\": [\"infer\", \"keys\"]}},
          {{\"tenant\": \"evil\", \"sha256\": \"{}\", \"scopes\": [\"keys\"], \"quota_bytes\": {}}}]",
        token_sha256(&acme),
        token_sha256(&evil),
        2 * one
    );
    let dir = std::env::temp_dir().join(format!("unseen-tenants-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let params = unseen_ckks::Parameters::preset(unseen_ckks::Preset::Small4096).expect("preset");
    let store = unseen_server::keystore::KeyStore::open(
        &dir,
        vec![params],
        unseen_server::keystore::StoreLimits {
            max_total_bytes: 10 * one,
            ..Default::default()
        },
    )
    .expect("store");
    let limits = Limits {
        min_key_bits: 1024,
        rate_limit: 0.5,
        rate_burst: 4,
        ..Limits::default()
    };
    let tokens = Tokens::parse(&file).expect("tokens");
    let state = AppState::with_tokens(vec![model()], Vec::new(), Some(store), limits, Some(tokens))
        .expect("state");
    let app = unseen_server::http::app(state.clone());
    let upload = |token: &str, body: Vec<u8>| {
        let auth = format!("Bearer {token}");
        let app = app.clone();
        async move {
            send(
                app,
                "/v1/keys",
                &[("authorization", &auth)],
                Body::from(body),
            )
            .await
        }
    };
    let (s, _, code) = upload(&acme, bundles[0].clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{code}");
    let acme_id = hex_sha256(&bundles[0]);
    // evil cycles through more bundles than its quota holds: only its own are evicted
    for b in &bundles[1..] {
        let (s, _, code) = upload(&evil, b.clone()).await;
        assert_eq!(s, StatusCode::CREATED, "{code}");
    }
    let store = state.eval_keys.as_ref().expect("store");
    assert!(store.get(&acme_id, "acme").is_ok(), "acme's keys survive");
    assert_eq!(store.tenant_usage("evil").expect("usage"), 2 * one);
    assert!(store.get(&acme_id, "evil").is_err(), "not evil's keys");
    // a declared body over evil's quota is refused before it is read
    let (s, _, code) = send(
        app.clone(),
        "/v1/keys",
        &[
            ("authorization", &format!("Bearer {evil}")),
            ("content-length", &(2 * one + 1).to_string()),
        ],
        Body::empty(),
    )
    .await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "over_quota")
    );
    // evil has spent its burst of 4 requests: the next one waits, acme's are still served
    let (s, retry, code) = upload(&evil, Vec::new()).await;
    assert_eq!(
        (s, code.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "rate_limited")
    );
    assert_eq!(retry.as_deref(), Some("2"));
    let (s, _, code) = upload(&acme, bundles[0].clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{code}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn the_browser_page_is_served_only_when_given_with_a_strict_policy() {
    // without --web: JSON 404s
    let plain = unseen_server::http::app(state(Duration::from_secs(5)));
    for uri in ["/", "/assets/app.js"] {
        let (status, json) = call(plain.clone(), "GET", uri, Body::empty()).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(json["error"]["code"], "not_found");
    }
    // with a page folder: its files, nothing else
    let dir = std::env::temp_dir().join(format!("unseen-web-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("pkg")).expect("dir");
    std::fs::write(dir.join("index.html"), "<!doctype html><title>t</title>").expect("write");
    std::fs::write(dir.join("app.js"), "export {};").expect("write");
    std::fs::write(dir.join("pkg/core.wasm"), b"\0asm\x01\0\0\0").expect("write");
    let site = unseen_server::web::Site::load(&dir).expect("site");
    let app = unseen_server::http::app(
        AppState::with_web(state(Duration::from_secs(5)), site).expect("web"),
    );
    for (uri, ctype) in [
        ("/", "text/html; charset=utf-8"),
        ("/assets/app.js", "text/javascript; charset=utf-8"),
        ("/assets/pkg/core.wasm", "application/wasm"),
    ] {
        let req = Request::builder()
            .uri(uri)
            .body(Body::empty())
            .expect("req");
        let resp = app.clone().oneshot(req).await.expect("response");
        assert_eq!(resp.status(), StatusCode::OK, "{uri}");
        assert_eq!(resp.headers()["content-type"], ctype);
        let csp = resp.headers()["content-security-policy"]
            .to_str()
            .expect("csp");
        assert!(csp.starts_with("default-src 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    }
    for uri in [
        "/assets/index.html.bak",
        "/assets/../Cargo.toml",
        "/assets/%2e%2e/x",
        "/assets/%FF",
    ] {
        let (status, json) = call(app.clone(), "GET", uri, Body::empty()).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        assert_eq!(json["error"]["code"], "not_found");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
