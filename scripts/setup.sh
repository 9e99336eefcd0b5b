#!/usr/bin/env bash
# One-time set-up of a fresh Debian machine that has the Rust toolchain and Python 3: m4 is
# needed to build the bundled GMP (big integers for Paillier); then the browser client is built
# into web/dist (scripts/build-web.sh: the wasm32 target from rustup, wasm-bindgen-cli from
# crates.io), so `unseen serve --web web/dist` can serve it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v m4 >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq m4 >/dev/null
fi
bash scripts/build-web.sh
