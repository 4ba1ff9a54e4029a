#!/usr/bin/env bash
# Agent benchmarks (BENCHMARKS.md, "Agent" and "HA back end"): issuance through vouch-agent vs.
# `cfssl serve` in the same run with the same generator (bench_agent), then heartbeat ingest and
# vouchd's resident memory with INST instances tracked. Everything on loopback in a temp dir.
# Usage: bench/agent_bench.sh BUILD_DIR [STORE]
#   STORE: sqlite (default), pg1 (one vouchd on PostgreSQL), pg2 (two vouchd on one PostgreSQL,
#   the second joined by attestation; one agent per instance, load split over both).
# Environment (defaults): REQUESTS=4000 CONNS=64 INST=100000 BATCH=100 HB_CONNS=4 ROUNDS=3
#   VOUCHD_THREADS=(vouchd's default) AGENT_THREADS=(the agent's default) CFSSL=1 (0: skip cfssl)
#   PERF_OUT=FILE: `perf record -g` vouchd and the agents during the timed issuance run
#   (PERF_WHO=vouchd|agent: only those; PERF_FLAGS: perf record's flags, default -g);
#   PERF_HB_OUT=FILE: the same for vouchd during the last heartbeat round
# e.g. nice -n 5 bench/agent_bench.sh build/rel
# Needs: golang-cfssl (cfssl), sqlite3, openssl, curl; postgresql for pg1/pg2.
E2E=$(cd "$(dirname "$0")/../tests/e2e" && pwd)
source "$E2E/lib.sh"
B=$(cd "$1" && pwd)
STORE=${2:-sqlite}
REQUESTS=${REQUESTS:-4000} CONNS=${CONNS:-64} INST=${INST:-100000} BATCH=${BATCH:-100} HB_CONNS=${HB_CONNS:-4}
ROUNDS=${ROUNDS:-3} CFSSL=${CFSSL:-1}
VOUCHD=$B/apps/vouchd/vouchd AGENT=$B/apps/vouch-agent/vouch-agent GEN=${GEN:-$B/bench/bench_agent}
W=$E2E_TMP
if [[ $STORE == pg* ]]; then
  source "$E2E/pg.sh"
  start_postgres
fi
vflags=() aflags=()
[[ $STORE == pg2 ]] && vflags+=(--allow-cluster-join)  # the second instance joins the first
[[ -n "${VOUCHD_THREADS:-}" ]] && vflags+=(--threads "$VOUCHD_THREADS")
[[ -n "${AGENT_THREADS:-}" ]] && aflags+=(--threads "$AGENT_THREADS")
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "store $STORE; $REQUESTS certificates over $CONNS connections; $INST instances, batches of $BATCH over $HB_CONNS connections"
echo "load average at start: $(load)"

printf 'bench-password-123\n' >"$W/pw"
P1=$(free_port)
D1=$W/m1
initf=()
[[ $STORE == pg* ]] && initf+=(--store "$PG_URL")
"$VOUCHD" init --dev --data-dir "$D1" --admin-user admin --admin-password-file "$W/pw" --listen "127.0.0.1:$P1" \
  "${initf[@]}" >/dev/null || fail "vouchd init"
CA=$D1/service-ca.pem
VPIDS=()
start_vouchd() {  # DIR PORT
  "$VOUCHD" serve --data-dir "$1" "${vflags[@]}" >>"$W/vouchd.log" 2>&1 &
  local pid=$!
  E2E_PIDS+=("$pid"); VPIDS+=("$pid")
  wait_healthy "https://127.0.0.1:$2" "$CA" "$pid" || { tail -5 "$W/vouchd.log"; fail "vouchd did not start"; }
}
start_vouchd "$D1" "$P1"
URLS=("https://127.0.0.1:$P1")
if [[ $STORE == pg2 ]]; then
  P2=$(free_port)
  "$VOUCHD" join --data-dir "$W/m2" --peer "${URLS[0]}" --ca-file "$CA" --store "$PG_URL" --listen "127.0.0.1:$P2" \
    --tee sim --sim "$D1/sim" >/dev/null || fail "vouchd join"
  start_vouchd "$W/m2" "$P2"
  URLS+=("https://127.0.0.1:$P2")
fi
# Setup through the HTTP API (curl), so that only vouchd, vouch-agent and bench_agent are needed.
TOKEN=$(curl -fsS --cacert "$CA" -X POST "${URLS[0]}/api/v1/sys/auth" \
  -d '{"username":"admin","password":"bench-password-123"}' | jq_get '["token"]') || fail "login"
