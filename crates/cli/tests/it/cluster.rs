//! Three replicas behind HAProxy sharing one PostgreSQL (both from Debian's packages, started
//! here on loopback with free ports and throwaway folders): keys registered through one replica
//! serve on the others; a replica killed with SIGKILL under load loses no request (the client
//! retries); a worker killed in the middle of a batch job and PostgreSQL restarted during one
//! (an `eval --server` run) leave every job done exactly once with the right classes; a rolling
//! restart of every replica fails no request.
//!
//! Needs `haproxy` and PostgreSQL's server binaries (`scripts/test.sh` installs both); without
//! them it fails with a message saying so.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::harness::{repo_file, repo_root};

/// A throwaway PostgreSQL cluster (scripts/pg.sh), stopped and removed on drop.
struct Postgres {
    dir: PathBuf,
    url: String,
}

impl Postgres {
    fn start(dir: &Path) -> Self {
        let out = pg(&["start", &dir.display().to_string()]);
        Self {
            dir: dir.to_path_buf(),
            url: out.trim().to_string(),
        }
    }

    fn restart(&self) {
        pg(&["restart", &self.dir.display().to_string()]);
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(repo_root().join("scripts/pg.sh"))
            .args(["stop", &self.dir.display().to_string()])
            .output();
    }
}

