#!/usr/bin/env bash
# Issue 15, conversion as a service, through the CLI (docs/convert.md "Server-side conversion"):
#  - a real docker-registry behind token auth (HTTPS on 127.0.0.2, registry_token_server.py), stored
#    through the API (`vouch registry create`), the sample images pushed with skopeo;
#  - `vouch conversion create --wait -o json` ends done with a pending build signed by the app's
#    key; approved, the output image pulled from the registry runs under runc next to a sim agent
#    and serves TLS that `openssl s_client -verify_return_error` verifies against the zone CA;
#  - refusals, each a failed job with its stable code and a one-line non-zero exit: wrong
#    credentials (registry_auth_failed), missing tag (image_not_found), a layer with a ".." entry
#    (image_rejected), a read-only output registry (push_refused), cancel mid-pull (cancelled; the
#    pull goes through throttle_proxy.py, so it is slow whatever the machine);
#  - kill -9 of vouchd mid-pull, then restart: the job ends done (retried) or failed, never stuck,
#    with exactly one build when done;
#  - registry passwords and private keys appear in no API answer, not in vouchd's log, not in the
#    audit log, and not in clear in the store; every API answer matches docs/api/openapi.json.
# Usage: conversion_service_test.sh VOUCH VOUCH_RTE VOUCHD VOUCH_AGENT
source "$(dirname "$0")/lib.sh"
VOUCH=$1
RTE=$2  # vouchd's converter embeds it (--conversion-runtime when this vouchd has the flag)
# shellcheck disable=SC2034  # start_dev_manager (lib.sh) runs it
VOUCHD=$3
# shellcheck disable=SC2034  # start_sim_agent (lib.sh) runs it
AGENT=$4
HERE=$(cd "$(dirname "$0")" && pwd)
require_tools docker-registry umoci skopeo runc busybox openssl curl python3 script
cd "$E2E_TMP" || fail "cd $E2E_TMP"
RUNC_ROOT=$E2E_TMP/runc
trap 'runc_cleanup; e2e_cleanup' EXIT
export HOME=$E2E_TMP/home DOCKER_CONFIG=$E2E_TMP/no-docker-config
mkdir -p "$HOME"

# --- PKI: a TLS CA (registry, token server) and a token-signing CA (the registry's rootcertbundle) ---
make_registry_pki

# --- the token server and the registry (token auth, HTTPS on 127.0.0.2) ---
PASSWORD=conv-secret-pw-4711
printf 'conv:%s\n' "$PASSWORD" >token-users
printf '%s\n' "$PASSWORD" >conv.pw
printf 'not-the-password\n' >wrong.pw
PT=$(free_port)
start_token_server "$PT" token-users
PB=$(free_port)
REG=127.0.0.2:$PB
start_registry reg "$REG" --tls --token "$PT"
# A read-only registry (anonymous, plain HTTP on loopback): every push is refused.
PR=$(free_port)
RO=127.0.0.1:$PR
start_registry ro "$RO" --readonly
# The same registry behind a proxy that sends its answers at 1 MB/s: a pull that takes seconds.
PX=$(free_port)
SLOW=127.0.0.2:$PX
start_throttle_proxy "$SLOW" "$REG" 1000000
touch token.log
servers_up() {
  local r t o p
  r=$(curl -s -o /dev/null -w '%{http_code}' --cacert tls-ca.pem "https://$REG/v2/")
  t=$(curl -s -o /dev/null -w '%{http_code}' --cacert tls-ca.pem "https://127.0.0.1:$PT/token?service=x")
  o=$(curl -s -o /dev/null -w '%{http_code}' "http://$RO/v2/")
  p=$(curl -s -o /dev/null -w '%{http_code}' --cacert tls-ca.pem "https://$SLOW/v2/")
  echo "registry $r token $t read-only $o proxy $p"
  [[ $r == 401 && $t == 200 && $o == 200 && $p == 401 ]]
}
wait_until "the registry, its token server, the read-only registry and the proxy answer" 100 servers_up
ok "docker-registry behind token auth on $REG, a read-only registry on $RO, a 1 MB/s proxy on $SLOW"

