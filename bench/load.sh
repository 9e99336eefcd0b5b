#!/usr/bin/env bash
# Bounded load test on loopback: starts `unseen serve` (release build) with the salary model and
# a CNN model, then CLIENTS x REQUESTS Paillier predictions and CNN_CLIENTS x CNN_REQUESTS
# encrypted images through `unseen bench load`; prints one JSON line per route and a table.
#   bash bench/load.sh [CLIENTS] [REQUESTS] [CNN_CLIENTS] [CNN_REQUESTS] [CNN_MODEL_DIR]
# UNSEEN_BIN=path skips the release build.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
clients=${1:-8}
requests=${2:-100}
cnn_clients=${3:-2}
cnn_requests=${4:-20}
cnn=${5:-models/ciphernet-mnist}
bin=${UNSEEN_BIN:-target/release/unseen}
if [ -z "${UNSEEN_BIN:-}" ]; then
  cargo build --release --quiet -p unseen
fi
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
"$bin" train linear --csv data/employee/employee_data.csv --target salary --out "$work/salary.json" >/dev/null
"$bin" keygen --out "$work/keys.json" --bits 2048 >/dev/null
"$bin" keygen ckks --model "$cnn" --out "$work/ckks" >/dev/null
# no rate limit: one address sends every request
"$bin" serve --model "$work/salary.json" --model "$cnn" --http 127.0.0.1:0 \
  --data-dir "$work/data" --rate-limit 0 2>"$work/serve.log" &
pid=$!
addr=$(server_addr "$work/serve.log")
name=$(basename "$cnn")
"$bin" bench load --server "http://$addr" --model salary --keys "$work/keys.json" \
  --clients "$clients" --requests "$requests" | tee "$work/paillier.json"
"$bin" bench load --server "http://$addr" --model "$name" --key-dir "$work/ckks" --model-dir "$cnn" \
  --clients "$cnn_clients" --requests "$cnn_requests" | tee "$work/ckks.json"
python3 - "$work/paillier.json" "$work/ckks.json" <<'PY'
import json, sys
print()
print("| route | clients x requests | errors | requests/s | requests/s per core | p50 ms | p99 ms |")
print("|---|---|---|---|---|---|---|")
for path in sys.argv[1:]:
    r = json.load(open(path))
    print(f"| {r['kind']} ({r['model']}) | {r['clients']} x {r['requests'] // r['clients']} | {r['errors']} "
          f"| {r['requests_per_second']:.1f} | {r['requests_per_second_per_core']:.1f} "
          f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} |")
PY
