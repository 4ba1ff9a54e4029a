#!/usr/bin/env bash
# End-to-end: vouchd + the vouch CLI, with curl/openssl/sqlite3 as independent checkers.
# Usage: manager_cli_test.sh VOUCHD VOUCH
source "$(dirname "$0")/lib.sh"
VOUCHD=$1
VOUCH=$2
record_api  # every API answer the CLI gets is checked against docs/api/openapi.json at the end
D=$E2E_TMP/manager
PORT=$(free_port)
URL=https://127.0.0.1:$PORT
export VOUCH_CONFIG=$E2E_TMP/cli.json
printf 'admin-password-123\n' >"$E2E_TMP/admin.pw"
printf 'approver-password-1\n' >"$E2E_TMP/a1.pw"
printf 'approver-password-2\n' >"$E2E_TMP/a2.pw"
printf 'viewer-password-12\n' >"$E2E_TMP/v.pw"

# ---- init and serve
"$VOUCHD" init --data-dir "$D" --admin-user admin --admin-password-file "$E2E_TMP/admin.pw" \
  --listen "127.0.0.1:$PORT" >/dev/null || fail "vouchd init"
expect_eq "master key is private" 600 "$(stat -c %a "$D/master.key")"
expect_eq "database is private" 600 "$(stat -c %a "$D/vouch.db")"
if "$VOUCHD" init --data-dir "$D" --admin-user admin --admin-password-file "$E2E_TMP/admin.pw" 2>"$E2E_TMP/err"; then
  fail "second init must refuse"
