#!/usr/bin/env bash
# Issue 14 acceptance, end to end with real processes in one scenario: a TDX and an SEV-SNP sim
# node provision through the emulated configfs-tsm (`vouch sim tsm`, FUSE) against a vouchd on
# PostgreSQL that has never seen their collateral: the collateral service fetches it from `vouch
# sim pcs` (PCS and KDS) once; a second vouchd joined to the same store, its PCS unreachable,
# provisions a third node from the stored copy without a request; a converted image on each node
# (vouch-rte as PID 1 under runc) gets its certificate through the agent and serves TLS verified by
# `openssl s_client`; with the emulator stopped a node still provisions from the cache; after `vouch
# sim tcb-recovery` a refresh stores the new TDX TCB Info and the TDX node's renewal is refused
# (OutOfDate, audited); a PCS answer with a broken signature is refused and audited while the last
# good copy stays current.
# Usage: cvm_nodes_test.sh VOUCH VOUCH_RTE VOUCHD VOUCH_AGENT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"
VOUCH=$1
RTE=$2
VOUCHD=$3
AGENT=$4
record_api  # every API answer the CLI gets is checked against docs/api/openapi.json at the end
require_tools umoci runc busybox openssl curl sha256sum sha384sum python3
[[ -r /dev/fuse && -w /dev/fuse ]] || fail "/dev/fuse is not usable (scripts/setup installs fuse3)"
# PostgreSQL runs as another user, which cannot enter $E2E_TMP: started from /.
cd / && start_postgres
cd "$E2E_TMP" || fail "cd $E2E_TMP"
RUNC_ROOT=$E2E_TMP/runc
trap 'stop_containers_and_tsm; cd / && pg_cleanup' EXIT

# ---- 1. the sim platforms, their emulated kernels, one PCS/KDS emulator over both
"$VOUCH" sim init --platform tdx sim-tdx >/dev/null || fail "sim init tdx"
"$VOUCH" sim init --platform sev-snp sim-snp >/dev/null || fail "sim init sev-snp"
# The TDX kernel plays a second writer on the first report entry (another process in the guest
# writing its inblob between the agent's write and read): the agent must not send those blobs.
mount_tsm tdx sim-tdx --interfere 1
mount_tsm snp sim-snp
# The emulator is stopped and started again on the same address: its TLS identity is made here.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout pcs-ca.key -out pcs-ca.pem -days 2 \
  -subj /CN=e2e-pcs-ca >/dev/null 2>&1 || fail "make the emulator's CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout pcs.key -out pcs.csr -subj /CN=127.0.0.1 \
  >/dev/null 2>&1 || fail "make the emulator's key"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >pcs.ext
openssl x509 -req -in pcs.csr -CA pcs-ca.pem -CAkey pcs-ca.key -CAcreateserial -out pcs.pem -days 2 -extfile pcs.ext \
  >/dev/null 2>&1 || fail "sign the emulator's certificate"
PCS_PORT=$(free_port)
PCS=https://127.0.0.1:$PCS_PORT
start_pcs() {
  "$VOUCH" sim pcs --serve sim-tdx --serve sim-snp --listen "127.0.0.1:$PCS_PORT" --tls-cert pcs.pem --tls-key pcs.key \
    -o json >pcs.out 2>>pcs.log &
  PCS_PID=$!
  E2E_PIDS+=("$PCS_PID")
  wait_until "vouch sim pcs serves on $PCS" 100 curl -fsS --cacert pcs-ca.pem "$PCS/sim/v1/state" -o /dev/null
}
start_pcs
# counts: the emulator's answers per route and status, "route status=n" sorted, one line.
counts() {
  curl -fsS --cacert pcs-ca.pem "$PCS/sim/v1/state" |
    python3 -c 'import json,sys; c=json.load(sys.stdin)["counts"]; print(" ".join("%s=%d" % (k, v) for k, v in sorted(c.items()) if v))'
}
expect_eq "the emulator answered nothing yet" "" "$(counts)"

# ---- 2. vouchd on PostgreSQL, fetching from the emulator, given no collateral folder
D=$E2E_TMP/a
PORT=$(free_port)
URL=https://127.0.0.1:$PORT
CA=$D/service-ca.pem
export VOUCH_CONFIG=$E2E_TMP/cli.json
printf 'admin-password-123\n' >admin.pw
"$VOUCHD" init --dev --data-dir "$D" --admin-user admin --admin-password-file admin.pw --store "$PG_URL" \
  --listen "127.0.0.1:$PORT" >/dev/null || fail "vouchd init on PostgreSQL"
