#!/usr/bin/env bash
# Side-by-side encrypted CNN benchmark: unseen vs TenSEAL 0.3.18 on the same trained weights,
# same machine, one thread each, run one after the other (never in parallel). Prints both JSON
# lines and a markdown table.
#   bash bench/compare_cnn.sh [MODEL_DIR] [IMAGES] [THREADS]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/ciphernet-mnist}
images=${2:-20}
threads=${3:-1}
out=${BENCH_OUT:-target/bench}
mkdir -p "$out"
venv=${TENSEAL_VENV:-target/tenseal-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet tenseal==0.3.18 numpy safetensors
fi
cargo build --release --quiet -p unseen
./target/release/unseen bench cnn --model "$model" --images "$images" --threads "$threads" --json | tee "$out/unseen-cnn.json"
"$venv/bin/python" bench/tenseal_cnn.py --model "$model" --images "$images" --threads "$threads" | tee "$out/tenseal-cnn.json"
python3 - "$out/unseen-cnn.json" "$out/tenseal-cnn.json" <<'PY'
import json, sys
u = json.load(open(sys.argv[1]))
t = json.load(open(sys.argv[2]))
print()
print(f"| {u['model']}, {u['threads']} thread(s) | unseen | TenSEAL {t['version']} | ratio |")
print("|---|---|---|---|")
rows = [("server time per image (ms)", u["server_single_image_ms"], t["server_single_image_ms"]),
        ("batch server time per image (ms)", u.get("batch_server_ms_per_image"), t["server_single_image_ms"]),
        ("evaluation keys (bytes)", u["eval_keys_bytes"], t["eval_keys_bytes"]),
        ("upload per image (bytes)", u["upload_bytes"], t["upload_bytes"]),
        ("download per image (bytes)", u["download_bytes"], t["download_bytes"]),
        ("max logit error", u["single_max_logit_error"], t["max_logit_error"])]
fmt = lambda v: f"{v:,.0f}" if v >= 100 else f"{v:.4g}"
for name, a, b in rows:
    if a is None or b is None:
        continue
    print(f"| {name} | {fmt(a)} | {fmt(b)} | {b / a:,.1f}x |")
PY
