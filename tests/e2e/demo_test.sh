#!/usr/bin/env bash
# The quick start's ./scripts/demo, as a user runs it (with this build's binaries and free ports):
# manager, agent, sim workload and the converted workload all answer, and SIGTERM (what Ctrl-C
# does to it) stops everything it started.
# Usage: demo_test.sh SOURCE_DIR BUILD_DIR
source "$(dirname "$0")/lib.sh"
SRC=$1
BUILD=$2
DATA=$E2E_TMP/demo
PORT=$(free_port)
APP_PORT=$(free_port)
trap 'runc --root "$DATA/runc" delete -f vouch-demo-app >/dev/null 2>&1; e2e_cleanup' EXIT
VOUCH_DEMO_BUILD_DIR=$BUILD VOUCH_DEMO_PORT=$PORT VOUCH_DEMO_APP_PORT=$APP_PORT "$SRC/scripts/demo" "$DATA" \
  >"$E2E_TMP/demo.log" 2>&1 &
DEMO=$!
E2E_PIDS+=("$DEMO")
# Up, or gone (the check below then shows why).
demo_up_or_gone() {
  grep -q "Press Ctrl-C" "$E2E_TMP/demo.log" || ! kill -0 "$DEMO" 2>/dev/null || { tail -3 "$E2E_TMP/demo.log"; return 1; }
}
wait_until "the demo comes up" 1200 demo_up_or_gone
grep -q "Press Ctrl-C" "$E2E_TMP/demo.log" || fail "the demo did not come up: $(tail -20 "$E2E_TMP/demo.log")"
ok "the demo is running"
expect_eq "manager healthz" ok "$(curl -fsS --cacert "$DATA/manager/service-ca.pem" "https://127.0.0.1:$PORT/healthz")"
expect_contains "the sim workload's certificate verifies against the zone CA" ": OK" \
  "$(openssl verify -CAfile "$DATA/zone-default-ca.pem" "$DATA/workload/cert.pem" 2>&1)"
expect_contains "the demo prints the converted workload's URL" "https://hello.vouch.test:$APP_PORT" \
  "$(cat "$E2E_TMP/demo.log")"
expect_eq "curl --cacert zone CA reaches the converted app" 200 \
  "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$DATA/zone-default-ca.pem" \
     --resolve "hello.vouch.test:$APP_PORT:127.0.0.1" "https://hello.vouch.test:$APP_PORT/")"
expect_contains "vouch-rte checked the files and got the certificate" "certificate written to" \
  "$(cat "$DATA/converted-app.log")"
running() {
  VOUCH_CONFIG=$DATA/cli-config.json "$BUILD/apps/vouch/vouch" instance list -o json |
    python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin)["items"] if i["status"] == "running"))'
}
expect_eq "two instances running: the sim workload and the converted app" 2 "$(running)"
kill -TERM "$DEMO"
wait "$DEMO"
expect_eq "the demo exits 0 on SIGTERM" 0 $?
expect_contains "it says where the data is kept" "stopped; data kept in $DATA" "$(cat "$E2E_TMP/demo.log")"
expect_eq "no container left" "" "$(runc --root "$DATA/runc" list -q 2>/dev/null)"
if pgrep -f "$DATA/" >/dev/null; then fail "processes of the demo are still running: $(pgrep -af "$DATA/")"; fi
ok "every process the demo started is gone"
echo "demo e2e: $E2E_PASSED checks passed"
