//! The hostile-client suite: a real server on loopback (HTTP with tokens and the legacy TCP
//! protocol) under attack, case after case, while well-behaved clients keep asking it for
//! predictions over both protocols and check every answer. A case is survived when the attack
//! gets its 4xx (or is cut off) in bounded time, every well-behaved request in the meantime got
//! a correct answer, and the good tenant's evaluation keys are still there.
//!
//! Prints a report (`cargo test -p unseen-server --test hostile -- --nocapture`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use unseen_paillier::Integer;
use unseen_server::auth::{new_token, token_sha256, Tokens};
use unseen_server::keystore::{KeyStore, StoreLimits};
use unseen_server::{AppState, Limits};
use unseen_wire::salary::parse_legacy_reply;

mod common;
use common::*;

/// One HTTP/1.1 request on a fresh connection; the status and body (status 0: no reply).
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> (u16, String) {
    let Ok(mut sock) = TcpStream::connect(addr).await else {
        return (0, "connect failed".into());
    };
    let mut head = format!("{method} {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n");
    if !headers.iter().any(|(k, _)| *k == "content-length") {
        head.push_str(&format!("content-length: {}\r\n", body.len()));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let _ = sock.write_all(head.as_bytes()).await;
    let _ = sock.write_all(body).await;
    read_response(&mut sock, Duration::from_secs(30)).await
}

async fn read_response(sock: &mut TcpStream, limit: Duration) -> (u16, String) {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(limit, sock.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

fn code(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).unwrap_or_default()["error"]["code"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

struct Server {
    http: SocketAddr,
    legacy: SocketAddr,
    state: Arc<AppState>,
    good: String,
    evil: String,
    mallory: String,
    expired: String,
    good_key: String,
    bundle_bytes: u64,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Server {
    fn auth(token: &str) -> (&'static str, String) {
        ("authorization", format!("Bearer {token}"))
    }

    /// Whether the good tenant's keys are still stored and usable.
    fn good_keys_intact(&self) -> bool {
        self.state
            .eval_keys
            .as_ref()
            .is_some_and(|s| s.get(&self.good_key, "good").is_ok())
    }
}

async fn start() -> Server {
    let bundle = small_bundle();
    let one = bundle.len() as u64;
    let (good, evil, mallory, expired) = (new_token(), new_token(), new_token(), new_token());
    let file = format!(
        "[{{\"tenant\": \"good\", \"sha256\": \"{}\", \"scopes\": [\"infer\", \"keys\"]}},
          {{\"tenant\": \"evil\", \"sha256\": \"{}\", \"scopes\": [\"infer\", \"keys\"], \"quota_bytes\": {}}},
          {{\"tenant\": \"mallory\", \"sha256\": \"{}\", \"scopes\": [\"infer\"]}},
          {{\"tenant\": \"gone\", \"sha256\": \"{}\", \"scopes\": [\"admin\"], \"expires\": 1}}]",
        token_sha256(&good),
        token_sha256(&evil),
        2 * one,
        token_sha256(&mallory),
        token_sha256(&expired),
    );
    let dir = std::env::temp_dir().join(format!("unseen-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let params = unseen_ckks::Parameters::preset(unseen_ckks::Preset::Small4096).expect("preset");
    let store = KeyStore::open(
        &dir,
        vec![params],
        StoreLimits {
            max_key_bytes: 4 * one,
            max_total_bytes: 8 * one,
            tenant_bytes: 4 * one,
            loaded: 4,
        },
    )
    .expect("store");
    let limits = Limits {
        min_key_bits: 1024,
        idle_timeout: Duration::from_millis(800),
        min_body_rate: 20_000,
        large_bodies: 2,
        max_connections: 512,
        // every client of this test comes from 127.0.0.1: the per-address cap has its own test
        max_connections_per_client: 1000,
        rate_limit: 20.0,
        rate_burst: 150,
        ..Limits::default()
    };
    let state = AppState::with_tokens(
        vec![model()],
        Vec::new(),
        Some(store),
        limits,
        Some(Tokens::parse(&file).expect("tokens")),
    )
    .expect("state");
    let http_l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let legacy_l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let (http_addr, legacy_addr) = (
        http_l.local_addr().expect("addr"),
        legacy_l.local_addr().expect("addr"),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(unseen_server::serve(
        state.clone(),
        Some(http_l),
        Some(legacy_l),
        async move {
            let _ = rx.await;
        },
    ));
    let (s, body) = http(
        http_addr,
        "POST",
        "/v1/keys",
        &[Server::auth(&good)],
        &bundle,
    )
    .await;
    assert_eq!(s, 201, "{body}");
    Server {
        http: http_addr,
        legacy: legacy_addr,
        state,
        good,
        evil,
        mallory,
        expired,
        good_key: hex_sha256(&bundle),
        bundle_bytes: one,
        _stop: tx,
    }
}

/// Well-behaved clients: predictions over HTTP and the legacy protocol, one after another,
/// each answer decrypted and checked.
#[derive(Default)]
struct Good {
    served: AtomicUsize,
    failed: AtomicUsize,
    stop: AtomicBool,
}

async fn good_http(server: SocketAddr, token: String, good: Arc<Good>) {
    while !good.stop.load(Ordering::Relaxed) {
        let (s, body) = http(
            server,
            "POST",
            "/v1/models/salary/predict",
            &[("authorization", format!("Bearer {token}"))],
            request_body(&FEATURES).as_bytes(),
        )
        .await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let right = s == 200
            && v["value"]["v"]
                .as_str()
                .and_then(|c| c.parse::<Integer>().ok())
                .zip(v["value"]["e"].as_i64())
                .is_some_and(|(c, e)| (decrypt(c, e as i32) - expected()).abs() < 1e-9);
        count(&good, right, || format!("HTTP {s}: {body}"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn good_legacy(server: SocketAddr, good: Arc<Good>) {
    while !good.stop.load(Ordering::Relaxed) {
        let mut right = false;
        if let Ok(mut sock) = TcpStream::connect(server).await {
            let _ = sock.write_all(request_body(&FEATURES).as_bytes()).await;
            let mut reply = Vec::new();
            let mut buf = [0u8; 4096];
            while !reply.ends_with(b"]}") {
                match tokio::time::timeout(Duration::from_secs(20), sock.read(&mut buf)).await {
                    Ok(Ok(n)) if n > 0 => reply.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            right = parse_legacy_reply(&reply)
                .is_ok_and(|(_, c, e)| (decrypt(c, e) - expected()).abs() < 1e-9);
        }
        count(&good, right, || "legacy reply wrong or missing".into());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn count(good: &Good, right: bool, why: impl FnOnce() -> String) {
    if right {
        good.served.fetch_add(1, Ordering::Relaxed);
    } else {
        good.failed.fetch_add(1, Ordering::Relaxed);
        eprintln!("well-behaved request failed: {}", why());
    }
}

/// What one case did: attack requests sent, what they got, whether the case held.
struct Outcome {
    tried: usize,
    got: String,
    held: bool,
}

fn tally(statuses: &[(u16, String)]) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for (s, body) in statuses {
        let c = code(body);
        *counts
            .entry(if c.is_empty() {
                format!("{s}")
            } else {
                format!("{s} {c}")
            })
            .or_default() += 1;
    }
    counts
        .iter()
        .map(|(k, n)| format!("{n}x {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A body of `len` declared bytes that arrives one byte every 200 ms.
async fn trickle(addr: SocketAddr, path: &str, token: &str, len: usize) -> (u16, String) {
    let Ok(mut sock) = TcpStream::connect(addr).await else {
        return (0, String::new());
    };
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: t\r\nconnection: close\r\nauthorization: Bearer {token}\r\ncontent-length: {len}\r\n\r\n"
    );
    let _ = sock.write_all(head.as_bytes()).await;
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            n = sock.read(&mut buf) => {
                // the server answered (and will close): read the rest
                let mut out = buf[..n.unwrap_or(0)].to_vec();
                let _ = tokio::time::timeout(Duration::from_secs(5), sock.read_to_end(&mut out)).await;
                let text = String::from_utf8_lossy(&out).into_owned();
                let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
                let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
                return (status, body);
            }
            _ = tokio::time::sleep(Duration::from_millis(200)) => {
                if sock.write_all(b"x").await.is_err() || started.elapsed() > Duration::from_secs(30) {
                    return (0, "still open after 30 s".into());
                }
            }
        }
    }
}

async fn slow_bodies(s: &Server) -> Outcome {
    let mut tasks = Vec::new();
    for path in [
        "/v1/keys",
        "/v1/keys",
        "/v1/keys",
        "/v1/models/salary/predict",
    ] {
        let (addr, token, path) = (s.http, s.evil.clone(), path.to_string());
        tasks.push(tokio::spawn(async move {
            trickle(addr, &path, &token, 100_000).await
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.expect("task"));
    }
    let held = got
        .iter()
        .all(|(st, b)| matches!((*st, code(b).as_str()), (408, _) | (503, "busy")));
    Outcome {
        tried: got.len(),
        got: tally(&got),
        held,
    }
}

async fn slow_headers(s: &Server) -> Outcome {
    let mut socks = Vec::new();
    for _ in 0..50 {
        if let Ok(mut sock) = TcpStream::connect(s.http).await {
            let _ = sock
                .write_all(b"POST /v1/keys HTTP/1.1\r\nhost: t\r\n")
                .await;
            socks.push(sock);
        }
    }
    let started = Instant::now();
    let mut closed = 0;
    for mut sock in socks {
        let mut out = Vec::new();
        let limit = Duration::from_secs(10).saturating_sub(started.elapsed());
        if tokio::time::timeout(limit, sock.read_to_end(&mut out))
            .await
            .is_ok()
        {
            closed += 1;
        }
    }
    Outcome {
        tried: 50,
        got: format!(
            "{closed} closed within {:.1} s",
            started.elapsed().as_secs_f64()
        ),
        held: closed == 50,
    }
}

async fn huge_declared_lengths(s: &Server) -> Outcome {
    let mut got = Vec::new();
    for path in ["/v1/keys", "/v1/models/salary/predict"] {
        for _ in 0..10 {
            let t = Instant::now();
            let r = http(
                s.http,
                "POST",
                path,
                &[
                    Server::auth(&s.good),
                    ("content-length", "1000000000000".into()),
                ],
                b"",
            )
            .await;
            got.push((r, t.elapsed()));
        }
    }
    let held = got
        .iter()
        .all(|((st, _), t)| *st == 413 && *t < Duration::from_secs(2));
    let statuses: Vec<_> = got.into_iter().map(|(r, _)| r).collect();
    Outcome {
        tried: statuses.len(),
        got: tally(&statuses),
        held,
    }
}

async fn concurrent_uploads(s: &Server) -> Outcome {
    let junk = Arc::new(vec![7u8; 300_000]);
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (addr, token, junk) = (s.http, s.evil.clone(), junk.clone());
        tasks.push(tokio::spawn(async move {
            http(
                addr,
                "POST",
                "/v1/keys",
                &[("authorization", format!("Bearer {token}"))],
                &junk,
            )
            .await
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.expect("task"));
    }
    let held = got.iter().all(|(st, b)| {
        matches!(
            (*st, code(b).as_str()),
            (400, "bad_keys") | (503, "busy") | (429, "rate_limited")
        )
    });
    Outcome {
        tried: got.len(),
        got: tally(&got),
        held,
    }
}

async fn unauthenticated_flush(s: &Server) -> Outcome {
    let bundle = small_bundle();
    let mut got = Vec::new();
    for i in 0..30 {
        let headers = match i % 3 {
            0 => vec![],
            1 => vec![Server::auth("unseen_0000")],
            _ => vec![Server::auth(&s.expired)],
        };
        // every third upload is a 900 KB body: the refusal must still reach a client that
        // writes its whole request before it reads
        let body = if i % 3 == 0 {
            vec![1u8; 900_000]
        } else {
            bundle.clone()
        };
        got.push(http(s.http, "POST", "/v1/keys", &headers, &body).await);
    }
    let held = got
        .iter()
        .all(|(st, b)| *st == 401 && matches!(code(b).as_str(), "unauthorized" | "token_expired"));
    Outcome {
        tried: got.len(),
        got: tally(&got),
        held: held && s.good_keys_intact(),
    }
}

async fn over_quota(s: &Server) -> Outcome {
    let mut got = Vec::new();
    for _ in 0..5 {
        let b = small_bundle();
        got.push(http(s.http, "POST", "/v1/keys", &[Server::auth(&s.evil)], &b).await);
    }
    got.push(
        http(
            s.http,
            "POST",
            "/v1/keys",
            &[
                Server::auth(&s.evil),
                ("content-length", (2 * s.bundle_bytes + 1).to_string()),
            ],
            b"",
        )
        .await,
    );
    let store = s.state.eval_keys.as_ref().expect("store");
    let within = store.tenant_usage("evil").expect("usage") <= 2 * s.bundle_bytes;
    let held =
        got[..5].iter().all(|(st, _)| *st == 201) && code(&got[5].1) == "over_quota" && within;
    Outcome {
        tried: got.len(),
        got: format!(
            "{}; evil holds {} of its {} bytes",
            tally(&got),
            store.tenant_usage("evil").expect("usage"),
            2 * s.bundle_bytes
        ),
        held: held && s.good_keys_intact(),
    }
}

async fn fresh_big_keys(s: &Server) -> Outcome {
    let started = Instant::now();
    let mut got = Vec::new();
    for _ in 0..30 {
        let mut bytes = [0u8; 1024];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
        bytes[0] |= 0x80;
        bytes[1023] |= 1;
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let n = Integer::from_str_radix(&hex, 16).expect("hex");
        let body = format!(
            "{{\"public_key\": {{\"n\": {n}}}, \"values\": [[\"1\", 0], [\"1\", 0], [\"1\", 0], [\"1\", 0]]}}"
        );
        got.push(
            http(
                s.http,
                "POST",
                "/v1/models/salary/predict",
                &[Server::auth(&s.mallory)],
                body.as_bytes(),
            )
            .await,
        );
    }
    let held = got.iter().all(|(st, b)| *st == 400 && code(b) == "bad_key")
        && started.elapsed() < Duration::from_secs(10);
    Outcome {
        tried: got.len(),
        got: format!(
            "{} in {:.2} s",
            tally(&got),
            started.elapsed().as_secs_f64()
        ),
        held,
    }
}

async fn exponent_abuse(s: &Server) -> Outcome {
    let n = key().public_key().n().to_string();
    let mut got = Vec::new();
    for e in [-4000, -283, 243, 100_000, -282] {
        let body = format!(
            "{{\"public_key\": {{\"n\": {n}}}, \"values\": [[\"1\", {e}], [\"1\", {e}], [\"1\", {e}], [\"1\", {e}]]}}"
        );
        got.push(
            http(
                s.http,
                "POST",
                "/v1/models/salary/predict",
                &[Server::auth(&s.mallory)],
                body.as_bytes(),
            )
            .await,
        );
    }
    // no 4 digits in a row of a weight or the intercept in any error
    let m = model();
    let pieces: Vec<String> = m
        .coefficients
        .iter()
        .chain([&m.intercept])
        .flat_map(|w| {
            let digits: Vec<char> = w
                .abs()
                .to_string()
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            digits
                .windows(4)
                .map(|d| d.iter().collect::<String>())
                .collect::<Vec<_>>()
        })
        .collect();
    let leaks = got
        .iter()
        .any(|(_, b)| pieces.iter().any(|p| b.contains(p.as_str())));
    Outcome {
        tried: got.len(),
        got: tally(&got),
        held: got.iter().all(|(st, _)| *st == 400) && !leaks,
    }
}

async fn request_flood(s: &Server) -> Outcome {
    let mut tasks = Vec::new();
    for _ in 0..300 {
        let (addr, token) = (s.http, s.mallory.clone());
        tasks.push(tokio::spawn(async move {
            http(
                addr,
                "GET",
                "/v1/models",
                &[("authorization", format!("Bearer {token}"))],
                b"",
            )
            .await
        }));
    }
    let mut got = Vec::new();
    for t in tasks {
        got.push(t.await.expect("task"));
    }
    let limited = got.iter().filter(|(st, _)| *st == 429).count();
    let held = limited > 0
        && got
            .iter()
            .all(|(st, b)| *st == 200 || (*st == 429 && code(b) == "rate_limited"));
    Outcome {
        tried: got.len(),
        got: tally(&got),
        held,
    }
}

async fn legacy_abuse(s: &Server) -> Outcome {
    let oversized = format!(
        "{{\"public_key\": {{\"n\": \"{}\"}}}}",
        "1".repeat(2_000_000)
    );
    let mut bad: Vec<Vec<u8>> = vec![
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        b"{\"public_key\": 5, \"values\": []}".to_vec(),
        oversized.into_bytes(),
        b"{\"public_key\": {\"n\": 12".to_vec(),
    ];
    bad.push(vec![0xff; 5000]);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        for b in &bad {
            let (addr, b) = (s.legacy, b.clone());
            tasks.push(tokio::spawn(async move {
                let Ok(mut sock) = TcpStream::connect(addr).await else {
                    return false;
                };
                let _ = sock.write_all(&b).await;
                let mut out = Vec::new();
                // every bad client is answered with an error or closed, in bounded time
                tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut out))
                    .await
                    .is_ok()
            }));
        }
    }
    let mut ended = 0;
    for t in &mut tasks {
        if t.await.expect("task") {
            ended += 1;
        }
    }
    Outcome {
        tried: tasks.len(),
        got: format!("{ended} answered with an error or closed"),
        held: ended == tasks.len(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_clients_while_good_clients_are_served() {
    let s = start().await;
    let good = Arc::new(Good::default());
    let workers = vec![
        tokio::spawn(good_http(s.http, s.good.clone(), good.clone())),
        tokio::spawn(good_legacy(s.legacy, good.clone())),
    ];
    let mut report = Vec::new();
    macro_rules! case {
        ($name:expr, $run:expr) => {{
            let before = (
                good.served.load(Ordering::Relaxed),
                good.failed.load(Ordering::Relaxed),
            );
            let started = Instant::now();
            let outcome = $run.await;
            // the well-behaved clients get at least one more answer after each case
            let deadline = Instant::now() + Duration::from_secs(10);
            while good.served.load(Ordering::Relaxed) < before.0 + 2 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let after = (
                good.served.load(Ordering::Relaxed),
                good.failed.load(Ordering::Relaxed),
            );
            let survived = outcome.held && after.1 == before.1 && after.0 > before.0;
            report.push((
                $name,
                outcome.tried,
                outcome.got,
                after.0 - before.0,
                after.1 - before.1,
                started.elapsed(),
                survived,
            ));
        }};
    }
    case!("slow bodies (3 key uploads, 1 predict)", slow_bodies(&s));
    case!("slow headers (50 connections)", slow_headers(&s));
    case!("huge declared Content-Length", huge_declared_lengths(&s));
    case!("100 concurrent key uploads", concurrent_uploads(&s));
    case!(
        "store flush without/with wrong/expired token",
        unauthenticated_flush(&s)
    );
    case!("tenant over its key quota", over_quota(&s));
    case!("fresh 8192-bit Paillier keys", fresh_big_keys(&s));
    case!("exponent abuse", exponent_abuse(&s));
    case!("legacy: garbage, oversized, stalled", legacy_abuse(&s));
    case!("request flood (one tenant)", request_flood(&s));
    good.stop.store(true, Ordering::Relaxed);
    for w in workers {
        let _ = w.await;
    }
    println!("| case | attack requests | what they got | good answers meanwhile | good failures | seconds | survived |");
    println!("|---|---|---|---|---|---|---|");
    for (name, tried, got, served, failed, t, ok) in &report {
        println!(
            "| {name} | {tried} | {got} | {served} | {failed} | {:.1} | {} |",
            t.as_secs_f64(),
            if *ok { "yes" } else { "NO" }
        );
    }
    let survived = report.iter().filter(|r| r.6).count();
    println!(
        "{survived} of {} cases survived; good tenant's keys intact: {}",
        report.len(),
        s.good_keys_intact()
    );
    assert_eq!(
        survived,
        report.len(),
        "a case was not survived (see the table)"
    );
    assert!(s.good_keys_intact());
}
