# shellcheck shell=bash
# A throwaway PostgreSQL server for e2e tests (source after lib.sh): loopback, random port, a
# temporary directory, run as an unprivileged user ('postgres', else 'nobody', when root).
# start_postgres sets PG_URL (postgres://vouch@127.0.0.1:PORT/vouch), PG_PORT; stop_postgres /
# restart_postgres control it; it is stopped and removed on exit. Without a server: exit 77
# (ctest: skipped), or fail when VOUCH_REQUIRE_POSTGRES=1.
PG_DIR=""
pg_run() { if [[ -n "$PG_USER" ]]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi; }
pg_cleanup() {
  if [[ -n "$PG_DIR" ]]; then
    pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
  fi
  e2e_cleanup
}
trap pg_cleanup EXIT
start_postgres() {
  PG_BIN=${VOUCH_PG_BINDIR:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort | tail -1)}
  if [[ -z "$PG_BIN" || ! -x "$PG_BIN/pg_ctl" ]]; then
    [[ "${VOUCH_REQUIRE_POSTGRES:-0}" == 1 ]] && fail "PostgreSQL is required (Debian package postgresql)"
    echo "SKIP: no PostgreSQL server binaries"; exit 77
  fi
  PG_USER=""
  if [[ $(id -u) == 0 ]]; then
    if id postgres >/dev/null 2>&1; then PG_USER=postgres; else PG_USER=nobody; fi
  fi
  PG_DIR=$(mktemp -d /tmp/vouch-e2e-pg.XXXXXX)
  [[ -n "$PG_USER" ]] && chown "$PG_USER" "$PG_DIR"
  pg_run "$PG_BIN/initdb" -D "$PG_DIR/data" -U vouch --auth=trust --no-locale -E UTF8 --no-sync \
    >"$PG_DIR/initdb.log" 2>&1 || fail "initdb: $(tail -3 "$PG_DIR/initdb.log")"
  PG_PORT=$(free_port)
  pg_start_server || fail "PostgreSQL did not start: $(tail -5 "$PG_DIR/log")"
  pg_run "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U vouch vouch || fail "createdb"
  export PG_URL="postgres://vouch@127.0.0.1:$PG_PORT/vouch"  # for the sourcing test
}
pg_start_server() {
  pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 30 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c wal_init_zero=off" start >/dev/null
}
stop_postgres() { pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null; }
restart_postgres() { stop_postgres && pg_start_server; }
