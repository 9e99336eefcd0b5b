#!/usr/bin/env bash
# Scale-out figures on this machine, loopback only: a throwaway PostgreSQL (scripts/pg.sh),
# up to three `unseen serve --key-store postgres://...` replicas behind HAProxy
# (deploy/haproxy.cfg), and the CNN model's /infer route loaded through HAProxy with
# `unseen bench load` for 1, 2 and 3 replicas. Then the time to a first inference on a replica
# that has never seen the client's keys, and batch-job throughput with 1 and 2 `unseen worker`s.
#
#   bash bench/cluster.sh [CLIENTS] [REQUESTS] [JOB_IMAGES] [PER_JOB] [MODEL_DIR]
#
# Defaults: 4 clients x 10 requests, 2,000 images in jobs of 500. UNSEEN_BIN=path skips the
# release build. Prints one JSON line per measurement and a table.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
clients=${1:-4}
requests=${2:-10}
job_images=${3:-2000}
per_job=${4:-500}
model=${5:-models/ciphernet-mnist}
bin=${UNSEEN_BIN:-target/release/unseen}
if [ -z "${UNSEEN_BIN:-}" ]; then
  cargo build --release --quiet -p unseen
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
haproxy=$(command -v haproxy || echo /usr/sbin/haproxy)
work=$(mktemp -d /tmp/unseen-cluster-bench.XXXXXX)
chmod 755 "$work"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  bash scripts/pg.sh stop "$work/pg" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
healthy() { # ADDR: waits for 200 on /healthz
  for _ in $(seq 1 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$1/healthz")" = 200 ] && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2
  return 1
}
db=$(bash scripts/pg.sh start "$work/pg")
name=$(basename "$model")
"$bin" keygen ckks --model "$model" --out "$work/k" >/dev/null
ports=()
for i in 1 2 3 4; do ports+=("$(free_port)"); done
replica() { # INDEX: starts replica INDEX (0-based) on its port
  "$bin" serve --model "$model" --http "127.0.0.1:${ports[$1]}" --key-store "$db" \
    --data-dir "$work/r$1" --job-workers 0 --rate-limit 0 2>"$work/r$1.log" &
  pids+=($!)
  healthy "127.0.0.1:${ports[$1]}"
}
front=127.0.0.1:$(free_port)
proxy() { # N: HAProxy in front of the first N replicas (the other lines point at nothing)
  [ -n "${hpid:-}" ] && { kill "$hpid"; wait "$hpid" 2>/dev/null || true; }
  local env=(UNSEEN_LISTEN="$front")
  for i in 0 1 2; do
    if [ "$i" -lt "$1" ]; then env+=("UNSEEN_REPLICA$((i + 1))=127.0.0.1:${ports[$i]}")
    else env+=("UNSEEN_REPLICA$((i + 1))=127.0.0.1:${ports[3]}"); fi
  done
  env "${env[@]}" "$haproxy" -db -f deploy/haproxy.cfg 2>"$work/haproxy.log" &
  hpid=$!
  pids+=("$hpid")
  healthy "$front"
  sleep 2 # the health checks mark the absent replicas down
}
for i in 0 1 2; do replica "$i"; done
for n in 1 2 3; do
  proxy "$n"
  "$bin" bench load --server "http://$front" --model "$name" --key-dir "$work/k" \
    --model-dir "$model" --clients "$clients" --requests "$requests" |
    python3 -c 'import json,sys; r=json.load(sys.stdin); r["replicas"]='"$n"'; print(json.dumps(r))' |
    tee -a "$work/load.jsonl"
