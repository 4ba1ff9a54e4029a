#!/usr/bin/env bash
# End-to-end, issue 13 "Names": vouchd + vouch-agent (sim TEE) + sim workloads on loopback.
# - A name another app of the zone holds (exactly or through a wildcard, approved or pending) is
#   refused with domain_taken, at app creation and when adding a domain.
# - An app's initial domains are pending approval tasks: the agent's certificate request for
#   them is refused (domain_not_allowed) until they are approved; the build task shows them.
# - Removing a domain, then tightening the zone (allow_debug off, allow_sim off), puts exactly the
#   right serials in the zone CRL (openssl crl -text), which verifies under the zone CA.
# Usage: names_test.sh VOUCHD VOUCH VOUCH_AGENT
source "$(dirname "$0")/lib.sh"
record_api  # every API answer the CLI gets is checked against docs/api/openapi.json at the end
# shellcheck disable=SC2034  # start_dev_manager (lib.sh) runs it
VOUCHD=$1
VOUCH=$2
# shellcheck disable=SC2034  # start_sim_agent (lib.sh) runs it
AGENT=$3
start_dev_manager
"$VOUCH" zone ca default >"$E2E_TMP/zone-ca.pem" || fail "zone ca"
"$VOUCH" zone update default --allow-debug true >/dev/null || fail "zone update --allow-debug true"

A=$E2E_TMP/agent
start_sim_agent "$A" "$E2E_TMP/agent.log" --batch-interval-ms 200 --checkin-interval 1
ok "agent provisioned in zone default"

# ---- domain_taken, exact and through wildcards, pending and approved
app=$("$VOUCH" app create web --zone default --domain web.example.com --domain '*.svc.example.com' -o json) \
  || fail "app create web"
expect_eq "initial domains are not allowed yet" "[]" "$(echo "$app" | jq_get '["domains"]')"
expect_eq "initial domains are pending" '["*.svc.example.com", "web.example.com"]' \
  "$(echo "$app" | jq_get '["pending_domains"]')"
taken() {  # WHAT cmd... : must fail with domain_taken
  local what=$1; shift
  if "$VOUCH" "$@" >/dev/null 2>"$E2E_TMP/err"; then fail "$what: was accepted"; fi
  expect_contains "$what: domain_taken" domain_taken "$(cat "$E2E_TMP/err")"
}
taken "same name as another app's pending one" app create other --zone default --domain web.example.com
taken "a name under another app's pending wildcard" app create other --zone default --domain a.svc.example.com
taken "a wildcard over another app's name" app create other --zone default --domain '*.example.com'
"$VOUCH" app create other --zone default --domain other.example.com >/dev/null || fail "app create other"
taken "adding another app's name (upper case)" app add-domain other WEB.example.com
"$VOUCH" app list -o json >"$E2E_TMP/apps.json"
expect_eq "refused requests created nothing" "other web" \
  "$(python3 -c 'import json,sys; print(" ".join(sorted(a["name"] for a in json.load(open(sys.argv[1]))["items"])))' "$E2E_TMP/apps.json")"

# ---- builds; the build task shows the app's names
MRS=$(printf 'cd%.0s' {1..32})
mre() { printf "$1%.0s" {1..64}; }
B=$("$VOUCH" build create --app web --mrenclave "$(mre a)" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 -o json | jq_get '["id"]')
B_DBG=$("$VOUCH" build create --app web --mrenclave "$(mre d)" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 --debug -o json \
  | jq_get '["id"]')
TASK=$("$VOUCH" build get "$B" -o json | jq_get '["task_id"]')
task=$("$VOUCH" task get "$TASK" -o json)
expect_eq "build task: no approved names yet" "[]" "$(echo "$task" | jq_get '["domains"]')"
expect_eq "build task: the pending names" '["*.svc.example.com", "web.example.com"]' "$(echo "$task" | jq_get '["pending_domains"]')"
"$VOUCH" task approve "$TASK" >/dev/null || fail "approve build"
"$VOUCH" task approve "$("$VOUCH" build get "$B_DBG" -o json | jq_get '["task_id"]')" >/dev/null || fail "approve debug build"

wcert() {  # OUT MRE-CHAR [args...]
  local out=$1 m=$2; shift 2
  "$VOUCH" workload cert --socket "$SOCK" --out "$out" --mrenclave "$(mre "$m")" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 "$@"
}
if wcert "$E2E_TMP/r1" a --dns web.example.com >/dev/null 2>"$E2E_TMP/err"; then fail "pending domain was certified"; fi
expect_contains "a pending initial domain is refused" domain_not_allowed "$(cat "$E2E_TMP/err")"
for t in $("$VOUCH" app get web -o json | jq_get '["domain_tasks"]' | python3 -c 'import json,sys; print(" ".join(t["task_id"] for t in json.load(sys.stdin)))'); do
  "$VOUCH" task approve "$t" >/dev/null || fail "approve domain task $t"
done
expect_eq "approved names are shown on the build task" '["*.svc.example.com", "web.example.com"]' \
  "$("$VOUCH" task get "$TASK" -o json | jq_get '["domains"]')"

