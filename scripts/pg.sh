#!/usr/bin/env bash
# A throwaway PostgreSQL on loopback for the tests and the cluster benchmarks, from Debian's
# packages (installed here when missing).
#
#   scripts/pg.sh start DIR [PORT]   initdb DIR (once), start it, print its URL
#   scripts/pg.sh stop DIR           fast shutdown
#   scripts/pg.sh restart DIR        stop, then start on the same port
#
# PostgreSQL refuses to run as root: as root, DIR belongs to the `postgres` user the package
# creates and the server runs as that user. Only loopback connections are accepted (trust
# authentication, a random database name is not needed: the cluster is private to DIR).
set -euo pipefail
cmd="${1:?usage: scripts/pg.sh start|stop|restart DIR [PORT]}"
dir="${2:?usage: scripts/pg.sh start|stop|restart DIR [PORT]}"
bin="${UNSEEN_PG_BIN:-}"
if [ -z "$bin" ]; then
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
fi
if [ -z "$bin" ] || ! [ -x "$bin/initdb" ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq postgresql >/dev/null
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
start() {
  local port="$1"
  mkdir -p "$dir"
  [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
  if ! [ -f "$dir/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$dir" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  echo "$port" >"$dir/unseen.port"
  as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null
  echo "postgres://postgres@127.0.0.1:$port/postgres"
}
stop() {
  as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
}
case "$cmd" in
  start) start "${3:-$(free_port)}" ;;
  stop) stop ;;
  restart)
    stop
    start "$(cat "$dir/unseen.port")" >/dev/null
    ;;
  *) echo "usage: scripts/pg.sh start|stop|restart DIR [PORT]" >&2; exit 2 ;;
esac
