#!/usr/bin/env bash
# Prints the Cargo.lock of HEAD's tree as cargo resolves it in a clean clone (without crates that
# exist only in the working tree).
set -euo pipefail
top=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git -C "$top" archive HEAD | tar -x -C "$tmp"
cp "$top/Cargo.lock" "$tmp/Cargo.lock"
(cd "$tmp" && cargo metadata --format-version 1 --offline >/dev/null 2>&1 || cargo metadata --format-version 1 >/dev/null)
cat "$tmp/Cargo.lock"