serve_manager --pccs-url "$PCS" --kds-url "$PCS" --collateral-ca-file pcs-ca.pem --kds-min-interval-ms 0 --allow-cluster-join \
  --collateral-refresh-check-seconds 1
"$VOUCH" login --server "$URL" --ca-file "$CA" --user admin --password-file admin.pw >/dev/null || fail "vouch login"
fetched() {  # "kind:source" of the items not imported, sorted, one line
  "$VOUCH" collateral list -o json |
    python3 -c 'import json,sys; print(" ".join(sorted(i["kind"]+":"+i["source"] for i in json.load(sys.stdin)["items"] if i["source"] != "import")))'
}
expect_eq "the manager holds no fetched collateral" "" "$(fetched)"

MRTD=$(printf 'vouch-agent-sim-tdx-mrtd-v1' | sha384sum | cut -d' ' -f1)
MEAS=$(printf 'vouch-agent-sim-snp-measurement-v1' | sha384sum | cut -d' ' -f1)
idents=$("$VOUCH" zone node-identity list default -o json) || fail "node-identity list"
for args in "--platform tdx --mrtd $MRTD" "--platform sev-snp --measurement $MEAS"; do
  [[ "$idents" == *"${args##* }"* ]] && continue
  # shellcheck disable=SC2086  # four words each
  task=$("$VOUCH" zone node-identity add default $args -o json | jq_get '["task_id"]') || fail "node-identity add $args"
  "$VOUCH" task approve "$task" >/dev/null || fail "approve $task"
done
idents=$("$VOUCH" zone node-identity list default -o json)
expect_contains "zone default accepts the sim agent's TDX MRTD" "$MRTD" "$idents"
expect_contains "zone default accepts the sim agent's SEV-SNP MEASUREMENT" "$MEAS" "$idents"

# ---- 3. a TDX and an SEV-SNP node through configfs-tsm
RTE_SHA=$(sha256sum "$RTE" | cut -d' ' -f1)
start_cvm_agent() {  # NAME TSM_NAME SERVER [FLAGS...]: sets SOCK, AGENT_PID
  local name=$1 tsm=$2 server=$3
  shift 3
  SOCK=$E2E_TMP/$name/agent.sock
  "$AGENT" --server "$server" --ca-file "$CA" --data-dir "$E2E_TMP/$name" --socket "$SOCK" --tee auto \
    --tsm-dir "$E2E_TMP/tsm-$tsm/report" --rte-sha256 "$RTE_SHA" --join-token "$("$VOUCH" zone join-token default)" \
    --batch-interval-ms 200 "$@" >>"$name.log" 2>&1 &
  AGENT_PID=$!
  E2E_PIDS+=("$AGENT_PID")
  wait_agent_socket "$SOCK" "$name.log" "$AGENT_PID"
  expect_contains "node $name provisioned through configfs-tsm" "provisioned node" "$(cat "$name.log")"
}
node_id() {  # AGENT_LOG -> the node id it logged
  sed -n 's/.*provisioned node \([^ ]*\) .*/\1/p' "$1" | head -1
}
start_cvm_agent tdx tdx "$URL"
TDX_PID=$AGENT_PID
TDX_SOCK=$SOCK
start_cvm_agent snp snp "$URL"
SNP_SOCK=$SOCK
expect_contains "the TDX agent discarded the report whose generation moved under it" \
  "1 report attempt(s) raced with another writer" "$(cat tdx.log)"
TDX_NODE=$(node_id tdx.log)
[[ -n "$TDX_NODE" ]] || fail "no node id in tdx.log: $(tail -3 tdx.log)"
platforms() { "$VOUCH" node list -o json | python3 -c 'import json,sys; print(" ".join(sorted(n["platform"] for n in json.load(sys.stdin)["items"])))'; }
expect_eq "vouch node list: a sim-sev-snp and a sim-tdx node" "sim-sev-snp sim-tdx" "$(platforms)"
expect_eq "vouch collateral list: what was fetched for them, from PCS and KDS" \
  "amd_crl:kds pck_crl:pcs root_ca_crl:pcs td_qe_identity:pcs tdx_tcb_info:pcs" "$(fetched)"
COUNTS=$(counts)
expect_eq "the emulator answered each item once" \
  "pckcrl 200=1 rootcacrl 200=1 tdx_qe_identity 200=1 tdx_tcb 200=1 vcek_crl 200=1" "$COUNTS"

