#!/usr/bin/env bash
# vouch-rte certificate renewal with real tools: vouchd (workload certificates capped at 15 s by
# --workload-cert-max-validity-seconds), vouch-agent with the sim TEE, a converted image (busybox +
# openssl copied in, built with umoci) run under runc with the agent socket bind-mounted.
# Checks: the runtime renews before each certificate expires, the file at the same path gets the
# new certificate (new serial, same key) by an atomic replace (a host-side reader polling every
# 5 ms never sees it missing or partial), the application inside reads the new serial from the
# same path, the manager records the new serial, and heartbeats go on across renewals.
# Usage: rte_renewal_test.sh VOUCH VOUCH_RTE VOUCHD VOUCH_AGENT
source "$(dirname "$0")/lib.sh"
VOUCH=$1
RTE=$2
# shellcheck disable=SC2034  # start_dev_manager (lib.sh) runs it
VOUCHD=$3
# shellcheck disable=SC2034  # start_sim_agent (lib.sh) runs it
AGENT=$4
VALIDITY=15
require_tools umoci runc busybox openssl
cd "$E2E_TMP" || fail "cd $E2E_TMP"
RUNC_ROOT=$E2E_TMP/runc
trap 'runc_cleanup; e2e_cleanup' EXIT

# --- manager and agent ---
start_dev_manager --heartbeat-interval 1 --workload-cert-max-validity-seconds "$VALIDITY"
"$VOUCH" app create renew --zone default --domain renew.example.com >/dev/null || fail "app create"
approve_domains "$VOUCH" renew
A=$E2E_TMP/agent
start_sim_agent "$A" agent.log --batch-interval-ms 200
ok "vouchd (workload certificates at most ${VALIDITY}s) and vouch-agent (sim) running"

# --- the image: an application that prints the serial of the certificate at the fixed path ---
openssl_image img:v1 sh echo sleep
umoci config --image img:v1 --config.entrypoint /bin/sh --config.cmd -c --config.cmd \
  'while :; do echo "app-sees $(openssl x509 -in /run/vouch/certs/cert.pem -noout -serial 2>&1)"; sleep 0.5; done' \
  >/dev/null
conv=$("$VOUCH" convert --input oci:img:v1 --output oci:out:v1 --runtime "$RTE" --app renew \
       --cert-dns renew.example.com --heartbeat-interval 1 -o json) || fail "convert"
approve_converted_build "$conv"
unpack_for_runc out:v1 run "$SOCK"

# --- run it, watching the certificate file from the host ---
CERT=run/rootfs/run/vouch/certs/cert.pem
(cd run && exec runc --root "$RUNC_ROOT" run renew1 > ../app.log 2>&1) &
runpid=$!
cert_written() { [[ -s $CERT ]] || { tail -3 app.log; return 1; }; }
wait_until "vouch-rte writes the certificate to $CERT" 100 cert_written
serial() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }
S1=$(serial "$CERT")
PUB1=$(openssl x509 -in "$CERT" -noout -pubkey)
end1=$(date -d "$(openssl x509 -in "$CERT" -noout -enddate | cut -d= -f2)" +%s)
left=$((end1 - $(date +%s)))
[[ $left -le $VALIDITY && $left -gt 0 ]] || fail "first certificate valid for ${left}s, expected at most ${VALIDITY}s"
ok "first certificate (serial $S1) valid for ${left}s"

# Poll the file every 5 ms for 2.2 validity periods: every read must be one whole certificate;
# record each change of content with the time it was first seen.
python3 - "$CERT" "$((VALIDITY * 22 / 10))" > watch.log <<'PY' || fail "file watcher: $(cat watch.log)"
import subprocess, sys, time
path, dur = sys.argv[1], float(sys.argv[2])
seen, last, reads, end = [], None, 0, time.time() + dur
while time.time() < end:
    try:
        data = open(path, "rb").read()
    except FileNotFoundError:
        print("MISSING at", time.time()); sys.exit(1)
    reads += 1
    if data.count(b"-----BEGIN CERTIFICATE-----") < 1 or not data.rstrip().endswith(b"-----END CERTIFICATE-----"):
        print("PARTIAL at", time.time(), len(data)); sys.exit(1)
    if data != last:
        last = data
        seen.append((time.time(), data))
    time.sleep(0.005)
for t, data in seen:
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-enddate"], input=data, capture_output=True).stdout.decode()
    f = dict(l.split("=", 1) for l in out.split("\n") if "=" in l)
    end = subprocess.run(["date", "-d", f["notAfter"], "+%s"], capture_output=True).stdout.decode().strip()
    print(f"{t:.3f} {f['serial']} {end}")
