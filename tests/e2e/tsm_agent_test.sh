#!/usr/bin/env bash
# Confidential-VM nodes through the emulated configfs-tsm (docs/tsm.md, docs/agent.md): a TDX and
# an SEV-SNP sim folder each mounted with `vouch sim tsm` (FUSE) showing its provider's
# attributes; a vouch-agent on each with `--tee auto --tsm-dir`, provisioned by vouchd from the
# kernel-format evidence (sim-tdx: the quote; sim-sev-snp: report ‖ certificate table), the TDX one
# although another writer raced its first two report
# entries (the agent retries, never sends blobs of a generation it did not make); the wrong --tee and a kernel without a provider are
# start-up errors; a process
# that is not vouch-rte gets no workload certificate on the TDX node, while a converted image run
# under runc (vouch-rte as PID 1, the agent socket bind-mounted) gets one for its approved build.
# Usage: tsm_agent_test.sh VOUCH VOUCH_RTE VOUCHD VOUCH_AGENT
source "$(dirname "$0")/lib.sh"
VOUCH=$1
RTE=$2
# shellcheck disable=SC2034  # start_dev_manager (lib.sh) runs it
VOUCHD=$3
AGENT=$4
require_tools umoci runc busybox openssl curl sha256sum
[[ -r /dev/fuse && -w /dev/fuse ]] || fail "/dev/fuse is not usable (scripts/setup installs fuse3)"
cd "$E2E_TMP" || fail "cd $E2E_TMP"
RUNC_ROOT=$E2E_TMP/runc
trap 'stop_containers_and_tsm; e2e_cleanup' EXIT

# --- the emulated kernels ---
"$VOUCH" sim init --platform tdx sim-tdx >/dev/null || fail "sim init tdx"
"$VOUCH" sim init --platform sev-snp sim-snp >/dev/null || fail "sim init sev-snp"
# The TDX kernel plays a second writer on the first two report entries (another process in the
# guest writing its inblob between the agent's write and read).
mount_tsm tdx sim-tdx --interfere 2
mount_tsm snp sim-snp
mount_tsm none sim-tdx --no-provider
expect_contains "vouch sim tsm says what it emulates" "INSECURE emulated configfs-tsm (tdx_guest)" "$(cat tsm-tdx.log)"
expect_eq "the tdx_guest entry shows generation, inblob, outblob, provider" "generation inblob outblob provider" \
  "$(mkdir tsm-tdx/report/probe && ls tsm-tdx/report/probe | tr '\n' ' ' | sed 's/ $//'; rmdir tsm-tdx/report/probe)"
expect_eq "the sev_guest entry also shows auxblob, privlevel, privlevel_floor" \
  "auxblob generation inblob outblob privlevel privlevel_floor provider" \
  "$(mkdir tsm-snp/report/probe && ls tsm-snp/report/probe | tr '\n' ' ' | sed 's/ $//'; rmdir tsm-snp/report/probe)"
mkdir tsm-none/report/x 2>mkdir.err && fail "mkdir without a provider succeeded"
expect_contains "no provider: mkdir fails ENXIO" "No such device or address" "$(cat mkdir.err)"

# --- the manager: the sim agents' launch measurements accepted in zone default ---
start_dev_manager --collateral "$E2E_TMP/sim-tdx"
MRTD=$(printf 'vouch-agent-sim-tdx-mrtd-v1' | sha384sum | cut -d' ' -f1)
MEAS=$(printf 'vouch-agent-sim-snp-measurement-v1' | sha384sum | cut -d' ' -f1)
# A sim zone accepts the shipped sim agent on every platform from its creation.
ids=$("$VOUCH" zone node-identity list default -o json) || fail "node-identity list"
expect_contains "zone default accepts the sim agent's TDX MRTD" "$MRTD" "$ids"
expect_contains "zone default accepts the sim agent's SEV-SNP MEASUREMENT" "$MEAS" "$ids"

