#!/usr/bin/env bash
# API conformance: runs schemathesis against `unseen serve`'s own /openapi.json, with a bounded
# number of examples per route, and fails on any 5xx, any status the document does not list for
# the route, and any response whose content type or body does not match the document.
#
#   bash scripts/schemathesis.sh [PATH/TO/unseen]     # default: ${CARGO_TARGET_DIR:-target}/debug/unseen
#
# The server runs on a free loopback port, with API tokens (one admin token that schemathesis
# sends), in a temporary data dir, serving the salary model (trained here from
# data/employee/employee_data.csv) and ciphernet-mnist. Before schemathesis, a real client
# predicts and classifies one image through it, so the happy paths are known to work, and the
# CKKS keys it registers give schemathesis a real key id to send with its random ciphertexts.
#
# Environment:
#   UNSEEN_CI_CACHE            the venv lives in $UNSEEN_CI_CACHE/schema-venv (default /var/cache/unseen-ci)
#   SCHEMATHESIS_MAX_EXAMPLES  examples per operation and phase (default 50; about 15 s here)
#   SCHEMATHESIS_SEED          default 1, so CI runs are reproducible; "random" for a new one each run
#   SCHEMATHESIS_WORKERS       default 1: with worker threads, Python 3.11's ast.parse (used by
#                              Hypothesis) can fail spuriously (CPython gh-106905)
#   SCHEMATHESIS_REPORT_DIR    when set, reports go there (SCHEMATHESIS_REPORTS, default junit;
#                              e.g. junit,har)
set -euo pipefail

SCHEMATHESIS_VERSION=4.32.5

bin="${1:-${CARGO_TARGET_DIR:-target}/debug/unseen}"
if [[ ! -x "$bin" ]]; then
  echo "schemathesis.sh: no unseen binary at '$bin' (build it with: cargo build -p unseen)" >&2
  exit 2
fi
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
report_dir="${SCHEMATHESIS_REPORT_DIR:-}"
if [[ -n "$report_dir" ]]; then
  mkdir -p "$report_dir"
  report_dir="$(cd "$report_dir" && pwd)"
fi
cd "$(dirname "$0")/.."
started=$SECONDS

cache="${UNSEEN_CI_CACHE:-/var/cache/unseen-ci}"
venv="$cache/schema-venv"
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qF "$SCHEMATHESIS_VERSION"; then
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION" ||
    { echo "schemathesis.sh: could not install schemathesis==$SCHEMATHESIS_VERSION into $venv" >&2; exit 1; }
fi
py="$venv/bin/python"

