#!/usr/bin/env bash
# End-to-end, issue 13 "Node identity" and stateless node nonces: vouchd (sim TEE) on loopback,
# provisioning and renewal by hand (node_enroll.py: sim quotes of a chosen identity with a correct
# binding) and a real vouch-agent.
# - The shipped sim agent provisions (201); foreign MRENCLAVE / MRSIGNER evidence is refused with
#   node_identity_not_allowed, debug agent evidence with debug_not_allowed (even in a zone that
#   allows debug workloads); renewal with a foreign identity is refused.
# - After a renewal the previous node certificate no longer authenticates (node_cert_revoked).
# - Widening the zone's identities is an approval task under the zone's quorum: after two
#   approvals the foreign identity provisions.
# - After 12,000 POST /api/v1/nodes/nonce from one client, a new vouch-agent still provisions
#   within 10 s: without a rate limit (nonces are stateless) and with the default per-source limit
#   from the agent's own address.
# Usage: node_identity_test.sh VOUCHD VOUCH VOUCH_AGENT
source "$(dirname "$0")/lib.sh"
record_api  # every API answer the CLI gets is checked against docs/api/openapi.json at the end
# shellcheck disable=SC2034  # start_dev_manager (lib.sh) runs it
VOUCHD=$1
VOUCH=$2
AGENT=$3
ENROLL="python3 $(dirname "$0")/node_enroll.py"
printf 'approver-password-123\n' >"$E2E_TMP/bob.pw"
# The first nonce flood below is about state, not rate: vouchd runs without the per-source limit
# of unauthenticated routes (--unauth-rate 0); the second one with the default limits.
start_dev_manager --unauth-rate 0
SIM=$D/sim

field() { python3 -c 'import json,sys; d=json.loads(sys.stdin.read()); print(eval("d"+sys.argv[1]))' "$1"; }
# enroll NAME provision|renew [args...]: prints "STATUS CODE" (CODE: the error code, or "-")
enroll() {
  local name=$1 kind=$2; shift 2
  $ENROLL "$kind" "$URL" "$CA" "$VOUCH" "$SIM" "$E2E_TMP/$name" "$@" >"$E2E_TMP/$name.out" 2>"$E2E_TMP/$name.err" \
    || fail "node_enroll.py $kind $name: $(tail -3 "$E2E_TMP/$name.err")"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["status"], d["body"].get("error", {}).get("code", "-"))' \
    "$E2E_TMP/$name.out"
}
token() { "$VOUCH" zone join-token default || fail "join token"; }
FOREIGN_MRE=$(printf 'ab%.0s' {1..32})
FOREIGN_MRS=$(printf 'cd%.0s' {1..32})

# ---- who may become a node
expect_eq "the zone accepts the shipped sim agent's identities (SGX, and TDX and SEV-SNP in a sim CVM)" \
  "3 active sev-snp sgx tdx" \
  "$("$VOUCH" zone node-identity list default -o json | python3 -c 'import json,sys; i=json.load(sys.stdin)["items"]; print(len(i), " ".join(sorted(set(x["status"] for x in i))), " ".join(sorted(x["platform"] for x in i)))')"
expect_eq "the shipped sim agent provisions" "201 -" "$(enroll n1 provision --token "$(token)" --agent)"
expect_eq "foreign MRENCLAVE and MRSIGNER: refused" "403 node_identity_not_allowed" \
  "$(enroll f1 provision --token "$(token)" --mrenclave "$FOREIGN_MRE" --mrsigner "$FOREIGN_MRS")"
expect_eq "the agent's MRENCLAVE under a foreign MRSIGNER: refused" "403 node_identity_not_allowed" \
  "$(enroll f2 provision --token "$(token)" --agent --mrsigner "$FOREIGN_MRS")"
