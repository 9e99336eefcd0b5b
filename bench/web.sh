#!/usr/bin/env bash
# The browser client against the native one on this machine, one thread each: key generation,
# encryption of one image and decryption of one reply, as medians over IMAGES images.
# Chromium (Debian's, driven by playwright-core from web/node_modules) runs the client core
# compiled to WebAssembly from web/dist; the native figures are `unseen bench cnn --threads 1`.
# Also prints the WebAssembly module's size, plain and gzipped.
#   bash bench/web.sh [MODEL_DIR] [IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
model=${1:-models/ciphernet-mnist}
images=${2:-20}
bin=${UNSEEN_BIN:-target/release/unseen}
[ -n "${UNSEEN_BIN:-}" ] || cargo build --release --quiet -p unseen
bash scripts/build-web.sh
(cd web && npm ci --no-audit --no-fund --loglevel=error)
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
name=$(basename "$model")
"$bin" serve --model "$model" --http 127.0.0.1:0 --web web/dist --data-dir "$work/data" 2>"$work/serve.log" &
pid=$!
addr=$(server_addr "$work/serve.log")
web=$(node web/bench.mjs "http://$addr" "$name" "$images")
kill "$pid"
pid=
native=$("$bin" bench cnn --model "$model" --images "$images" --batch-images 0 --threads 1 --json)
wasm=web/dist/pkg/unseen_wasm_bg.wasm
python3 - "$web" "$native" "$(wc -c <"$wasm")" "$(gzip -9c "$wasm" | wc -c)" <<'PY'
import json, sys
web, native = json.loads(sys.argv[1]), json.loads(sys.argv[2])
size, gz = int(sys.argv[3]), int(sys.argv[4])
print(json.dumps({"web": web, "native": native, "wasm_bytes": size, "wasm_gzip_bytes": gz}))
print(f"| | {web['where']} (wasm) | native | ratio |")
print("|---|---|---|---|")
for label, w, n in [("key generation", "keygen_ms", "client_keygen_ms"),
                    ("encrypt one image", "encrypt_ms", "client_encrypt_ms"),
                    ("decrypt one reply", "decrypt_ms", "client_decrypt_ms")]:
    print(f"| {label} | {web[w]:.1f} ms | {native[n]:.2f} ms | {web[w] / native[n]:.1f}x |")
print(f"wasm module: {size} bytes, {gz} gzipped")
PY
