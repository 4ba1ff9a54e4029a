#!/usr/bin/env bash
# End-to-end (issue 16): kill -9 of vouchd during heartbeat load loses nothing it acknowledged, on
# SQLite and on PostgreSQL. A node agent provisions and its workloads get certificates; then a
# client with the agent's node certificate (tests/e2e/heartbeat_load.py) posts batches of signed
# heartbeats straight to vouchd (several per instance per batch, so the coalesced write path's
# repeated-instance case runs too) and records the highest seq vouchd answered as accepted per
# instance. vouchd is killed with SIGKILL under that load and started again: every instance's
# last_seq is at least what was acknowledged (and at most what was sent), and the audit chain
# verifies.
# Usage: heartbeat_durability_test.sh VOUCHD VOUCH VOUCH_AGENT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"
VOUCHD=$1
VOUCH=$2
export AGENT=$3  # used by start_sim_agent (lib.sh)
LOAD="python3 $(dirname "$0")/heartbeat_load.py"
python3 -c 'import cryptography' 2>/dev/null || { echo "SKIP: python3-cryptography missing"; exit 77; }
MRE=$(printf 'ab%.0s' {1..32}); MRS=$(printf 'cd%.0s' {1..32})
INSTANCES=12

run_store() {  # NAME [--store URL]
  local name=$1
  shift
  D=$E2E_TMP/$name
  PORT=$(free_port)
  URL=https://127.0.0.1:$PORT
  CA=$D/service-ca.pem
  export VOUCH_CONFIG=$E2E_TMP/cli-$name.json
  printf 'admin-password-123\n' >"$E2E_TMP/admin.pw"
  "$VOUCHD" init --dev --data-dir "$D" --admin-user admin --admin-password-file "$E2E_TMP/admin.pw" \
    --listen "127.0.0.1:$PORT" "$@" >/dev/null || fail "$name: vouchd init"
  serve_manager
  "$VOUCH" login --server "$URL" --ca-file "$CA" --user admin --password-file "$E2E_TMP/admin.pw" >/dev/null \
    || fail "$name: vouch login"
  "$VOUCH" app create hb --zone default --domain hb.example.com >/dev/null || fail "$name: app create"
  approve_domains "$VOUCH" hb
  b=$("$VOUCH" build create --app hb --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 -o json) \
    || fail "$name: build create"
  "$VOUCH" task approve "$(echo "$b" | jq_get '["task_id"]')" >/dev/null || fail "$name: approve the build"
  start_sim_agent "$E2E_TMP/agent-$name" "$E2E_TMP/agent-$name.log"
  local dirs=()
  for i in $(seq 1 $INSTANCES); do
    local w=$E2E_TMP/w-$name/$i
    "$VOUCH" workload cert --socket "$SOCK" --out "$w" --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 \
      >/dev/null 2>>"$E2E_TMP/wc.err" || fail "$name: workload $i: $(tail -1 "$E2E_TMP/wc.err")"
    dirs+=("$w")
  done
  ok "$name: $INSTANCES workloads got certificates through the agent"
  # The agent is not needed any more (the client speaks for it with its node certificate).
  kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
  local acked=$E2E_TMP/acked-$name.json sent=$E2E_TMP/sent-$name.json
  $LOAD "$URL" "$CA" "$E2E_TMP/agent-$name/node-cert.pem" "$E2E_TMP/agent-$name/node-key.pem" \
    --acked "$acked" --sent "$sent" --seconds 60 --threads 4 "${dirs[@]}" >"$E2E_TMP/load-$name.out" 2>&1 &
  local load=$!
  E2E_PIDS+=("$load")
  enough() {  # at least 300 heartbeats acknowledged
    local n
    n=$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1])).values()))' "$acked" 2>/dev/null || echo 0)
    [[ $n -ge 300 ]] || { echo "$n acknowledged"; return 1; }
  }
  wait_until "$name: heartbeats are acknowledged under load" 300 enough
  kill -9 "$VOUCHD_PID"
  wait "$VOUCHD_PID" 2>/dev/null
  wait "$load" || fail "$name: the load saw an unexpected answer: $(cat "$E2E_TMP/load-$name.out")"
  ok "$name: vouchd killed with SIGKILL under heartbeat load ($(cat "$E2E_TMP/load-$name.out"))"
  serve_manager
  "$VOUCH" instance list -o json --limit 100 >"$E2E_TMP/instances-$name.json" 2>"$E2E_TMP/il.err" \
    || fail "$name: vouch instance list after the restart: $(cat "$E2E_TMP/il.err")"
  local report
  report=$(python3 - "$E2E_TMP/instances-$name.json" "$acked" "$sent" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
items = doc["items"] if isinstance(doc, dict) else doc
stored = {i["id"]: i["last_seq"] for i in items}
acked, sent = json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
bad = [f"{i}: stored {stored.get(i)}, acknowledged {acked[i]}, sent {sent[i]}" for i in acked
       if stored.get(i) is None or not acked[i] <= stored[i] <= sent[i]]
print("lost" if bad else "ok", sum(acked.values()), "; ".join(bad[:5]))
PY
)
  expect_eq "$name: every acknowledged heartbeat survived kill -9 (last_seq >= acknowledged, <= sent)" ok "${report%% *}"
  echo "# $name: $report"
  "$VOUCH" audit verify >/dev/null 2>&1 || fail "$name: the audit chain does not verify after the restart"
  ok "$name: the audit chain verifies after the restart"
  kill "$VOUCHD_PID"; wait "$VOUCHD_PID" 2>/dev/null
}

run_store sqlite
start_postgres
ok "PostgreSQL on 127.0.0.1:$PG_PORT"
run_store postgres --store "$PG_URL"
