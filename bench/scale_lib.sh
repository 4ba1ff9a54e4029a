# shellcheck shell=bash
# Shared by bench/scale_bench.sh and bench/soak.sh (source after tests/e2e/lib.sh and pg.sh, with
# B (the build dir) and OUT (the results dir) set): a dev vouchd on SQLite or a throwaway
# PostgreSQL with sim agents, instances seeded in bulk, CPU and memory readings.
# VOUCHD_BIN: another vouchd binary (e.g. a saved copy of the one before a change) in the same run shape.
VOUCHD=${VOUCHD_BIN:-$B/apps/vouchd/vouchd} AGENT=$B/apps/vouch-agent/vouch-agent GEN=$B/bench/bench_agent FLOOR=$B/bench/bench_hbfloor
for x in "$VOUCHD" "$AGENT" "$GEN" "$FLOOR"; do [[ -x $x ]] || fail "missing $x (build it)"; done
mkdir -p "$OUT"
R=$OUT/results.jsonl
# shellcheck disable=SC2034  # used by the sourcing scripts
HZ=$(getconf CLK_TCK)
MRE=$(printf 'a%.0s' {1..64}) MRS=$(printf 'b%.0s' {1..64})
printf 'bench-password-123\n' >"$E2E_TMP/pw"
load() { cut -d' ' -f1-3 /proc/loadavg; }
log() { echo "[$(date -u +%H:%M:%S)] $*"; }
# rec LABEL JSON [KEY=VALUE...]: one line of results.jsonl (values parsed as JSON when they are).
rec() {
  python3 - "$@" >>"$R" <<'PY'
import json, sys
d = json.loads(sys.argv[2]) if sys.argv[2].strip() else {}
d["label"] = sys.argv[1]
for kv in sys.argv[3:]:
    k, v = kv.split("=", 1)
    try:
        d[k] = json.loads(v)
    except ValueError:
        d[k] = v
print(json.dumps(d))
PY
}
# CPU ticks (user + system) of processes (names without spaces); with SYS_ONLY=1 the system
# (kernel) part only. Builtins only, so that reading it takes no time out of a short timed part.
ticks() {
  local t=0 p f
  for p in "$@"; do
    read -ra f <"/proc/$p/stat" 2>/dev/null || continue
    if [[ ${SYS_ONLY:-0} == 1 ]]; then t=$((t + f[14])); else t=$((t + f[13] + f[14])); fi
  done
  echo "$t"
}
# CPU ticks of the PostgreSQL server: the postmaster, its live children, and those it has reaped.
pg_ticks() {
  python3 - "$(head -1 "$PG_DIR/data/postmaster.pid")" <<'PY'
import os, sys
pm = sys.argv[1]
t = 0
for p in os.listdir("/proc"):
    if not p.isdigit():
        continue
    try:
        f = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        continue
    if p == pm:
        t += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    elif f[1] == pm:
        t += int(f[11]) + int(f[12])
print(t)
PY
}
rss_parts() { awk '/^(RssAnon|RssFile|RssShmem):/ {sub(":", "", $1); printf "%s%s=%s", (n++ ? " " : ""), $1, $2} END {print " kB"}' "/proc/$1/status"; }
rss_kb() { local t=0 p; for p in "$@"; do t=$((t + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done; echo "$t"; }

start_vouchd() {  # DIR PORT LOG: sets VP (its pid)
  "$VOUCHD" serve --data-dir "$1" --allow-cluster-join >>"$3" 2>&1 &
  VP=$!
  E2E_PIDS+=("$VP")
  wait_healthy "https://127.0.0.1:$2" "$CA" "$VP" || { tail -5 "$3"; fail "vouchd did not start"; }
}
stop_pids() { local p; for p in "$@"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; }
sql() {  # QUERY (the current store)
  if [[ $STORE == sqlite ]]; then sqlite3 "$DB" "$1"; else psql -tA "$PG_URL" -c "$1"; fi
}
api() {  # METHOD PATH [JSON]
  curl -fsS --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -X "$1" "$U1$2" ${3:+-d "$3"}
}

# setup_manager STORE NAGENTS: vouchd (init --dev; PostgreSQL started for "pg"), app "web" with
# an approved build, NAGENTS sim agents. Sets STORE W D1 CA DB U1 P1 V1 TOKEN APIDS NODES RSS_EMPTY.
setup_manager() {
  STORE=$1
  W=$E2E_TMP/$STORE
  VLOG=$OUT/vouchd-$STORE.log
  mkdir -p "$W"
  local initf=()
  if [[ $STORE == pg ]]; then
    start_postgres
    initf+=(--store "$PG_URL")
  fi
  P1=$(free_port)
  D1=$W/m1
  "$VOUCHD" init --dev --data-dir "$D1" --admin-user admin --admin-password-file "$E2E_TMP/pw" --listen "127.0.0.1:$P1" \
    "${initf[@]}" >/dev/null || fail "vouchd init"
  CA=$D1/service-ca.pem DB=$D1/vouch.db U1="https://127.0.0.1:$P1"
  start_vouchd "$D1" "$P1" "$VLOG"
  V1=$VP
  sleep 2
  RSS_EMPTY=$(rss_kb "$V1")
  log "$STORE: vouchd RSS after start on an empty store: $RSS_EMPTY kB"
  TOKEN=$(curl -fsS --cacert "$CA" -X POST "$U1/api/v1/sys/auth" \
    -d '{"username":"admin","password":"bench-password-123"}' | jq_get '["token"]') || fail "login"
  local app build t i A
  app=$(api POST /api/v1/apps '{"name":"web","zone":"default","domains":["web.example.com"]}') || fail "app create"
  for t in $(echo "$app" | python3 -c 'import json,sys; print(" ".join(t["task_id"] for t in json.load(sys.stdin)["domain_tasks"]))'); do
    api POST "/api/v1/tasks/$t/approve" '{}' >/dev/null || fail "approve domain"
  done
  build=$(api POST /api/v1/builds "{\"app\":\"web\",\"mrenclave\":\"$MRE\",\"mrsigner\":\"$MRS\",\"isvprodid\":1,\"isvsvn\":1}") || fail "build"
  api POST "/api/v1/tasks/$(echo "$build" | jq_get '["task_id"]')/approve" '{}' >/dev/null || fail "approve build"
  APIDS=() NODES=()
  for ((i = 0; i < $2; i++)); do
    A=$W/a$i
    "$AGENT" --server "$U1" --ca-file "$CA" --data-dir "$A" --socket "$A.sock" --tee sim --sim "$D1/sim" \
      --join-token "$(api POST /api/v1/zones/default/join-tokens '{}' | jq_get '["token"]')" >>"$OUT/agent-$STORE-$i.log" 2>&1 &
    E2E_PIDS+=("$!"); APIDS+=("$!")
    for _ in $(seq 1 200); do curl -fsS --unix-socket "$A.sock" http://agent/v1/version >/dev/null 2>&1 && break; sleep 0.05; done
    NODES+=("$(curl -fsS --unix-socket "$A.sock" http://agent/v1/version | jq_get '["node_id"]')")
    [[ -n ${NODES[$i]} ]] || { tail -5 "$OUT/agent-$STORE-$i.log"; fail "agent $i"; }
  done
}

# The store's column names, in order (so that the seeding copies columns added by later migrations).
columns() {  # TABLE
  if [[ $STORE == sqlite ]]; then
    sqlite3 "$DB" "SELECT name FROM pragma_table_info('$1')"
  else
    psql -tA "$PG_URL" -c "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '$1' ORDER BY ordinal_position"
  fi
}
# INSERT ... SELECT copying the row WHERE of TABLE once per i in [OFF, OFF+CNT), columns replaced by COL=EXPR.
seed_copy() {  # TABLE WHERE OFF CNT COL=EXPR...
  local table=$1 where=$2 off=$3 cnt=$4; shift 4
  local -A repl=()
  local kv c cols=() exprs=() cl el
  for kv in "$@"; do repl[${kv%%=*}]=${kv#*=}; done
  for c in $(columns "$table"); do
    cols+=("$c")
    exprs+=("${repl[$c]:-$c}")
  done
  cl=$(IFS=,; echo "${cols[*]}") el=$(IFS=,; echo "${exprs[*]}")
  if [[ $STORE == sqlite ]]; then
    echo "WITH RECURSIVE c(i) AS (SELECT $off UNION ALL SELECT i + 1 FROM c WHERE i < $((off + cnt - 1)))"
    echo "INSERT INTO $table ($cl) SELECT $el FROM $table, c WHERE $where;"
  else
    echo "INSERT INTO $table ($cl) SELECT $el FROM $table, generate_series($off, $((off + cnt - 1))) AS c(i) WHERE $where;"
  fi
}
# seed_instances NODE_A NODE_B: one workload certificate through agent A (W/w/key.pem,
# W/w/instance.json; the zone's heartbeat public key in W/hb-pub.pem for AUTH=mac), then INST
# instances "inst_b<i>" with serials bench/hb_common.h's Serial(i), copies of its certificate and
# instance rows, the first half on NODE_A and the rest on NODE_B, in one transaction; vouchd
# restarted. Sets V1 and RSS_START.
seed_instances() {
  "$GEN" workload --socket "$W/a0.sock" --out "$W/w" --mrenclave "$MRE" --mrsigner "$MRS" >/dev/null || fail "workload cert"
  local s0 i0 ser half=$((INST / 2)) k node off cnt t0
  s0=$(jq_get '["serial"]' <"$W/w/instance.json") i0=$(jq_get '["instance_id"]' <"$W/w/instance.json")
  if [[ $AUTH == mac ]]; then
    sql "SELECT z.heartbeat_pub_pem FROM zones z JOIN certificates c ON c.zone_id = z.id WHERE c.serial = '$s0'" >"$W/hb-pub.pem"
    grep -q "BEGIN PUBLIC KEY" "$W/hb-pub.pem" || fail "the zone has no heartbeat public key (AUTH=sig for ECDSA heartbeats)"
  else
    : >"$W/hb-pub.pem"
  fi
  if [[ $STORE == sqlite ]]; then ser="'bb' || printf('%014x', i)"; else ser="'bb' || lpad(to_hex(i), 14, '0')"; fi
  {
    echo "BEGIN;"
    [[ $STORE == pg ]] && echo "SET LOCAL synchronous_commit = off;"
    for k in 0 1; do
      if [[ $k == 0 ]]; then node=$1 off=0 cnt=$half; else node=$2 off=$half cnt=$((INST - half)); fi
      seed_copy certificates "serial = '$s0'" "$off" "$cnt" "serial=$ser" "instance_id='inst_b' || i" "node_id='$node'"
      seed_copy instances "id = '$i0'" "$off" "$cnt" "id='inst_b' || i" "serial=$ser" "node_id='$node'" \
        "status='running'" "last_seq=0"
    done
    echo "COMMIT;"
    [[ $STORE == pg ]] && echo "ANALYZE;"  # what autovacuum does within a minute of a bulk load
    # SQLite has no autovacuum: vouchd's planner runs without statistics unless SQLITE_ANALYZE=1.
    [[ $STORE == sqlite && ${SQLITE_ANALYZE:-0} == 1 ]] && echo "ANALYZE;"
  } >"$OUT/seed-$STORE.sql"
  log "$STORE: seeding $INST instances; load average $(load)"
  t0=$SECONDS
  if [[ $STORE == sqlite ]]; then
    sqlite3 "$DB" <"$OUT/seed-$STORE.sql" || fail "seed"
  else
    psql -q "$PG_URL" -v ON_ERROR_STOP=1 -f "$OUT/seed-$STORE.sql" >/dev/null || fail "seed"
  fi
  log "$STORE: seeded $INST instances in $((SECONDS - t0)) s"
  if [[ $STORE == sqlite ]]; then  # the store's size and its indexes' (what each index costs on disk)
    log "$STORE: database $(( $(stat -c %s "$DB") / 1048576 )) MiB; largest indexes (MiB):" \
      "$(sqlite3 "$DB" "SELECT name, pgsize / 1048576 FROM (SELECT name, SUM(pgsize) AS pgsize FROM dbstat GROUP BY name) \
         WHERE name NOT IN (SELECT name FROM sqlite_master WHERE type = 'table') ORDER BY pgsize DESC LIMIT 6" 2>/dev/null | tr '\n' ' ')"
  fi
  stop_pids "$V1"
  start_vouchd "$D1" "$P1" "$VLOG"
  V1=$VP
  sleep 2
  RSS_START=$(rss_kb "$V1")
  log "$STORE: vouchd RSS after restart on the seeded store: $RSS_START kB"
}
