//! Golden hashes of serialized objects and the seed corpus they double as. Not a fuzz target:
//! the crates' `tests/golden.rs` include this file with
//! `#[path = "../../../fuzz/support/golden.rs"]` (it needs the `sha2` crate).
//!
//! Each crate's golden test builds its objects deterministically from fixed seeds and passes
//! them to [`check`] with its pinned SHA-256 table. Any changed byte fails the test, which then
//! prints the whole table as it now is: after an intended format change (version bumped where
//! old bytes no longer load), paste that table over the old one and rewrite the seeds with
//! `UNSEEN_WRITE_CORPUS=1 cargo test -p <crate> --test golden`, which replaces every file of
//! the crate's `fuzz/corpus/<target>/` folders but the `bad-*` ones.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;

use sha2::{Digest, Sha256};

/// A target's check: decodes bytes and returns whether they were accepted.
pub type Check = fn(&[u8]) -> bool;

/// Largest seed file.
pub const MAX_SEED_BYTES: usize = 200_000;

/// One serialized object: its fuzz target (its format), its name, its bytes, and whether it is
/// also a seed of the target's corpus. Objects named `bad-*` must be rejected by the decoder.
pub struct Object {
    pub target: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
    pub seed: bool,
}

impl Object {
    /// An object that is also a seed.
    pub fn new(target: &'static str, name: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            target,
            name: name.to_string(),
            bytes: bytes.into(),
            seed: true,
        }
    }
}

/// Lower-case hex of the SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks every object: accepted by its target's check (rejected for `bad-*`), seeds small, and
/// its SHA-256 equal to the one pinned in `golden` (`("target/name", hex)`, one per object).
/// With `UNSEEN_WRITE_CORPUS` set, also rewrites the seed corpus first.
pub fn check(
    manifest_dir: &str,
    objects: &[Object],
    golden: &[(&str, &str)],
    checks: &[(&str, Check)],
) {
    if std::env::var_os("UNSEEN_WRITE_CORPUS").is_some() {
        write_corpus(manifest_dir, objects);
    }
    let mut table = String::new();
    let mut changed = Vec::new();
    for o in objects {
        let key = format!("{}/{}", o.target, o.name);
        let (_, decode) = checks
            .iter()
            .find(|(t, _)| *t == o.target)
            .unwrap_or_else(|| panic!("no check for target {}", o.target));
        let accepted = decode(&o.bytes);
        assert_eq!(
            accepted,
            !o.name.starts_with("bad-"),
            "{key}: accepted = {accepted}"
        );
        assert!(
            !o.seed || o.bytes.len() <= MAX_SEED_BYTES,
            "{key}: {} bytes, keep seeds under {MAX_SEED_BYTES}",
            o.bytes.len()
        );
        let got = sha256_hex(&o.bytes);
        if golden.iter().find(|(k, _)| *k == key).map(|(_, h)| *h) != Some(got.as_str()) {
            changed.push(key.clone());
        }
        table.push_str(&format!("    (\"{key}\", \"{got}\"),\n"));
    }
    let stale: Vec<&str> = golden
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| {
            !objects
                .iter()
                .any(|o| format!("{}/{}", o.target, o.name) == *k)
        })
        .collect();
    assert!(
        changed.is_empty() && stale.is_empty(),
        "serialized bytes changed: {changed:?} (pinned but not made: {stale:?}).\n\
         If the change is intended (bump the format's version, where it has one, if old bytes \
         no longer load), \
         replace the GOLDEN table with\n{table}\
         and rewrite the seeds with UNSEEN_WRITE_CORPUS=1 cargo test --test golden -p <crate>."
    );
}

/// Replaces the seeds of every target of `objects` in `fuzz/corpus/` (keeps `bad-*` files that
/// no object rewrites).
fn write_corpus(manifest_dir: &str, objects: &[Object]) {
    let root = Path::new(manifest_dir).join("../../fuzz/corpus");
    let mut cleared = BTreeSet::new();
    for o in objects.iter().filter(|o| o.seed) {
        let dir = root.join(o.target);
        if cleared.insert(o.target) && dir.exists() {
            for e in std::fs::read_dir(&dir).expect("corpus folder") {
                let path = e.expect("corpus entry").path();
                let keep = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("bad-"));
                if !keep {
                    std::fs::remove_file(&path).expect("remove old seed");
                }
            }
        }
        std::fs::create_dir_all(&dir).expect("corpus folder");
        std::fs::write(dir.join(&o.name), &o.bytes).expect("write seed");
    }
}
