#!/usr/bin/env bash
# End-to-end: vouchd + vouch-agent (sim TEE) + sim workloads on loopback, checked with openssl
# (verify, s_server/s_client), curl and the CLI. Happy path, every refusal, and the fault cases
# of issue 4 (manager down during heartbeats, agent kill -9, vouchd kill -9 during issuance).
# Usage: agent_test.sh VOUCHD VOUCH VOUCH_AGENT
source "$(dirname "$0")/lib.sh"
record_api  # every API answer the CLI gets is checked against docs/api/openapi.json at the end
VOUCHD=$1
VOUCH=$2
AGENT=$3
D=$E2E_TMP/manager
PORT=$(free_port)
URL=https://127.0.0.1:$PORT
export VOUCH_CONFIG=$E2E_TMP/cli.json
printf 'admin-password-123\n' >"$E2E_TMP/admin.pw"

"$VOUCHD" init --dev --data-dir "$D" --admin-user admin --admin-password-file "$E2E_TMP/admin.pw" \
  --listen "127.0.0.1:$PORT" >/dev/null || fail "vouchd init --dev"
[[ -f "$D/sim/tcbInfo.json" ]] || fail "init --dev made no sim vendor"
ok "vouchd init --dev wrote a sim vendor"
"$VOUCH" sim init "$E2E_TMP/sim-old" --tcb out-of-date --validity-days 3 >/dev/null || fail "sim init out-of-date"

VOUCHD_EXTRA=()
start_vouchd() {
  "$VOUCHD" serve --data-dir "$D" --collateral "$E2E_TMP/sim-old" --heartbeat-interval 2 --collateral-check-seconds 1 \
    "${VOUCHD_EXTRA[@]}" \
    >>"$E2E_TMP/vouchd.log" 2>&1 &
  VOUCHD_PID=$!
  E2E_PIDS+=("$VOUCHD_PID")
  wait_healthy "$URL" "$D/service-ca.pem" "$VOUCHD_PID" || { tail -20 "$E2E_TMP/vouchd.log"; fail "vouchd did not become healthy"; }
}
start_vouchd
expect_contains "vouchd warns of collateral expiring within a week" "collateral in $E2E_TMP/sim-old expires at" \
  "$(cat "$E2E_TMP/vouchd.log")"
"$VOUCH" login --server "$URL" --ca-file "$D/service-ca.pem" --user admin --password-file "$E2E_TMP/admin.pw" >/dev/null \
  || fail "login"
"$VOUCH" zone ca default >"$E2E_TMP/zone-ca.pem" || fail "zone ca"