done
# a replica that has never seen the keys (registered above through another): first and second
# inference, measured by the client (the key fetch from the database and parsing included)
# and the growth of its resident memory once it holds them
ports[3]=$(free_port)
replica 3
fresh=${pids[-1]}
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
before=$(rss "$fresh")
for attempt in first second; do
  "$bin" predict-image --server "http://127.0.0.1:${ports[3]}" --keys "$work/k" --mnist-index 0 --json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"kind": "fresh_replica", "attempt": "'"$attempt"'", "round_trip_ms": r["round_trip_ms"], "server_ms": r["server_ms"], "registered_keys_bytes": r["registered_keys_bytes"], "rss_kb": '"$(rss "$fresh")"'}))' |
    tee -a "$work/fresh.jsonl"
done
echo "{\"kind\": \"rss\", \"before_kb\": $before, \"after_kb\": $(rss "$fresh")}" | tee "$work/rss.json"
psql -qAt "$db" -c "SELECT json_build_object('kind', 'database', 'clients', (SELECT count(*) FROM unseen_key_bundles), 'key_bytes', pg_total_relation_size('unseen_key_chunks'))" |
  tee "$work/db.json"
# batch jobs: JOB_IMAGES test images in jobs of PER_JOB, with 1 then 2 workers
for w in 1 2; do
  wp=()
  for i in $(seq 1 "$w"); do
    "$bin" worker --model "$model" --key-store "$db" --data-dir "$work/w$i" 2>"$work/w$w-$i.log" &
    wp+=($!)
    pids+=($!)
  done
  "$bin" predict-image --server "http://$front" --keys "$work/k" --mnist-index 0 \
    --batch "$job_images" --jobs --per-job "$per_job" --json |
    python3 -c 'import json,sys; r=json.load(sys.stdin); print(json.dumps({"kind": "jobs", "workers": '"$w"', "images": r["images"], "jobs": r["jobs"], "accuracy": r["accuracy"], "client_encrypt_ms": r["client_encrypt_ms"], "submit_to_results_ms": r["round_trip_ms"], "images_per_second": r["images"] / r["round_trip_ms"] * 1e3}))' |
    tee -a "$work/jobs.jsonl"
  for p in "${wp[@]}"; do kill "$p"; wait "$p" 2>/dev/null || true; done
done
python3 - "$work" "$(nproc)" <<'PY'
import json, sys, pathlib
work, cores = pathlib.Path(sys.argv[1]), int(sys.argv[2])
rows = lambda f: [json.loads(l) for l in (work / f).read_text().splitlines() if l.strip()]
print(f"\nThrough HAProxy on this {cores}-core machine (replicas share its cores):\n")
print("| replicas | clients x requests | errors | requests/s | requests/s per core | p50 ms | p99 ms |")
print("|---|---|---|---|---|---|---|")
for r in rows("load.jsonl"):
    print(f"| {r['replicas']} | {r['clients']} x {r['requests'] // r['clients']} | {r['errors']} "
          f"| {r['requests_per_second']:.2f} | {r['requests_per_second_per_core']:.2f} "
          f"| {r['p50_ms']:.0f} | {r['p99_ms']:.0f} |")
fresh = rows("fresh.jsonl")
rss = json.loads((work / "rss.json").read_text())
dbs = json.loads((work / "db.json").read_text())
print(f"\nA replica that never saw the keys: first inference {fresh[0]['round_trip_ms']:.0f} ms, "
      f"second {fresh[1]['round_trip_ms']:.0f} ms (client round trips); its resident memory grew "
      f"{(rss['after_kb'] - rss['before_kb']) / 1024:.0f} MB to hold them "
      f"({rss['before_kb'] / 1024:.0f} -> {rss['after_kb'] / 1024:.0f} MB)")
print(f"Database: {dbs['key_bytes'] / 2**20:.1f} MiB of key chunks for {dbs['clients']} client(s)\n")
print("| job workers | images | jobs | submit to last result | images/s |")
print("|---|---|---|---|---|")
for r in rows("jobs.jsonl"):
    print(f"| {r['workers']} | {r['images']} | {r['jobs']} | {r['submit_to_results_ms'] / 1e3:.1f} s "
          f"| {r['images_per_second']:.0f} |")
PY