work="$(mktemp -d "${TMPDIR:-/tmp}/unseen-schemathesis.XXXXXX")"
server_pid=""
runner_pid=""
cleanup() {
  for pid in $runner_pid $server_pid; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail() {
  echo "schemathesis.sh: $*" >&2
  if [[ -f "$work/serve.log" ]]; then
    echo "--- server log (last 40 lines) ---" >&2
    tail -n 40 "$work/serve.log" >&2
  fi
  exit 1
}

# Fixtures: the salary model, a Paillier client key, CKKS client keys for ciphernet-mnist, a token.
"$bin" train linear --csv data/employee/employee_data.csv --target salary \
  --out "$work/salary.json" >/dev/null
"$bin" keygen --out "$work/paillier.json" >/dev/null
"$bin" keygen ckks --model models/ciphernet-mnist --out "$work/ckks" >/dev/null
"$bin" token new --tenant schemathesis --scopes admin >"$work/token.json"
token="$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["token"])' "$work/token.json")"
"$py" -c 'import json, sys; json.dump([json.load(open(sys.argv[1]))["entry"]], open(sys.argv[2], "w"))' \
  "$work/token.json" "$work/tokens.json"

# The server, on a port the kernel picks (it prints the address it got).
# (no rate limit: schemathesis sends far more than 100 requests a second)
# With UNSEEN_TEST_DATABASE_URL (scripts/test.sh starts a throwaway PostgreSQL) the keys and
# the batch jobs go to that database, so the job routes are exercised too.
store=()
[[ -z "${UNSEEN_TEST_DATABASE_URL:-}" ]] || store=(--key-store "$UNSEEN_TEST_DATABASE_URL")
"$bin" serve --model "$work/salary.json" --model models/ciphernet-mnist \
  --http 127.0.0.1:0 --data-dir "$work/data" --tokens "$work/tokens.json" "${store[@]}" \
  --idle-timeout 10 --rate-limit 0 >"$work/serve.log" 2>&1 &
server_pid=$!

base=""
for _ in $(seq 1 600); do
  kill -0 "$server_pid" 2>/dev/null || fail "unseen serve exited early"
  base="$(sed -n 's|^unseen: HTTP API on \(http://[0-9.:]*\) .*|\1|p' "$work/serve.log")"
  [[ -n "$base" ]] && break
  sleep 0.1
done
[[ -n "$base" ]] || fail "unseen serve did not report its address within 60 s"

# http URL [TOKEN [FILE]]: GET (POST of FILE when given); prints "STATUS BODY".
http() {
  "$py" - "$@" <<'EOF'
import sys, urllib.request, urllib.error
url, token = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else ""
body = open(sys.argv[3], "rb").read() if len(sys.argv) > 3 else None
req = urllib.request.Request(url, data=body, method="POST" if body is not None else "GET")
if token:
    req.add_header("Authorization", "Bearer " + token)
if body is not None:
    req.add_header("Content-Type", "application/octet-stream")
try:
    with urllib.request.urlopen(req, timeout=60) as r:
        status, text = r.status, r.read()
except urllib.error.HTTPError as e:
    status, text = e.code, e.read()
except OSError as e:
    status, text = 0, str(e).encode()
sys.stdout.write(f"{status} {text.decode('utf-8', 'replace')}")
EOF
}

ready=""
for _ in $(seq 1 300); do
  if [[ "$(http "$base/healthz")" == 200* ]]; then ready=1; break; fi
  kill -0 "$server_pid" 2>/dev/null || fail "unseen serve exited early"
  sleep 0.2
done
[[ -n "$ready" ]] || fail "$base/healthz did not answer 200 within 60 s"
echo "unseen serve on $base ($(( SECONDS - started )) s)"

# Smoke: the tokens are enforced, and real clients get real answers (so schemathesis is not
# only probing the refusals). The CKKS keys registered here give it a real key id.
reply="$(http "$base/v1/models")"
[[ "$reply" == 401* ]] || fail "GET /v1/models without a token: expected 401, got: ${reply:0:200}"
reply="$(http "$base/v1/models" "$token")"
[[ "$reply" == 200* ]] || fail "GET /v1/models with the token: expected 200, got: ${reply:0:200}"
reply="$(http "$base/v1/keys" "$token" "$work/ckks/eval.keys")"
[[ "$reply" == 201* ]] || fail "POST /v1/keys with real keys: expected 201, got: ${reply:0:300}"
# (schemathesis cannot make real keys, so this 201 is checked against the document here)
http "$base/openapi.json" >"$work/openapi.reply"
key_id="$("$py" - "$work/openapi.reply" "$reply" <<'EOF'
import json, sys, jsonschema_rs
doc = json.loads(open(sys.argv[1]).read().split(" ", 1)[1])
reply = json.loads(sys.argv[2].split(" ", 1)[1])
schema = {"components": doc["components"], "$ref": "#/components/schemas/KeysRegistered"}
for error in jsonschema_rs.validator_for(schema).iter_errors(reply):
    sys.exit(f"POST /v1/keys: the 201 reply violates KeysRegistered: {error}")
print(reply["key_id"])
EOF
)" || fail "POST /v1/keys: see above"
export UNSEEN_TOKEN="$token"
"$bin" predict --server "$base" --keys "$work/paillier.json" --features 24,4,6,1 --json >/dev/null ||
  fail "unseen predict against the server failed"