api() {  # METHOD PATH [JSON]
  curl -fsS --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -X "$1" \
    "${URLS[0]}$2" ${3:+-d "$3"}
}
app=$(api POST /api/v1/apps '{"name":"web","zone":"default","domains":["web.example.com"]}') || fail "app create"
for t in $(echo "$app" | python3 -c 'import json,sys; print(" ".join(t["task_id"] for t in json.load(sys.stdin)["domain_tasks"]))'); do
  api POST "/api/v1/tasks/$t/approve" '{}' >/dev/null || fail "approve domain"  # initial domains are approval tasks
done
MRE=$(printf 'a%.0s' {1..64}) MRS=$(printf 'b%.0s' {1..64})
build=$(api POST /api/v1/builds "{\"app\":\"web\",\"mrenclave\":\"$MRE\",\"mrsigner\":\"$MRS\",\"isvprodid\":1,\"isvsvn\":1}") \
  || fail "build create"
api POST "/api/v1/tasks/$(echo "$build" | jq_get '["task_id"]')/approve" '{}' >/dev/null || fail "approve"

# One agent per vouchd instance (a node talks to its nearest manager).
SOCKS=() APIDS=()
for i in "${!URLS[@]}"; do
  A=$W/a$i
  "$AGENT" --server "${URLS[$i]}" --ca-file "$CA" --data-dir "$A" --socket "$A.sock" --tee sim --sim "$D1/sim" \
    --join-token "$(api POST /api/v1/zones/default/join-tokens '{}' | jq_get '["token"]')" "${aflags[@]}" >>"$W/agent$i.log" 2>&1 &
  E2E_PIDS+=("$!"); APIDS+=("$!")
  for _ in $(seq 1 200); do curl -fsS --unix-socket "$A.sock" http://agent/v1/version >/dev/null 2>&1 && break; sleep 0.05; done
  curl -fsS --unix-socket "$A.sock" http://agent/v1/version >/dev/null || { tail -5 "$W/agent$i.log"; fail "agent $i"; }
  SOCKS+=("$A.sock")
done
SOCKLIST=$(IFS=,; echo "${SOCKS[*]}")
URLLIST=$(IFS=,; echo "${URLS[*]}")

if [[ $CFSSL == 1 ]]; then
  # cfssl with a P-256 CA, same validity and key usages as a vouch workload certificate.
  openssl ecparam -name prime256v1 -genkey -noout -out "$W/cfssl-ca-key.pem" 2>/dev/null
  openssl req -x509 -new -key "$W/cfssl-ca-key.pem" -subj "/CN=cfssl bench CA" -days 30 -out "$W/cfssl-ca.pem" 2>/dev/null
  cat >"$W/cfssl.json" <<'JSON'
{"signing": {"default": {"expiry": "24h", "usages": ["digital signature", "key encipherment", "server auth", "client auth"]}}}
JSON
  CP=$(free_port)
  cfssl serve -address 127.0.0.1 -port "$CP" -ca "$W/cfssl-ca.pem" -ca-key "$W/cfssl-ca-key.pem" -config "$W/cfssl.json" \
    >"$W/cfssl.log" 2>&1 &
  E2E_PIDS+=("$!")
  for _ in $(seq 1 200); do curl -s -o /dev/null "http://127.0.0.1:$CP/api/v1/cfssl/info" -d '{}' && break; sleep 0.05; done
fi