expect_eq "debug agent evidence: refused" "403 debug_not_allowed" "$(enroll d1 provision --token "$(token)" --agent --debug)"
"$VOUCH" zone update default --allow-debug true >/dev/null || fail "zone update --allow-debug true"
expect_eq "debug agent evidence: refused even where debug workloads are allowed" "403 debug_not_allowed" \
  "$(enroll d2 provision --token "$(token)" --agent --debug)"
expect_eq "refused evidence made no node" "1" "$("$VOUCH" node list -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')"

# ---- renewal: only the newest certificate authenticates; a foreign identity is not renewed
cp "$E2E_TMP/n1/node.pem" "$E2E_TMP/old.pem"; cp "$E2E_TMP/n1/node.key" "$E2E_TMP/old.key"
expect_eq "the node renews with the shipped identity" "201 -" \
  "$(enroll n1 renew --cert "$E2E_TMP/old.pem" --key "$E2E_TMP/old.key" --agent)"
call() { $ENROLL call "$URL" "$CA" /api/v1/heartbeats --cert "$1" --key "$2" \
  | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["status"], d["body"].get("error", {}).get("code", "-"))'; }
expect_eq "the previous node certificate is refused after the renewal" "403 node_cert_revoked" \
  "$(call "$E2E_TMP/old.pem" "$E2E_TMP/old.key")"
