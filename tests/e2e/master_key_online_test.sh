#!/usr/bin/env bash
# Online master-key rotation (issue 18, docs/custody.md "Online rotation"): vouchd on SQLite with a
# sim agent; workload certificates through the agent and signed heartbeats (tests/e2e/
# heartbeat_load.py, with the agent's node certificate) keep coming while `vouch master-key rotate`
# runs in the middle: no load request fails and every one is answered. After a restart vouchd
# serves with the new key (master.key changed, its id is the one answered) and an offline check
# (`vouchd master-key check`) opens every sealed value with it. vouchd killed by SIGKILL (137)
# inside the rotation's transaction and after its commit: each restart serves wholly under the old
# or wholly under the new key.
# Usage: master_key_online_test.sh VOUCHD VOUCH VOUCH_AGENT
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
VOUCHD=$1
VOUCH=$2
export AGENT=$3  # used by start_sim_agent (lib.sh)
LOAD="python3 $(dirname "$0")/heartbeat_load.py"
python3 -c 'import cryptography' 2>/dev/null || { echo "SKIP: python3-cryptography missing"; exit 77; }
MRE=$(printf 'ab%.0s' {1..32}); MRS=$(printf 'cd%.0s' {1..32})

key_id() {  # KEYFILE: HMAC-SHA256(key, "vouch-master-key-id-v1")[0..16], hex (docs/custody.md)
  python3 -c 'import hashlib, hmac, sys
print(hmac.new(open(sys.argv[1], "rb").read(), b"vouch-master-key-id-v1", hashlib.sha256).hexdigest()[:32])' "$1"
}
wholly_under() {  # WHAT KEYFILE: `vouchd master-key check` opens every sealed value with KEYFILE's key
  local out
  out=$("$VOUCHD" master-key check --data-dir "$D" -o json 2>&1) || fail "$1: master-key check: $out"
  expect_eq "$1: the check names master.key" "$(key_id "$2")" "$(echo "$out" | jq_get '["key_id"]')"
  expect_eq "$1" "True 0" "$(echo "$out" | python3 -c 'import json, sys
d = json.load(sys.stdin); print(d["wholly_under_key"], sum(d["does_not_open"].values()))')"
}
stop_manager() {
  kill -TERM "$VOUCHD_PID"
  wait_until "vouchd stopped" 200 process_gone "$VOUCHD_PID"
}

record_api
start_dev_manager --heartbeat-interval 2
"$VOUCH" zone create prod >/dev/null || fail "zone create prod"
"$VOUCH" app create web --zone default --domain web.example.com >/dev/null || fail "app create"
approve_domains "$VOUCH" web
b=$("$VOUCH" build create --app web --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 -o json) \
  || fail "build create"
"$VOUCH" task approve "$(echo "$b" | jq_get '["task_id"]')" >/dev/null || fail "approve the build"
start_sim_agent "$E2E_TMP/agent" "$E2E_TMP/agent.log"
wcert() {  # OUT
  "$VOUCH" workload cert --socket "$SOCK" --out "$1" --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 \
    --dns web.example.com
}
dirs=()
for i in 1 2 3 4 5 6; do
  wcert "$E2E_TMP/hb/$i" >/dev/null 2>>"$E2E_TMP/wc.err" || fail "workload $i: $(tail -1 "$E2E_TMP/wc.err")"
  dirs+=("$E2E_TMP/hb/$i")
done
ok "6 workloads got certificates through the agent"

# ---- the load: heartbeats straight to vouchd, workload certificates through the agent
ACKED=$E2E_TMP/acked.json
SENT=$E2E_TMP/sent.json
$LOAD "$URL" "$CA" "$E2E_TMP/agent/node-cert.pem" "$E2E_TMP/agent/node-key.pem" --acked "$ACKED" --sent "$SENT" \
  --seconds 20 --threads 2 "${dirs[@]}" >"$E2E_TMP/hbload.out" 2>&1 &
HB_PID=$!
E2E_PIDS+=("$HB_PID")
touch "$E2E_TMP/load.on"
(
  n=0
  while [[ -f "$E2E_TMP/load.on" ]]; do
    n=$((n + 1))
    wcert "$E2E_TMP/load$n" >/dev/null 2>>"$E2E_TMP/load.err" || echo "load cert $n failed" >>"$E2E_TMP/load.err"
  done
  echo "$n" >"$E2E_TMP/load.count"
) &
CERT_PID=$!
E2E_PIDS+=("$CERT_PID")
acked_at_least() {  # N
  local n
  n=$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1])).values()))' "$ACKED" 2>/dev/null || echo 0)
  [[ $n -ge $1 ]] || { echo "$n acknowledged"; return 1; }
}
acked_now() { python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1])).values()))' "$ACKED"; }
wait_until "heartbeats are acknowledged under load" 300 acked_at_least 100
wait_until "the load has issued two certificates" 300 test -f "$E2E_TMP/load2/cert.pem"

