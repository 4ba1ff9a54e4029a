#!/usr/bin/env bash
# Where PostgreSQL's CPU goes (BENCHMARKS.md, "PostgreSQL costs (issue 16)"): scale_bench.sh's
# PostgreSQL part (issuance through agent A, INST instances seeded, heartbeat rounds, instance
# lists) on a throwaway server with pg_stat_statements, printing after each part, per operation:
# every statement's calls, execution and planning time, rows, shared buffers hit / read from the
# OS / dirtied, WAL records, full-page images and bytes; the tables' inserts, updates and HOT
# updates; and the CPU of vouchd and of the PostgreSQL server (/proc, as scale_bench.sh). Measures
# CPU per operation, so it is meaningful on a busy machine; rates are not.
# Usage: bench/pg_costs.sh BUILD_DIR
# Environment (defaults): INST=1000000 PG_COUNT=400000 (heartbeats per round) ROUNDS=3 REQUESTS=2000
#   GETS=200 HB_MAX_SECONDS=150 PG_OPTIONS="" (extra server settings, e.g. "-c shared_buffers=1GB")
#   OUT=DIR (stats.txt, the server's log with statements over 20 ms and autovacuum runs)
set -uo pipefail
E2E=$(cd "$(dirname "$0")/../tests/e2e" && pwd)
source "$E2E/lib.sh"
source "$E2E/pg.sh"
# pg.sh's server, with pg_stat_statements and the slow-statement log.
pg_start_server() {
  pg_run "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 30 \
    -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c wal_init_zero=off -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track_planning=on -c pg_stat_statements.max=2000 -c log_min_duration_statement=20 -c log_autovacuum_min_duration=0 ${PG_OPTIONS:-}" \
    start >/dev/null
}
B=$(cd "$1" && pwd)
INST=${INST:-1000000} PG_COUNT=${PG_COUNT:-400000} ROUNDS=${ROUNDS:-3} REQUESTS=${REQUESTS:-2000} GETS=${GETS:-200}
HB_MAX_SECONDS=${HB_MAX_SECONDS:-150} BATCH=100 HB_CONNS=4 CONNS=64 AUTH=mac
OUT=${OUT:-/tmp/vouch-pgcosts.$(date -u +%Y%m%dT%H%M%S)}
# shellcheck source=bench/scale_lib.sh
source "$(dirname "$0")/scale_lib.sh"
: >"$R"
psqlq() { psql -X -q -P pager=off "$PG_URL" "$@"; }
stats() {  # LABEL N: per-statement figures of the part just measured, per operation
  local n=$2
  {
    echo "=== $1 (per operation: $n) ==="
    psqlq -c "SELECT calls, round((total_exec_time*1000/$n)::numeric,1) AS exec_us_per_op,
      round(mean_exec_time::numeric*1000,1) AS mean_us, round((total_plan_time*1000/$n)::numeric,1) AS plan_us_per_op,
      plans, rows, shared_blks_hit AS hit, shared_blks_read AS rd, shared_blks_dirtied AS dirt, wal_records AS walrec,
      wal_fpi, wal_bytes, left(regexp_replace(query, '\s+', ' ', 'g'), 160) AS query
      FROM pg_stat_statements ORDER BY total_exec_time + total_plan_time DESC LIMIT 25"
    psqlq -c "SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd, pg_size_pretty(pg_relation_size(relid)) AS heap,
      pg_size_pretty(pg_indexes_size(relid)) AS indexes FROM pg_stat_user_tables WHERE n_tup_ins + n_tup_upd > 0 ORDER BY relname"
    psqlq -c "SELECT sum(calls) AS calls, round(sum(calls)::numeric/$n, 2) AS calls_per_op, sum(wal_bytes) AS wal_bytes,
      round(sum(wal_bytes)/$n) AS wal_bytes_per_op FROM pg_stat_statements"
  } | tee -a "$OUT/stats.txt"
}
reset() { psqlq -c "SELECT pg_stat_statements_reset()" -c "SELECT pg_stat_reset()" >/dev/null; }
us=$((1000000 / HZ))
setup_manager pg 2
psqlq -c "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null
log "issuance: $REQUESTS certificates over $CONNS connections; load average $(load)"
reset
"$GEN" issue --socket "$W/a0.sock" --requests "$REQUESTS" --threads "$CONNS" --mrenclave "$MRE" --mrsigner "$MRS" \
  --dns web.example.com 2>"$W/gen.err" >"$W/issue.out" &
g=$!
until grep -q "clock started" "$W/gen.err" 2>/dev/null || ! kill -0 "$g" 2>/dev/null; do sleep 0.01; done
c0=$(ticks "$V1") q0=$(pg_ticks)
wait "$g" || { cat "$W/gen.err"; fail "issuance"; }
c1=$(ticks "$V1") q1=$(pg_ticks)
log "RESULT issuance: CPU per certificate vouchd $(((c1 - c0) * us / REQUESTS)) us, PostgreSQL $(((q1 - q0) * us / REQUESTS)) us; load average $(load)" | tee -a "$OUT/stats.txt"
stats issuance "$REQUESTS"
seed_instances "${NODES[0]}" "${NODES[1]}"
certs="$W/a0/node-cert.pem,$W/a1/node-cert.pem" keys="$W/a0/node-key.pem,$W/a1/node-key.pem"
for r in $(seq 1 "$ROUNDS"); do
  reset
  "$GEN" heartbeats --server "$U1,$U1" --ca-file "$CA" --cert "$certs" --key "$keys" --key-pem "$W/w/key.pem" \
    --instances "$INST" --batch "$BATCH" --threads "$HB_CONNS" --seq "$r" --count "$PG_COUNT" \
    --max-seconds "$HB_MAX_SECONDS" --auth "$AUTH" --hb-pub "$W/hb-pub.pem" 2>"$W/hb.err" >"$W/hb.out" &
  g=$!
  until grep -q "clock started" "$W/hb.err" 2>/dev/null || ! kill -0 "$g" 2>/dev/null; do sleep 0.02; done
  v0=$(ticks "$V1") p0=$(pg_ticks)
  wait "$g" || { cat "$W/hb.err"; fail "heartbeat round $r"; }
  v1=$(ticks "$V1") p1=$(pg_ticks)
  n=$(grep '^{' "$W/hb.out" | jq_get '["accepted"]')
  log "RESULT heartbeat round $r: $n accepted; CPU per heartbeat vouchd $(((v1 - v0) * us * 1000 / n)) ns, PostgreSQL $(((p1 - p0) * us * 1000 / n)) ns; load average $(load)" | tee -a "$OUT/stats.txt"
  stats "heartbeat round $r" "$n"
done
for q in "?status=running&limit=100" "?limit=100" "?status=unresponsive&limit=100"; do
  reset
  "$GEN" get --url "$U1/api/v1/instances$q" --ca-file "$CA" --token "$TOKEN" --requests "$GETS" --walk 0 \
    >"$W/get.out" 2>"$W/get.err" || cat "$W/get.err"
  log "RESULT GET $q: $(cat "$W/get.out"); load average $(load)" | tee -a "$OUT/stats.txt"
  stats "GET $q" "$GETS"
done
cp "$PG_DIR/log" "$OUT/postgres.log"
stop_pids "$V1" "${APIDS[@]}"
log "results in $OUT"
