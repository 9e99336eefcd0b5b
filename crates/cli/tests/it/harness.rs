//! Runs the built binary in a fresh temporary folder and shows what it printed on failure.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

pub fn repo_file(rel: &str) -> String {
    repo_root().join(rel).display().to_string()
}

pub struct Unseen {
    dir: tempfile::TempDir,
}

pub struct Server {
    child: Child,
    pub http: String,
    pub legacy: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Unseen {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) {
        std::fs::write(self.path(rel), text).expect("write");
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).expect("read")
    }

    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_unseen"));
        c.args(args).current_dir(dir).stdin(Stdio::null());
        c
    }

    pub fn ok_in(&self, dir: &Path, args: &[&str]) -> String {
        let out = self.command(dir, args).output().expect("run unseen");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "unseen {args:?} failed\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_in(self.dir.path(), args)
    }

    /// Runs a command that must fail; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self
            .command(self.dir.path(), args)
            .output()
            .expect("run unseen");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success(),
            "unseen {args:?} should fail\nstdout: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert_eq!(out.status.code(), Some(1), "unseen {args:?}: {stderr}");
        stderr
    }

    /// Trains the salary model on the bundled employee data into `out`; returns what it printed.
    pub fn train_salary(&self, out: &str) -> String {
        self.ok(&[
            "train",
            "linear",
            "--csv",
            &repo_file("data/employee/employee_data.csv"),
            "--target",
            "salary",
            "--out",
            out,
        ])
    }

    /// Starts `unseen serve` on loopback ports chosen by the system (keys of 1024 bits and up).
    pub fn serve(&self, extra: &[&str]) -> Server {
        let mut args = vec![
            "serve",
            "--http",
            "127.0.0.1:0",
            "--legacy-tcp",
            "127.0.0.1:0",
            "--min-key-bits",
            "1024",
        ];
        args.extend_from_slice(extra);
        let mut child = self
            .command(self.dir.path(), &args)
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn server");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let (mut http, mut legacy) = (None, None);
        while http.is_none() || legacy.is_none() {
            let line = lines
                .next()
                .expect("server exited early")
                .expect("read stderr");
            if let Some(rest) = line
                .split("HTTP API on http://")
                .nth(1)
                .or_else(|| line.split("HTTP API on https://").nth(1))
            {
                http = rest.split_whitespace().next().map(str::to_string);
            }
            if let Some(rest) = line.split("legacy TCP protocol on ").nth(1) {
                legacy = rest.split_whitespace().next().map(str::to_string);
            }
        }
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            http: http.expect("http"),
            legacy: legacy.expect("legacy"),
        }
    }
}

/// The Python with the interop peers (phe, pheutil, numpy, safetensors), or a failure that
/// says how to get one.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("UNSEEN_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join("target/phe-venv/bin/python");
    assert!(
        venv.exists(),
        "a Python with phe, click, numpy and safetensors is needed for the interop tests: run `bash scripts/test.sh` (it makes target/phe-venv), or set UNSEEN_PYTHON"
    );
    venv
}

pub fn py(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(python())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "python {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