# --- images: an openssl server, a hostile layer, a slow one (4 MB of random bytes) ---
image_begin img:tls
mkdir -p "$IMAGE_ROOT/tmp"
image_add_busybox sh echo sleep cat
image_add_openssl
image_end img:tls
TPORT=$(free_port)
umoci config --image img:tls --config.entrypoint /usr/bin/openssl --config.cmd s_server --config.cmd -accept \
  --config.cmd "$TPORT" --config.cmd -cert --config.cmd /run/vouch/certs/cert.pem --config.cmd -key \
  --config.cmd /run/vouch/certs/key.pem --config.cmd -www >/dev/null
image_begin img:big
image_add_busybox
head -c 4000000 /dev/urandom >"$IMAGE_ROOT/noise"
image_end img:big
umoci config --image img:big --config.cmd /bin/busybox --config.cmd true >/dev/null
python3 "$HERE/make_image.py" dotdot dotdot
mkdir certs.d && cp tls-ca.pem certs.d/ca.crt
push() {  # SRC DEST-REPO:TAG
  skopeo copy -q --dest-cert-dir certs.d --dest-creds "conv:$PASSWORD" "$1" "docker://$REG/$2" || fail "skopeo push $2"
}
push oci:img:tls src/tls:v1
push oci:img:big src/big:v1
push oci:dotdot:t src/dotdot:t
ok "images pushed with skopeo: an openssl server, a 4 MB layer of random bytes, a layer with a '..' entry"

# --- the manager, the agent, the app, the registries stored through the API ---
record_api
SERVE=(--heartbeat-interval 1)
"$VOUCHD" serve --help 2>&1 | grep -q -- '--conversion-runtime' && SERVE+=(--conversion-runtime "$RTE")
start_dev_manager "${SERVE[@]}"
"$VOUCH" zone ca default >zone-ca.pem || fail "zone ca default"
"$VOUCH" app create svc --zone default --domain svc.example.com >/dev/null || fail "app create svc"
approve_domains "$VOUCH" svc
"$VOUCH" app create crash --zone default --domain crash.example.com >/dev/null || fail "app create crash"
start_sim_agent "$E2E_TMP/agent" agent.log --batch-interval-ms 200
ok "vouchd and vouch-agent (sim) running"

"$VOUCH" registry create main --url "https://$REG" --ca-file tls-ca.pem --user conv --password-file conv.pw \
  -o json >reg-main.json || fail "vouch registry create main: $(cat reg-main.json)"
expect_eq "the stored registry says it has a secret" true "$(jq_get '["has_secret"]' <reg-main.json)"
"$VOUCH" registry create slow --url "https://$SLOW" --ca-file tls-ca.pem --user conv --password-file conv.pw \
  >/dev/null || fail "vouch registry create slow"
"$VOUCH" registry create wrong --url "https://$REG" --ca-file tls-ca.pem --user conv --password-file wrong.pw \
  >/dev/null || fail "vouch registry create wrong"
"$VOUCH" registry create ro --url "http://$RO" --insecure >/dev/null || fail "vouch registry create ro (insecure)"
out=$("$VOUCH" registry get main -o json) || fail "vouch registry get main"
[[ $out != *"$PASSWORD"* ]] || fail "registry get shows the password"
ok "four registries stored through the API (the password is not in the answer)"
# main and wrong name the same host: the apps name main as their default (host matching would
# take the older of the two, and both may be created within the same second).
for app in svc crash; do
  "$VOUCH" app update "$app" --input-registry main --output-registry main >/dev/null || fail "app update $app"
done
expect_eq "the app's default input registry" main "$("$VOUCH" app get svc -o json | jq_get '["input_registry"]')"

# --- bad input: a usage error before any request, or the server's refusal; no job either way ---
err=$("$VOUCH" conversion create --app svc --input "$REG/src/tls:v1" --output "$REG/tee/x:v1" --mem-size 12Q 2>&1)
expect_eq "a bad option value is a usage error (exit 2)" 2 "$?"
expect_contains "naming the flag" "--mem-size" "$err"
err=$("$VOUCH" conversion create --app nosuchapp --input "$REG/src/tls:v1" --output "$REG/tee/x:v1" 2>&1)
expect_eq "an unknown app is refused by the server (exit 1)" 1 "$?"
[[ $(wc -l <<<"$err") -eq 1 && $err == "vouch: "*"(app_not_found)" ]] || fail "unknown app: expected one line ending (app_not_found), got: $err"
ok "unknown app: one line naming app_not_found"
expect_eq "no job was made" "[]" "$("$VOUCH" conversion list -o json | jq_get '["items"]')"