# ---- agent: provisioning
A=$E2E_TMP/agent
SOCK=$A/agent.sock
start_agent() {  # extra args...
  "$AGENT" --server "$URL" --ca-file "$D/service-ca.pem" --data-dir "$A" --socket "$SOCK" --tee sim --sim "$D/sim" \
    --batch-interval-ms 200 --checkin-interval 1 "$@" >>"$E2E_TMP/agent.log" 2>&1 &
  AGENT_PID=$!
  E2E_PIDS+=("$AGENT_PID")
  wait_agent_socket "$SOCK" "$E2E_TMP/agent.log" "$AGENT_PID"
}
TOKEN=$("$VOUCH" zone join-token default) || fail "join-token"
# The socket's group: any group when root, else our own.
if [[ $(id -u) == 0 ]] && getent group nogroup >/dev/null; then SGROUP=nogroup; else SGROUP=$(id -gn); fi
start_agent --join-token "$TOKEN" --socket-group "$SGROUP"
NODE=$(curl -fsS --unix-socket "$SOCK" http://agent/v1/version | jq_get '["node_id"]')
expect_contains "agent provisioned a node" "node_" "$NODE"
expect_eq "node key is 0600" 600 "$(stat -c %a "$A/node-key.pem")"
expect_eq "workload socket is 0660" 660 "$(stat -c %a "$SOCK")"
expect_eq "workload socket belongs to --socket-group" "$SGROUP" "$(stat -c %G "$SOCK")"
node=$("$VOUCH" node get "$NODE" -o json)
expect_eq "node recorded as sim-sgx" sim-sgx "$(echo "$node" | jq_get '["platform"]')"
expect_eq "node TCB UpToDate" UpToDate "$(echo "$node" | jq_get '["tcb_status"]')"
expect_eq "node fmspc recorded" 00906ed50000 "$(echo "$node" | jq_get '["fmspc"]')"
openssl verify -CAfile "$A/node-ca.pem" "$A/node-cert.pem" >/dev/null || fail "node cert does not chain to the node CA"
ok "node certificate verifies under the node CA"

# ---- app and builds: approved, pending, denied, revoked
"$VOUCH" app create web --zone default --domain web.example.com --domain '*.svc.example.com' >/dev/null || fail "app create"
approve_domains "$VOUCH" web
MRS=$(printf 'cd%.0s' {1..32})
mre() { printf "$1%.0s" {1..64}; }
mkbuild() {  # MRENCLAVE-CHAR -> build id (pending)
  "$VOUCH" build create --app web --mrenclave "$(mre "$1")" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 -o json | jq_get '["id"]'
}
task_of() { "$VOUCH" build get "$1" -o json | jq_get '["task_id"]'; }
B_OK=$(mkbuild a); "$VOUCH" task approve "$(task_of "$B_OK")" >/dev/null || fail approve
mkbuild b >/dev/null  # stays pending
B_DEN=$(mkbuild c); "$VOUCH" task deny "$(task_of "$B_DEN")" --reason "unknown signer" >/dev/null || fail deny
B_REV=$(mkbuild e); "$VOUCH" task approve "$(task_of "$B_REV")" >/dev/null; "$VOUCH" build revoke "$B_REV" >/dev/null || fail revoke

wcert() {  # OUT MRE-CHAR [args...]
  local out=$1 m=$2; shift 2
  "$VOUCH" workload cert --socket "$SOCK" --out "$out" --mrenclave "$(mre "$m")" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 "$@"
}

# ---- happy path
W=$E2E_TMP/w1
wcert "$W" a --dns web.example.com >/dev/null 2>"$E2E_TMP/err" || fail "workload cert: $(cat "$E2E_TMP/err")"
expect_eq "workload key is 0600" 600 "$(stat -c %a "$W/key.pem")"
cmp -s "$W/ca.pem" "$E2E_TMP/zone-ca.pem" || fail "ca.pem is not the zone root"
ok "ca.pem is the zone root CA"
expect_eq "openssl verify -CAfile zone-ca.pem" "$W/cert.pem: OK" "$(openssl verify -CAfile "$E2E_TMP/zone-ca.pem" "$W/cert.pem" 2>&1)"
expect_contains "leaf carries the SPIFFE id" "spiffe://default/app/web" "$(openssl x509 -in "$W/cert.pem" -noout -text)"
SPORT=$(free_port)
openssl s_server -accept "$SPORT" -cert "$W/cert.pem" -key "$W/key.pem" -www -quiet >/dev/null 2>&1 &
E2E_PIDS+=("$!")
wait_until "openssl s_server listens on port $SPORT" 50 tcp_open "$SPORT"
out=$(echo | openssl s_client -connect "127.0.0.1:$SPORT" -verify_return_error -CAfile "$E2E_TMP/zone-ca.pem" \
  -verify_hostname web.example.com 2>&1)
expect_contains "s_client accepts the workload's s_server" "Verification: OK" "$out"
if echo | openssl s_client -connect "127.0.0.1:$SPORT" -verify_return_error -CAfile "$E2E_TMP/zone-ca.pem" \
  -verify_hostname other.example.com >/dev/null 2>&1; then fail "s_client accepted a wrong host name"; fi
ok "s_client refuses another host name"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$E2E_TMP/zone-ca.pem" --resolve "web.example.com:$SPORT:127.0.0.1" \
  "https://web.example.com:$SPORT/")
expect_eq "curl --cacert zone-ca.pem reaches the workload" 200 "$code"
INST=$(jq_get '["instance_id"]' <"$W/instance.json")
inst=$("$VOUCH" instance list -o json)
expect_contains "instance recorded" "$INST" "$inst"
expect_contains "instance on this node" "$NODE" "$inst"

# ---- refusals: each with its code, nothing issued, audited
certs_before=$("$VOUCH" cert list -o json | jq_get '["items"].__len__()')
refused() {  # WHAT CODE cmd...
  local what=$1 code=$2; shift 2
  if "$@" >/dev/null 2>"$E2E_TMP/err"; then fail "$what: was accepted"; fi
  expect_contains "$what refused with $code" "$code" "$(cat "$E2E_TMP/err")"
}
refused "pending build" build_pending wcert "$E2E_TMP/r1" b
refused "denied build" build_denied wcert "$E2E_TMP/r2" c
refused "revoked build" build_revoked wcert "$E2E_TMP/r3" e
refused "name outside the app's domains" domain_not_allowed wcert "$E2E_TMP/r4" a --dns evil.example.org
refused "debug enclave of a non-debug build" debug_not_allowed wcert "$E2E_TMP/r7" a --debug
audit=$("$VOUCH" audit list -o json)
for c in build_pending build_denied build_revoked domain_not_allowed debug_not_allowed; do
  expect_contains "audit has denied:$c" "denied:$c" "$audit"
done

# Hand-made requests through the socket: a report that binds another key, a tampered MAC.
openssl ecparam -name prime256v1 -genkey -noout -out "$E2E_TMP/k1.pem" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$E2E_TMP/k2.pem" 2>/dev/null
openssl req -new -key "$E2E_TMP/k1.pem" -subj /CN=web.example.com -out "$E2E_TMP/k1.csr" 2>/dev/null || fail "openssl req"
openssl pkey -in "$E2E_TMP/k1.pem" -pubout -outform DER -out "$E2E_TMP/k1.spki" 2>/dev/null
openssl pkey -in "$E2E_TMP/k2.pem" -pubout -outform DER -out "$E2E_TMP/k2.spki" 2>/dev/null
TARGET=$(curl -fsS --unix-socket "$SOCK" http://agent/v1/target-info | jq_get '["mrenclave"]')
local_request() {  # SPKI-FILE-BOUND TAMPER(0|1) -> writes request.json
  python3 - "$1" "$2" "$TARGET" "$E2E_TMP/k1.csr" "$(mre a)" "$MRS" "$SOCK" "$E2E_TMP/request.json" <<'PY'
import base64, hashlib, json, struct, subprocess, sys
spki, tamper, target, csr, mre, mrs, sock, out = sys.argv[1:]
body = bytearray(384)
struct.pack_into('<QQ', body, 48, 0x5, 0x3)            # attributes: INIT | MODE64BIT, xfrm
body[64:96] = bytes.fromhex(mre)                         # MRENCLAVE
body[128:160] = bytes.fromhex(mrs)                       # MRSIGNER
struct.pack_into('<HH', body, 256, 1, 1)                 # ISVPRODID, ISVSVN
body[320:352] = hashlib.sha256(open(spki, 'rb').read()).digest()
req = json.dumps({"report_body": base64.b64encode(bytes(body)).decode(), "target_mrenclave": target})
r = subprocess.run(["curl", "-fsS", "--unix-socket", sock, "-H", "Content-Type: application/json", "-d", req,
                    "http://agent/v1/sim/report"], capture_output=True, check=True)
report = bytearray(base64.b64decode(json.loads(r.stdout)["report"]))
assert len(report) == 432
if tamper == "1":
    report[420] ^= 1                                     # a bit of the MAC
json.dump({"csr": open(csr).read(), "report": base64.b64encode(bytes(report)).decode()}, open(out, "w"))
PY
}
post_local() { curl -s --unix-socket "$SOCK" -H 'Content-Type: application/json' --data @"$E2E_TMP/request.json" http://agent/v1/certificate; }
local_request "$E2E_TMP/k1.spki" 0 || fail "building a local request"
expect_contains "a correct hand-made request is issued" "certificate_pem" "$(post_local)"
local_request "$E2E_TMP/k2.spki" 0
expect_contains "report not binding the CSR key refused" '"code":"report_data_mismatch"' "$(post_local)"
local_request "$E2E_TMP/k1.spki" 1
expect_contains "tampered report MAC refused" '"code":"report_mac_invalid"' "$(post_local)"
expect_contains "agent audit log has report_mac_invalid" report_mac_invalid "$(cat "$A/refusals.log")"
expect_contains "agent audit log has report_data_mismatch" report_data_mismatch "$(cat "$A/refusals.log")"
# The agent reports its local refusals with its next check-in; vouchd audits them.
# For wait_until: vouchd's audit log holds every TEXT.
audit_has() {
  local a w
  a=$("$VOUCH" audit list -o json) || return 1
  for w in "$@"; do [[ "$a" == *"$w"* ]] || { echo "no $w in the audit log"; return 1; }; done
}
wait_until "vouchd audited the agent's two local refusals" 50 audit_has denied:report_mac_invalid denied:report_data_mismatch
audit=$("$VOUCH" audit list -o json)
for c in report_mac_invalid report_data_mismatch; do
  expect_eq "vouchd audited the agent's local refusal $c (by the node, for the claimed MRENCLAVE)" \
    "node:$NODE mrenclave:$(mre a)" \
    "$(echo "$audit" | python3 -c "import json,sys; print(*[(e['actor'], e['target']) for e in json.load(sys.stdin)['items'] if e['outcome']=='denied:$c'][0])")"
done
certs_after=$("$VOUCH" cert list -o json | jq_get '["items"].__len__()')
expect_eq "refusals issued nothing (one hand-made success)" "$((certs_before + 1))" "$certs_after"

# A heartbeat after the instance stopped is rejected as instance_stopped (not "replayed").
wcert "$E2E_TMP/w3" a >/dev/null 2>"$E2E_TMP/err" || fail "workload cert w3: $(cat "$E2E_TMP/err")"
"$VOUCH" workload heartbeat --socket "$SOCK" --dir "$E2E_TMP/w3" --status stopping >/dev/null || fail "stopping heartbeat"
"$VOUCH" workload heartbeat --socket "$SOCK" --dir "$E2E_TMP/w3" >/dev/null || fail "heartbeat after stop"
wait_until "vouchd audited the heartbeat for the stopped instance" 50 audit_has instance_stopped
audit=$("$VOUCH" audit list -o json)
expect_contains "a heartbeat for a stopped instance is rejected as instance_stopped" instance_stopped "$audit"

# Node provisioning refusals.
try_agent() {  # DATA-DIR SIM-DIR TOKEN -> stderr of a failed start
  if "$AGENT" --server "$URL" --ca-file "$D/service-ca.pem" --data-dir "$1" --socket "$1/s.sock" --tee sim --sim "$2" \
    --join-token "$3" >/dev/null 2>"$E2E_TMP/err"; then fail "agent with $2 started"; fi
  cat "$E2E_TMP/err"
}
expect_contains "out-of-date sim platform refused under UpToDate" tcb_too_old \
  "$(try_agent "$E2E_TMP/a-old" "$E2E_TMP/sim-old" "$("$VOUCH" zone join-token default)")"
"$VOUCH" zone create strict >/dev/null || fail "zone create strict"
expect_contains "sim evidence refused in a zone without allow-sim" sim_not_allowed \
  "$(try_agent "$E2E_TMP/a-strict" "$D/sim" "$("$VOUCH" zone join-token strict)")"
expect_contains "replayed join token refused" join_token_invalid "$(try_agent "$E2E_TMP/a-replay" "$D/sim" "$TOKEN")"
# A replayed nonce, by hand: the same provisioning request twice (fresh token each time).
NONCE=$(curl -fsS --cacert "$D/service-ca.pem" -X POST "$URL/api/v1/nodes/nonce" | jq_get '["nonce"]')
python3 -c "import sys,hashlib; print(hashlib.sha256(open(sys.argv[1],'rb').read()+bytes.fromhex(sys.argv[2])).hexdigest())" \
  "$E2E_TMP/k2.spki" "$NONCE" >"$E2E_TMP/rd"
"$VOUCH" sim quote --sim "$D/sim" --agent --report-data "$(cat "$E2E_TMP/rd")" --out "$E2E_TMP/q.bin" >/dev/null \
  || fail "sim quote"  # --agent: as the shipped sim agent, the identity the zone accepts
provision_body() {
  python3 -c "import json,base64,sys; print(json.dumps({'join_token':sys.argv[1],'nonce':sys.argv[2],'platform':'sgx',
'public_key':base64.b64encode(open(sys.argv[3],'rb').read()).decode(),'evidence':base64.b64encode(open(sys.argv[4],'rb').read()).decode()}))" \
    "$1" "$NONCE" "$E2E_TMP/k2.spki" "$E2E_TMP/q.bin"
}
r1=$(curl -s --cacert "$D/service-ca.pem" -H 'Content-Type: application/json' -d "$(provision_body "$("$VOUCH" zone join-token default)")" "$URL/api/v1/nodes")
expect_contains "hand-made provisioning accepted" certificate_pem "$r1"
r2=$(curl -s --cacert "$D/service-ca.pem" -H 'Content-Type: application/json' -d "$(provision_body "$("$VOUCH" zone join-token default)")" "$URL/api/v1/nodes")
expect_contains "replayed nonce refused" '"code":"nonce_invalid"' "$r2"
audit=$("$VOUCH" audit list -o json)
for c in tcb_too_old sim_not_allowed join_token_invalid nonce_invalid; do
  expect_contains "audit has denied:$c" "denied:$c" "$audit"
