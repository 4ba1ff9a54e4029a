#!/usr/bin/env bash
# End-to-end: a serving HA member picks up a master key another member rotated, through the attested
# join path, with no restart and no lost request (issue 18; docs/cluster.md "Picking up a rotated
# master key"). Two vouchd on one PostgreSQL, B joined through A:
#   - under issuance (admin API) and agent load (workload certificates, heartbeats) on both, A
#     rotates online; B obtains the new key by attestation within a bounded wait (its master.key is
#     A's, vouch_master_key_current 1, master_key.adopt audited), no request failed on either member,
#     and a zone B then creates has its CA key sealed under the new key (opens with A's key only)
#   - A with joining off: after a second rotation B keeps serving issuance and heartbeats, is not
#     ready, reports vouch_master_key_current 0, refuses a sealing operation with 503
#     master_key_rotated and writes nothing, keeps its old key, and logs that it must re-join; once
#     A allows joins again B picks the key up by itself
#   - B stopped during a third rotation, started as a modified binary: A refuses its evidence
#     (audited), it gets nothing and does not start; as the approved binary it picks the key up at
#     start, before serving
#   - B checking only every 60 s: a request it answers 503 master_key_rotated wakes its pickup
# Usage: master_key_ha_test.sh VOUCHD VOUCH VOUCH_AGENT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"
VOUCHD=$1
VOUCH=$2
AGENT=$3
LOAD="python3 $(dirname "$0")/ha_load.py"
export VOUCH_CONFIG=$E2E_TMP/cli.json
record_api  # every answer the CLI receives is checked against docs/api/openapi.json at the end
printf 'admin-password-123\n' >"$E2E_TMP/admin.pw"