"$bin" predict-image --server "$base" --keys "$work/ckks" --mnist-index 0 --json >/dev/null ||
  fail "unseen predict-image against the server failed"
if [[ ${#store[@]} -gt 0 ]]; then
  "$bin" predict-image --server "$base" --keys "$work/ckks" --mnist-index 0 --batch 2 --jobs \
    --json >/dev/null || fail "unseen predict-image --jobs against the server failed"
fi
unset UNSEEN_TOKEN
modulus="$("$py" -c 'import json, sys; print(json.load(open(sys.argv[1]))["public_key"]["n"])' \
  "$work/paillier.json" 2>/dev/null || true)"
[[ "$modulus" =~ ^[0-9]+$ ]] || fail "could not read n from the Paillier key file"

# Real names, key ids and a real modulus, mixed with generated values, so that generated
# requests reach the models and the decoders instead of stopping at 404 or at the key checks.
cat >"$work/schemathesis.toml" <<EOF
headers = { Authorization = "Bearer $token" }

[dictionaries.models]
values = ["salary", "ciphernet-mnist"]
[dictionaries.linear]
values = ["salary"]
[dictionaries.cnn]
values = ["ciphernet-mnist"]
[dictionaries.key_ids]
values = ["$key_id", "$(printf '0%.0s' $(seq 64))"]
[dictionaries.moduli]
values = ["$modulus"]

[[operations]]
include-operation-id = "getModel"
parameters = { "path.name" = { dictionary = "models", probability = 0.6 } }

[[operations]]
include-operation-id = "predict"
parameters = { "path.name" = { dictionary = "linear", probability = 0.8 }, "body.public_key.n" = { dictionary = "moduli", probability = 0.7 } }

[[operations]]
include-operation-id = "submitJob"
parameters = { "query.model" = { dictionary = "cnn", probability = 0.8 }, "header.unseen-key-id" = { dictionary = "key_ids", probability = 0.8 } }

[[operations]]
include-operation-id = "infer"
parameters = { "path.name" = { dictionary = "cnn", probability = 0.8 }, "header.unseen-key-id" = { dictionary = "key_ids", probability = 0.8 } }
EOF

seed="${SCHEMATHESIS_SEED:-1}"
args=(
  run "$base/openapi.json"
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
  --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-50}"
  --workers "${SCHEMATHESIS_WORKERS:-1}"
  --request-timeout 30
  --generation-database none
  --suppress-health-check all # Hypothesis's speed and filter heuristics are not what this tests
  --no-color
)
[[ "$seed" == random ]] || args+=(--seed "$seed")
[[ -z "$report_dir" ]] || args+=(--report "${SCHEMATHESIS_REPORTS:-junit}" --report-dir "$report_dir")

# In the background so that a signal to this script is acted on at once; with a hard stop well
# above the usual run time, so that a hung server cannot hold CI for ever.
(cd "$work" && exec timeout 900 "$venv/bin/schemathesis" --config-file "$work/schemathesis.toml" "${args[@]}") &
runner_pid=$!
status=0
wait "$runner_pid" || status=$?
runner_pid=""
kill -0 "$server_pid" 2>/dev/null || fail "unseen serve died during the run"
# What the server saw (its own /metrics): requests by route and status, refusals by error code.
http "$base/metrics" "$token" >"$work/metrics.txt" || true
echo "requests served, by route and status:"
grep -E '^unseen_http_requests_total\{' "$work/metrics.txt" | sed 's/^unseen_http_requests_total/  /' | sort || true
echo "refusals, by error code:"
grep -E '^unseen_http_rejections_total\{' "$work/metrics.txt" | sed 's/^unseen_http_rejections_total/  /' | sort || true
if [[ $status -ne 0 ]]; then
  fail "schemathesis found problems (exit $status)"
fi
echo "schemathesis: passed in $(( SECONDS - started )) s"