done
# Agent routes refuse a client without a node certificate, and a bearer-token user.
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$D/service-ca.pem" -H 'Content-Type: application/json' -d '{}' "$URL/api/v1/heartbeats")
expect_eq "heartbeats without a node certificate: 401" 401 "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$D/service-ca.pem" --cert "$A/node-cert.pem" --key "$A/node-key.pem" \
  -H 'Content-Type: application/json' -d '{"heartbeats":[]}' "$URL/api/v1/heartbeats")
expect_eq "heartbeats with the node certificate (curl --cert): 200" 200 "$code"

# ---- fault: manager down while the workload heartbeats; everything arrives afterwards. The agent
# runs with a queue bound of 22 records: past it, heartbeats are refused (503), never dropped.
"$VOUCH" workload heartbeat --socket "$SOCK" --dir "$W" --count 5 >/dev/null || fail "heartbeats"
queue_len() { find "$A/queue" -type f | wc -l; }
wait_until "the agent's heartbeat queue is drained" 100 output_is 0 queue_len
kill -TERM "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
start_agent --queue-max 22
kill -TERM "$VOUCHD_PID"; wait "$VOUCHD_PID" 2>/dev/null
"$VOUCH" workload heartbeat --socket "$SOCK" --dir "$W" --count 20 >/dev/null 2>"$E2E_TMP/err" \
  || fail "heartbeats while the manager is down were not acknowledged: $(cat "$E2E_TMP/err")"
