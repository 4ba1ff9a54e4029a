#!/usr/bin/env bash
# End-to-end: registries with sealed credentials, app default registries and app signing keys
# (issue 15) through the vouch CLI; the secrets never appear in an API answer, vouchd's log, the
# audit log or any file of the data directory.
# Usage: registries_test.sh VOUCHD VOUCH
source "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2034  # start_dev_manager (lib.sh) runs it
VOUCHD=$1
VOUCH=$2
record_api  # every API answer the CLI gets is checked against docs/api/openapi.json at the end
start_dev_manager
PASSWORD=e2e-registry-Pa55word-7c1d9e
PASSWORD2=e2e-registry-Pa55word-second-44aa
TOKEN=e2e-registry-T0ken-0b5e2f
printf '%s\n' "$PASSWORD" >"$E2E_TMP/reg.pw"
printf '%s\n' "$PASSWORD2" >"$E2E_TMP/reg2.pw"
printf '%s\n' "$TOKEN" >"$E2E_TMP/reg.token"
printf 'member-password-123\n' >"$E2E_TMP/m.pw"
printf 'viewer-password-123\n' >"$E2E_TMP/v.pw"
"$VOUCH" user create member1 --role member --password-file "$E2E_TMP/m.pw" >/dev/null || fail "user create member1"
"$VOUCH" user create viewer1 --role viewer --password-file "$E2E_TMP/v.pw" >/dev/null || fail "user create viewer1"
as() {  # as USER args...: the CLI with another user's context
  local user=$1
  shift
  VOUCH_CONFIG=$E2E_TMP/$user.json "$VOUCH" "$@"
}
for u in member1:m viewer1:v; do
  as "${u%%:*}" login --server "$URL" --ca-file "$CA" --user "${u%%:*}" --password-file "$E2E_TMP/${u##*:}.pw" \
    >/dev/null || fail "login ${u%%:*}"
done
"$VOUCH" zone ca default >"$E2E_TMP/zone-ca.pem" || fail "zone ca"

# ---- registries: created by the admin, the secret from a file or stdin, never shown
reg=$("$VOUCH" registry create corp --url https://Registry.Example:5000/ --ca-file "$E2E_TMP/zone-ca.pem" --user ci \
  --password-file "$E2E_TMP/reg.pw" -o json) || fail "registry create corp"
expect_eq "registry url normalised" "https://registry.example:5000" "$(echo "$reg" | jq_get '["url"]')"
expect_eq "registry has a password (not shown)" "True password" \
  "$(echo "$reg" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["has_secret"], r["secret_kind"])')"
expect_eq "registry --ca-file is the registry's CA bundle" "true" "$(echo "$reg" | jq_get '["has_ca"]')"
"$VOUCH" registry create hub --url https://registry-1.docker.io --token-file - <"$E2E_TMP/reg.token" >/dev/null \
  || fail "registry create hub (token on stdin)"
expect_eq "token read from stdin" "token" "$("$VOUCH" registry get hub -o json | jq_get '["secret_kind"]')"
if "$VOUCH" registry create plain --url http://registry.example >/dev/null 2>"$E2E_TMP/err"; then
  fail "plain http accepted without --insecure"
fi
expect_contains "plain http refused without --insecure" "invalid_url" "$(cat "$E2E_TMP/err")"
"$VOUCH" registry create local --url http://127.0.0.1:5000 --insecure >/dev/null || fail "insecure registry"
if "$VOUCH" registry create badca --url https://x.example --ca-file "$E2E_TMP/reg.pw" >/dev/null 2>"$E2E_TMP/err"; then
  fail "a CA bundle that is not PEM certificates was accepted"
fi
expect_contains "CA bundle that is not certificates refused" "invalid_ca" "$(cat "$E2E_TMP/err")"
if as member1 registry create mine --url https://x.example >/dev/null 2>"$E2E_TMP/err"; then
  fail "a member created a registry"
fi
expect_contains "member may not create a registry" "may not" "$(cat "$E2E_TMP/err")"
expect_eq "member lists the registries" "3" "$(as member1 registry list -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')"
if as viewer1 registry list >/dev/null 2>"$E2E_TMP/err"; then fail "a viewer listed registries"; fi
expect_contains "viewer may not read registries" "may not" "$(cat "$E2E_TMP/err")"