# ---- the rotation, in the middle of the load
cp "$D/master.key" "$E2E_TMP/key.0"
cp "$D/tls/server.key.sealed" "$E2E_TMP/tls.0"
out=$("$VOUCH" master-key rotate -o json 2>&1) || fail "vouch master-key rotate: $out"
KEY_ID=$(echo "$out" | jq_get '["key_id"]')
ZONES=$(echo "$out" | jq_get '["resealed"]["zones.ca_key_sealed"]')
expect_eq "the rotation re-sealed the zone CA keys of default and prod" 2 "$ZONES"
HB_AT=$(acked_now)
AFTER=$(($(find "$E2E_TMP" -maxdepth 1 -name 'load[0-9]*' -type d | wc -l) + 1))
wait_until "the load issues a certificate after the rotation" 300 test -f "$E2E_TMP/load$AFTER/cert.pem"
wait_until "heartbeats are acknowledged after the rotation" 300 acked_at_least $((HB_AT + 100))
rm -f "$E2E_TMP/load.on"
wait "$CERT_PID"
wait "$HB_PID" || fail "the heartbeat load saw an unexpected answer: $(cat "$E2E_TMP/hbload.out")"
[[ ! -s "$E2E_TMP/load.err" ]] || fail "issuance failed during the rotation: $(head -5 "$E2E_TMP/load.err")"
expect_eq "every heartbeat sent was answered and accepted" "$(python3 -c 'import json,sys; print(sum(json.load(open(sys.argv[1])).values()))' "$SENT")" \
  "$(acked_now)"
ok "no load request failed during the rotation ($(cat "$E2E_TMP/load.count") workload certificates, $(acked_now) heartbeats)"
cmp -s "$E2E_TMP/key.0" "$D/master.key" && fail "master.key did not change"
expect_eq "master.key is the key answered" "$KEY_ID" "$(key_id "$D/master.key")"
cmp -s "$E2E_TMP/tls.0" "$D/tls/server.key.sealed" && fail "the TLS key was not re-sealed"
[[ ! -e "$D/master.key.next" && ! -e "$D/tls/server.key.sealed.next" ]] || fail "a .next file was left behind"
"$VOUCH" zone create staging >/dev/null || fail "zone create after the online rotation"
ok "the serving vouchd seals under the new key (zone staging created)"

# ---- restart: serves with the new key; offline, every sealed value opens with it
stop_manager
wholly_under "every sealed value opens with the new key" "$D/master.key"
serve_manager
wait_until "a workload certificate after the restart" 100 wcert "$E2E_TMP/after-restart"
"$VOUCH" zone create qa >/dev/null || fail "zone create after the restart"
ok "vouchd serves with the new key after a restart"
out=$("$VOUCH" master-key rotate 2>&1) || fail "second rotation: $out"
expect_eq "the CLI answers one line" 1 "$(echo "$out" | wc -l)"
expect_contains "the one line names the new key" "$(key_id "$D/master.key")" "$out"
# Offline rotation is refused while vouchd serves, naming the online command.
out=$("$VOUCHD" master-key rotate --data-dir "$D" 2>&1) && fail "offline rotation ran while vouchd serves"
expect_contains "offline rotation refused while serving, naming the online command" "vouch master-key rotate" "$out"

# ---- kill -9 inside the rotation's transaction: the restart is wholly under the old key
stop_manager
cp "$D/master.key" "$E2E_TMP/key.1"
serve_manager --test-master-key-crash-at in_transaction
"$VOUCH" master-key rotate >/dev/null 2>&1 && fail "the rotation answered although vouchd died inside it"
wait_until "vouchd died inside the rotation" 100 process_gone "$VOUCHD_PID"
wait "$VOUCHD_PID"
expect_eq "vouchd exited as killed (137)" 137 "$?"
[[ -e "$D/master.key.next" ]] || fail "the crash left no master.key.next"
serve_manager
cmp -s "$E2E_TMP/key.1" "$D/master.key" || fail "after a crash before commit master.key is not the old key"
[[ ! -e "$D/master.key.next" ]] || fail "master.key.next survived the restart"
wholly_under "crash inside the transaction: wholly the old key" "$E2E_TMP/key.1"
wait_until "a workload certificate after the crash" 100 wcert "$E2E_TMP/after-crash1"

# ---- kill -9 after the commit, before the files moved: the restart is wholly under the new key
stop_manager
serve_manager --test-master-key-crash-at committed
"$VOUCH" master-key rotate >/dev/null 2>&1 && fail "the rotation answered although vouchd died after its commit"
wait_until "vouchd died after the commit" 100 process_gone "$VOUCHD_PID"
wait "$VOUCHD_PID"
expect_eq "vouchd exited as killed (137)" 137 "$?"
cp "$D/master.key.next" "$E2E_TMP/key.2" || fail "the crash left no master.key.next"
serve_manager
cmp -s "$E2E_TMP/key.2" "$D/master.key" || fail "after a crash after commit master.key is not the new key"
wholly_under "crash after the commit: wholly the new key" "$E2E_TMP/key.2"
wait_until "a workload certificate after the second crash" 100 wcert "$E2E_TMP/after-crash2"
"$VOUCH" zone create last >/dev/null || fail "zone create after the crashes"

audit=$("$VOUCH" audit list --limit 1000 2>&1)
expect_contains "the rotations are audited" "master_key.rotate" "$audit"
"$VOUCH" audit verify >/dev/null || fail "vouch audit verify after the rotations"
ok "the audit chain verifies"
validate_recorded_api
echo "master_key_online: $E2E_PASSED checks passed"