fn pg(args: &[&str]) -> String {
    let out = Command::new("bash")
        .arg(repo_root().join("scripts/pg.sh"))
        .args(args)
        .output()
        .expect("run scripts/pg.sh");
    assert!(
        out.status.success(),
        "scripts/pg.sh {args:?} failed (PostgreSQL's server is needed: scripts/test.sh installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A child process killed on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Proc {
    /// SIGTERM, then wait for the exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }

    /// SIGKILL, then wait.
    fn kill(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// `GET path` on `addr`: the status, or `None` when nothing answers.
fn get_status(addr: &str, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).ok()?;
    String::from_utf8_lossy(out.get(9..12)?).parse().ok()
}

fn wait_until(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

struct Cluster {
    root: PathBuf,
    model: String,
    pg: Postgres,
    ports: Vec<u16>,
    replicas: Mutex<Vec<Option<Proc>>>,
    front: String,
    _haproxy: Proc,
}

fn unseen(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_unseen"));
    c.current_dir(dir).stdin(Stdio::null());
    c
}

/// Starts replica `i` of a cluster in `root` on `port` and waits until it answers.
fn replica(root: &Path, model: &str, db: &str, i: usize, port: u16) -> Proc {
    let addr = format!("127.0.0.1:{port}");
    let log = std::fs::File::options()
        .create(true)
        .append(true)
        .open(root.join(format!("replica{i}.log")))
        .expect("log");
    let child = unseen(root)
        .args([
            "serve",
            "--http",
            &addr,
            "--model",
            model,
            "--key-store",
            db,
        ])
        .arg("--data-dir")
        .arg(root.join(format!("replica{i}")))
        .args(["--job-workers", "0", "--drain-seconds", "1.5"])
        .stderr(log)
        .spawn()
        .expect("start a replica");
    let p = Proc(child);
    wait_until(&format!("replica {i}"), Duration::from_secs(60), || {
        get_status(&addr, "/healthz") == Some(200)
    });
    p
}

impl Cluster {
    fn start(root: &Path) -> Self {
        let haproxy = ["haproxy", "/usr/sbin/haproxy"]
            .into_iter()
            .find(|h| Command::new(h).arg("-v").output().is_ok())
            .expect("haproxy is needed for the cluster test (scripts/test.sh installs it)");
        let pg = Postgres::start(&root.join("pg"));
        let model = repo_file("models/ciphernet-mnist");
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let replicas = ports
            .iter()
            .enumerate()
            .map(|(i, port)| Some(replica(root, &model, &pg.url, i, *port)))
            .collect();
        let front = format!("127.0.0.1:{}", free_port());
        let mut h = Command::new(haproxy);
        h.args(["-db", "-f"])
            .arg(repo_root().join("deploy/haproxy.cfg"))
            .env("UNSEEN_LISTEN", &front)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (i, port) in ports.iter().enumerate() {
            h.env(
                format!("UNSEEN_REPLICA{}", i + 1),
                format!("127.0.0.1:{port}"),
            );
        }
        let haproxy = Proc(h.spawn().expect("start haproxy"));
        wait_until("HAProxy", Duration::from_secs(20), || {
            get_status(&front, "/healthz") == Some(200)
        });
        Self {
            root: root.to_path_buf(),
            model,
            pg,
            ports,
            replicas: Mutex::new(replicas),
            front,
            _haproxy: haproxy,
        }
    }

    fn take(&self, i: usize) -> Proc {
        self.replicas.lock().expect("lock")[i]
            .take()
            .expect("replica running")
    }

    /// Starts replica `i` again (same port and database).
    fn restart(&self, i: usize) {
        let p = replica(&self.root, &self.model, &self.pg.url, i, self.ports[i]);
        self.replicas.lock().expect("lock")[i] = Some(p);
    }

    fn worker(&self, name: &str) -> Proc {
        let log = std::fs::File::create(self.root.join(format!("{name}.log"))).expect("log");
        Proc(
            unseen(&self.root)
                .args([
                    "worker",
                    "--model",
                    &self.model,
                    "--key-store",
                    &self.pg.url,
                ])
                .args(["--job-lease-seconds", "3", "--data-dir"])
                .arg(self.root.join(name))
                .stderr(log)
                .spawn()
                .expect("start a worker"),
        )
    }

    fn url(&self, i: Option<usize>) -> String {
        match i {
            Some(i) => format!("http://127.0.0.1:{}", self.ports[i]),
            None => format!("http://{}", self.front),
        }
    }

    /// `predict-image` (JSON) of test image `index` through `server`.
    fn predict(
        &self,
        server: &str,
        index: usize,
        extra: &[&str],
    ) -> Result<serde_json::Value, String> {
        let out = unseen(&self.root)
            .args(["predict-image", "--server", server, "--keys", "k", "--json"])
            .args([
                "--data",
                &repo_file("data"),
                "--mnist-index",
                &index.to_string(),
            ])
            .args(extra)
            .output()
            .expect("run predict-image");
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
    }

    fn db(&self) -> postgres::Client {
        postgres::Client::connect(&self.pg.url, postgres::NoTls).expect("connect")
    }

    /// `(state, attempts)` of every job, oldest first.
    fn jobs(&self) -> Vec<(String, i32)> {
        self.db()
            .query(
                "SELECT state, attempts FROM unseen_jobs ORDER BY created",
                &[],
            )
            .expect("jobs")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect()
    }

    /// Waits until a job is running, claimed by a worker of process `pid` when given.
    fn wait_running(&self, pid: Option<u32>) {
        let like = pid
            .map(|p| format!("%:{p}:%"))
            .unwrap_or_else(|| "%".into());
        wait_until("a running job", Duration::from_secs(120), || {
            self.db()
                .query(
                    "SELECT 1 FROM unseen_jobs WHERE state = 'running' AND lease_owner LIKE $1",
                    &[&like],
                )
                .map(|r| !r.is_empty())
                .unwrap_or(false)
        });
    }
}

/// Requests through `server` from `clients` threads until `stop` (or `per_client` each);
/// the failures, each with its error.
fn load(
    cluster: &Arc<Cluster>,
    clients: usize,
    per_client: usize,
    stop: &Arc<AtomicBool>,
    done: &Arc<AtomicUsize>,
) -> Vec<std::thread::JoinHandle<Vec<String>>> {
    (0..clients)
        .map(|c| {
            let (cluster, stop, done) = (cluster.clone(), stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut failures = Vec::new();
                let front = cluster.url(None);
                for r in 0..per_client {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    // the first 20 test images, all classified right by the plaintext model
                    let index = (c * 7 + r) % 20;
                    match cluster.predict(&front, index, &[]) {
                        Ok(v) if v["class"] == v["true_class"] => {}
                        Ok(v) => failures.push(format!("image {index}: wrong class {v}")),
                        Err(e) => failures.push(format!("image {index}: {e}")),
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
                failures
            })
        })
        .collect()
}

fn failures(handles: Vec<std::thread::JoinHandle<Vec<String>>>) -> Vec<String> {
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect()
}

#[test]
fn replicas_behind_haproxy_share_keys_and_jobs_and_survive_failures() {
    // PostgreSQL runs as its own user when the tests run as root: a folder it can enter
    let root = std::env::temp_dir().join(format!("unseen-cluster-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("root");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let c = Cluster::start(&root);
    let made = unseen(&root)
        .args(["keygen", "ckks", "--model", &c.model, "--out", "k"])
        .output()
        .expect("keygen");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );

    // keys registered through replica 0 serve on replicas 1 and 2 without a second upload
    let first = c.predict(&c.url(Some(0)), 0, &[]).expect("replica 0");
    assert_eq!(first["class"], first["true_class"], "{first}");
    assert!(first["registered_keys_bytes"].as_u64().is_some(), "{first}");
    for (i, index) in [(1, 1), (2, 2)] {
        let v = c
            .predict(&c.url(Some(i)), index, &[])
            .expect("other replica");
        assert_eq!(v["class"], v["true_class"], "{v}");
        assert!(
            v["registered_keys_bytes"].is_null(),
            "replica {i} had to get the keys again: {v}"
        );
    }

    // a replica killed with SIGKILL under a bounded load: no request lost after retries
    let c = Arc::new(c);
    let r1 = c.take(1);
    let (stop, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let handles = load(&c, 6, 4, &stop, &done);
    wait_until("the first answers", Duration::from_secs(60), || {
        done.load(Ordering::Relaxed) >= 3
    });
    r1.kill();
    let lost = failures(handles);
    assert!(
        lost.is_empty(),
        "requests lost after killing a replica: {lost:?}"
    );
    c.restart(1);

    // a worker killed in the middle of a batch job: the job is claimed again after its lease
    // and every job is done once, with the right classes
    let w1 = c.worker("worker1");
    let pid = w1.0.id();
    let batch = {
        let c = c.clone();
        std::thread::spawn(move || {
            c.predict(
                &c.url(None),
                0,
                &["--batch", "6", "--jobs", "--per-job", "3"],
            )
        })
    };
    c.wait_running(Some(pid));
    w1.kill();
    let w2 = c.worker("worker2");
    let v = batch.join().expect("batch thread").expect("batch jobs");
    assert_eq!(
        (v["accuracy"].as_f64(), v["jobs"].as_u64()),
        (Some(1.0), Some(2)),
        "{v}"
    );
    let jobs = c.jobs();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    assert!(jobs.iter().all(|(s, _)| s == "done"), "{jobs:?}");
    assert!(
        jobs.iter().any(|(_, a)| *a == 2),
        "the killed worker's job ran again: {jobs:?}"
    );

    // PostgreSQL restarted while a job runs (`eval --server`: a data set through jobs): it
    // completes, once, and every decrypted class agrees with the plaintext network's
    let eval = {
        let c = c.clone();
        std::thread::spawn(move || {
            unseen(&c.root)
                .args([
                    "eval",
                    "--model",
                    &c.model,
                    "--encrypted",
                    "--mode",
                    "batch",
                ])
                .args(["--server", &c.url(None), "--keys", "k", "--limit", "30"])
                .args(["--data", &repo_file("data")])
                .output()
                .expect("run eval")
        })
    };
    c.wait_running(None);
    c.pg.restart();
    let out = eval.join().expect("eval thread");
    assert!(
        out.status.success(),
        "eval across a database restart: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(
        (v["agreement"].as_f64(), v["jobs"].as_u64()),
        (Some(1.0), Some(1)),
        "{v}"
    );
    assert!(v["max_logit_error"].as_f64().expect("error") < 0.05, "{v}");
    let jobs = c.jobs();
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    assert!(jobs.iter().all(|(s, _)| s == "done"), "{jobs:?}");
    w2.stop();

    // a rolling restart of every replica under load: no failed request
    let (stop, done) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
    );
    let handles = load(&c, 2, usize::MAX, &stop, &done);
    for i in 0..3 {
        let before = done.load(Ordering::Relaxed);
        c.take(i).stop();
        c.restart(i);
        // HAProxy puts it back after two good checks; requests went on meanwhile
        std::thread::sleep(Duration::from_millis(1500));
        assert!(
            done.load(Ordering::Relaxed) > before,
            "no request served during restart {i}"
        );
    }
    stop.store(true, Ordering::Relaxed);
    let served = done.load(Ordering::Relaxed);
    let lost = failures(handles);
    assert!(
        lost.is_empty(),
        "failed requests during the rolling restart: {lost:?}"
    );
    assert!(
        served >= 6,
        "only {served} requests during the rolling restart"
    );
    drop(c);
    let _ = std::fs::remove_dir_all(&root);
}