# ---- apps: default registries and the signing key made in vouchd
app=$(as member1 app create web --zone default --domain web.example.com -o json) || fail "app create"
MRSIGNER=$(echo "$app" | jq_get '["mrsigner"]')
[[ $MRSIGNER =~ ^[0-9a-f]{64}$ ]] || fail "app mrsigner: expected 64 hex, got '$MRSIGNER'"
ok "a new app has an mrsigner"
expect_eq "mrsigner stable across reads" "$MRSIGNER" "$("$VOUCH" app get web -o json | jq_get '["mrsigner"]')"
out=$(as member1 app update web --input-registry corp --output-registry hub -o json) || fail "app update"
expect_eq "app default registries by name" "corp hub" \
  "$(echo "$out" | python3 -c 'import json,sys; a=json.load(sys.stdin); print(a["input_registry"], a["output_registry"])')"
if "$VOUCH" registry delete corp 2>"$E2E_TMP/err"; then fail "deleted a registry an app names"; fi
expect_contains "registry in use: delete refused" "registry_in_use" "$(cat "$E2E_TMP/err")"

# ---- signing key rotation: an approval task; approval gives the app the new mrsigner
if as member1 app signing-key rotate web >/dev/null 2>"$E2E_TMP/err"; then fail "a member rotated a signing key"; fi
expect_contains "member may not rotate a signing key" "may not" "$(cat "$E2E_TMP/err")"
rot=$("$VOUCH" app signing-key rotate web -o json) || fail "signing-key rotate"
NEW=$(echo "$rot" | jq_get '["mrsigner"]')
TASK=$(echo "$rot" | jq_get '["task_id"]')
expect_eq "rotation is pending" "pending" "$(echo "$rot" | jq_get '["status"]')"
expect_eq "task kind signing_key" "signing_key" "$("$VOUCH" task get "$TASK" -o json | jq_get '["kind"]')"
expect_contains "task summary names the new mrsigner" "$NEW" "$("$VOUCH" task get "$TASK" -o json | jq_get '["summary"]')"
expect_eq "mrsigner unchanged before approval" "$MRSIGNER" "$("$VOUCH" app get web -o json | jq_get '["mrsigner"]')"
"$VOUCH" task approve "$TASK" >/dev/null || fail "approve the rotation"
expect_eq "approved rotation: the app's mrsigner is the new key's" "$NEW" "$("$VOUCH" app get web -o json | jq_get '["mrsigner"]')"

# ---- updates and deletion
"$VOUCH" registry update corp --password-file "$E2E_TMP/reg2.pw" --no-ca >/dev/null || fail "registry update"
expect_eq "CA removed by update" "false" "$("$VOUCH" registry get corp -o json | jq_get '["has_ca"]')"
as member1 app update web --no-input-registry --no-output-registry >/dev/null || fail "clear app registries"
"$VOUCH" registry delete corp >/dev/null || fail "registry delete once unused"
if "$VOUCH" registry get corp 2>"$E2E_TMP/err"; then fail "deleted registry still readable"; fi
expect_contains "deleted registry: not found" "registry_not_found" "$(cat "$E2E_TMP/err")"

# ---- the secrets are nowhere in clear
"$VOUCH" audit list -o json >"$E2E_TMP/audit.json" || fail "audit list"
for action in registry.create registry.update registry.delete app.update app.signing_key.rotate app.signing_key.create; do
  grep -q "\"$action\"" "$E2E_TMP/audit.json" || fail "no $action in the audit log"
done
ok "every registry and signing key change is audited"
for secret in "$PASSWORD" "$PASSWORD2" "$TOKEN"; do
  ! grep -qF -- "$secret" "$E2E_TMP/audit.json" || fail "a registry secret is in the audit log"
  ! grep -qF -- "$secret" "$E2E_TMP/vouchd.log" || fail "a registry secret is in vouchd's log"
  ! grep -qF -- "$secret" "$VOUCH_RECORD_API" || fail "a registry secret is in an API answer"
  ! grep -rqF -- "$secret" "$D" || fail "a registry secret is in clear in the data directory"
done
ok "registry secrets in no API answer, audit entry, vouchd log line or data-directory file"
! grep -q "BEGIN.*PRIVATE KEY" "$E2E_TMP/audit.json" "$E2E_TMP/vouchd.log" "$VOUCH_RECORD_API" \
  || fail "a private key in an answer, the audit log or the log"
ok "no signing key in an answer, the audit log or the log"
validate_recorded_api
echo "PASS ($E2E_PASSED checks)"
