#!/usr/bin/env bash
# The Python package against python-paillier + gmpy2, side by side on the same machine:
# encrypting and decrypting COUNT floats with a 2048-bit key, on one core and on all cores.
#   bash bench/compare_python.sh [COUNT] [THREADS...]     (default: 10000 1 all)
# then Client.predict against the CLI round trip (bench/python_client.py); COUNT=0 skips the first part
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
count=${1:-10000}
shift || true
threads_list=${*:-1 all}
venv=${PY_BENCH_VENV:-target/py-bench-venv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet phe==1.5.0 gmpy2 numpy
fi
"$venv/bin/pip" install --quiet --force-reinstall --no-deps ./python
[ "$count" = 0 ] && threads_list=""
for threads in $threads_list; do
  if [ "$threads" = all ]; then unset RAYON_NUM_THREADS; else export RAYON_NUM_THREADS=$threads; fi
  "$venv/bin/python" bench/python_paillier.py "$count" | tee -a "$venv/results.jsonl"
done
# Client.predict against the CLI's round trip, on a server of ciphernet-mnist on loopback
# (`python -m unseen serve`: the same code as the binary).
work=$(mktemp -d)
"$venv/bin/python" -m unseen serve --model models/ciphernet-mnist --http 127.0.0.1:0 \
  --data-dir "$work/data" 2>"$work/serve.log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
addr=$(server_addr "$work/serve.log" 300)
unset RAYON_NUM_THREADS
"$venv/bin/python" bench/python_client.py "http://$addr" ciphernet-mnist "${CLIENT_ROUNDS:-20}" |
  tee -a "$venv/results.jsonl"
