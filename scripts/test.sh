#!/usr/bin/env bash
# The test command: set-up, a Python venv with python-paillier for the interop tests, then
# every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
venv="${PHE_VENV:-$PWD/target/phe-venv}"
if ! "$venv/bin/python" -c "import phe, click" >/dev/null 2>&1; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check phe==1.5.0 click
fi
export UNSEEN_PHE_PYTHON="$venv/bin/python"
cargo test --workspace --locked
