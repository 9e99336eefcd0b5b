#!/usr/bin/env bash
# Peak memory of one full batch request: `unseen serve`'s peak resident memory (VmHWM) after one
# single-image request (keys registered and loaded) and after one batch of IMAGES images
# (`predict-image --batch`), and the client's peak and wall time. Several builds side by side:
# BIN="old/unseen new/unseen".
#
#   bash bench/batch_memory.sh [MODEL_DIR] [IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/ciphernet-mnist}
images=${2:-4096}
. bench/lib.sh
server_builds
"$first" keygen ckks --model "$model" --out "$work/k" >/dev/null
hwm() { awk '/^VmHWM/ { print int($2 / 1024) }' "/proc/$1/status"; }
for bin in $bins; do
  rm -rf "$work/data"
  "$bin" serve --model "$model" --http 127.0.0.1:0 --data-dir "$work/data" --open 2>"$work/serve.log" &
  pid=$!
  addr=$(server_addr "$work/serve.log")
  "$bin" predict-image --server "http://$addr" --keys "$work/k" --mnist-index 0 >/dev/null
  before=$(hwm "$pid")
  client=$( { /usr/bin/time -f '%e %M' "$bin" predict-image --server "http://$addr" --keys "$work/k" \
    --mnist-index 0 --batch "$images" >/dev/null; } 2>&1 | tail -1)
  echo "{\"bin\": \"$bin\", \"images\": $images, \"server_peak_mb_before\": $before, \"server_peak_mb_after_batch\": $(hwm "$pid"), \"client_seconds\": ${client% *}, \"client_peak_mb\": $(( ${client#* } / 1024 ))}"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
done
