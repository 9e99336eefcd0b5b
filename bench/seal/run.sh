#!/usr/bin/env bash
# Microsoft SEAL 4.1 CKKS micro-benchmark, side by side with `unseen bench ckks --json`.
# Same parameters as unseen's reference preset: N = 8192, coeff_modulus {31, 26 x 6, 31}
# (7 data primes + special prime), scale 2^26, one thread, median of 30 runs after a warm-up.
#
# Getting SEAL 4.1 source (v4.1.2 = commit 119dc32e135cb89c1062076a69310d4413ebc824), any of:
#   git clone --depth 1 --branch v4.1.2 https://github.com/microsoft/SEAL.git /work/seal-build/src
#   curl -L https://github.com/microsoft/SEAL/archive/refs/tags/v4.1.2.tar.gz | tar -xz  (then point SEAL_SRC at it)
#   from a bare git mirror:  mkdir -p /work/seal-build/src &&
#     git --git-dir=/path/to/SEAL.git archive v4.1.2 | tar -x -C /work/seal-build/src
# Build tools: cmake >= 3.13 and a C++17 compiler (apt-get install -y cmake g++).
#
# Usage: bench/seal/run.sh [SEAL_SRC]
# Environment:
#   SEAL_SRC    SEAL source tree (default /work/seal-build/src; the first argument wins)
#   SEAL_WORK   build root, outside the repo (default /work/seal-build)
#   SEAL_PREFIX SEAL install prefix (default $SEAL_WORK/prefix); SEAL is configured, built and
#               installed there only if no SEALConfig.cmake for 4.1 is found under it
#   JOBS        parallel build jobs (default 2); builds run under `nice -n 10`, timing does not
#   ITERS       timed runs per operation (default 30)
#   REPEAT      full benchmark repetitions (default 1)
#   UNSEEN_BIN  unseen binary (default <repo>/target/release/unseen); if executable, each SEAL run is
#               followed by `$UNSEEN_BIN bench ckks --json --iters $ITERS` (never built here)
#   OUT         JSONL file to append the tagged raw output to (default: none)
# SEAL is configured without HEXL, GSL, zlib and zstd (SEAL_BUILD_DEPS=OFF: no downloads), so its
# only serialization compression mode is `none`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
SEAL_SRC=${1:-${SEAL_SRC:-/work/seal-build/src}}
SEAL_WORK=${SEAL_WORK:-/work/seal-build}
SEAL_PREFIX=${SEAL_PREFIX:-$SEAL_WORK/prefix}
JOBS=${JOBS:-2}
ITERS=${ITERS:-30}
REPEAT=${REPEAT:-1}
UNSEEN_BIN=${UNSEEN_BIN:-$repo/target/release/unseen}
OUT=${OUT:-}

if ! ls "$SEAL_PREFIX"/lib*/cmake/SEAL-4.1/SEALConfig.cmake >/dev/null 2>&1; then
  [ -f "$SEAL_SRC/CMakeLists.txt" ] || { echo "no SEAL source at $SEAL_SRC (see the top of $0)" >&2; exit 1; }
  grep -q 'project(SEAL VERSION 4\.1\.' "$SEAL_SRC/CMakeLists.txt" || echo "warning: $SEAL_SRC is not SEAL 4.1.x" >&2
  nice -n 10 cmake -S "$SEAL_SRC" -B "$SEAL_WORK/build-seal" \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$SEAL_PREFIX" \
    -DSEAL_USE_INTEL_HEXL=OFF -DSEAL_USE_MSGSL=OFF -DSEAL_USE_ZLIB=OFF -DSEAL_USE_ZSTD=OFF \
    -DSEAL_BUILD_DEPS=OFF -DSEAL_THROW_ON_TRANSPARENT_CIPHERTEXT=ON -DBUILD_SHARED_LIBS=OFF \
    -DSEAL_BUILD_EXAMPLES=OFF -DSEAL_BUILD_TESTS=OFF -DSEAL_BUILD_BENCH=OFF >&2
  nice -n 10 cmake --build "$SEAL_WORK/build-seal" -j "$JOBS" >&2
  nice -n 10 cmake --install "$SEAL_WORK/build-seal" >&2
fi

nice -n 10 cmake -S "$here" -B "$SEAL_WORK/build-bench" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$SEAL_PREFIX" >&2
nice -n 10 cmake --build "$SEAL_WORK/build-bench" -j "$JOBS" >&2
bench="$SEAL_WORK/build-bench/seal_bench"

tag() { # prefix every JSON line with "impl"/"rep" fields, tee to $OUT
  local impl=$1 rep=$2
  sed -u -e "/\"impl\":/s/^{/{\"rep\":$rep,/" -e "/\"impl\":/!s/^{/{\"impl\":\"$impl\",\"rep\":$rep,/" |
    if [ -n "$OUT" ]; then tee -a "$OUT"; else cat; fi
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for rep in $(seq 1 "$REPEAT"); do
  meta="{\"meta\":true,\"rep\":$rep,\"date\":\"$(date -u +%FT%TZ)\",\"load\":\"$(cut -d' ' -f1-3 /proc/loadavg)\",\"cpu\":\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\",\"nproc\":$(nproc),\"repo_commit\":\"$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo ?)\",\"unseen_bin\":\"$( [ -x "$UNSEEN_BIN" ] && echo "$(sha256sum "$UNSEEN_BIN" | cut -c1-12) $(date -u -r "$UNSEEN_BIN" +%FT%TZ)" || echo missing)\",\"seal_bench\":\"$(sha256sum "$bench" | cut -c1-12)\"}"
  echo "$meta" | if [ -n "$OUT" ]; then tee -a "$OUT"; else cat; fi
  "$bench" "$ITERS" | tag seal "$rep" | tee "$tmp/seal.$rep"
  if [ -x "$UNSEEN_BIN" ]; then
    "$UNSEEN_BIN" bench ckks --json --iters "$ITERS" --threads 1 | tag unseen "$rep" | tee "$tmp/unseen.$rep"
  else
    echo "unseen binary $UNSEEN_BIN missing: SEAL only" >&2
  fi
done

# Side-by-side table (SEAL ms / unseen ms > 1 means unseen is faster).
python3 - "$tmp" "$REPEAT" <<'PY'
import json, os, sys
d, reps = sys.argv[1], int(sys.argv[2])
def load(p):
    return {r["op"]: r["ms_median"] for r in map(json.loads, open(p)) if "op" in r} if os.path.exists(p) else {}
for rep in range(1, reps + 1):
    s, u = load(f"{d}/seal.{rep}"), load(f"{d}/unseen.{rep}")
    print(f"\nrep {rep}\n| op | SEAL ms | unseen ms | SEAL/unseen |\n|---|---|---|---|")
    for op in list(s) + [o for o in u if o not in s]:
        a, b = s.get(op), u.get(op)
        ratio = f"{a / b:.2f}" if a and b else "-"
        fa = f"{a:.3f}" if a is not None else "-"
        fb = f"{b:.3f}" if b is not None else "-"
        print(f"| {op} | {fa} | {fb} | {ratio} |")
PY