RTE_SHA=$(sha256sum "$RTE" | cut -d' ' -f1)
start_cvm_agent() {  # NAME TSM_NAME [FLAGS...]
  local name=$1 tsm=$2
  shift 2
  SOCK=$E2E_TMP/$name/agent.sock
  "$AGENT" --server "$URL" --ca-file "$CA" --data-dir "$E2E_TMP/$name" --socket "$SOCK" --tee auto \
    --tsm-dir "$E2E_TMP/tsm-$tsm/report" --rte-sha256 "$RTE_SHA" --join-token "$("$VOUCH" zone join-token default)" \
    "$@" >>"$name.log" 2>&1 &
  AGENT_PID=$!
  E2E_PIDS+=("$AGENT_PID")
  wait_agent_socket "$SOCK" "$name.log" "$AGENT_PID"
}

# --- start-up errors: never a silent fall-back ---
if "$AGENT" --server "$URL" --ca-file "$CA" --data-dir bad1 --socket "$E2E_TMP/bad1.sock" --tee auto \
     --tsm-dir "$E2E_TMP/tsm-none/report" --join-token x >bad1.log 2>&1; then fail "--tee auto without a provider started"; fi
expect_contains "--tee auto on a kernel without a provider: a start-up error" "no TSM provider" "$(cat bad1.log)"
if "$AGENT" --server "$URL" --ca-file "$CA" --data-dir bad2 --socket "$E2E_TMP/bad2.sock" --tee sev-snp \
     --tsm-dir "$E2E_TMP/tsm-tdx/report" --join-token x >bad2.log 2>&1; then fail "--tee sev-snp on a TDX guest started"; fi
expect_contains "--tee sev-snp on a TDX guest: a start-up error" "tsm_provider_mismatch" "$(cat bad2.log)"
expect_eq "the refused starts left no report entries behind" "" "$(ls -A tsm-tdx/report; ls -A tsm-none/report)"

# --- provisioning through configfs-tsm ---
start_cvm_agent snp snp
SNP_PID=$AGENT_PID
SNP_SOCK=$SOCK
start_cvm_agent tdx tdx
TDX_SOCK=$SOCK
expect_contains "the TDX agent found tdx_guest" "TEE tdx through configfs-tsm (tdx_guest" "$(cat tdx.log)"
expect_contains "the SEV-SNP agent found sev_guest" "TEE sev-snp through configfs-tsm (sev_guest" "$(cat snp.log)"
expect_contains "a report whose generation moved under the agent is discarded, not sent" \
  "2 report attempt(s) raced with another writer" "$(cat tdx.log)"
nodes=$("$VOUCH" node list -o json)
platforms=$(python3 -c 'import json,sys; print(" ".join(sorted(n["platform"] for n in json.load(sys.stdin)["items"])))' <<<"$nodes")
expect_eq "vouchd recorded a sim-sev-snp and a sim-tdx node from the configfs-tsm evidence" "sim-sev-snp sim-tdx" "$platforms"
expect_eq "the agents left no report entries behind" "" "$(ls -A tsm-tdx/report; ls -A tsm-snp/report)"
expect_eq "the SEV-SNP agent tells workloads to send their identity (peer auth)" "sev-snp peer" \
  "$(curl -fsS --unix-socket "$SNP_SOCK" http://agent/v1/target-info | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["tee"], d["workload_auth"])')"
kill -TERM "$SNP_PID"
expect_eq "the TDX agent tells workloads to send their identity (peer auth)" "tdx peer" \
  "$(curl -fsS --unix-socket "$TDX_SOCK" http://agent/v1/target-info | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["tee"], d["workload_auth"])')"

# --- the image: busybox and openssl, converted with vouch-rte, its build approved ---
"$VOUCH" app create cvm --zone default --domain cvm.example.com >/dev/null || fail "app create"
approve_domains "$VOUCH" cvm
openssl_image img:v1 sh echo sleep
umoci config --image img:v1 --config.entrypoint /bin/sh --config.cmd -c --config.cmd \
  'openssl x509 -in /run/vouch/certs/cert.pem -noout -subject; sleep 600' >/dev/null
conv=$("$VOUCH" convert --input oci:img:v1 --output oci:out:v1 --runtime "$RTE" --app cvm \
       --cert-dns cvm.example.com -o json) || fail "convert"
