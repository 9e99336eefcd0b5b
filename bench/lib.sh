# Shared by the bench scripts (sourced).

# Prints the address (host:port) that `unseen serve --http 127.0.0.1:0` logged to LOG, waiting
# up to TENTHS tenths of a second (default 100); prints the log and fails if none came.
server_addr() {
  local log=$1 tenths=${2:-100} addr=
  for _ in $(seq 1 "$tenths"); do
    addr=$(sed -n 's/.*HTTP API on http:\/\/\([^ ]*\).*/\1/p' "$log" | head -1)
    [ -n "$addr" ] && { echo "$addr"; return 0; }
    sleep 0.1
  done
  cat "$log" >&2
  return 1
}

# For the scripts that compare builds' servers: `bins` (the binaries in $BIN, or the release
# build, made here), `first` (the first of them), a scratch folder `work` and a server `pid`,
# both cleaned up on exit.
server_builds() {
  bins=${BIN:-target/release/unseen}
  if [ -z "${BIN:-}" ]; then
    cargo build --release --quiet -p unseen
  fi
  first=${bins%% *}
  work=$(mktemp -d)
  pid=
  trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
}
