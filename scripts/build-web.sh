#!/usr/bin/env bash
# Builds the browser client into web/dist (served by `unseen serve --web web/dist`): the client
# core compiled to wasm32 (`unseen-wasm`), its JavaScript bindings made by wasm-bindgen-cli, and
# the page's own files from web/src. Nothing is downloaded at run time: the wasm32 standard
# library comes from rustup and wasm-bindgen-cli from crates.io, at exactly the version of the
# wasm-bindgen crate in Cargo.lock (the bindings and the tool must match).
set -euo pipefail
cd "$(dirname "$0")/.."
tools="${UNSEEN_TOOLS:-$HOME/.cache/unseen/tools}"
target="${CARGO_TARGET_DIR:-$PWD/target}"
version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
[ -n "$version" ] || { echo "build-web: no wasm-bindgen in Cargo.lock" >&2; exit 1; }
if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi
bindgen="$tools/bin/wasm-bindgen"
if ! [ -x "$bindgen" ] || [ "$("$bindgen" --version | awk '{print $2}')" != "$version" ]; then
  echo "build-web: installing wasm-bindgen-cli $version from crates.io into $tools" >&2
  cargo install --quiet --force --root "$tools" wasm-bindgen-cli --version "=$version"
fi
cargo build --locked --release -p unseen-wasm --target wasm32-unknown-unknown
out=web/dist
rm -rf "$out.tmp"
mkdir -p "$out.tmp/pkg"
"$bindgen" --target web --no-typescript --out-dir "$out.tmp/pkg" \
  "$target/wasm32-unknown-unknown/release/unseen_wasm.wasm"
cp web/src/index.html web/src/*.js web/src/*.css "$out.tmp/"
rm -rf "$out"
mv "$out.tmp" "$out"
wasm="$out/pkg/unseen_wasm_bg.wasm"
echo "build-web: $out ready ($(wc -c <"$wasm") bytes of wasm, $(gzip -9c "$wasm" | wc -c) gzipped)" >&2
