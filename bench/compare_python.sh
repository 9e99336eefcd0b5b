#!/usr/bin/env bash
# The Python package against python-paillier + gmpy2, side by side on the same machine:
# encrypting and decrypting COUNT floats with a 2048-bit key, on one core and on all cores.
#   bash bench/compare_python.sh [COUNT] [THREADS...]     (default: 10000 1 all)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-10000}
shift || true
threads_list=${*:-1 all}
venv=${PY_BENCH_VENV:-target/py-bench-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet phe==1.5.0 gmpy2 numpy
fi
"$venv/bin/pip" install --quiet --force-reinstall --no-deps ./python
for threads in $threads_list; do
  if [ "$threads" = all ]; then unset RAYON_NUM_THREADS; else export RAYON_NUM_THREADS=$threads; fi
  "$venv/bin/python" bench/python_paillier.py "$count" | tee -a "$venv/results.jsonl"
done
