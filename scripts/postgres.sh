#!/usr/bin/env bash
# A throwaway PostgreSQL server on 127.0.0.1 (temporary data directory, trust auth on loopback only), for the
# scale-out integration test and for trying the Postgres profile locally. Installs the Debian package if missing.
#   scripts/postgres.sh start PORT   -> prints "DATA_DIR URL", e.g. "/tmp/modelops-pg.x1 postgresql://modelops@127.0.0.1:PORT"
#   scripts/postgres.sh stop DATA_DIR
set -euo pipefail
find_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
BIN=$(find_bin)
if [ -z "$BIN" ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo -n"
  $SUDO apt-get install -y -q postgresql >&2 || { $SUDO apt-get update -q >&2 && $SUDO apt-get install -y -q postgresql >&2; }
  BIN=$(find_bin)
fi
[ -n "$BIN" ] || { echo "PostgreSQL server binaries not found and could not be installed" >&2; exit 3; }
case "${1:-}" in
  start)
    PORT=${2:?usage: postgres.sh start PORT}
    DIR=$(mktemp -d /tmp/modelops-pg.XXXXXX)
    chmod 755 "$DIR"
    [ "$(id -u)" = 0 ] && chown postgres "$DIR"
    as_postgres "$BIN/initdb" -D "$DIR/data" -U modelops --auth=trust --encoding=UTF8 >"$DIR/initdb.log"
    as_postgres "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
      -o "-c listen_addresses=127.0.0.1 -p $PORT -k $DIR" start >/dev/null
    echo "$DIR postgresql://modelops@127.0.0.1:$PORT"
    ;;
  stop)
    DIR=${2:?usage: postgres.sh stop DATA_DIR}
    as_postgres "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >/dev/null || true
    rm -rf "$DIR"
    ;;
  *) echo "usage: postgres.sh start PORT | stop DATA_DIR" >&2; exit 2 ;;
esac