fi
expect_contains "second init refused with one line" "already holds" "$(cat "$E2E_TMP/err")"
! grep -q "BEGIN.*PRIVATE KEY" "$D"/tls/* "$D/config.json" || fail "a private key is stored in clear"
ok "no private key in clear in the data dir"

start_vouchd() {
  "$VOUCHD" serve --data-dir "$D" >>"$E2E_TMP/vouchd.log" 2>&1 &
  VOUCHD_PID=$!
  E2E_PIDS+=("$VOUCHD_PID")
  wait_healthy "$URL" "$D/service-ca.pem" "$VOUCHD_PID" || { cat "$E2E_TMP/vouchd.log"; fail "vouchd did not become healthy"; }
}
start_vouchd
expect_eq "healthz over TLS with curl --cacert" "ok" "$(curl -fsS --cacert "$D/service-ca.pem" "$URL/healthz")"
expect_eq "readyz" "ready" "$(curl -fsS --cacert "$D/service-ca.pem" "$URL/readyz")"
tls=$(echo | openssl s_client -connect "127.0.0.1:$PORT" -CAfile "$D/service-ca.pem" -verify_return_error 2>/dev/null)
expect_contains "openssl s_client negotiates TLS 1.3 and verifies" "TLSv1.3" "$tls"
if echo | openssl s_client -connect "127.0.0.1:$PORT" -tls1_1 >/dev/null 2>&1; then fail "TLS 1.1 accepted"; fi
ok "TLS 1.1 refused"
code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$D/service-ca.pem" "$URL/api/v1/zones")
expect_eq "401 without credentials" 401 "$code"

# ---- login and users
"$VOUCH" login --server "$URL" --ca-file "$D/service-ca.pem" --user admin --password-file "$E2E_TMP/admin.pw" >/dev/null \
  || fail "login"
expect_eq "context file is private" 600 "$(stat -c %a "$VOUCH_CONFIG")"
"$VOUCH" user create approver1 --role approver --password-file "$E2E_TMP/a1.pw" >/dev/null || fail "user create"
"$VOUCH" user create approver2 --role approver --password-file "$E2E_TMP/a2.pw" >/dev/null || fail "user create"
"$VOUCH" user create viewer1 --role viewer --password-file "$E2E_TMP/v.pw" >/dev/null || fail "user create"
if "$VOUCH" login --server "$URL" --ca-file "$D/service-ca.pem" --user admin --password-file "$E2E_TMP/v.pw" \
  --config "$E2E_TMP/bad.json" 2>"$E2E_TMP/err"; then fail "wrong password accepted"; fi
expect_eq "wrong password: one line on stderr" 1 "$(wc -l <"$E2E_TMP/err")"
as() {  # as USER args...: run the CLI with another user's context
  local user=$1; shift
  VOUCH_CONFIG=$E2E_TMP/$user.json "$VOUCH" "$@"
}
for u in approver1:a1 approver2:a2 viewer1:v; do
  VOUCH_CONFIG=$E2E_TMP/${u%%:*}.json "$VOUCH" login --server "$URL" --ca-file "$D/service-ca.pem" --user "${u%%:*}" \
    --password-file "$E2E_TMP/${u##*:}.pw" >/dev/null || fail "login ${u%%:*}"
done

# ---- zone, app, build with quorum 2
"$VOUCH" zone create prod --approvals 2 --min-tcb UpToDate >/dev/null || fail "zone create"
expect_eq "zone policy approvals" 2 "$("$VOUCH" zone get prod -o json | jq_get '["policy"]["approvals_required"]')"
"$VOUCH" zone ca prod >"$E2E_TMP/prod-ca.pem"
openssl x509 -in "$E2E_TMP/prod-ca.pem" -noout -text >"$E2E_TMP/ca.txt" || fail "zone CA is not a certificate"
expect_contains "zone CA is an ECDSA P-256 CA" "prime256v1" "$(cat "$E2E_TMP/ca.txt")"
expect_contains "zone CA has CA:TRUE" "CA:TRUE" "$(cat "$E2E_TMP/ca.txt")"
app=$("$VOUCH" app create web --zone prod --domain web.example.com --domain api.example.com -o json) || fail "app create"
expect_eq "initial domains wait for approval" '["api.example.com", "web.example.com"]' "$(echo "$app" | jq_get '["pending_domains"]')"
for t in $(echo "$app" | python3 -c 'import json,sys; print(" ".join(t["task_id"] for t in json.load(sys.stdin)["domain_tasks"]))'); do
  as approver1 task approve "$t" >/dev/null && as approver2 task approve "$t" >/dev/null || fail "approve domain task $t"
done
expect_eq "approved by two approvers (quorum 2)" '["api.example.com", "web.example.com"]' \
  "$("$VOUCH" app get web -o json | jq_get '["domains"]')"
if as viewer1 app create nope --zone prod --domain x.example.com 2>"$E2E_TMP/err"; then fail "viewer created an app"; fi
expect_contains "viewer refused with a clear message" "may not" "$(cat "$E2E_TMP/err")"
MRE=$(printf 'ab%.0s' {1..32}); MRS=$(printf 'cd%.0s' {1..32})
build=$("$VOUCH" build create --app web --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 7 --isvsvn 3 -o json)
BUILD=$(echo "$build" | jq_get '["id"]'); TASK=$(echo "$build" | jq_get '["task_id"]')
expect_eq "new build is pending" pending "$(echo "$build" | jq_get '["status"]')"
as approver1 task approve "$TASK" >/dev/null || fail "approve 1"
expect_eq "one approval of two leaves it pending" pending "$("$VOUCH" build get "$BUILD" -o json | jq_get '["status"]')"
as approver1 task approve "$TASK" >/dev/null || fail "approve 1 again"
expect_eq "the same approver twice still pending" pending "$("$VOUCH" build get "$BUILD" -o json | jq_get '["status"]')"
as approver2 task approve "$TASK" >/dev/null || fail "approve 2"
expect_eq "the second approver approves it" approved "$("$VOUCH" build get "$BUILD" -o json | jq_get '["status"]')"

# ---- deny
build2=$("$VOUCH" build create --app web --mrenclave "$(printf 'ef%.0s' {1..32})" --mrsigner "$MRS" --isvprodid 7 --isvsvn 4 -o json)
as approver2 task deny "$(echo "$build2" | jq_get '["task_id"]')" --reason "unknown change" >/dev/null || fail "deny"
expect_eq "one denial denies" denied "$("$VOUCH" build get "$(echo "$build2" | jq_get '["id"]')" -o json | jq_get '["status"]')"

# ---- certificate, revocation, CRL
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$E2E_TMP/w.key" -out "$E2E_TMP/w.csr" \
  -subj "/CN=web.example.com" -addext "subjectAltName=DNS:web.example.com" 2>/dev/null || fail "openssl req"
cert=$("$VOUCH" cert issue --build "$BUILD" --csr "$E2E_TMP/w.csr" -o json) || fail "cert issue"
SERIAL=$(echo "$cert" | jq_get '["serial"]')
echo "$cert" | jq_get '["pem"]' >"$E2E_TMP/w.pem"
expect_contains "openssl verify accepts the workload certificate" "OK" \
  "$(openssl verify -CAfile "$E2E_TMP/prod-ca.pem" -purpose sslserver "$E2E_TMP/w.pem" 2>&1)"
expect_contains "certificate carries the SPIFFE ID" "spiffe://prod/app/web" \
  "$(openssl x509 -in "$E2E_TMP/w.pem" -noout -ext subjectAltName 2>&1)"
"$VOUCH" build revoke "$BUILD" >/dev/null || fail "build revoke"
expect_eq "revoking the build revokes its certificate" revoked "$("$VOUCH" cert get "$SERIAL" -o json | jq_get '["status"]')"
curl -fsS --cacert "$D/service-ca.pem" "$URL/api/v1/zones/prod/crl" -o "$E2E_TMP/prod.crl" || fail "CRL download"
crl=$(openssl crl -inform DER -in "$E2E_TMP/prod.crl" -noout -text 2>&1)
expect_contains "openssl crl lists the revoked serial" "${SERIAL^^}" "$crl"
openssl crl -inform DER -in "$E2E_TMP/prod.crl" -out "$E2E_TMP/prod-crl.pem"
cat "$E2E_TMP/prod-ca.pem" "$E2E_TMP/prod-crl.pem" >"$E2E_TMP/ca-crl.pem"
if openssl verify -crl_check -CAfile "$E2E_TMP/ca-crl.pem" "$E2E_TMP/w.pem" >/dev/null 2>&1; then fail "revoked cert verifies"; fi
ok "openssl verify -crl_check rejects the revoked certificate"

# ---- bad input over the wire: 4xx JSON, nothing changes
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$VOUCH_CONFIG" 2>/dev/null)
[[ -n "$TOKEN" ]] || fail "no token in the context file"
req() { curl -s --cacert "$D/service-ca.pem" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' "$@"; }
before=$(sqlite3 "$D/vouch.db" "SELECT COUNT(*) FROM zones; SELECT COUNT(*) FROM apps; SELECT COUNT(*) FROM builds;")
for body in '{' '{"name":5}' '{"name":"a b"}' '{"name":"x","extra":1}' '[]' "{\"name\":\"z\\u0000\"}"; do
  out=$(req -w ' %{http_code}' -X POST "$URL/api/v1/zones" -d "$body")
  [[ "${out##* }" == 400 ]] || fail "bad zone body $body: expected 400, got $out"
  [[ "$out" == *'"error"'* ]] || fail "bad zone body $body: no JSON error"
done
ok "malformed zone bodies get 400 with a JSON error"
head -c 2000000 /dev/zero | tr '\0' 'a' >"$E2E_TMP/huge"
code=$(req -o /dev/null -w '%{http_code}' -X POST "$URL/api/v1/zones" --data-binary @"$E2E_TMP/huge")
expect_eq "a 2 MB body gets 413" 413 "$code"
code=$(req -o /dev/null -w '%{http_code}' "$URL/api/v1/apps/..%2F..%2Fetc%2Fpasswd")
expect_eq "path traversal in a name is just not found" 404 "$code"
code=$(req -o /dev/null -w '%{http_code}' -X POST "$URL/api/v1/certificates" -d "{\"build_id\":\"$BUILD\",\"csr\":\"garbage\"}")
expect_eq "garbage CSR gets 400" 400 "$code"
after=$(sqlite3 "$D/vouch.db" "SELECT COUNT(*) FROM zones; SELECT COUNT(*) FROM apps; SELECT COUNT(*) FROM builds;")
expect_eq "store unchanged by bad input" "$before" "$after"
metrics=$(curl -fsS --cacert "$D/service-ca.pem" "$URL/metrics")
expect_contains "metrics count requests by route" 'route="/api/v1/zones"' "$metrics"
expect_contains "metrics expose pending tasks" "vouch_tasks_pending" "$metrics"
# Prometheus' own linter: types, names, HELP, counters named *_total (Debian's prometheus package).
if command -v promtool >/dev/null; then
  lint=$(promtool check metrics <<<"$metrics" 2>&1) || fail "promtool check metrics: $lint"
  expect_eq "promtool check metrics finds nothing to report" "" "$lint"
else
  fail "promtool is missing (scripts/setup installs the prometheus package)"
fi

# ---- audit chain
expect_contains "audit verify passes" "ok" "$("$VOUCH" audit verify 2>&1)"
"$VOUCH" audit list -o json | jq_get '["items"][0]["action"]' >/dev/null || fail "audit list"
# kill -9: committed state survives.
kill -9 "$VOUCHD_PID"; wait "$VOUCHD_PID" 2>/dev/null
start_vouchd
expect_eq "after kill -9 the approved-then-revoked build is still revoked" revoked \
  "$("$VOUCH" build get "$BUILD" -o json | jq_get '["status"]')"
expect_contains "audit still verifies after kill -9" "ok" "$("$VOUCH" audit verify 2>&1)"
# SIGTERM stops gracefully.
kill -TERM "$VOUCHD_PID"
wait_until "vouchd stops on SIGTERM" 100 process_gone "$VOUCHD_PID"
wait "$VOUCHD_PID"; expect_eq "SIGTERM exit status" 0 "$?"
# Edit a row behind the manager's back: verify must fail.
sqlite3 "$D/vouch.db" "UPDATE audit SET actor = 'user:mallory' WHERE seq = 3;"
start_vouchd
if "$VOUCH" audit verify >"$E2E_TMP/verify.out" 2>&1; then fail "audit verify passed after an edit"; fi
expect_contains "audit verify names the edited entry" "3" "$(cat "$E2E_TMP/verify.out")"

validate_recorded_api
echo "$E2E_PASSED passed, 0 failed"