echo "== issuance: $REQUESTS requests over $CONNS keep-alive connections"
before=$(sqlite3 "$D1/vouch.db" "SELECT COUNT(*) FROM certificates WHERE kind='workload'" 2>/dev/null || echo 0)
perf_pids() {  # PERF_WHO: both (default), vouchd or agent
  case ${PERF_WHO:-both} in
    vouchd) (IFS=,; echo "${VPIDS[*]}") ;;
    agent) (IFS=,; echo "${APIDS[*]}") ;;
    *) (IFS=,; echo "${VPIDS[*]},${APIDS[*]}") ;;
  esac
}
cpu_ticks() { local t=0 f; for p in "$@"; do read -ra f <"/proc/$p/stat"; t=$((t + f[13] + f[14])); done; echo "$t"; }
sys_ticks() { local t=0 f; for p in "$@"; do read -ra f <"/proc/$p/stat"; t=$((t + f[14])); done; echo "$t"; }
issue_one() {
  echo "load average before vouch: $(load)"
  local v0 a0 v1 a1 vs0 as0 vs1 as1 hz
  "$GEN" issue --socket "$SOCKLIST" --requests "$REQUESTS" --threads "$CONNS" --mrenclave "$MRE" --mrsigner "$MRS" \
    --dns web.example.com 2>"$W/gen.err" >"$W/vouch.out" &
  local gen=$! perf=""
  # The timed part only: before it the generator makes its CSRs and (sim) REPORTs, through the agent.
  until grep -q "clock started" "$W/gen.err" 2>/dev/null || ! kill -0 "$gen" 2>/dev/null; do sleep 0.01; done
  v0=$(cpu_ticks "${VPIDS[@]}") a0=$(cpu_ticks "${APIDS[@]}") vs0=$(sys_ticks "${VPIDS[@]}") as0=$(sys_ticks "${APIDS[@]}")
  if [[ -n "${PERF_OUT:-}" ]]; then
    perf record ${PERF_FLAGS:--g} -o "$PERF_OUT" -p "$(perf_pids)" 2>/dev/null &
    perf=$!
  fi
  wait "$gen" || { cat "$W/gen.err"; fail "vouch issuance run"; }
  v1=$(cpu_ticks "${VPIDS[@]}") a1=$(cpu_ticks "${APIDS[@]}") vs1=$(sys_ticks "${VPIDS[@]}") as1=$(sys_ticks "${APIDS[@]}")
  hz=$(getconf CLK_TCK)
  [[ -n $perf ]] && { kill -INT "$perf"; wait "$perf"; }
  cat "$W/vouch.out"
  # CPU per certificate during the timed part (the generator's connection set-up included).
  local us=$((1000000 / hz))
  echo "RESULT CPU per certificate: vouchd $(( (v1 - v0) * us / REQUESTS )) us ($(( (vs1 - vs0) * us / REQUESTS )) in the kernel)," \
    "vouch-agent $(( (a1 - a0) * us / REQUESTS )) us ($(( (as1 - as0) * us / REQUESTS )) in the kernel)"
  echo "load average after vouch: $(load)"
}
cfssl_one() {
  echo "load average before cfssl: $(load)"
  "$GEN" cfssl --url "http://127.0.0.1:$CP" --requests "$REQUESTS" --threads "$CONNS" | tee "$W/cfssl.out" || fail "cfssl run"
  echo "load average after cfssl: $(load)"
}
# Alternate, so that neither always runs first on a machine whose load drifts.
for _ in $(seq 1 "${ISSUE_ROUNDS:-1}"); do
  issue_one; cat "$W/vouch.out" >>"$W/vouch.all"
  if [[ $CFSSL == 1 ]]; then
    cfssl_one; cat "$W/cfssl.out" >>"$W/cfssl.all"
    python3 - "$W/vouch.out" "$W/cfssl.out" <<'PY'
import json, sys
v = json.load(open(sys.argv[1])); c = json.load(open(sys.argv[2]))
print(f"RESULT issuance: vouch through the agent {v['per_second']:.0f}/s, cfssl {c['per_second']:.0f}/s, "
      f"ratio vouch/cfssl {v['per_second'] / c['per_second']:.2f} (target >= 1.5)")
PY
  fi
done
if [[ $STORE == sqlite ]]; then
  stored=$(sqlite3 "$D1/vouch.db" "SELECT COUNT(*) FROM certificates WHERE kind='workload'")
  echo "certificates recorded by vouchd: $((stored - before))"
fi

