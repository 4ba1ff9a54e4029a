#!/usr/bin/env bash
# Zone CA rotation end to end (issue 18; docs/operations.md "Rotating a zone CA"): a relying party
# that took the bundle before the switch keeps verifying peers across activation (openssl verify
# and s_client), the old root's certificate stays valid and lands in the old root's own CRL when
# revoked (openssl crl -verify, verify -crl_check_all), CLI ca-rotate / ca-activate / ca-bundle.
# Usage: zone_ca_rotation_test.sh VOUCHD VOUCH
source "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2034  # start_dev_manager (lib.sh) runs it
VOUCHD=$1
VOUCH=$2
require_tools openssl curl python3
record_api
start_dev_manager

"$VOUCH" zone create prod >/dev/null || fail "zone create"
"$VOUCH" app create web --zone prod --domain web.example.com >/dev/null || fail "app create"
approve_domains "$VOUCH" web
MRE=$(printf 'ab%.0s' {1..32}); MRS=$(printf 'cd%.0s' {1..32})
build=$("$VOUCH" build create --app web --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 7 --isvsvn 3 -o json) || fail "build create"
BUILD=$(echo "$build" | jq_get '["id"]')
"$VOUCH" task approve "$(echo "$build" | jq_get '["task_id"]')" >/dev/null || fail "approve build"
issue() {  # NAME: a key and a certificate for web.example.com in $E2E_TMP/NAME.{key,pem}; prints the serial
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$E2E_TMP/$1.key" -out "$E2E_TMP/$1.csr" \
    -subj "/CN=web.example.com" -addext "subjectAltName=DNS:web.example.com" 2>/dev/null || fail "openssl req"
  local c
  c=$("$VOUCH" cert issue --build "$BUILD" --csr "$E2E_TMP/$1.csr" -o json) || fail "cert issue $1"
  echo "$c" | jq_get '["pem"]' >"$E2E_TMP/$1.pem"
  echo "$c" | jq_get '["serial"]'
}
OLD_SERIAL=$(issue old)
"$VOUCH" zone ca prod --out "$E2E_TMP/old-root.pem" || fail "zone ca"

# s_client against an s_server presenting NAME's certificate, trusting FILE.
tls_verifies() {  # NAME CAFILE
  local port pid out
  port=$(free_port)
  openssl s_server -accept "127.0.0.1:$port" -cert "$E2E_TMP/$1.pem" -key "$E2E_TMP/$1.key" -www -quiet \
    >/dev/null 2>&1 &
  pid=$!
  E2E_PIDS+=("$pid")
  wait_until "openssl s_server on $port" 100 tcp_open "$port"
  out=$(echo | openssl s_client -connect "127.0.0.1:$port" -CAfile "$2" -verify_return_error \
    -verify_hostname web.example.com 2>&1)
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  [[ "$out" == *"Verify return code: 0 (ok)"* ]]
}
tls_verifies old "$E2E_TMP/old-root.pem" || fail "s_client does not verify the old root's certificate"
ok "before rotation: s_client verifies the workload under the zone root"

# ---- rotate: pending, not in the bundle, not activatable
rot=$("$VOUCH" zone ca-rotate prod -o json) || fail "zone ca-rotate"
expect_eq "rotation is pending" pending "$(echo "$rot" | jq_get '["status"]')"
expect_eq "pending: the bundle is the current root alone" "$(cat "$E2E_TMP/old-root.pem")" "$("$VOUCH" zone ca-bundle prod)"
if "$VOUCH" zone ca-activate prod 2>"$E2E_TMP/err"; then fail "activated a pending root"; fi
expect_contains "activate before approval refused" "no approved" "$(cat "$E2E_TMP/err")"
"$VOUCH" task approve "$(echo "$rot" | jq_get '["task_id"]')" >/dev/null || fail "approve the rotation"

# ---- approved: relying parties take the bundle now
"$VOUCH" zone ca-bundle prod --out "$E2E_TMP/bundle.pem" || fail "zone ca-bundle"
expect_eq "approved: the bundle holds two roots" 2 "$(grep -c 'BEGIN CERTIFICATE' "$E2E_TMP/bundle.pem")"

