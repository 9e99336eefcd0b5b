#!/usr/bin/env bash
# Server memory per loaded key set: the growth of `unseen serve`'s resident memory per registered
# client. CLIENTS key folders are made; the first client's keys are registered and used once
# (the server's own buffers settle), then the others'; the growth after the first, divided by the
# other clients, is the figure. Several builds side by side: BIN="old/unseen new/unseen".
# KEY_DIGITS=per-prime|paired|mixed serves the model with that `--key-digits` and makes the keys
# that way (unset: the default, mixed).
#
#   bash bench/key_memory.sh [MODEL_DIR] [CLIENTS]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/ciphernet-mnist}
clients=${2:-4}
[ "$clients" -ge 2 ] || { echo "key_memory.sh: at least 2 clients" >&2; exit 2; }
. bench/lib.sh
server_builds
digits=()
[ -z "${KEY_DIGITS:-}" ] || digits=(--key-digits "$KEY_DIGITS")
for i in $(seq 1 "$clients"); do
  "$first" keygen ckks --model "$model" --out "$work/k$i" "${digits[@]}" >/dev/null
done
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
for bin in $bins; do
  rm -rf "$work/data"
  "$bin" serve --model "$model" --http 127.0.0.1:0 --data-dir "$work/data" "${digits[@]}" 2>"$work/serve.log" &
  pid=$!
  addr=$(server_addr "$work/serve.log")
  ask() { "$bin" predict-image --server "http://$addr" --keys "$work/k$1" --mnist-index 0 >/dev/null; }
  ask 1
  before=$(rss "$pid")
  for i in $(seq 2 "$clients"); do ask "$i"; done
  after=$(rss "$pid")
  echo "{\"bin\": \"$bin\", \"clients\": $clients, \"rss_after_first_mb\": $((before / 1024)), \"rss_after_all_mb\": $((after / 1024)), \"mb_per_client\": $(( (after - before) / (clients - 1) / 1024 ))}"
  kill "$pid"
  wait "$pid" 2>/dev/null || true
  pid=
done
