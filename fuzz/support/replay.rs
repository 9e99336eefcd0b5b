//! Stable-toolchain stand-in for the fuzzers: replays the committed seed corpus
//! (`fuzz/corpus/<target>/*`) and cheap seeded mutations of every seed through a target's check
//! function. Not a fuzz target: the crates' `tests/fuzz_corpus.rs` include this file with
//! `#[path = "../../../fuzz/support/replay.rs"]` (it uses only `std`).
//!
//! A check function decodes bytes, returns whether they were accepted and panics when an accepted
//! input does not round-trip; any panic fails the test, with the target, the seed and the
//! mutation that caused it. Every seed must be accepted, except files whose name starts with
//! `bad-` (kept rejected inputs, e.g. minimised crashes after their fix).
#![allow(dead_code)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

/// The committed corpus folder of `target`, from the including crate's manifest folder.
pub fn corpus_dir(manifest_dir: &str, target: &str) -> PathBuf {
    Path::new(manifest_dir)
        .join("../../fuzz/corpus")
        .join(target)
}

/// The corpus files of `target`, sorted by name; panics when there are none.
pub fn seeds(manifest_dir: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(manifest_dir, target);
    let entries = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("seed corpus {} is missing: {e}", dir.display()));
    let mut out: Vec<(String, Vec<u8>)> = entries
        .map(|e| {
            let path = e.expect("corpus entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("corpus file name")
                .to_string();
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (name, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

/// A target's check: decodes bytes, returns whether they were accepted, panics on a broken
/// round trip.
pub type Check = fn(&[u8]) -> bool;

/// SplitMix64: a fixed, dependency-free generator, so that every run makes the same mutations.
pub struct Mix(u64);

impl Mix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, n)` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Values that often sit on a decoder's boundaries.
const INTERESTING: [u64; 10] = [
    0,
    1,
    2,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0xffff_ffff,
    u64::MAX,
    1 << 32,
];

/// A position, half of the time within the first 64 bytes (headers, counts, lengths, levels).
fn position(rng: &mut Mix, len: usize) -> usize {
    if rng.next() & 1 == 0 {
        rng.below(len.min(64))
    } else {
        rng.below(len)
    }
}

/// One random mutation of `seed` (never empty input unless `seed` is empty).
pub fn mutate(seed: &[u8], rng: &mut Mix) -> (Vec<u8>, String) {
    let mut v = seed.to_vec();
    if v.is_empty() {
        let n = 1 + rng.below(16);
        return ((0..n).map(|_| rng.next() as u8).collect(), "random".into());
    }
    let what = match rng.below(8) {
        0 | 1 => {
            let flips = 1 + rng.below(4);
            let mut at = Vec::new();
            for _ in 0..flips {
                let p = position(rng, v.len());
                v[p] ^= 1 << rng.below(8);
                at.push(p);
            }
            format!("bit flips at {at:?}")
        }
        2 => {
            let p = position(rng, v.len());
            v[p] = match rng.below(3) {
                0 => 0,
                1 => 0xff,
                _ => rng.next() as u8,
            };
            format!("byte {p} set to {}", v[p])
        }
        3 => {
            let p = position(rng, v.len());
            let x = INTERESTING[rng.below(INTERESTING.len())];
            let width = [1usize, 2, 4, 8][rng.below(4)].min(v.len() - p);
            v[p..p + width].copy_from_slice(&x.to_le_bytes()[..width]);
            format!("{width} bytes at {p} set to {x:#x}")
        }
        4 => {
            let keep = if rng.next() & 1 == 0 {
                v.len() - 1 - rng.below(v.len().min(64))
            } else {
                rng.below(v.len())
            };
            v.truncate(keep);
            format!("truncated to {keep} bytes")
        }
        5 => {
            let n = 1 + rng.below(16);
            v.extend((0..n).map(|_| rng.next() as u8));
            format!("{n} bytes appended")
        }
        6 => {
            let p = position(rng, v.len());
            let n = (1 + rng.below(16)).min(v.len() - p);
            v.drain(p..p + n);
            format!("{n} bytes removed at {p}")
        }
        _ => {
            let p = position(rng, v.len());
            let n = 1 + rng.below(16);
            let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
            v.splice(p..p, bytes);
            format!("{n} bytes inserted at {p}")
        }
    };
    (v, what)
}

/// Runs every seed of `target` and `mutations` mutations of each (a tenth as many for `bad-*`
/// seeds) through `check`. Returns `(seeds, mutations accepted)` so that callers can see the
/// mutations reach the decoders.
pub fn replay(manifest_dir: &str, target: &str, check: Check, mutations: usize) -> (usize, usize) {
    let seeds = seeds(manifest_dir, target);
    let mut accepted = 0;
    for (k, (name, seed)) in seeds.iter().enumerate() {
        let ok = catch_unwind(|| check(seed))
            .unwrap_or_else(|_| panic!("{target}: seed {name} makes the check panic"));
        if name.starts_with("bad-") {
            assert!(
                !ok,
                "{target}: seed {name} is accepted, its name says it is rejected"
            );
        } else {
            assert!(ok, "{target}: seed {name} is rejected by its decoder");
        }
        let mut rng = Mix::new(0x5eed ^ ((k as u64) << 32) ^ seed.len() as u64);
        // kept rejected inputs are mostly copies of good seeds: fewer mutations
        let count = if ok { mutations } else { mutations / 10 };
        for i in 0..count {
            let (input, what) = mutate(seed, &mut rng);
            match catch_unwind(AssertUnwindSafe(|| check(&input))) {
                Ok(true) => accepted += 1,
                Ok(false) => {}
                Err(_) => panic!(
                    "{target}: mutation {i} of seed {name} ({what}, {} bytes) panics in decode or breaks the round trip",
                    input.len()
                ),
            }
        }
    }
    (seeds.len(), accepted)
}