# ---- activate
act=$("$VOUCH" zone ca-activate prod -o json) || fail "zone ca-activate"
PREV=$(echo "$act" | jq_get '["previous_ca_id"]')
expect_eq "zone cas lists the previous root as retired" retired \
  "$("$VOUCH" zone cas prod -o json | python3 -c 'import json,sys; print({c["id"]: c["status"] for c in json.load(sys.stdin)["items"]}[sys.argv[1]])' "$PREV")"
"$VOUCH" zone ca prod --out "$E2E_TMP/new-root.pem" || fail "zone ca after activation"
cmp -s "$E2E_TMP/old-root.pem" "$E2E_TMP/new-root.pem" && fail "the zone CA did not change"
ok "after activation the zone CA is the new root"
NEW_SERIAL=$(issue new)
expect_contains "a new certificate chains to the new root" "OK" \
  "$(openssl verify -CAfile "$E2E_TMP/new-root.pem" "$E2E_TMP/new.pem" 2>&1)"
if openssl verify -CAfile "$E2E_TMP/old-root.pem" "$E2E_TMP/new.pem" >/dev/null 2>&1; then fail "new cert verifies under the old root"; fi
ok "a new certificate does not chain to the old root"
expect_contains "the bundle taken before the switch verifies the new certificate" "OK" \
  "$(openssl verify -CAfile "$E2E_TMP/bundle.pem" "$E2E_TMP/new.pem" 2>&1)"
expect_contains "the bundle taken before the switch verifies the old certificate" "OK" \
  "$(openssl verify -CAfile "$E2E_TMP/bundle.pem" "$E2E_TMP/old.pem" 2>&1)"
tls_verifies new "$E2E_TMP/bundle.pem" || fail "s_client with the pre-switch bundle does not verify the new peer"
ok "after activation: s_client with the pre-switch bundle verifies a peer of the new root"
tls_verifies old "$E2E_TMP/bundle.pem" || fail "s_client with the bundle does not verify the old peer"
ok "after activation: s_client with the bundle still verifies a peer of the old root"
"$VOUCH" zone ca-bundle prod --out "$E2E_TMP/bundle2.pem" || fail "zone ca-bundle after activation"
expect_eq "after activation the bundle keeps the old root (its certificates live)" 2 \
  "$(grep -c 'BEGIN CERTIFICATE' "$E2E_TMP/bundle2.pem")"

# ---- revoke the old root's certificate: in the old root's CRL, signed by it
"$VOUCH" cert revoke "$OLD_SERIAL" >/dev/null || fail "cert revoke"
"$VOUCH" zone crl prod --ca "$PREV" --out "$E2E_TMP/old.crl" || fail "zone crl --ca"
openssl crl -inform DER -in "$E2E_TMP/old.crl" -out "$E2E_TMP/old-crl.pem" || fail "old CRL is not DER"
expect_contains "openssl crl -verify: the old CRL is signed by the old root" "verify OK" \
  "$(openssl crl -in "$E2E_TMP/old-crl.pem" -CAfile "$E2E_TMP/old-root.pem" -noout 2>&1)"
expect_contains "the old root's CRL lists the revoked serial" "${OLD_SERIAL^^}" \
  "$(openssl crl -in "$E2E_TMP/old-crl.pem" -noout -text 2>&1)"
"$VOUCH" zone crl prod --out "$E2E_TMP/new.crl" || fail "zone crl"
openssl crl -inform DER -in "$E2E_TMP/new.crl" -out "$E2E_TMP/new-crl.pem" || fail "zone CRL is not DER"
expect_contains "openssl crl -verify: the zone CRL is signed by the new root" "verify OK" \
  "$(openssl crl -in "$E2E_TMP/new-crl.pem" -CAfile "$E2E_TMP/new-root.pem" -noout 2>&1)"
cat "$E2E_TMP/bundle.pem" "$E2E_TMP/old-crl.pem" "$E2E_TMP/new-crl.pem" >"$E2E_TMP/trust.pem"
if out=$(openssl verify -crl_check -CAfile "$E2E_TMP/trust.pem" "$E2E_TMP/old.pem" 2>&1); then
  fail "the revoked old-root certificate verifies with the CRLs"
fi
expect_contains "openssl verify -crl_check rejects the old-root certificate as revoked" "certificate revoked" "$out"
expect_contains "the new certificate verifies with both CRLs" "OK" \
  "$(openssl verify -crl_check -CAfile "$E2E_TMP/trust.pem" "$E2E_TMP/new.pem" 2>&1)"
: "$NEW_SERIAL"
validate_recorded_api