start_postgres
psql_q() { pg_run "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U vouch -d vouch -tAc "$1"; }
A=$E2E_TMP/a; B=$E2E_TMP/b
PA=$(free_port); PB=$(free_port)
UA=https://127.0.0.1:$PA; UB=https://127.0.0.1:$PB
"$VOUCHD" init --data-dir "$A" --admin-user admin --admin-password-file "$E2E_TMP/admin.pw" --store "$PG_URL" \
  --listen "127.0.0.1:$PA" --dev >/dev/null || fail "vouchd init on PostgreSQL"
CA=$A/service-ca.pem
[[ -e "$A/sim/sim-secrets.json" ]] || "$VOUCH" sim init "$A/sim" >/dev/null || fail "sim init"
declare -A PID
serve() {  # serve DIR URL NAME BINARY [FLAGS...]: sets PID[NAME]; checks the key every CHECK_MS (500) ms
  "$4" serve --data-dir "$1" --master-key-check-ms "${CHECK_MS:-500}" "${@:5}" >>"$E2E_TMP/$3.log" 2>&1 &
  local pid=$!
  E2E_PIDS+=("$pid")
  PID[$3]=$pid
  wait_healthy "$2" "$CA" "$pid" || { tail -20 "$E2E_TMP/$3.log"; fail "vouchd $3 did not become healthy"; }
}
stop() { kill "${PID[$1]}"; wait "${PID[$1]}" 2>/dev/null || true; }
metric() {  # URL NAME: the value of an unlabelled series on /metrics (loopback: no credentials)
  curl -fsS --cacert "$CA" "$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'
}
failed_requests() {  # URL: http_requests_total series answered >= 400, except /readyz
  curl -fsS --cacert "$CA" "$1/metrics" | grep '^http_requests_total{' | grep -v 'route="/readyz"' \
    | grep -E 'status="[45][0-9][0-9]"' || true
}
same_key() { cmp -s "$A/master.key" "$B/master.key" || { echo "B's master.key differs from A's"; return 1; }; }
key_id() { python3 -c 'import hmac,hashlib,sys; print(hmac.new(open(sys.argv[1],"rb").read(), b"vouch-master-key-id-v1", hashlib.sha256).hexdigest()[:32])' "$1"; }

serve "$A" "$UA" a "$VOUCHD" --allow-cluster-join
"$VOUCHD" join --data-dir "$B" --peer "$UA" --ca-file "$CA" --store "$PG_URL" --listen "127.0.0.1:$PB" \
  --tee sim --sim "$A/sim" >"$E2E_TMP/join.out" 2>&1 || fail "vouchd join: $(cat "$E2E_TMP/join.out")"
expect_eq "vouchd join records the peer and the evidence source for a later pickup" "[\"$UA\"] sim $A/sim" \
  "$(python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["cluster"]; print(json.dumps(c["peers"]), c["tee"], c["sim"])' "$B/config.json")"
serve "$B" "$UB" b "$VOUCHD"
expect_eq "B holds the store's key (vouch_master_key_current 1)" 1 "$(metric "$UB" vouch_master_key_current)"

# ---- workloads: an approved build for admin issuance, an agent on each member
"$VOUCH" login --server "$UA" --ca-file "$CA" --user admin --password-file "$E2E_TMP/admin.pw" >/dev/null || fail "login"
TOKEN=$(curl -fsS --cacert "$CA" -X POST "$UA/api/v1/sys/auth" -H 'Content-Type: application/json' \
  -d "{\"username\":\"admin\",\"password\":\"$(cat "$E2E_TMP/admin.pw")\"}" | jq_get '["token"]')
api() { curl -sS --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@"; }
"$VOUCH" app create web --zone default --domain web.example.com >/dev/null || fail "app create"
approve_domains "$VOUCH" web
MRE=$(printf 'ee%.0s' {1..32}); MRS=$(printf 'cd%.0s' {1..32})
b=$("$VOUCH" build create --app web --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 -o json) || fail "build create"
"$VOUCH" task approve "$(echo "$b" | jq_get '["task_id"]')" >/dev/null || fail "approve"
BUILD=$(echo "$b" | jq_get '["id"]')
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$E2E_TMP/w.key" -out "$E2E_TMP/w.csr" \
  -subj "/CN=web.example.com" -addext "subjectAltName=DNS:web.example.com" 2>/dev/null || fail "openssl req"
declare -A SOCKS
for m in a b; do
  url=$UA; [[ $m == b ]] && url=$UB
  SOCKS[$m]=$E2E_TMP/agent-$m/agent.sock
  "$AGENT" --server "$url" --ca-file "$CA" --data-dir "$E2E_TMP/agent-$m" --socket "${SOCKS[$m]}" --tee sim --sim "$A/sim" \
    --join-token "$("$VOUCH" zone join-token default)" --batch-interval-ms 100 --checkin-interval 1 \
    >>"$E2E_TMP/agent-$m.log" 2>&1 &
  E2E_PIDS+=("$!")
  wait_agent_socket "${SOCKS[$m]}" "$E2E_TMP/agent-$m.log"
done
wc_() {  # MEMBER OUT_DIR: a workload certificate through that member's agent (no retry: a failure counts)
  "$VOUCH" workload cert --socket "${SOCKS[$1]}" --out "$2" --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 1 \
    --isvsvn 1 >/dev/null 2>>"$E2E_TMP/wc.err"
}
for m in a b; do wc_ "$m" "$E2E_TMP/hb-$m" || fail "workload on $m: $(tail -1 "$E2E_TMP/wc.err")"; done
ok "a workload got a certificate through each member's agent"
hb_seq() { psql_q "SELECT last_seq FROM instances WHERE id = '$(jq_get '["instance_id"]' <"$E2E_TMP/hb-$1/instance.json")'"; }
queued() { find "$E2E_TMP/agent-$1/queue" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9]{20}' 2>/dev/null | wc -l; }

# ---- 1. rotation on A under load on both members; B picks the key up by attestation
KEY0=$(key_id "$A/master.key")
FAILED_A=$(failed_requests "$UA"); FAILED_B=$(failed_requests "$UB")  # answers of the set-up, before the load
$LOAD --urls "$UA" --ca "$CA" --token "$TOKEN" --build "$BUILD" --csr "$E2E_TMP/w.csr" --seconds 10 --threads 2 \
  >"$E2E_TMP/load-a.json" & LA=$!
$LOAD --urls "$UB" --ca "$CA" --token "$TOKEN" --build "$BUILD" --csr "$E2E_TMP/w.csr" --seconds 10 --threads 2 \
  >"$E2E_TMP/load-b.json" & LB=$!
LOADERS=()
for m in a b; do
  ( while [[ ! -e $E2E_TMP/stop ]]; do
      "$VOUCH" workload heartbeat --socket "${SOCKS[$m]}" --dir "$E2E_TMP/hb-$m" --count 10 --interval-ms 20 >/dev/null 2>&1 \
        || echo "heartbeat through $m failed" >>"$E2E_TMP/load.err"
    done ) &
  LOADERS+=("$!")
  ( i=0
    while [[ ! -e $E2E_TMP/stop ]]; do
      i=$((i + 1)); wc_ "$m" "$E2E_TMP/certs-$m-$i" || echo "workload certificate through $m failed" >>"$E2E_TMP/load.err"
    done ) &
  LOADERS+=("$!")
done
sleep 2  # on purpose: the load runs a while before the rotation (a fixed time, nothing to poll for)
rotated=$("$VOUCH" master-key rotate -o json) || fail "vouch master-key rotate (on A): $rotated"
KEY1=$(echo "$rotated" | jq_get '["key_id"]')
[[ -n "$KEY1" && "$KEY1" != "$KEY0" ]] || fail "the rotation answered no new key id: ${rotated:0:300}"
expect_eq "A's master.key is the new key" "$KEY1" "$(key_id "$A/master.key")"
T0=$(date +%s%3N)
wait_until "B picks up the rotated key (its master.key is A's)" 150 same_key
echo "# B picked up the rotated key $(( $(date +%s%3N) - T0 )) ms after the rotation answered"
ok "B's master.key is the new key ($KEY1), no restart"
wait_until "B reports vouch_master_key_current 1" 50 output_is 1 metric "$UB" vouch_master_key_current
expect_eq "B is ready" ready "$(curl -fsS --cacert "$CA" "$UB/readyz")"
expect_eq "the adoption is audited with the new key id (no key bytes)" "$KEY1 $KEY0" \
  "$(psql_q "SELECT detail::json->>'key_id', detail::json->>'previous_key_id' FROM audit WHERE action = 'master_key.adopt'" | tr '|' ' ')"
expect_eq "A granted the key to B by attestation (cluster.join ok: the join, then the pickup)" 1 \
  "$(psql_q "SELECT CASE WHEN COUNT(*) >= 2 THEN 1 ELSE 0 END FROM audit WHERE action = 'cluster.join' AND outcome = 'ok'")"
wait "$LA" || fail "load on A"; wait "$LB" || fail "load on B"
touch "$E2E_TMP/stop"
for p in "${LOADERS[@]}"; do wait "$p"; done
for m in a b; do
  n=$(jq_get '["ok"]' <"$E2E_TMP/load-$m.json")
  [[ $n -gt 5 ]] || fail "too few certificates issued through $m: $(head -c 300 "$E2E_TMP/load-$m.json")"
  expect_eq "no admin issuance failed on $m across the rotation ($n issued)" 0 "$(jq_get '["failed"]' <"$E2E_TMP/load-$m.json")"
done
expect_eq "no workload certificate or heartbeat failed across the rotation" "" "$(cat "$E2E_TMP/load.err" 2>/dev/null)"
ls -d "$E2E_TMP"/certs-b-* >/dev/null || fail "no workload certificate through B's agent"
echo "# workload certificates during the run: $(find "$E2E_TMP" -maxdepth 1 -name "certs-a-*" | wc -l) through A, $(find "$E2E_TMP" -maxdepth 1 -name "certs-b-*" | wc -l) through B"
for m in a b; do
  wait_until "agent $m's queue drains" 100 output_is 0 queued "$m"
  expect_eq "every heartbeat acknowledged through $m is in the store" "$(jq_get '["last_seq"]' <"$E2E_TMP/hb-$m/instance.json")" "$(hb_seq "$m")"
done
expect_eq "no request answered an error on A during the run (http_requests_total)" "$FAILED_A" "$(failed_requests "$UA")"
expect_eq "no request answered an error on B during the run (http_requests_total)" "$FAILED_B" "$(failed_requests "$UB")"

# A sealing operation on B after the pickup: the zone's CA key is sealed under the new key.
code=$(api -o "$E2E_TMP/zone.json" -w '%{http_code}' -X POST "$UB/api/v1/zones" -d '{"name":"after-pickup"}')
expect_eq "B creates a zone (a sealing operation) after the pickup" 201 "$code"
opens_with() {  # ZONE KEYFILE: 'opens' when the zone's sealed CA key opens with KEYFILE's key
  python3 - "$(psql_q "SELECT id FROM zones WHERE name = '$1'")" "$(psql_q "SELECT encode(ca_key_sealed, 'hex') FROM zones WHERE name = '$1'")" "$2" <<'PY'
import sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
zid, sealed, keyfile = sys.argv[1], bytes.fromhex(sys.argv[2]), sys.argv[3]
try:
    AESGCM(open(keyfile, "rb").read()).decrypt(sealed[:12], sealed[12:], ("vouch:zone-ca-key:" + zid).encode())
    print("opens")
except Exception:
    print("does not open")
PY
}
expect_eq "its CA key opens with A's key" opens "$(opens_with after-pickup "$A/master.key")"
expect_eq "A uses it: the zone's CRL from A verifies against its CA" "verify OK" \
  "$(curl -fsS --cacert "$CA" "$UA/api/v1/zones/after-pickup/crl" -o "$E2E_TMP/crl.der" && \
     psql_q "SELECT ca_cert_pem FROM zones WHERE name = 'after-pickup'" >"$E2E_TMP/zca.pem" && \
     openssl crl -inform DER -in "$E2E_TMP/crl.der" -CAfile "$E2E_TMP/zca.pem" -noout 2>&1 | tr -d '\n')"

# ---- 2. joining refused: A without --allow-cluster-join, rotated again
cp "$B/master.key" "$E2E_TMP/b-key-1"
stop a
serve "$A" "$UA" a "$VOUCHD"
api -o /dev/null -X POST "$UA/api/v1/master-key/rotate" -d '{}' || fail "second rotation on A"
KEY2=$(key_id "$A/master.key")
wait_until "B notices that the key was rotated (metric 0)" 100 output_is 0 metric "$UB" vouch_master_key_current
wait_until "B logs that it must re-join" 100 file_has "$E2E_TMP/b.log" "re-join this member (vouchd join)"
expect_contains "the line names the peer's refusal" "does not accept cluster joins" \
  "$(grep 're-join this member' "$E2E_TMP/b.log" | tail -1)"
expect_contains "B is not ready (master_key_rotated)" '"code":"master_key_rotated"' "$(curl -sS --cacert "$CA" "$UB/readyz")"
code=$(api -o "$E2E_TMP/cert.json" -w '%{http_code}' -X POST "$UB/api/v1/certificates" \
  -d "$(python3 -c 'import json,sys; print(json.dumps({"build_id": sys.argv[1], "csr": open(sys.argv[2]).read()}))' "$BUILD" "$E2E_TMP/w.csr")")
expect_eq "B still issues certificates" 201 "$code"
before=$(hb_seq b)
"$VOUCH" workload heartbeat --socket "${SOCKS[b]}" --dir "$E2E_TMP/hb-b" --count 3 --interval-ms 20 >/dev/null || fail "heartbeat through B"
wait_until "B still records heartbeats" 100 output_is "$((before + 3))" hb_seq b
zones_before=$(psql_q "SELECT COUNT(*) FROM zones")
out=$(api -w ' %{http_code}' -X POST "$UB/api/v1/zones" -d '{"name":"while-stale"}')
expect_contains "a sealing operation on B is refused 503 master_key_rotated" '"code":"master_key_rotated"' "$out"
expect_eq "with status 503" 503 "${out##* }"
expect_eq "nothing was written" "$zones_before" "$(psql_q "SELECT COUNT(*) FROM zones")"
cmp -s "$B/master.key" "$E2E_TMP/b-key-1" || fail "B's master.key changed without a grant"
[[ "$(key_id "$B/master.key")" != "$KEY2" ]] || fail "B holds the new key without a grant"
ok "B keeps its old key: nothing was granted"
expect_eq "B reports vouch_master_key_current 0" 0 "$(metric "$UB" vouch_master_key_current)"
# Joining enabled again on A: B picks the key up by itself (its retries back off to 7.5 s here).
stop a
serve "$A" "$UA" a "$VOUCHD" --allow-cluster-join
wait_until "B picks up the key once A allows joins" 200 same_key
wait_until "B is ready again" 50 output_is ready curl -fsS --cacert "$CA" "$UB/readyz"
code=$(api -o /dev/null -w '%{http_code}' -X POST "$UB/api/v1/zones" -d '{"name":"after-second-pickup"}')
expect_eq "B creates a zone again" 201 "$code"
expect_eq "its CA key opens with A's key" opens "$(opens_with after-second-pickup "$A/master.key")"

# ---- 3. B down during a rotation, back as a modified binary: refused; as the approved one: picks it up at start
stop b
api -o /dev/null -X POST "$UA/api/v1/master-key/rotate" -d '{}' || fail "third rotation on A"
cp "$VOUCHD" "$E2E_TMP/vouchd-modified" && printf 'tampered' >>"$E2E_TMP/vouchd-modified"
denied=$(psql_q "SELECT COUNT(*) FROM audit WHERE action = 'cluster.join' AND outcome = 'denied'")
if timeout 30 "$E2E_TMP/vouchd-modified" serve --data-dir "$B" >"$E2E_TMP/b-modified.log" 2>&1; then
  fail "a modified binary with the old key started"
fi
expect_contains "a modified binary with the old key gets nothing and is told to re-join" "re-join this member (vouchd join)" \
  "$(tail -1 "$E2E_TMP/b-modified.log")"
expect_contains "A refused its evidence" "not an approved vouchd build" "$(tail -1 "$E2E_TMP/b-modified.log")"
expect_eq "A refuses the modified binary's evidence (audited)" "$((denied + 1)) measurement_not_allowed" \
  "$(psql_q "SELECT COUNT(*) FROM audit WHERE action = 'cluster.join' AND outcome = 'denied'") $(psql_q \
    "SELECT detail::json->>'reason' FROM audit WHERE action = 'cluster.join' AND outcome = 'denied' ORDER BY seq DESC LIMIT 1")"
same_key >/dev/null && fail "the modified binary obtained the key"
CHECK_MS=60000 serve "$B" "$UB" b "$VOUCHD"
same_key || fail "B restarted with the old key did not pick up the new one at start"
ok "B restarted with the old key picks up the new one at start, before serving"
expect_eq "and is ready" ready "$(curl -fsS --cacert "$CA" "$UB/readyz")"

# ---- 4. B checks only every 60 s: a request answered 503 master_key_rotated makes it check at once
"$VOUCH" master-key rotate >/dev/null || fail "fourth rotation on A"
out=$(api -X POST "$UB/api/v1/zones" -d '{"name":"poke"}')
expect_contains "a sealing operation on B right after the rotation is refused" '"code":"master_key_rotated"' "$out"
wait_until "that refusal wakes B's pickup (long before its 60 s check)" 100 same_key
ok "B picked up the key within 10 s of the refusal"
expect_eq "the audit chain is one valid chain" true "$(api "$UA/api/v1/audit/verify" | jq_get '["ok"]')"
validate_recorded_api
echo "passed $E2E_PASSED checks"