ok "agent acknowledged 20 heartbeats while vouchd was down"
at_least_20_queued() { local n; n=$(queue_len); echo "$n queued"; [[ "$n" -ge 20 ]]; }
wait_until "at least 20 heartbeat records are queued on disk" 50 at_least_20_queued
queued=$(queue_len)
[[ "$queued" -ge 20 ]] || fail "expected >= 20 queued records on disk, saw $queued"
ok "heartbeats are queued on disk ($queued)"
# MAC heartbeats (docs/formats/heartbeat-key.md): the P-256 workload got the zone's heartbeat key
# at issuance and MACs its heartbeats; the agent queues them as they came.
expect_eq "instance.json names the zone's heartbeat key (version 1)" 1 "$(jq_get '["heartbeat_key"]["version"]' <"$W/instance.json")"
queued_forms() {
  cat "$A"/queue/* | python3 -c "
import json, sys
forms = set()
for line in sys.stdin.read().replace('}{', '}\n{').splitlines():
    r = json.loads(line)
    forms.add(('mac' if 'mac' in r else '') + ('signature' if 'signature' in r else ''))
print(' '.join(sorted(forms)))"
}
expect_eq "the queued heartbeats carry a MAC, not a signature" mac "$(queued_forms)"
out=$("$VOUCH" workload heartbeat --socket "$SOCK" --dir "$W" --count 5 -o json 2>/dev/null) \
  && fail "heartbeats past the queue bound were acknowledged"
expect_eq "past the bound (22): 2 more acknowledged, then refused with queue_full" "2 queue_full 27" \
  "$(echo "$out" | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['acknowledged'], d['error']['code'], d['last_seq'])")"
expect_eq "the workload keeps the unacknowledged sequence number" 27 "$(jq_get '["last_seq"]' <"$W/instance.json")"
hb='{"instance_id":"'$INST'","seq":28,"timestamp":'$(date +%s)',"status":"running","signature":"AAAA"}'
curl -s -D "$E2E_TMP/hdr" -o "$E2E_TMP/body" --unix-socket "$SOCK" -H 'Content-Type: application/json' -d "$hb" \
  http://agent/v1/heartbeat
expect_eq "the workload API answers 503 past the bound" 503 "$(head -1 "$E2E_TMP/hdr" | cut -d' ' -f2)"
expect_contains "with Retry-After" "retry-after: 5" "$(tr 'A-Z' 'a-z' <"$E2E_TMP/hdr")"
expect_eq "and a JSON error queue_full" queue_full "$(jq_get '["error"]["code"]' <"$E2E_TMP/body")"
hb='{"instance_id":"'$INST'","seq":28,"timestamp":'$(date +%s)',"status":"running","mac":"AAAA"}'
code=$(curl -s -o "$E2E_TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -H 'Content-Type: application/json' -d "$hb" \
  http://agent/v1/heartbeat)
expect_eq "the agent refuses a MAC that is not 32 bytes: 400" 400 "$code"
refused "certificate request while the manager is down" manager_unavailable wcert "$E2E_TMP/r5" a
# A local refusal while the manager is down survives an agent kill -9 (and the queued heartbeats too).
local_request "$E2E_TMP/k1.spki" 1
expect_contains "tampered report MAC refused while the manager is down" '"code":"report_mac_invalid"' "$(post_local)"
expect_eq "the refusal waits on disk for the manager" 1 "$(find "$A/refusals-queue" -type f | wc -l)"
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
start_agent --queue-max 22
start_vouchd
last_seq() {
  "$VOUCH" instance list -o json |
    python3 -c "import json,sys; print([i['last_seq'] for i in json.load(sys.stdin)['items'] if i['id']=='$INST'][0])"
}
mac_refusals_audited() {
  "$VOUCH" audit list -o json |
    python3 -c "import json,sys; print(sum(e['outcome']=='denied:report_mac_invalid' for e in json.load(sys.stdin)['items']))"
}
wait_until "vouchd has every acknowledged heartbeat (last_seq 27)" 100 output_is 27 last_seq
expect_eq "every acknowledged heartbeat arrived, across the agent's kill -9 (last_seq)" 27 "$(last_seq)"
heartbeats_accepted() {
  curl -fsS --cacert "$D/service-ca.pem" "$URL/metrics" | sed -n 's/^vouch_heartbeats_accepted_total //p'
}
wait_until "vouchd counted the 22 queued MAC heartbeats" 50 output_is 22 heartbeats_accepted
metrics=$(curl -fsS --cacert "$D/service-ca.pem" "$URL/metrics") || fail "metrics"
expect_contains "/metrics: no MAC heartbeat refused" 'vouch_heartbeats_rejected_total{reason="bad_mac"} 0' "$metrics"
expect_eq "queue drained" 0 "$(find "$A/queue" -type f | wc -l)"
wait_until "vouchd audited the second report_mac_invalid refusal" 50 output_is 2 mac_refusals_audited
expect_eq "the refusal made while the manager was down reached vouchd's audit log after the agent's kill -9" 2 "$(mac_refusals_audited)"
expect_eq "refusal queue drained" 0 "$(find "$A/refusals-queue" -type f | wc -l)"
# (the queued heartbeats carry their old timestamps: a fresh one shows the instance running)
"$VOUCH" workload heartbeat --socket "$SOCK" --dir "$W" >/dev/null || fail "heartbeat after the manager returned"
inst_status() {
  "$VOUCH" instance list -o json |
    python3 -c "import json,sys; print([i['status'] for i in json.load(sys.stdin)['items'] if i['id']=='$INST'][0])"
}
wait_until "the instance is running again" 50 output_is running inst_status
expect_eq "instance running" running "$(inst_status)"

# ---- fault: agent kill -9 and restart: same identity, workloads still served
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
TP=$(free_port)
start_agent --listen-tcp "127.0.0.1:$TP"
expect_eq "workload API also on loopback TCP (--listen-tcp)" "$NODE" \
  "$(curl -fsS "http://127.0.0.1:$TP/v1/version" | jq_get '["node_id"]')"
expect_eq "same node after restart" "$NODE" "$(curl -fsS --unix-socket "$SOCK" http://agent/v1/version | jq_get '["node_id"]')"
wcert "$E2E_TMP/w2" a --dns web.example.com >/dev/null 2>"$E2E_TMP/err" || fail "cert after agent restart: $(cat "$E2E_TMP/err")"
ok "workload served after agent restart"
wcert "$W" a --renew >/dev/null 2>"$E2E_TMP/err" || fail "renewal: $(cat "$E2E_TMP/err")"
expect_eq "renewal keeps the instance" "$INST" "$(jq_get '["instance_id"]' <"$W/instance.json")"

if "$AGENT" --server "$URL" --ca-file "$D/service-ca.pem" --data-dir "$A" --socket "$A/other.sock" --tee sim \
  --sim "$D/sim" --listen-tcp "0.0.0.0:$(free_port)" >/dev/null 2>"$E2E_TMP/err"; then fail "non-loopback TCP accepted"; fi
expect_contains "--listen-tcp refuses a non-loopback address" "loopback" "$(cat "$E2E_TMP/err")"

# ---- fault: kill -9 of vouchd during issuance load; every certificate a client got is stored
mkdir -p "$E2E_TMP/load"
for j in 1 2 3 4; do
  ( for i in $(seq 1 15); do
      o=$E2E_TMP/load/$j-$i
      wcert "$o" a >/dev/null 2>&1 || true
    done ) &
  LOADERS+=("$!")
done
sleep 1.5  # on purpose: the loaders are mid-issuance when vouchd is killed (a fixed time, nothing to poll for)
kill -9 "$VOUCHD_PID"; wait "$VOUCHD_PID" 2>/dev/null
ok "vouchd killed -9 during issuance"
for p in "${LOADERS[@]}"; do wait "$p"; done
VOUCHD_EXTRA=(--node-cert-validity-seconds 12)  # only certificates issued from now on
start_vouchd
got=0
for f in "$E2E_TMP"/load/*/instance.json; do
  [[ -f "$f" ]] || continue
  s=$(jq_get '["serial"]' <"$f")
  "$VOUCH" cert get "$s" -o json >/dev/null 2>&1 || fail "certificate $s was received but is not in the store"
  got=$((got + 1))
done
[[ "$got" -gt 0 ]] || fail "no certificate was issued during the load"
ok "all $got certificates received during the kill -9 are in the store"

# ---- node certificate renewal with fresh evidence: a second agent whose node certificate lives
# 12 s (vouchd's test knob) renews it after 30% of its life.
A2=$E2E_TMP/agent2
"$AGENT" --server "$URL" --ca-file "$D/service-ca.pem" --data-dir "$A2" --socket "$A2/s.sock" --tee sim --sim "$D/sim" \
  --join-token "$("$VOUCH" zone join-token default)" --renew-fraction 0.3 --batch-interval-ms 200 >>"$E2E_TMP/agent2.log" 2>&1 &
E2E_PIDS+=("$!")
wait_until "the second agent wrote $A2/node.json" 100 test -f "$A2/node.json"
T_FIRST=$(date +%s)
NODE2=$(jq_get '["node_id"]' <"$A2/node.json")
S1=$(jq_get '["serial"]' <"$A2/node.json")
node2_serial() { jq_get '["serial"]' <"$A2/node.json"; }
renewed() { local s; s=$(node2_serial); echo "serial $s"; [[ "$s" != "$S1" ]]; }
wait_until "the second agent renews its 12 s node certificate" 150 renewed
S2=$(jq_get '["serial"]' <"$A2/node.json")
[[ "$S2" != "$S1" ]] || fail "the agent did not renew its 12 s node certificate"
ok "the agent renewed its node certificate before expiry"
expect_eq "vouchd recorded the renewed node certificate" "valid $NODE2" \
  "$("$VOUCH" cert get "$S2" -o json | python3 -c "import json,sys; d=json.load(sys.stdin); print(d['status'], d.get('node_id') or d.get('node'))")"
expect_contains "the renewal (fresh evidence) is audited" node.renew "$("$VOUCH" audit list -o json)"
# Waits out a fixed time on purpose: the first certificate must have expired (nothing to poll for).
while (( $(date +%s) <= T_FIRST + 13 )); do sleep 0.5; done
"$VOUCH" workload cert --socket "$A2/s.sock" --out "$E2E_TMP/w4" --mrenclave "$(mre a)" --mrsigner "$MRS" --isvprodid 1 \
  --isvsvn 1 >/dev/null 2>"$E2E_TMP/err" || fail "issuance with the renewed node certificate: $(cat "$E2E_TMP/err")"
ok "the renewed node certificate keeps serving workloads after the first expired"
# A TCB recovery: new collateral under which this platform is OutOfDate, copied into the folder of
# the running vouchd, which notices the changed files (--collateral-check-seconds 1) without a
# restart. The next renewal (fresh evidence) is refused and the node's TCB is recorded as OutOfDate
# (from then on vouchd refuses its workloads with node_tcb_not_acceptable: libs/api/agent_api_test.cc).
PID_BEFORE=$VOUCHD_PID
"$VOUCH" sim tcb-recovery "$D/sim" >/dev/null || fail "sim tcb-recovery"
# "yes" once vouchd's log has at least N lines containing TEXT (the 1 s poll may add one more).
vouchd_logged() { [[ $(grep -c "$2" "$E2E_TMP/vouchd.log") -ge $1 ]] && echo yes; }
wait_until "vouchd reloads the changed collateral" 50 vouchd_logged 1 "collateral reloaded"
ok "vouchd reloads the changed collateral on its own"
node2_tcb() { "$VOUCH" node get "$NODE2" -o json | jq_get '["tcb_status"]'; }
wait_until "vouchd records the second node's TCB as OutOfDate" 150 output_is OutOfDate node2_tcb
expect_eq "renewal under new collateral records the node as OutOfDate" OutOfDate \
  "$("$VOUCH" node get "$NODE2" -o json | jq_get '["tcb_status"]')"
# The agent renews one at a time: once a refusal is recorded, no earlier renewal is in flight.
SX=$(jq_get '["serial"]' <"$A2/node.json")
expect_eq "and is refused (tcb_too_old, audited)" 1 \
  "$("$VOUCH" audit list -o json | python3 -c "import json,sys; print(min(1, sum(1 for e in json.load(sys.stdin)['items'] if e['action']=='node.renew' and e['outcome']=='denied:tcb_too_old' and e['actor']=='node:$NODE2')))")"
expect_contains "the agent logs the refused renewal" "renewal failed: " "$(grep tcb_too_old "$E2E_TMP/agent2.log")"
expect_eq "no restart was needed" "$PID_BEFORE" "$VOUCHD_PID"
kill -0 "$VOUCHD_PID" || fail "vouchd is gone"
# A broken copy is refused (logged once) and the previous collateral stays in use; SIGHUP reloads
# at once, even when no file changed.
cp "$D/sim/tcbInfo.json" "$E2E_TMP/tcbInfo.good"
head -c 100 "$E2E_TMP/tcbInfo.good" >"$E2E_TMP/tcbInfo.broken"
mv "$E2E_TMP/tcbInfo.broken" "$D/sim/tcbInfo.json"  # one change, as an operator's copy-then-rename makes
wait_until "vouchd refuses the broken collateral copy" 50 \
  vouchd_logged 1 "collateral reload failed, the previous collateral stays in use"
ok "a broken collateral copy is refused and logged"
curl -fsS --cacert "$D/service-ca.pem" "$URL/healthz" >/dev/null || fail "vouchd unhealthy after a broken collateral copy"
sleep 1.5  # on purpose: more 1 s collateral checks must NOT log the refusal again
expect_eq "the refusal is logged once, not at every check" 1 \
  "$(grep -c "collateral reload failed" "$E2E_TMP/vouchd.log")"
cp "$E2E_TMP/tcbInfo.good" "$E2E_TMP/tcbInfo.copy" && mv "$E2E_TMP/tcbInfo.copy" "$D/sim/tcbInfo.json"
wait_until "vouchd reloads the restored collateral" 50 vouchd_logged 2 "collateral reloaded"
ok "the restored collateral is reloaded"
sleep 1.5  # on purpose: lets a pending 1 s check pass, so that the count below is settled
reloads=$(grep -c "collateral reloaded" "$E2E_TMP/vouchd.log")
kill -HUP "$VOUCHD_PID"
wait_until "SIGHUP reloads the collateral" 20 vouchd_logged $((reloads + 1)) "collateral reloaded"
ok "SIGHUP reloads the collateral at once"
expect_eq "the agent keeps its old certificate (its renewals, every ~4 s, are refused)" "$SX" \
  "$(jq_get '["serial"]' <"$A2/node.json")"
kill -0 "$VOUCHD_PID" || fail "vouchd is gone after SIGHUP"
metrics=$(curl -fsS --cacert "$D/service-ca.pem" "$URL/metrics") || fail "metrics"
until_s=$(sed -n "s|^vouch_collateral_valid_until_seconds{dir=\"$D/sim\"} ||p" <<<"$metrics")
[[ -n "$until_s" ]] && python3 -c "import sys,time; sys.exit(0 if float('$until_s') > time.time() + 300*86400 else 1)" \
  || fail "vouch_collateral_valid_until_seconds for $D/sim: '$until_s'"
ok "/metrics says when each collateral folder expires (the sim's in a year)"
expect_contains "/metrics counts the refused reload" 'vouch_collateral_reloads_total{result="failed"} 1' "$metrics"

# ---- deactivation: refused, audited, certificates revoked into the CRL
SERIAL=$(jq_get '["serial"]' <"$E2E_TMP/w2/instance.json")
"$VOUCH" node deactivate "$NODE" >/dev/null || fail "node deactivate"
refused "deactivated node" node_deactivated wcert "$E2E_TMP/r6" a
for i in 1 2 3; do
  curl -s -o /dev/null --cacert "$D/service-ca.pem" --cert "$A/node-cert.pem" --key "$A/node-key.pem" \
    -H 'Content-Type: application/json' -d '{"heartbeats":[]}' "$URL/api/v1/heartbeats"
done
sleep 2  # on purpose: the agent's check-ins (every 1 s) are refused too, and must not be audited again
expect_eq "repeated refusals of the deactivated node are audited once" 1 \
  "$("$VOUCH" audit list -o json | python3 -c "import json,sys; print(sum(1 for e in json.load(sys.stdin)['items'] if e['action']=='node.authenticate' and e['outcome']=='denied:node_deactivated' and e['actor']=='node:$NODE'))")"
expect_contains "the refused agent backs off" "refuses this node" "$(cat "$E2E_TMP/agent.log")"
expect_eq "node's certificates revoked" revoked "$("$VOUCH" cert get "$SERIAL" -o json | jq_get '["status"]')"
"$VOUCH" zone crl default >"$E2E_TMP/crl.pem" || fail "zone crl"
cat "$E2E_TMP/zone-ca.pem" "$E2E_TMP/crl.pem" >"$E2E_TMP/ca-crl.pem"
if openssl verify -crl_check -CAfile "$E2E_TMP/ca-crl.pem" "$E2E_TMP/w2/cert.pem" >/dev/null 2>&1; then
  fail "revoked workload certificate still verifies with the CRL"
fi
ok "openssl verify -crl_check refuses the revoked workload certificate"
expect_eq "audit chain verifies" true "$("$VOUCH" audit verify -o json | jq_get '["ok"]')"
validate_recorded_api
echo "agent e2e: $E2E_PASSED checks passed"
