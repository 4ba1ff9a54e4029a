#!/usr/bin/env bash
# Runtime integrity with real tools (issue 13, attack 2): vouchd, vouch-agent (sim TEE), an
# openssl image converted once (protected: everything but /tmp, so runc's /proc, /sys, /dev
# mounts and the agent socket mount lie inside the measured tree), then three hostile layers added
# to the converted image with umoci (the manifest and its signature unchanged):
#   (a) /etc/ld.so.preload plus a library,  (b) /usr/local/bin/openssl, earlier in PATH than the
#   entrypoint's /usr/bin/openssl,  (c) a symlink at the credentials directory /run/vouch/certs.
# Each is refused by vouch-rte naming the path, nothing is written where the symlink points, and
# the refusal reaches vouchd's audit log through the agent (POST /v1/refusal, then the check-in).
# The clean image gets its certificate and serves TLS that verifies against the zone CA.
# Usage: rte_integrity_test.sh VOUCH VOUCH_RTE VOUCHD VOUCH_AGENT
source "$(dirname "$0")/lib.sh"
VOUCH=$1
RTE=$2
# shellcheck disable=SC2034  # start_dev_manager (lib.sh) runs it
VOUCHD=$3
# shellcheck disable=SC2034  # start_sim_agent (lib.sh) runs it
AGENT=$4
require_tools umoci runc busybox openssl
cd "$E2E_TMP" || fail "cd $E2E_TMP"
RUNC_ROOT=$E2E_TMP/runc
trap 'runc_cleanup; e2e_cleanup' EXIT

# --- manager and agent ---
start_dev_manager --heartbeat-interval 1
"$VOUCH" app create integ --zone default --domain integ.example.com >/dev/null || fail "app create"
approve_domains "$VOUCH" integ
"$VOUCH" zone ca default > zone-ca.pem || fail "zone ca default"
A=$E2E_TMP/agent
start_sim_agent "$A" agent.log --batch-interval-ms 200
ok "vouchd and vouch-agent (sim) running"

# --- the image: busybox, openssl and its libraries; /usr/local/bin exists and is empty ---
image_begin img:v1
mkdir -p "$IMAGE_ROOT/usr/local/bin" "$IMAGE_ROOT/etc" "$IMAGE_ROOT/tmp"
image_add_busybox sh echo sleep cat
image_add_openssl
image_end img:v1
TPORT=$(free_port)
# `openssl`, not a path: the converter resolves it through the image's PATH.
umoci config --image img:v1 --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.entrypoint openssl \
  --config.cmd s_server --config.cmd -accept --config.cmd "$TPORT" --config.cmd -cert \
  --config.cmd /run/vouch/certs/cert.pem --config.cmd -key --config.cmd /run/vouch/certs/key.pem \
  --config.cmd -www >/dev/null
conv=$("$VOUCH" convert --input oci:img:v1 --output oci:out:clean --runtime "$RTE" --app integ \
       --cert-dns integ.example.com --heartbeat-interval 1 --rw-dir /tmp -o json) || fail "convert"
MRENCLAVE=$(jq_get '["mrenclave"]' <<<"$conv")
approve_converted_build "$conv"
ok "openssl image converted (entrypoint resolved through PATH) and its build approved"

# A converter without a resolvable program fails with a clear message.
umoci config --image img:v1 --tag nope --config.entrypoint no-such-program >/dev/null
out=$("$VOUCH" convert --input oci:img:nope --output oci:out:nope --runtime "$RTE" --no-certificate 2>&1)
[[ $? -ne 0 ]] || fail "an image whose entrypoint is not in it converted"
expect_contains "unresolvable entrypoint: conversion fails naming it" 'no-such-program' "$out"

# --- the hostile layers, each added to the converted image ---
add_layer() {  # TAG: unpack out:clean, let the caller change rootfs (stdin script), repack as out:TAG
  umoci unpack --image out:clean "h-$1" >/dev/null || fail "umoci unpack for $1"
  (cd "h-$1/rootfs" && bash -e) || fail "building layer $1"
  umoci repack --image "out:$1" "h-$1" >/dev/null || fail "umoci repack $1"
  rm -rf "h-$1"
}
add_layer preload <<'SH'
mkdir -p usr/lib
cp lib/x86_64-linux-gnu/libc.so.6 usr/lib/libevil.so 2>/dev/null || echo evil > usr/lib/libevil.so
echo /usr/lib/libevil.so > etc/ld.so.preload
SH
add_layer path <<'SH'
printf '#!/bin/sh\necho attacker code with the key\n' > usr/local/bin/openssl
chmod 755 usr/local/bin/openssl
SH
add_layer credlink <<'SH'
mkdir -p run/vouch
ln -s /tmp/stolen run/vouch/certs
SH
[[ $(python3 -c 'import json,sys; print(len(json.load(open("out/index.json"))["manifests"]))') -ge 4 ]] \
  || fail "the hostile images were not written"