# ---- 4. shared on PostgreSQL: a second vouchd, its PCS unreachable, uses the stored copy
B=$E2E_TMP/b
PB=$(free_port)
UB=https://127.0.0.1:$PB
"$VOUCHD" join --data-dir "$B" --peer "$URL" --ca-file "$CA" --store "$PG_URL" --listen "127.0.0.1:$PB" \
  --tee sim --sim "$D/sim" >join.out 2>&1 || fail "vouchd join: $(cat join.out)"
"$VOUCHD" serve --data-dir "$B" --pccs-url "https://127.0.0.1:9" --kds-url "https://127.0.0.1:9" >>vouchd-b.log 2>&1 &
E2E_PIDS+=($!)
wait_healthy "$UB" "$CA" "${E2E_PIDS[-1]}" || fail "the second vouchd did not become healthy: $(tail -20 vouchd-b.log)"
ok "a second vouchd joined the cluster on the same PostgreSQL (PCS and KDS: a closed port)"
start_cvm_agent tdx2 tdx "$UB"
expect_eq "the third node (TDX) was provisioned by the second vouchd" "sim-sev-snp sim-tdx sim-tdx" "$(platforms)"
expect_eq "the emulator was asked nothing for it" "$COUNTS" "$(counts)"

# ---- 5. a converted image on each node serves TLS with the certificate it got through its agent
"$VOUCH" app create cvm --zone default --domain cvm.example.com >/dev/null || fail "app create"
approve_domains "$VOUCH" cvm
"$VOUCH" zone ca default >zone-ca.pem || fail "vouch zone ca default"
openssl_image img:v1 sh
# shellcheck disable=SC2016  # expanded by the image's shell
umoci config --image img:v1 --config.entrypoint /bin/sh --config.cmd -c --config.cmd \
  'exec openssl s_server -accept "$PORT" -cert /run/vouch/certs/cert.pem -key /run/vouch/certs/key.pem -www' >/dev/null
conv=$("$VOUCH" convert --input oci:img:v1 --output oci:out:v1 --runtime "$RTE" --app cvm \
       --cert-dns cvm.example.com --mutable-env PORT -o json) || fail "convert"
approve_converted_build "$conv"
run_app() {  # NAME AGENT_SOCKET PORT: the image under runc on the host network, the socket bind-mounted
  unpack_for_runc out:v1 "run-$1" "$2" --host-network --env "PORT=$3"
  (cd "run-$1" && exec runc --root "$RUNC_ROOT" run "$1" >"../app-$1.log" 2>&1) &
}
serves_tls() {  # PORT NAME: a handshake verified under the zone CA for cvm.example.com
  echo | openssl s_client -connect "127.0.0.1:$1" -verify_return_error -CAfile zone-ca.pem \
    -verify_hostname cvm.example.com 2>&1 | grep -q "Verification: OK" && return 0
  # What wait_until shows if it never does: the runtime's and the agent's last words.
  echo "app: $(tail -n 2 "app-app-$2.log" 2>/dev/null | tr '\n' ' ') agent: $(tail -n 2 "$2.log" 2>/dev/null | tr '\n' ' ')"
  return 1
}
TDX_PORT=$(free_port)
SNP_PORT=$(free_port)
run_app app-tdx "$TDX_SOCK" "$TDX_PORT"
run_app app-snp "$SNP_SOCK" "$SNP_PORT"
for n in tdx snp; do
  p=TDX_PORT; [[ $n == snp ]] && p=SNP_PORT
  # The runtime retries a refused or failed request after 1, 2, 4, 8 and 16 s: allow for a few.
  wait_until "the image on the $n node serves TLS on ${!p}" 600 serves_tls "${!p}" "$n"
  ok "the image on the $n node serves TLS: openssl s_client -verify_return_error accepts it under the zone CA"
done
inst_platforms() {
  local nodes
  nodes=$("$VOUCH" node list -o json)
  "$VOUCH" instance list --app cvm -o json | python3 -c '
import json, sys
plat = {n["id"]: n["platform"] for n in json.loads(sys.argv[1])["items"]}
print(" ".join(sorted(plat.get(i["node"], "?") for i in json.load(sys.stdin)["items"])))' "$nodes"
}
expect_eq "the manager records one instance on each node" "sim-sev-snp sim-tdx" "$(inst_platforms)"
runc_cleanup

# ---- 6. the PCS/KDS down: a new SEV-SNP node provisions from the cache
kill -TERM "$PCS_PID"
wait "$PCS_PID" 2>/dev/null
tcp_open "$PCS_PORT" && fail "the emulator still answers"
start_cvm_agent snp2 snp "$URL"
expect_eq "with the emulator stopped, a fourth node (SEV-SNP) provisioned" "sim-sev-snp sim-sev-snp sim-tdx sim-tdx" "$(platforms)"

