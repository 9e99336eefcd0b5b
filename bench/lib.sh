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
