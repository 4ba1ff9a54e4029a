#!/usr/bin/env bash
# Issue 16 benchmarks (BENCHMARKS.md, "Scale (issue 16)"), every comparison in one run on this
# machine: for each store (SQLite, then PostgreSQL), vouchd with two sim agents (nodes A and B):
#   1. issuance through agent A (bench_agent issue), CPU per certificate of vouchd, the agent and
#      PostgreSQL;
#   2. INST instances seeded in one transaction (copies of one real workload certificate and
#      instance row under distinct serials, half on node A, half on node B), vouchd restarted;
#   3. ROUNDS heartbeat rounds (every instance once per round, batches of BATCH over HB_CONNS
#      mTLS connections, MAC heartbeats): round 1 derives every instance's key (one ECDH each),
#      later rounds find it cached; CPU per heartbeat of vouchd, PostgreSQL and the generator;
#   4. vouchd's RSS: after its first start on the empty store, after the restart on the seeded
#      store, after the rounds (every key cached);
#   5. GET /api/v1/instances?limit=100 latency (first page, pages followed by cursor, status filters);
#   6. PostgreSQL only: a second vouchd joins, PG2_ROUNDS rounds with node A's batches to the first
#      and node B's to the second.
# Then the floor (bench_hbfloor: the route's JSON parse and one HMAC per heartbeat, on as many
# threads as cores) and a summary with the ratios and targets.
# Usage: bench/scale_bench.sh BUILD_DIR
# Environment (defaults): STORES="sqlite pg" INST=1000000 BATCH=100 HB_CONNS=4 ROUNDS=3 PG2_ROUNDS=3
#   REQUESTS=4000 CONNS=64 GETS=200 AUTH=mac (sig: ECDSA heartbeats) FLOOR_SECONDS=5
#   PG_COUNT=INST: heartbeats per PostgreSQL round (the first PG_COUNT/2 of each node's instances;
#   the store still holds INST), to keep the PostgreSQL rounds short when they are slow
#   HB_MAX_SECONDS=150: a round sends no batch after that long (the rest of the run then sends
#   90 % of what that round got through, so a slow store cannot take the quiet window)
#   SQLITE_ANALYZE=1: ANALYZE after seeding SQLite (vouchd never runs it, so by default its
#   planner has no statistics; PostgreSQL's are made as autovacuum would)
#   PERF_ROUNDS="STORE/LABEL ...": `perf record -g` of vouchd during those rounds (e.g. sqlite/hb1_r3)
#   PERF_OPTS="-F 499 -g": perf record's options (e.g. "-F 2000 --call-graph dwarf,16384")
#   OUT=DIR (kept: results.jsonl, summary.txt, logs; default /tmp/vouch-scale.<time>)
# Needs: sqlite3, curl, python3; PostgreSQL server binaries (Debian postgresql) for "pg".
set -uo pipefail
E2E=$(cd "$(dirname "$0")/../tests/e2e" && pwd)
source "$E2E/lib.sh"
source "$E2E/pg.sh"
B=$(cd "$1" && pwd)
STORES=${STORES:-sqlite pg} INST=${INST:-1000000} BATCH=${BATCH:-100} HB_CONNS=${HB_CONNS:-4}
ROUNDS=${ROUNDS:-3} PG2_ROUNDS=${PG2_ROUNDS:-3} REQUESTS=${REQUESTS:-4000} CONNS=${CONNS:-64}
GETS=${GETS:-200} AUTH=${AUTH:-mac} FLOOR_SECONDS=${FLOOR_SECONDS:-5} HB_MAX_SECONDS=${HB_MAX_SECONDS:-150}
OUT=${OUT:-/tmp/vouch-scale.$(date -u +%Y%m%dT%H%M%S)}
# shellcheck source=bench/scale_lib.sh
source "$(dirname "$0")/scale_lib.sh"
: >"$R"
log "scale bench: stores '$STORES', $INST instances, batches of $BATCH over $HB_CONNS connections, $ROUNDS rounds, auth $AUTH; load average $(load)"
rec run "" "inst=$INST" "batch=$BATCH" "hb_conns=$HB_CONNS" "auth=\"$AUTH\"" "requests=$REQUESTS" "conns=$CONNS" \
  "load=\"$(load)\"" "started=\"$(date -u +%FT%TZ)\"" "commit=\"$(git -C "$E2E/../.." rev-parse --short HEAD 2>/dev/null)\""