build=$("$VOUCH" build get "$(jq_get '["build_id"]' <<<"$conv")" -o json)
MRENCLAVE=$(jq_get '["measurements"]["mrenclave"]' <<<"$build")
"$VOUCH" task approve "$(jq_get '["task_id"]' <<<"$build")" >/dev/null || fail "approve the build"
ok "build $MRENCLAVE approved"

# --- not vouch-rte: the claim of the approved measurement is refused ---
out=$("$VOUCH" workload cert --socket "$TDX_SOCK" --dns cvm.example.com --out wl --mrenclave "$MRENCLAVE" \
      --mrsigner "$(jq_get '["measurements"]["mrsigner"]' <<<"$build")" --isvprodid "$(jq_get '["measurements"]["isvprodid"]' <<<"$build")" \
      --isvsvn "$(jq_get '["measurements"]["isvsvn"]' <<<"$build")" 2>&1) && fail "vouch workload cert got a certificate: $out"
expect_contains "a process that is not vouch-rte gets no certificate for the approved build" "peer_not_vouch_rte" "$out"
[[ ! -e wl/cert.pem ]] || fail "a certificate was written"
audited() { "$VOUCH" audit list --action certificate.issue -o json | grep -q "denied:peer_not_vouch_rte"; }
wait_until "vouchd audits the agent's refusal" 150 audited
ok "the refusal reaches vouchd's audit log (denied:peer_not_vouch_rte)"

# --- vouch-rte under runc: recognised, certified for its build ---
unpack_for_runc out:v1 run "$TDX_SOCK"
(cd run && exec runc --root "$RUNC_ROOT" run cvm1 > ../app.log 2>&1) &
CERT=run/rootfs/run/vouch/certs/cert.pem
cert_written() { [[ -s $CERT ]] || { tail -3 app.log; return 1; }; }
wait_until "vouch-rte on the TDX node writes its certificate" 150 cert_written
openssl verify -CAfile run/rootfs/run/vouch/certs/ca.pem "$CERT" >/dev/null 2>&1 \
  || fail "the certificate does not verify under the zone CA"
ok "vouch-rte got a certificate that verifies under the zone CA"
wait_until "the application reads it" 50 file_has app.log "subject=CN = cvm.example.com"
inst=$("$VOUCH" instance list --app cvm -o json)
expect_eq "the instance runs on the TDX node" "$(python3 -c 'import json,sys; print([n["id"] for n in json.load(sys.stdin)["items"] if n["platform"]=="sim-tdx"][0])' <<<"$nodes")" \
  "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["node"])' <<<"$inst")"
runc --root "$RUNC_ROOT" kill cvm1 KILL >/dev/null 2>&1

# --- renewal takes the same configfs-tsm path (renew at once: --renew-fraction 0) ---
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
"$AGENT" --data-dir "$E2E_TMP/tdx" --ca-file "$CA" --socket "$TDX_SOCK" --tee tdx --tsm-dir "$E2E_TMP/tsm-tdx/report" \
  --rte-sha256 "$RTE_SHA" --renew-fraction 0 >>tdx-renew.log 2>&1 &
AGENT_PID=$!
E2E_PIDS+=("$AGENT_PID")
wait_until "the TDX agent renews its node certificate with fresh configfs-tsm evidence" 100 file_has tdx-renew.log "renewed node"
kill -TERM "$AGENT_PID"
wait "$AGENT_PID" 2>/dev/null
ok "the TDX node renewed through configfs-tsm"
nodes=$("$VOUCH" node list -o json 2>&1) || fail "node list: $nodes"
expect_eq "still one TDX node" "sim-sev-snp sim-tdx" \
  "$(python3 -c 'import json,sys; print(" ".join(sorted(n["platform"] for n in json.load(sys.stdin)["items"])))' <<<"$nodes")"
expect_eq "renewals left no report entries behind" "" "$(ls -A tsm-tdx/report)"
echo "PASS tsm_agent_test ($E2E_PASSED checks)"