ok "three hostile layers added on top of the converted image (manifest and signature unchanged)"

runc_bundle() { unpack_for_runc "out:$1" "$2" "$SOCK" --host-network; }  # TAG DIR
audit_json() { "$VOUCH" audit list -o json; }
refused() {  # TAG CODE PATH
  runc_bundle "$1" "run-$1"
  local log rc
  log=$(cd "run-$1" && timeout 60 runc --root "$RUNC_ROOT" run "r-$1" 2>&1)
  rc=$?
  expect_eq "$1: vouch-rte refuses to start" 1 "$rc"
  expect_contains "$1: the refusal names $3" "$3" "$log"
  expect_contains "$1: the refusal code is $2" "$2" "$log"
  [[ $log != *"attacker code"* && $log != *"ACCEPT"* ]] || fail "$1: the application ran: $log"
  wait_until "$1: vouchd's audit log has denied:$2 naming $3" 100 audited_refusal "$2" "$3"
  ok "$1: vouchd's audit log has denied:$2 naming $3 (reported by the agent)"
}
# For wait_until: vouchd's audit log has a denied:CODE entry naming PATH and this MRENCLAVE.
audited_refusal() {  # CODE PATH
  audit_json | python3 -c '
import json, sys
code, path, mre = sys.argv[1:]
items = json.load(sys.stdin)["items"]
sys.exit(0 if any(i.get("outcome") == "denied:" + code and path in json.dumps(i) and mre in json.dumps(i)
                  for i in items) else 1)' "$1" "$2" "$MRENCLAVE" || { echo "no denied:$1 entry naming $2"; return 1; }
}
refused preload unlisted_entry /etc/ld.so.preload
refused path unlisted_entry /usr/local/bin/openssl
refused credlink credentials_path_unsafe /run/vouch/certs
[[ ! -e /tmp/stolen && ! -e run-credlink/rootfs/tmp/stolen ]] || fail "something was written where the symlink points"
ok "credlink: nothing written through the symlink"
expect_contains "the agent logged the workload refusals" "workload start" "$(cat "$A/refusals.log")"

# --- the clean image: certificate, TLS verified against the zone CA ---
runc_bundle clean run-clean
(cd run-clean && exec runc --root "$RUNC_ROOT" run r-clean > ../clean.log 2>&1) &
cleanpid=$!
clean_up_or_gone() { tcp_open "$TPORT" || ! kill -0 "$cleanpid" 2>/dev/null; }
wait_until "the clean image listens on port $TPORT" 200 clean_up_or_gone
kill -0 "$cleanpid" 2>/dev/null || fail "the clean image exited: $(cat clean.log)"
out=$(echo | openssl s_client -connect "127.0.0.1:$TPORT" -verify_return_error -CAfile zone-ca.pem \
      -verify_hostname integ.example.com 2>&1)
expect_contains "clean image: s_client verifies its certificate against the zone CA" "Verification: OK" "$out"
expect_contains "clean image: verified with /proc, /sys, /dev and the socket mounted inside the measured tree" \
  "verified" "$(cat clean.log)"
mode=$(stat -c %a run-clean/rootfs/run/vouch/certs)
expect_eq "credentials directory is 0700" 700 "$mode"
runc --root "$RUNC_ROOT" kill r-clean TERM
wait $cleanpid

# --- POST /v1/refusal: bounded input, bounded rate ---
post_refusal() {  # BODY -> answer body, a space, the HTTP status
  curl -s -w ' %{http_code}' --unix-socket "$SOCK" -H 'Content-Type: application/json' -d "$1" http://agent/v1/refusal
}
bad_refusal() {  # WHAT BODY TEXT: 400 with TEXT in the error
  local out
  out=$(post_refusal "$2")
  [[ $out == *" 400" ]] || fail "$1: expected HTTP 400, got: $out"
  expect_contains "$1: 400" "$3" "$out"
}
bad_refusal "refusal with a code that is not snake_case" '{"code":"Bad-Code","message":"x"}' invalid_code
bad_refusal "refusal with an oversized message" "{\"code\":\"x\",\"message\":\"$(head -c 301 /dev/zero | tr '\0' a)\"}" \
  "'message'"
bad_refusal "refusal with an unknown field" '{"code":"x","message":"x","extra":1}' unknown_field
queued=0
for _ in $(seq 1 40); do
  [[ $(post_refusal '{"code":"flood","message":"x"}') == *'"queued":true'* ]] && queued=$((queued + 1))
done
# The bucket holds 30 (refilled at 30 a minute; the burst takes well under a second).
[[ $queued -le 30 && $queued -ge 20 ]] || fail "40 refusals in a burst: $queued queued, expected 20..30"
ok "a burst of 40 posted refusals: $queued queued, the rest only counted"

echo "PASS rte_integrity_test ($E2E_PASSED checks)"