# Context switches (voluntary and not) of every thread of processes.
ctxsw() {
  local t=0 p f k v
  for p in "$@"; do
    for f in /proc/"$p"/task/*/status; do
      while read -r k v _; do
        [[ $k == voluntary_ctxt_switches: || $k == nonvoluntary_ctxt_switches: ]] && t=$((t + v))
      done <"$f" 2>/dev/null
    done
  done
  echo "$t"
}

# One heartbeat round: LABEL SEQ COUNT SERVERS(comma) CERTS KEYS VOUCHD_PIDS...
hb_round() {
  local label=$1 seq=$2 count=$3 servers=$4 cert=$5 key=$6; shift 6
  local pids=("$@") v0 v1 s0 s1 p0=0 p1=0 gen
  log "round $label (seq $seq): load average $(load)"
  local l0
  l0=$(load)
  "$GEN" heartbeats --server "$servers" --ca-file "$CA" --cert "$cert" --key "$key" --key-pem "$W/w/key.pem" \
    --instances "$INST" --batch "$BATCH" --threads "$HB_CONNS" --seq "$seq" --count "$count" --max-seconds "$HB_MAX_SECONDS" --auth "$AUTH" --hb-pub "$W/hb-pub.pem" \
    2>"$W/hb.err" >"$W/hb.out" &
  gen=$!
  until grep -q "clock started" "$W/hb.err" 2>/dev/null || ! kill -0 "$gen" 2>/dev/null; do sleep 0.02; done
  v0=$(ticks "${pids[@]}") s0=$(SYS_ONLY=1 ticks "${pids[@]}")
  [[ $STORE == pg ]] && p0=$(pg_ticks)
  local c0 c1
  c0=$(ctxsw "${pids[@]}")
  local perf=""
  if [[ " ${PERF_ROUNDS:-} " == *" $STORE/$label "* ]]; then  # e.g. PERF_ROUNDS="sqlite/hb1_r3 pg/hb1_r2"
    # shellcheck disable=SC2086  # PERF_OPTS is a list of options
    perf record ${PERF_OPTS:--F 499 -g} -o "$OUT/perf-$STORE-$label.data" -p "$(IFS=,; echo "${pids[*]}")" 2>/dev/null &
    perf=$!
  fi
  wait "$gen" || { cat "$W/hb.err"; fail "heartbeat round $label"; }
  [[ -n $perf ]] && { kill -INT "$perf"; wait "$perf"; }
  v1=$(ticks "${pids[@]}") s1=$(SYS_ONLY=1 ticks "${pids[@]}")
  [[ $STORE == pg ]] && p1=$(pg_ticks)
  c1=$(ctxsw "${pids[@]}")
  local line
  line=$(grep '^{' "$W/hb.out")
  cat "$W/hb.out"
  local n
  n=$(echo "$line" | jq_get '["accepted"]')
  LAST_ACCEPTED=$n LAST_TRUNCATED=$(echo "$line" | jq_get '["truncated"]')
  # CPU per heartbeat to 0.1 us (a round of 200,000 heartbeats at 10 us is 200 ticks of 10 ms).
  local vus sus pus
  vus=$(awk -v t=$((v1 - v0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.1f", t * 1e6 / hz / (n > 0 ? n : 1) }')
  sus=$(awk -v t=$((s1 - s0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.1f", t * 1e6 / hz / (n > 0 ? n : 1) }')
  pus=$(awk -v t=$((p1 - p0)) -v hz="$HZ" -v n="$n" 'BEGIN { printf "%.1f", t * 1e6 / hz / (n > 0 ? n : 1) }')
  rec "$label" "$line" "store=\"$STORE\"" "round_seq=$seq" "vouchd_us=$vus" "vouchd_sys_us=$sus" "pg_us=$pus" \
    "vouchd_ctxsw_per_batch=$(awk -v c=$((c1 - c0)) -v n="$n" -v b="$BATCH" 'BEGIN { printf "%.1f", c * b / (n > 0 ? n : 1) }')" \
    "load_before=\"$l0\"" "load_after=\"$(load)\""
  log "RESULT $STORE $label: $(echo "$line" | jq_get '["per_second"]' | cut -d. -f1)/s, vouchd $vus us and PostgreSQL $pus us of CPU per heartbeat; load average $(load)"
}

# After a round cut short by HB_MAX_SECONDS: later rounds send 90 % of what it got through (per
# node, in batches), so that they stay within the instances whose keys are cached.
shrink_count() {
  if [[ $LAST_TRUNCATED == true ]]; then
    count=$((LAST_ACCEPTED * 9 / 10 / (2 * BATCH) * (2 * BATCH)))
    log "round cut short after $HB_MAX_SECONDS s: the next rounds send $count heartbeats"
  fi
}

run_store() {
  setup_manager "$1" 2
  local v1=$V1

  # 1. Issuance through agent A.
  log "$STORE issuance: $REQUESTS certificates over $CONNS connections; load average $(load)"
  local l0 g a0 a1 c0 c1 q0=0 q1=0
  l0=$(load)
  "$GEN" issue --socket "$W/a0.sock" --requests "$REQUESTS" --threads "$CONNS" --mrenclave "$MRE" --mrsigner "$MRS" \
    --dns web.example.com 2>"$W/gen.err" >"$W/issue.out" &
  g=$!
  until grep -q "clock started" "$W/gen.err" 2>/dev/null || ! kill -0 "$g" 2>/dev/null; do sleep 0.01; done
  c0=$(ticks "$v1") a0=$(ticks "${APIDS[0]}")
  [[ $STORE == pg ]] && q0=$(pg_ticks)
  wait "$g" || { cat "$W/gen.err"; fail "issuance"; }
  c1=$(ticks "$v1") a1=$(ticks "${APIDS[0]}")
  [[ $STORE == pg ]] && q1=$(pg_ticks)
  cat "$W/issue.out"
  local us=$((1000000 / HZ))
  rec issue "$(cat "$W/issue.out")" "store=\"$STORE\"" "vouchd_us=$(( (c1 - c0) * us / REQUESTS ))" \
    "agent_us=$(( (a1 - a0) * us / REQUESTS ))" "pg_us=$(( (q1 - q0) * us / REQUESTS ))" "load_before=\"$l0\"" "load_after=\"$(load)\""
  log "RESULT $STORE issuance: $(jq_get '["per_second"]' <"$W/issue.out" | cut -d. -f1)/s; CPU per certificate vouchd $(( (c1 - c0) * us / REQUESTS )) us, agent $(( (a1 - a0) * us / REQUESTS )) us, PostgreSQL $(( (q1 - q0) * us / REQUESTS )) us; load average $(load)"
  log "$STORE certificates recorded: $(sql "SELECT COUNT(*) FROM certificates WHERE kind = 'workload'")"

  # 2. Seed INST instances from one real workload certificate, restart vouchd.
  seed_instances "${NODES[0]}" "${NODES[1]}"
  v1=$V1
  local rss_empty=$RSS_EMPTY rss_start=$RSS_START

  # 3. Heartbeat rounds on one vouchd: node A's and node B's instances, both to it.
  local certs="$W/a0/node-cert.pem,$W/a1/node-cert.pem" keys="$W/a0/node-key.pem,$W/a1/node-key.pem" r count=$INST cached=0
  [[ $STORE == pg ]] && count=${PG_COUNT:-$INST}
  for r in $(seq 1 "$ROUNDS"); do
    hb_round "hb1_r$r" "$r" "$count" "$U1,$U1" "$certs" "$keys" "$v1"
    ((LAST_ACCEPTED > cached)) && cached=$LAST_ACCEPTED
    shrink_count
  done
  # vouchd's own count of what it accepted and refused (GET /metrics, loopback).
  curl -fsS --cacert "$CA" "$U1/metrics" | grep -E '^vouch_heartbeat(s_accepted|s_rejected|_key_cache)' | grep -v ' 0$' \
    | sed "s/^/[$STORE metrics] /"
  local rss_after
  rss_after=$(rss_kb "$v1")
  log "$STORE vouchd RSS parts (kB): $(rss_parts "$v1")"
  rec rss "" "store=\"$STORE\"" "empty_kb=$rss_empty" "seeded_start_kb=$rss_start" "after_kb=$rss_after" \
    "cached=$cached" "parts=\"$(rss_parts "$v1")\"" "bytes_per_instance=$(( (rss_after - rss_empty) * 1024 / cached ))" \
    "bytes_per_instance_vs_seeded_start=$(( (rss_after - rss_start) * 1024 / cached ))" "load=\"$(load)\""
  log "RESULT $STORE vouchd RSS: empty $rss_empty kB, seeded start $rss_start kB, after $ROUNDS rounds $rss_after kB:" \
    "$(( (rss_after - rss_empty) * 1024 / cached )) bytes per instance (of $cached heartbeating) above the empty server; load average $(load)"
  log "$STORE instances with last_seq = $ROUNDS: $(sql "SELECT COUNT(*) FROM instances WHERE last_seq = $ROUNDS") (of $count sent per round)"

  # 5. Instance list (and the dashboard's counts) latency with INST instances.
  local q
  for q in "?limit=100" "?limit=100&walk" "?status=running&limit=100" "?status=stopped&limit=100" \
    "?status=unresponsive&limit=100" "/counts"; do
    local walk=0 path=${q%&walk}
    [[ $q == *"&walk" ]] && walk=1
    l0=$(load)
    "$GEN" get --url "$U1/api/v1/instances$path" --ca-file "$CA" --token "$TOKEN" --requests "$GETS" --walk "$walk" \
      >"$W/get.out" 2>"$W/get.err" || { cat "$W/get.err"; log "GET $q failed"; }
    cat "$W/get.out"
    [[ -s $W/get.out ]] && rec "get" "$(cat "$W/get.out")" "store=\"$STORE\"" "query=\"$q\"" "load_before=\"$l0\"" "load_after=\"$(load)\""
    log "RESULT $STORE GET /api/v1/instances$q: p50 $(jq_get '["latency_ms"]["p50"]' <"$W/get.out") ms, p99 $(jq_get '["latency_ms"]["p99"]' <"$W/get.out") ms; load average $(load)"
  done

  # 6. A second vouchd on the same PostgreSQL: node A's instances to the first, node B's to the second.
  if [[ $STORE == pg ]]; then
    local p2 v2
    p2=$(free_port)
    "$VOUCHD" join --data-dir "$W/m2" --peer "$U1" --ca-file "$CA" --store "$PG_URL" --listen "127.0.0.1:$p2" \
      --tee sim --sim "$D1/sim" >/dev/null || fail "vouchd join"
    start_vouchd "$W/m2" "$p2" "$OUT/vouchd-pg2.log"
    v2=$VP
    for r in $(seq 1 "$PG2_ROUNDS"); do
      hb_round "hb2_r$r" "$((ROUNDS + r))" "$count" "$U1,https://127.0.0.1:$p2" "$certs" "$keys" "$v1" "$v2"
      shrink_count
    done
    log "RESULT pg two vouchd: RSS $(rss_kb "$v1") + $(rss_kb "$v2") kB"
    curl -fsS --cacert "$CA" "https://127.0.0.1:$p2/metrics" | grep -E '^vouch_heartbeat(s_accepted|s_rejected|_key_cache)' \
      | grep -v ' 0$' | sed "s/^/[pg second vouchd metrics] /"
    stop_pids "$v2"
  fi
  stop_pids "$v1" "${APIDS[@]}"
  [[ $STORE == pg ]] && { stop_postgres; rm -rf "$PG_DIR"; PG_DIR=""; }
  return 0
}

for s in $STORES; do run_store "$s"; done

# The floor, same run: the route's JSON parse and one HMAC per heartbeat, all cores, nothing else.
log "floor: load average $(load)"
"$FLOOR" --instances "$INST" --batch "$BATCH" --seconds "$FLOOR_SECONDS" >"$E2E_TMP/floor.out" || fail "floor"
cat "$E2E_TMP/floor.out"
rec floor "$(cat "$E2E_TMP/floor.out")" "load_after=\"$(load)\""
log "RESULT floor (JSON parse + HMAC, $(nproc) threads): $(jq_get '["per_second"]' <"$E2E_TMP/floor.out" | cut -d. -f1)/s; load average $(load)"

# What one durable commit costs on the stores' disk (same file system): 4 KiB written + fsync,
# 300 times. A batch is answered after its group's commit, so with HB_CONNS batches in flight
# HB_CONNS * BATCH / (commit latency) bounds the heartbeat rate whatever the CPU does.
python3 - "$E2E_TMP/fsync.probe" >"$E2E_TMP/fsync.out" <<'PY'
import json, os, sys, time
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o600)
lat = []
for i in range(300):
    os.pwrite(fd, os.urandom(4096), (i % 64) * 4096)
    t = time.perf_counter()
    os.fsync(fd)
    lat.append((time.perf_counter() - t) * 1000)
lat.sort()
print(json.dumps({"fsync_ms": {"p50": lat[150], "p99": lat[296], "max": lat[-1]}}))
PY
cat "$E2E_TMP/fsync.out"
rec fsync "$(cat "$E2E_TMP/fsync.out")" "load=\"$(load)\""

python3 "$(dirname "$0")/scale_summary.py" "$R" | tee "$OUT/summary.txt"
log "results in $OUT"
