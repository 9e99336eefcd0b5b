#!/usr/bin/env bash
# Encrypted CNN inference against the thread count: one `unseen bench cnn --threads T1,T2,...`
# (client and server timed apart; each image runs at every count in turn, so that the counts
# share the machine's slow and quiet spells), then a table with the speed-ups over the first
# count: single images as the median of the images' own ratios, batches as the ratio of the
# per-image times. Beside each image runs a perfectly parallel computation (independent NTTs in
# each core's cache): its speed-up is the machine's ceiling at that moment (shared, throttled or
# hyperthreaded cores give less than the thread count), and the efficiency is the images'
# speed-up over that ceiling, image by image.
# BIN=path measures another build; BIN="a b" measures several, one table each, side by side.
#   bash bench/cores.sh [MODEL_DIR] [THREADS] [IMAGES] [BATCH_IMAGES]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-models/ciphernet-mnist}
threads=${2:-1,2}
images=${3:-20}
batch=${4:-4096}
bins=${BIN:-target/release/unseen}
[ -n "${BIN:-}" ] || cargo build --release --quiet -p unseen
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for bin in $bins; do
  "$bin" bench cnn --model "$model" --images "$images" --batch-images "$batch" --threads "$threads" \
    --json >"$work/rows"
  python3 - "$bin" "$work/rows" <<'PY'
import json, sys
bin, path = sys.argv[1], sys.argv[2]
rows = [json.loads(l) for l in open(path) if l.strip()]
first = rows[0]
for r in rows:
    print(json.dumps({"bin": bin, **r}))
print(f"{bin}: {first['model']}, median of {first['images']} single images; "
      f"{first.get('batch_images', 0)} images in batch mode")
print("| threads | single image | speed-up | machine's ceiling | efficiency | batch server ms/image | speed-up | batch client encrypt ms/image |")
print("|---|---|---|---|---|---|---|---|")
for r in rows:
    single = r["server_single_image_ms"]
    line = (f"| {r['threads']} | {single:.1f} ms | {r['single_speedup']:.2f}x "
            f"| {r['ceiling_speedup']:.2f}x | {r['parallel_efficiency']:.0%} |")
    b = r.get("batch_server_ms_per_image")
    if b:
        e = r["batch_client_encrypt_ms_per_image"]
        line += f" {b:.3f} | {first['batch_server_ms_per_image'] / b:.2f}x | {e:.3f} |"
    else:
        line += " | | |"
    print(line)
PY
done