# --- a conversion through the CLI: done, a pending build, the app's mrsigner ---
jobs_log() { echo "$1" >>jobs.txt; }
"$VOUCH" conversion create --app svc --input "$REG/src/tls:v1" --output "$REG/tee/tls:v1" \
  --cert-dns svc.example.com --heartbeat-interval 1 --wait -o json >job.json 2>job.err
rc=$?
jobs_log "$(cat job.json)"
[[ $rc == 0 ]] || fail "conversion create --wait exited $rc: $(tail -3 job.err) $(head -c 1500 job.json)"
ok "conversion create --wait exits 0"
expect_eq "the job ends done" "done" "$(jq_get '["state"]' <job.json)"
expect_eq "no error" None "$(jq_get '["error"]' <job.json)"
expect_contains "progress lines on stderr (not a terminal)" "pulling" "$(cat job.err)"
[[ $(grep -c $'\r' job.err) == 0 ]] || fail "progress redrawn with \\r although stderr is not a terminal"
ok "plain progress lines when stderr is not a terminal"
JOB=$(jq_get '["id"]' <job.json)
BUILD=$(jq_get '["build_id"]' <job.json)
DIGEST=$(jq_get '["output_digest"]' <job.json)
MRENCLAVE=$(jq_get '["mrenclave"]' <job.json)
[[ $JOB == cnv_* && -n $BUILD && $BUILD != None && $DIGEST == sha256:* && ${#MRENCLAVE} == 64 ]] ||
  fail "the final record lacks id, build_id, output_digest or mrenclave: $(cat job.json)"
ok "the final record has id $JOB, build $BUILD, digest and mrenclave"
expect_eq "mrsigner is the app's (GET /apps/{id})" "$("$VOUCH" app get svc -o json | jq_get '["mrsigner"]')" \
  "$(jq_get '["mrsigner"]' <job.json)"
build=$("$VOUCH" build get "$BUILD" -o json) || fail "build get"
expect_eq "the build is pending approval" pending "$(jq_get '["status"]' <<<"$build")"
expect_eq "the build has the output digest" "$DIGEST" "$(jq_get '["image_digest"]' <<<"$build")"
expect_eq "the build has the job's mrenclave" "$MRENCLAVE" "$(jq_get '["measurements"]["mrenclave"]' <<<"$build")"
inspect=$(skopeo inspect --cert-dir certs.d --creds "conv:$PASSWORD" "docker://$REG/tee/tls:v1") ||
  fail "skopeo inspect of the output"
expect_eq "the registry holds the output digest" "$DIGEST" "$(jq_get '["Digest"]' <<<"$inspect")"
# On a terminal: one line redrawn (carriage return, bar, percentage), then the record.
tty_out=$(script -qec "$VOUCH conversion get $JOB --wait" /dev/null) || fail "conversion get --wait on a terminal"
[[ $tty_out == *$'\r'"$JOB  ["*"] 100%"* ]] || fail "no progress bar on a terminal: ${tty_out:0:300}"
ok "on a terminal, the progress is one line redrawn with a bar and a percentage"
expect_contains "the job is listed as done" "$JOB" "$("$VOUCH" conversion list --state "done" --app svc -o json)"
expect_contains "the table view lists it" "$JOB" "$("$VOUCH" conversion list)"

# --- approved, pulled and run under runc: TLS verified against the zone CA ---
"$VOUCH" task approve "$(jq_get '["task_id"]' <<<"$build")" >/dev/null || fail "approve the build"
skopeo copy -q --src-cert-dir certs.d --src-creds "conv:$PASSWORD" "docker://$REG/tee/tls:v1" oci:pulled:v1 ||
  fail "skopeo pull of the output"
unpack_for_runc pulled:v1 run-tls "$SOCK" --host-network
(cd run-tls && exec runc --root "$RUNC_ROOT" run conv-tls >../tls.log 2>&1) &
tlspid=$!
tls_up_or_gone() { tcp_open "$TPORT" || ! kill -0 "$tlspid" 2>/dev/null; }
wait_until "the converted image listens on port $TPORT" 300 tls_up_or_gone
kill -0 "$tlspid" 2>/dev/null || fail "the converted image exited: $(tail -5 tls.log)"
out=$(echo | openssl s_client -connect "127.0.0.1:$TPORT" -verify_return_error -CAfile zone-ca.pem \
  -verify_hostname svc.example.com 2>&1)
expect_contains "s_client -verify_return_error verifies the workload against the zone CA" "Verification: OK" "$out"
runc --root "$RUNC_ROOT" kill conv-tls TERM
wait "$tlspid"

# --- refusals: a failed job with its code, one line on stderr, a non-zero exit ---
refused() {  # WHAT CODE create-args...
  local what=$1 code=$2 out err rc
  shift 2
  out=$("$VOUCH" conversion create --app svc --no-certificate --wait -o json "$@" 2>refused.err)
  rc=$?
  jobs_log "$out"
  err=$(grep '^vouch: ' refused.err)
  [[ $rc -ne 0 ]] || fail "$what: conversion create --wait exited 0: $out"
  expect_eq "$what: the job failed" failed "$(jq_get '["state"]' <<<"$out")"
  expect_eq "$what: error code $code" "$code" "$(jq_get '["error"]["code"]' <<<"$out")"
  [[ $(wc -l <<<"$err") -eq 1 ]] || fail "$what: expected one error line, got: $err"
  expect_contains "$what: the error line names the code" "($code)" "$err"
  echo "  # $err"
}
refused "wrong credentials" registry_auth_failed --input "$REG/src/tls:v1" --input-registry wrong \
  --output "$REG/tee/wrong:v1"
refused "missing tag" image_not_found --input "$REG/src/tls:nope" --output "$REG/tee/nope:v1"
refused "a layer with a '..' entry" image_rejected --input "$REG/src/dotdot:t" --output "$REG/tee/dotdot:t"
[[ ! -e store-reg/docker/registry/v2/repositories/tee/dotdot ]] || fail "the hostile image was pushed"
ok "nothing was pushed for the hostile image"
refused "read-only output registry" push_refused --input "$REG/src/tls:v1" --output "$RO/tee/ro:v1"

# --- cancel mid-pull ---
# For wait_until: job ID is in STATE with more than 0 bytes done.
moving() {  # ID STATE
  "$VOUCH" conversion get "$1" -o json | python3 -c '
import json, sys
j = json.load(sys.stdin); p = j.get("progress") or {}
print(j["state"], p.get("bytes_done"), "of", p.get("bytes_total"))
sys.exit(0 if j["state"] == sys.argv[1] and (p.get("bytes_done") or 0) > 0 else 1)' "$2"
}
"$VOUCH" conversion create --app svc --no-certificate --input "$SLOW/src/big:v1" --output "$REG/tee/cancelled:v1" \
  -o json >cancel.json || fail "conversion create (slow)"
CJOB=$(jq_get '["id"]' <cancel.json)
wait_until "the slow job is pulling with bytes done" 150 moving "$CJOB" pulling
"$VOUCH" conversion cancel "$CJOB" >/dev/null || fail "conversion cancel"
out=$(timeout 60 "$VOUCH" conversion get "$CJOB" --wait -o json 2>cancel.err)
rc=$?
jobs_log "$out"
[[ $rc -ne 0 ]] || fail "get --wait of a cancelled job exited 0"
expect_eq "cancel mid-pull: the job ends cancelled" cancelled "$(jq_get '["state"]' <<<"$out")"
expect_eq "cancel mid-pull: error code cancelled" cancelled "$(jq_get '["error"]["code"]' <<<"$out")"
expect_contains "cancel mid-pull: one line on stderr" "(cancelled)" "$(cat cancel.err)"
[[ ! -e store-reg/docker/registry/v2/repositories/tee/cancelled ]] || fail "the cancelled job pushed something"
ok "cancel mid-pull: nothing pushed"

# --- kill -9 of vouchd mid-pull, restart: done or failed, never stuck, one build at most ---
"$VOUCH" conversion create --app crash --no-certificate --input "$SLOW/src/big:v1" --output "$REG/tee/crash:v1" \
  -o json >crash.json || fail "conversion create (crash)"
KJOB=$(jq_get '["id"]' <crash.json)
wait_until "the crash job is pulling with bytes done" 150 moving "$KJOB" pulling
kill -9 "$VOUCHD_PID"
wait "$VOUCHD_PID" 2>/dev/null
serve_manager "${SERVE[@]}"
ok "vouchd killed with -9 mid-pull and restarted"
out=$(timeout 90 "$VOUCH" conversion get "$KJOB" --wait -o json 2>crash.err)
jobs_log "$out"
state=$(jq_get '["state"]' <<<"$out")
builds=$("$VOUCH" build list --app crash -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
case $state in
  done)
    expect_eq "after the restart the job was retried and is done, with exactly one build" 1 "$builds"
    expect_eq "the build is the job's" "$(jq_get '["build_id"]' <<<"$out")" \
      "$("$VOUCH" build list --app crash -o json | jq_get '["items"][0]["id"]')" ;;
  failed)
    echo "  # $(jq_get '["error"]' <<<"$out")"
    expect_eq "after the restart the job failed, with no build" 0 "$builds" ;;
  *) fail "after the restart the job is '$state', expected done or failed: $out" ;;
esac
[[ $(jq_get '["attempts"]' <<<"$out") -ge 1 ]] || fail "attempts: $(jq_get '["attempts"]' <<<"$out")"
ok "the interrupted job counted its attempts ($(jq_get '["attempts"]' <<<"$out"))"

# --- secrets: never in API answers, vouchd's log, the audit log, nor in clear in the store ---
"$VOUCH" audit list -o json >audit.json || fail "audit list"
# audit_actions ID: the job's audit actions, oldest first.
audit_actions() {
  python3 -c 'import json,sys; print(" ".join(e["action"] for e in reversed(json.load(sys.stdin)["items"]) if e.get("target") == sys.argv[1]))' "$1" <audit.json
}
expect_eq "the done job's start and end are audited" "conversion.create conversion.start conversion.done" \
  "$(audit_actions "$JOB")"
expect_eq "the cancel and the job's end are audited" \
  "conversion.create conversion.start conversion.cancel conversion.cancelled" "$(audit_actions "$CJOB")"
expect_contains "the killed job's requeue, new start and end are audited" \
  "conversion.start conversion.requeue conversion.start conversion.$state" "$(audit_actions "$KJOB")"
for f in "$VOUCH_RECORD_API" "$E2E_TMP/vouchd.log" audit.json jobs.txt; do
  ! grep -qF -- "$PASSWORD" "$f" || fail "the registry password is in $f"
  ! grep -q -- "not-the-password" "$f" || fail "the wrong password is in $f"
  ! grep -q -- "PRIVATE KEY" "$f" || fail "a PEM private key is in $f"
done
ok "no registry password and no private key in the API answers, vouchd's log or the audit log"
for f in "$D"/vouch.db*; do
  [[ -e $f ]] || continue
  ! grep -qaF -- "$PASSWORD" "$f" || fail "the registry password is in clear in $f"
  ! grep -qa -- "PRIVATE KEY" "$f" || fail "a PEM private key is in clear in $f"
done
ok "nor in clear in the store"
# The app signing keys themselves, unsealed here with the dev data directory's master key: their
# PEM and their private scalar appear nowhere; their raw bytes not in the store.
python3 "$HERE/signing_key_needles.py" "$D" >needles.txt || fail "cannot unseal the app signing keys"
nkeys=$(grep -c '^text ' needles.txt)
while read -r kind needle; do
  if [[ $kind == text ]]; then
    for f in "$VOUCH_RECORD_API" "$E2E_TMP/vouchd.log" audit.json jobs.txt; do
      ! grep -qF -- "$needle" "$f" || fail "an app signing key (${needle:0:8}...) is in $f"
    done
  else
    python3 -c 'import sys; n = bytes.fromhex(sys.argv[1]); sys.exit(any(n in open(f, "rb").read() for f in sys.argv[2:]))' \
      "$needle" "$D"/vouch.db* || fail "an app signing key is in clear in the store"
  fi
done <needles.txt
ok "the app signing keys (unsealed with the master key) are in no answer, log or audit entry, nor in clear in the store ($nkeys strings)"
validate_recorded_api

echo "PASS conversion_service_test ($E2E_PASSED checks)"