echo "== heartbeats: $INST instances, $ROUNDS rounds"
"$GEN" workload --socket "${SOCKS[0]}" --out "$W/w" --mrenclave "$MRE" --mrsigner "$MRS" >/dev/null || fail "workload cert"
S0=$(jq_get '["serial"]' <"$W/w/instance.json")
I0=$(jq_get '["instance_id"]' <"$W/w/instance.json")
# Seed INST instances whose certificates (distinct serials) all carry the bench workload's key,
# spread over the agents' nodes (the node a heartbeat batch comes from must own its instances).
seed_sql() {  # NODE_ID OFFSET COUNT
  cat <<SQL
WITH RECURSIVE c(i) AS (SELECT $2 UNION ALL SELECT i + 1 FROM c WHERE i < $2 + $3 - 1)
INSERT INTO certificates (serial, zone_id, kind, app_id, build_id, node_id, instance_id, subject, sans, not_before,
  not_after, pem, status, issued_to, created_at)
SELECT 'b' || i, zone_id, kind, app_id, build_id, '$1', 'inst_b' || i, subject, sans, not_before, not_after, pem,
  status, issued_to, created_at FROM certificates, c WHERE serial = '$S0';
WITH RECURSIVE c(i) AS (SELECT $2 UNION ALL SELECT i + 1 FROM c WHERE i < $2 + $3 - 1)
INSERT INTO instances (id, app_id, build_id, node_id, serial, status, last_seq, first_seen, last_heartbeat)
SELECT 'inst_b' || i, app_id, build_id, '$1', 'b' || i, 'running', 0, first_seen, last_heartbeat
FROM instances, c WHERE id = '$I0';
SQL
}
per=$((INST / ${#URLS[@]}))
{
  echo "BEGIN;"
  for i in "${!URLS[@]}"; do
    node=$(curl -fsS --unix-socket "${SOCKS[$i]}" http://agent/v1/version | jq_get '["node_id"]')
    seed_sql "$node" $((i * per)) "$per"
  done
  echo "COMMIT;"
} >"$W/seed.sql"
if [[ $STORE == sqlite ]]; then
  sqlite3 "$D1/vouch.db" <"$W/seed.sql" || fail "seed"
else
  psql -q "$PG_URL" -v ON_ERROR_STOP=1 -f "$W/seed.sql" >/dev/null || fail "seed"
fi
# Restart the instance(s): the RSS below is what following INST instances costs, not the
# issuance run's leftovers.
for pid in "${VPIDS[@]}"; do kill -TERM "$pid"; wait "$pid" 2>/dev/null; done
VPIDS=()
start_vouchd "$D1" "$P1"
[[ $STORE == pg2 ]] && start_vouchd "$W/m2" "$P2"
rss() { local t=0; for p in "${VPIDS[@]}"; do t=$((t + $(awk '/VmRSS/ {print $2}' "/proc/$p/status"))); done; echo "$t"; }
echo "vouchd RSS after start: $(rss) kB"
certs=() keys=()
for i in "${!URLS[@]}"; do certs+=("$W/a$i/node-cert.pem"); keys+=("$W/a$i/node-key.pem"); done
for seq in $(seq 1 "$ROUNDS"); do
  echo "load average before round $seq: $(load)"
  "$GEN" heartbeats --server "$URLLIST" --ca-file "$CA" --cert "$(IFS=,; echo "${certs[*]}")" \
    --key "$(IFS=,; echo "${keys[*]}")" --key-pem "$W/w/key.pem" --instances "$INST" --batch "$BATCH" \
    --threads "$HB_CONNS" --seq "$seq" 2>"$W/hb.err" >"$W/hb.out" &
  gen=$! perf=""
  if [[ -n "${PERF_HB_OUT:-}" && $seq == "$ROUNDS" ]]; then  # vouchd during the last round's timed part
    until grep -q "clock started" "$W/hb.err" 2>/dev/null || ! kill -0 "$gen" 2>/dev/null; do sleep 0.02; done
    perf record ${PERF_FLAGS:--g} -o "$PERF_HB_OUT" -p "$(IFS=,; echo "${VPIDS[*]}")" 2>/dev/null &
    perf=$!
  fi
  wait "$gen" || { cat "$W/hb.err"; fail "heartbeat round $seq"; }
  [[ -n $perf ]] && { kill -INT "$perf"; wait "$perf"; }
  cat "$W/hb.out" | tee -a "$W/hb.all"
done
echo "load average after heartbeats: $(load)"
echo "RESULT vouchd RSS with $INST instances tracked (after $ROUNDS heartbeat rounds): $(rss) kB"
if [[ $STORE == sqlite ]]; then
  echo "instances with last_seq = $ROUNDS: $(sqlite3 "$D1/vouch.db" "SELECT COUNT(*) FROM instances WHERE last_seq = $ROUNDS")"
else
  echo "instances with last_seq = $ROUNDS: $(psql -tA "$PG_URL" -c "SELECT COUNT(*) FROM instances WHERE last_seq = $ROUNDS")"
fi
python3 - "$W/hb.all" <<'PY'
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
print("RESULT heartbeats/s per round: " + ", ".join(f"{r['per_second']:.0f}" for r in rs) +
      (f"; best {max(r['per_second'] for r in rs):.0f}/s (target >= 20000)" if rs else ""))
PY
# The physical limit in the same run: P-256 verifications alone (vouch's crypto::Verify, keys
# decoded, nothing else), on as many threads as cores: one heartbeat cannot cost less than one.
FLOOR_BIN=$B/bench/bench_attest
if [[ -x $FLOOR_BIN ]]; then
  threads=$(nproc)
  "$FLOOR_BIN" --benchmark_filter="BM_FloorTwoP256Verifies/real_time/threads:$threads\$" --benchmark_min_time=3 \
    --benchmark_format=json 2>/dev/null >"$W/floor.json" || true
  python3 - "$W/floor.json" "$W/hb.all" "$threads" <<'PY'
import json, sys
try:
    b = json.load(open(sys.argv[1]))["benchmarks"][0]
except Exception:
    sys.exit(0)
floor = 2 * b["quotes/s"]  # two verifications per iteration
rs = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
best = max((r["per_second"] for r in rs), default=0)
print(f"RESULT P-256 verifications/s on {sys.argv[3]} threads (the heartbeat floor, same run): {floor:.0f}; "
      f"best heartbeat round = {best / floor:.2f} of it; the 20000/s target = {20000 / floor:.2f} of it")
PY
fi
