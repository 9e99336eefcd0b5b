#!/usr/bin/env bash
# One-time set-up of a fresh Debian machine that has the Rust toolchain and Python 3:
# m4 is needed to build the bundled GMP (big integers for Paillier).
set -euo pipefail
if ! command -v m4 >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq m4 >/dev/null
fi