print("reads", reads)
PY
reads=$(awk '$1=="reads"{print $2}' watch.log)
mapfile -t changes < <(grep -v '^reads' watch.log)
[[ ${#changes[@]} -ge 3 ]] || fail "expected at least two renewals in $((VALIDITY * 22 / 10))s, saw: $(cat watch.log); $(tail -5 app.log)"
ok "host reader: ${reads} reads, never missing or partial; $(( ${#changes[@]} - 1 )) renewals seen"
prev_end=
prev_serial=
for c in "${changes[@]}"; do
  read -r t s e <<<"$c"
  if [[ -n $prev_end ]]; then
    [[ $s != "$prev_serial" ]] || fail "renewed file has the same serial $s"
    python3 -c "import sys; sys.exit(0 if $t < $prev_end else 1)" \
      || fail "certificate $prev_serial (valid until $prev_end) was replaced only at $t, after it expired"
    ok "serial $prev_serial replaced by $s at $t, before its expiry at $prev_end"
  fi
  prev_end=$e
  prev_serial=$s
done
SN=$(serial "$CERT")
expect_eq "the renewed certificate keeps the same key" "$PUB1" "$(openssl x509 -in "$CERT" -noout -pubkey)"
openssl verify -CAfile run/rootfs/run/vouch/certs/ca.pem "$CERT" >/dev/null 2>&1 \
  || fail "renewed certificate does not verify under the written zone CA"
ok "renewed certificate verifies under the zone CA"
wait_until "the application sees serial $SN" 50 file_has app.log "app-sees serial=$SN"
expect_contains "the application reads the new serial at the same path" "app-sees serial=$SN" "$(cat app.log)"
cp app.log app.snap  # the application keeps writing: count on one snapshot
[[ $(grep -c 'app-sees serial=' app.snap) -eq $(grep -c 'app-sees' app.snap) ]] \
  || fail "the application once failed to read the certificate: $(grep -v 'app-sees serial=' app.snap | grep app-sees | head -3)"
ok "the application never failed to read the certificate"
expect_contains "vouch-rte logged the renewal" "certificate renewed" "$(cat app.log)"

# --- the manager: new serial recorded, heartbeats continue ---
inst_field() { "$VOUCH" instance list --app renew -o json | python3 -c "import json,sys; print(json.load(sys.stdin)['items'][0]['$1'])"; }
inst_serial() { inst_field serial | tr a-f A-F; }
wait_until "the manager records the renewed certificate's serial" 50 output_is "$(serial "$CERT")" inst_serial
expect_eq "manager records the renewed certificate's serial" "$(serial "$CERT")" "$(inst_field serial | tr a-f A-F)"
seq1=$(inst_field last_seq)
seq_above() { local n; n=$(inst_field last_seq); echo "last_seq $n"; [[ $n -gt $1 ]]; }
wait_until "a heartbeat after the renewal arrives (last_seq above $seq1)" 50 seq_above "$seq1"
seq2=$(inst_field last_seq)
[[ $seq2 -gt $seq1 ]] || fail "heartbeats stopped after renewal (last_seq $seq1 -> $seq2)"
ok "heartbeats continue after renewals (last_seq $seq1 -> $seq2)"
# vouch-rte MACs its heartbeats (docs/formats/heartbeat-key.md) with K of the current certificate,
# derived again at each renewal; none was refused, also around the renewals.
metrics=$(curl -fsS --cacert "$D/service-ca.pem" "$URL/metrics") || fail "metrics"
expect_contains "MAC'd heartbeats taken: none refused bad_mac" 'vouch_heartbeats_rejected_total{reason="bad_mac"} 0' "$metrics"
expect_contains "no heartbeat refused bad_signature" 'vouch_heartbeats_rejected_total{reason="bad_signature"} 0' "$metrics"
expect_contains "the zone has a heartbeat key cached for its instance" 'vouch_heartbeat_key_cache_entries' "$metrics"
[[ $(sed -n 's/^vouch_heartbeat_key_cache_entries //p' <<<"$metrics") -ge 1 ]] \
  || fail "no heartbeat MAC key cached: vouch-rte did not send MAC heartbeats"
ok "vouchd derived and cached the instance's heartbeat MAC key (the heartbeats were MAC'd)"
expect_eq "instance running" running "$(inst_field status)"
runc --root "$RUNC_ROOT" kill renew1 TERM
wait $runpid
wait_until "the manager records the instance as stopped" 100 output_is stopped inst_field status
expect_eq "instance stopped after SIGTERM" stopped "$(inst_field status)"

echo "PASS rte_renewal_test ($E2E_PASSED checks)"