# ---- 7. TCB recovery: the refresh stores the new TDX TCB Info; the TDX node is not renewed
tcb_eval() {  # tcbEvaluationDataNumber of the current TDX TCB Info (as served by vouchd's PCCS route)
  curl -fsS --cacert "$CA" "$URL/tdx/certification/v4/tcb?fmspc=$1" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["tcbInfo"]["tcbEvaluationDataNumber"])'
}
FMSPC=$("$VOUCH" collateral list --kind tdx_tcb_info -o json | jq_get '["items"][0]["key"]')
EVAL1=$(tcb_eval "$FMSPC") || fail "read the TDX TCB Info from vouchd"
"$VOUCH" sim tcb-recovery sim-tdx >/dev/null || fail "vouch sim tcb-recovery"
start_pcs
"$VOUCH" collateral refresh --kind tdx_tcb_info --key "$FMSPC" -o json >refresh.json 2>refresh.err ||
  fail "vouch collateral refresh: $(cat refresh.json refresh.err)"
expect_eq "the refresh stored the new TDX TCB Info" stored "$(jq_get '["outcomes"][0]["result"]' <refresh.json)"
EVAL2=$(tcb_eval "$FMSPC")
[[ $EVAL2 -gt $EVAL1 ]] || fail "tcbEvaluationDataNumber $EVAL1 -> $EVAL2, expected higher"
ok "the current TDX TCB Info has a higher tcbEvaluationDataNumber ($EVAL1 -> $EVAL2)"
kill -TERM "$TDX_PID"
wait "$TDX_PID" 2>/dev/null
"$AGENT" --data-dir "$E2E_TMP/tdx" --ca-file "$CA" --socket "$TDX_SOCK" --tee tdx --tsm-dir "$E2E_TMP/tsm-tdx/report" \
  --rte-sha256 "$RTE_SHA" --renew-fraction 0 >>tdx-renew.log 2>&1 &
E2E_PIDS+=($!)
wait_until "the TDX agent's renewal is refused" 150 file_has tdx-renew.log "renewal failed"
expect_contains "the agent was told its TCB is too old" "tcb_too_old" "$(grep 'renewal failed' tdx-renew.log | head -1)"
grep -q "renewed node" tdx-renew.log && fail "the TDX node was renewed"
expect_eq "vouch node get: the TDX node's TCB is OutOfDate" OutOfDate \
  "$("$VOUCH" node get "$TDX_NODE" -o json | jq_get '["tcb_status"]')"
expect_contains "the audit log has the refused renewal" "denied:tcb_too_old" \
  "$("$VOUCH" audit list --action node.renew -o json)"

# ---- 8. a broken signature from the PCS is refused and logged; the last good copy stays
sha() { "$VOUCH" collateral list --kind tdx_tcb_info --key "$FMSPC" -o json | jq_get '["items"][0]["sha256"]'; }
SHA1=$(sha)
curl -fsS --cacert pcs-ca.pem -X POST -d '{"next": 1}' "$PCS/sim/v1/corrupt" >/dev/null || fail "arm a broken signature"
out=$("$VOUCH" collateral refresh --kind tdx_tcb_info --key "$FMSPC" -o json 2>/dev/null)
expect_eq "vouch collateral refresh exits 4: the answer was refused" 4 "$?"
expect_eq "… as collateral_bad_signature" collateral_bad_signature "$(jq_get '["outcomes"][0]["reason"]' <<<"$out")"
expect_eq "the last good TDX TCB Info stays current" "$SHA1" "$(sha)"
expect_eq "… with its tcbEvaluationDataNumber" "$EVAL2" "$(tcb_eval "$FMSPC")"
expect_contains "the audit log has the refused store" "denied:collateral_bad_signature" \
  "$("$VOUCH" audit list --action collateral.store -o json)"
expect_contains "vouchd's log names the refused item and why" \
  "collateral tdx_tcb_info $FMSPC from $PCS" "$(grep 'REFUSED (collateral_bad_signature)' "$E2E_TMP/vouchd.log")"
failure_metric() { curl -fsS --cacert "$CA" "$URL/metrics" | grep -F 'vouch_collateral_fetch_failures_total{source="pcs",kind="tdx_tcb_info"}'; }
wait_until "vouchd's /metrics counts the refused fetch" 50 failure_metric
expect_eq "vouchd's /metrics counts the refused fetch once" 1 "$(failure_metric | awk '{print $2}')"
kill -0 "$VOUCHD_PID" 2>/dev/null || fail "vouchd exited"
validate_recorded_api
echo "PASS cvm_nodes_test ($E2E_PASSED checks)"
