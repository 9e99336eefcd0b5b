#!/usr/bin/env bash
# The test command: set-up, a Python venv with the peers the interop tests run against
# (python-paillier and its pheutil; numpy and safetensors for PyTorch-layout weights;
# onnxruntime, the reference for imported ONNX models), then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="${PHE_VENV:-$PWD/target/phe-venv}"
if ! "$venv/bin/python" -c "import phe, click, numpy, safetensors, onnxruntime" >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check phe==1.5.0 click numpy safetensors \
    onnxruntime==1.32.0
fi
export UNSEEN_PYTHON="$venv/bin/python"
# Debian's packages the tests drive: Chromium (the browser client), PostgreSQL and HAProxy
# (the shared key store, the batch jobs and the cluster test)
need=()
{ [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } || need+=(chromium chromium-driver)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
log=$(mktemp)
# a throwaway PostgreSQL on loopback for the key store's and the job queue's tests (each makes
# its own database in it; the cluster test starts a PostgreSQL of its own)
pgdir=$(mktemp -d /tmp/unseen-pg.XXXXXX)
chmod 755 "$pgdir"
trap 'bash scripts/pg.sh stop "$pgdir/data" >/dev/null 2>&1 || true; rm -rf "$log" "$pgdir"' EXIT
UNSEEN_TEST_DATABASE_URL=$(bash scripts/pg.sh start "$pgdir/data")
export UNSEEN_TEST_DATABASE_URL UNSEEN_REQUIRE_DATABASE=1
cargo test --workspace --locked 2>&1 | tee "$log"
# The HTTP API against its own OpenAPI document (schemathesis, bounded examples per route).
cargo build --locked -p unseen
bash scripts/schemathesis.sh "${CARGO_TARGET_DIR:-target}/debug/unseen" | tee -a "$log"
# The Python package, built from the checkout (maturin, from PyPI, in pip's build environment)
# into the test venv, then its tests against a server they start on loopback.
"$venv/bin/python" -c "import pytest" >/dev/null 2>&1 ||
  "$venv/bin/pip" install --quiet --disable-pip-version-check pytest
"$venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps ./python
"$venv/bin/pip" install --quiet --disable-pip-version-check numpy
UNSEEN_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/unseen" "$venv/bin/python" -m pytest -q -rs python/tests 2>&1 |
  tee -a "$log" | tail -n 20
# The browser client: the client core's tests again under wasm32 in headless Chromium
# (wasm-bindgen-test; the same golden hashes as natively), then the page end to end
# (playwright-core from npm driving Debian's Chromium; no browser is downloaded).
tools="${UNSEEN_TOOLS:-$HOME/.cache/unseen/tools}"
CHROMEDRIVER=/usr/bin/chromedriver \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER="$tools/bin/wasm-bindgen-test-runner" \
  cargo test --locked --release -p unseen-client-core --target wasm32-unknown-unknown 2>&1 | tee -a "$log"
(cd web && npm ci --no-audit --no-fund --loglevel=error)
UNSEEN_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/unseen" node web/tests/e2e.mjs 2>&1 | tee -a "$log"
# One closing line for the whole workspace (cargo prints one per test binary).
# (cargo: "test result: ok. 6 passed; 0 failed; ..."; pytest: "10 passed, 1 failed in 3.2s";
# the browser test: "web e2e: ok (...)", one test)
awk '/^web e2e: ok/ { p += 1 }
     /^test result:/ || /^[0-9]+ (passed|failed).* in [0-9.]+s/ {
       for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