serial() { openssl x509 -in "$1/cert.pem" -noout -serial | cut -d= -f2; }
wcert "$E2E_TMP/w1" a --dns WEB.example.com >/dev/null 2>"$E2E_TMP/err" || fail "w1: $(cat "$E2E_TMP/err")"
ok "approved initial domain is certified (requested in upper case)"
expect_contains "names are certified in lower case" "DNS:web.example.com" \
  "$(openssl x509 -in "$E2E_TMP/w1/cert.pem" -noout -ext subjectAltName)"
wcert "$E2E_TMP/w2" a --dns a.svc.example.com >/dev/null 2>"$E2E_TMP/err" || fail "w2: $(cat "$E2E_TMP/err")"
wcert "$E2E_TMP/w3" a --dns b.svc.example.com --dns web.example.com >/dev/null 2>"$E2E_TMP/err" || fail "w3: $(cat "$E2E_TMP/err")"
wcert "$E2E_TMP/w4" d --debug --dns web.example.com >/dev/null 2>"$E2E_TMP/err" || fail "w4 (debug): $(cat "$E2E_TMP/err")"
S1=$(serial "$E2E_TMP/w1"); S2=$(serial "$E2E_TMP/w2"); S3=$(serial "$E2E_TMP/w3"); S4=$(serial "$E2E_TMP/w4")

# The serials the zone's CRL lists, sorted, one line; the CRL must verify under the zone CA.
crl_serials() {
  curl -fsS --cacert "$D/service-ca.pem" "$URL/api/v1/zones/default/crl" -o "$E2E_TMP/crl.der" || fail "CRL download"
  openssl crl -inform DER -in "$E2E_TMP/crl.der" -CAfile "$E2E_TMP/zone-ca.pem" -noout 2>"$E2E_TMP/crl-verify" \
    || fail "openssl crl -verify: $(cat "$E2E_TMP/crl-verify")"
  grep -q "verify OK" "$E2E_TMP/crl-verify" || fail "CRL does not verify under the zone CA: $(cat "$E2E_TMP/crl-verify")"
  openssl crl -inform DER -in "$E2E_TMP/crl.der" -noout -text | sed -n 's/.*Serial Number: *//p' | sort | tr '\n' ' '
}
sorted() { printf '%s\n' "$@" | sort | tr '\n' ' '; }
expect_eq "CRL empty before any removal" "" "$(crl_serials)"

# ---- removing a domain revokes exactly the certificates carrying a name it allowed
"$VOUCH" app remove-domain web '*.svc.example.com' >/dev/null || fail "remove-domain"
expect_eq "removed wildcard: w2 and w3 in the CRL, verified under the zone CA" "$(sorted "$S2" "$S3")" "$(crl_serials)"
expect_contains "removal audited with its count" '"revoked": 2' \
  "$("$VOUCH" audit list --action app.domain.remove -o json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["items"][0]["detail"]))')"
if wcert "$E2E_TMP/r2" a --dns c.svc.example.com >/dev/null 2>"$E2E_TMP/err"; then fail "removed domain was certified"; fi
expect_contains "a removed domain is refused" domain_not_allowed "$(cat "$E2E_TMP/err")"

# ---- tightening the zone revokes what it would no longer issue
"$VOUCH" zone update default --allow-debug false >/dev/null || fail "zone update --allow-debug false"
expect_eq "allow_debug off: the debug workload joins the CRL" "$(sorted "$S2" "$S3" "$S4")" "$(crl_serials)"
openssl crl -inform DER -in "$E2E_TMP/crl.der" -out "$E2E_TMP/crl.pem"
cat "$E2E_TMP/zone-ca.pem" "$E2E_TMP/crl.pem" >"$E2E_TMP/ca-crl.pem"
expect_eq "w1 still verifies with the CRL" "$E2E_TMP/w1/cert.pem: OK" \
  "$(openssl verify -crl_check -CAfile "$E2E_TMP/ca-crl.pem" "$E2E_TMP/w1/cert.pem" 2>&1)"
if openssl verify -crl_check -CAfile "$E2E_TMP/ca-crl.pem" "$E2E_TMP/w4/cert.pem" >/dev/null 2>&1; then
  fail "the debug workload's certificate still verifies"
fi
ok "openssl verify -crl_check refuses the debug workload's certificate"
NODE_SERIAL=$(openssl x509 -in "$A/node-cert.pem" -noout -serial | cut -d= -f2 | tr 'A-F' 'a-f')
"$VOUCH" zone update default --allow-sim false >/dev/null || fail "zone update --allow-sim false"
expect_eq "allow_sim off: the sim node's workload joins the CRL" "$(sorted "$S1" "$S2" "$S3" "$S4")" "$(crl_serials)"
expect_eq "allow_sim off: the sim node's certificate is revoked" revoked \
  "$("$VOUCH" cert get "$NODE_SERIAL" -o json | jq_get '["status"]')"
expect_contains "tightening audited with its counts" '"node_certificates": 1, "serials"' \
  "$("$VOUCH" audit list --action zone.update -o json | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["items"][0]["detail"]["revoked"]))')"
validate_recorded_api
echo "names: $E2E_PASSED checks passed"