expect_eq "the new node certificate authenticates" "200 -" "$(call "$E2E_TMP/n1/node.pem" "$E2E_TMP/n1/node.key")"
OLD_SERIAL=$(openssl x509 -in "$E2E_TMP/old.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
expect_eq "the previous certificate is revoked as superseded" "revoked superseded" \
  "$("$VOUCH" cert get "$OLD_SERIAL" -o json | python3 -c 'import json,sys; c=json.load(sys.stdin); print(c["status"], c.get("revocation_reason"))')"
cp "$E2E_TMP/n1/node.pem" "$E2E_TMP/cur.pem"; cp "$E2E_TMP/n1/node.key" "$E2E_TMP/cur.key"
expect_eq "renewal with a foreign identity: refused" "403 node_identity_not_allowed" \
  "$(enroll n1 renew --cert "$E2E_TMP/cur.pem" --key "$E2E_TMP/cur.key" --mrenclave "$FOREIGN_MRE" --mrsigner "$FOREIGN_MRS")"
expect_eq "the node keeps its current certificate" "200 -" "$(call "$E2E_TMP/cur.pem" "$E2E_TMP/cur.key")"
expect_contains "the refused renewal is audited" "denied:node_identity_not_allowed" \
  "$("$VOUCH" audit list --limit 50 -o json)"

# ---- widening is an approval task under the zone's quorum (2 here)
"$VOUCH" zone update default --approvals 2 >/dev/null || fail "zone update --approvals 2"
"$VOUCH" user create bob --role approver --password-file "$E2E_TMP/bob.pw" >/dev/null || fail "user create bob"
added=$("$VOUCH" zone node-identity add default --mrenclave "$FOREIGN_MRE" --note "agent v2 (e2e)" -o json) \
  || fail "zone node-identity add"
expect_eq "a new identity is pending" "pending" "$(echo "$added" | field '["status"]')"
TASK=$(echo "$added" | field '["task_id"]')
expect_eq "its approval task is of kind node_identity" "node_identity" "$("$VOUCH" task get "$TASK" -o json | field '["kind"]')"
expect_eq "pending: still refused" "403 node_identity_not_allowed" \
  "$(enroll f3 provision --token "$(token)" --mrenclave "$FOREIGN_MRE" --mrsigner "$FOREIGN_MRS")"
"$VOUCH" task approve "$TASK" >/dev/null || fail "approve (admin)"
expect_eq "one approval of two: still refused" "403 node_identity_not_allowed" \
  "$(enroll f4 provision --token "$(token)" --mrenclave "$FOREIGN_MRE" --mrsigner "$FOREIGN_MRS")"
VOUCH_CONFIG=$E2E_TMP/bob.json "$VOUCH" login --server "$URL" --ca-file "$CA" --user bob --password-file "$E2E_TMP/bob.pw" \
  >/dev/null || fail "login bob"
VOUCH_CONFIG=$E2E_TMP/bob.json "$VOUCH" task approve "$TASK" >/dev/null || fail "approve (bob)"
expect_eq "after the quorum the identity is active" "active" \
  "$("$VOUCH" zone node-identity list default -o json | python3 -c 'import json,sys; print([i["status"] for i in json.load(sys.stdin)["items"] if i["rule"].get("mrenclave") == sys.argv[1]][0])' "$FOREIGN_MRE")"
expect_eq "the approved identity provisions" "201 -" \
  "$(enroll f5 provision --token "$(token)" --mrenclave "$FOREIGN_MRE" --mrsigner "$FOREIGN_MRS")"
"$VOUCH" zone node-identity remove default "$(echo "$added" | field '["id"]')" >/dev/null || fail "zone node-identity remove"
expect_eq "removed (no quorum): refused again" "403 node_identity_not_allowed" \
  "$(enroll f6 provision --token "$(token)" --mrenclave "$FOREIGN_MRE" --mrsigner "$FOREIGN_MRS")"

# ---- 12,000 nonce requests from one client, then a new agent provisions within 10 s
# start_agent NAME: a new vouch-agent with a fresh join token; sets MS to how long it took to provision.
start_agent() {
  local a=$E2E_TMP/$1 jt started
  jt=$(token)
  started=$(date +%s%N)
  "$AGENT" --server "$URL" --ca-file "$CA" --data-dir "$a" --socket "$a/agent.sock" --tee sim --sim "$SIM" \
    --join-token "$jt" >>"$E2E_TMP/$1.log" 2>&1 &
  E2E_PIDS+=("$!")
  wait_agent_socket "$a/agent.sock" "$E2E_TMP/$1.log"
  MS=$(( ($(date +%s%N) - started) / 1000000 ))
}
# 1. Nothing is stored per nonce and there is no cap: every request is answered 201.
counts=$($ENROLL nonces "$URL" "$CA" 12000) || fail "nonce flood"
echo "# 12,000 nonce requests, no rate limit: $counts (status: count)"
expect_eq "every nonce request answered 201 (nothing stored, no cap)" 12000 "$(echo "$counts" | field '.get("201", 0)')"
start_agent agent1
echo "# the agent provisioned in $MS ms after the flood"
[[ $MS -lt 10000 ]] || fail "the agent took $MS ms to provision"
expect_contains "a new vouch-agent provisions after the flood (within 10 s)" node_ \
  "$(curl -fsS --unix-socket "$E2E_TMP/agent1/agent.sock" http://agent/v1/version)"

# 2. The same flood from the agent's own address with vouchd's default per-source limits: most
# requests get 429 with Retry-After, and the agent (which waits as told) still provisions in time.
kill "$VOUCHD_PID"; wait "$VOUCHD_PID" 2>/dev/null
serve_manager
counts=$($ENROLL nonces "$URL" "$CA" 12000) || fail "nonce flood"
echo "# 12,000 nonce requests, default limits: $counts (status: count)"
expect_eq "default limits: every nonce request answered 201 or 429" 12000 \
  "$(echo "$counts" | field '.get("201", 0) + d.get("429", 0)')"
expect_eq "default limits: the flood was rate limited (more than half answered 429)" True \
  "$(echo "$counts" | field '.get("429", 0) > 6000')"
start_agent agent2
echo "# the agent provisioned in $MS ms after the rate-limited flood"
[[ $MS -lt 10000 ]] || fail "the agent took $MS ms to provision"
expect_contains "default limits: a new vouch-agent from the flooding address provisions within 10 s" node_ \
  "$(curl -fsS --unix-socket "$E2E_TMP/agent2/agent.sock" http://agent/v1/version)"

validate_recorded_api
echo "# $E2E_PASSED checks passed"
