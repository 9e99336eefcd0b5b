#!/usr/bin/env bash
# Side-by-side Paillier benchmark: unseen vs python-paillier (phe + gmpy2), same machine, run
# one after the other (never in parallel). Prints both JSON streams and a markdown table.
#   bash bench/compare_paillier.sh [BITS] [ITERS]
set -euo pipefail
cd "$(dirname "$0")/.."
bits=${1:-2048}
iters=${2:-50}
out=${BENCH_OUT:-target/bench}
mkdir -p "$out"
venv=${PHE_VENV:-target/phe-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet phe==1.5.0 gmpy2
fi
cargo build --release --quiet -p unseen
./target/release/unseen train linear --csv data/employee/employee_data.csv --target salary --out "$out/salary.json" >/dev/null
./target/release/unseen bench paillier --bits "$bits" --iters "$iters" --json | tee "$out/unseen.jsonl"
"$venv/bin/python" bench/phe_bench.py --bits "$bits" --iters "$iters" --model "$out/salary.json" | tee "$out/phe.jsonl"
python3 - "$out/unseen.jsonl" "$out/phe.jsonl" <<'PY'
import json, sys
ours = {r["op"]: r for r in map(json.loads, open(sys.argv[1]))}
theirs = {r["op"]: r for r in map(json.loads, open(sys.argv[2]))}
print()
print("| op | bits | unseen ms | phe ms | speed-up |")
print("|---|---|---|---|---|")
pairs = [("keygen", "keygen"), ("encrypt", "encrypt"), ("encrypt_standard", "encrypt"),
         ("encrypt_with_private_key", "encrypt"), ("decrypt", "decrypt"),
         ("predict_d4", "predict_d4"), ("predict_d4_new_key", "predict_d4"),
         ("predict_d100", "predict_d100"), ("predict_d100_new_key", "predict_d100")]
for o, t in pairs:
    if o in ours and t in theirs:
        a, b = ours[o]["ms_median"], theirs[t]["ms_median"]
        label = o if o == t else f"{o} (vs phe {t})"
        print(f"| {label} | {ours[o]['bits']} | {a:.2f} | {b:.2f} | {b / a:.1f}x |")
PY
