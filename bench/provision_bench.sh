#!/usr/bin/env bash
# Node provisioning latency per platform (BENCHMARKS.md, "Node provisioning"): sgx, tdx and
# sev-snp sim nodes, with the collateral already cached in vouchd's store and on first need
# (fetched from `vouch sim pcs`, the PCS/KDS emulator, on loopback). TDX and SEV-SNP evidence
# comes through the emulated configfs-tsm (`vouch sim tsm`, FUSE) as vouch-agent reads it.
# Usage: bench/provision_bench.sh BUILD_DIR
# Environment (defaults): N=200 (cached provisionings per platform), FIRST=10 (fresh managers,
#   one first-need provisioning per platform each), KDS_MS=0 (vouchd's --kds-min-interval-ms;
#   AMD's own pacing is 10000: the first-need SEV-SNP figure then includes no wait, since one KDS
#   request, the CRL, is all a report with its certificate table needs).
# Needs: python3-cryptography, /dev/fuse (fuse3).
E2E=$(cd "$(dirname "$0")/../tests/e2e" && pwd)
source "$E2E/lib.sh"
B=$(cd "$1" && pwd)
N=${N:-200} FIRST=${FIRST:-10} KDS_MS=${KDS_MS:-0}
# shellcheck disable=SC2034  # start_dev_manager (lib.sh) runs it
VOUCHD=$B/apps/vouchd/vouchd
VOUCH=$B/apps/vouch/vouch
CLIENT=$(cd "$(dirname "$0")" && pwd)/provision_client.py
W=$E2E_TMP
cd "$W" || fail "cd $W"
TSM_PIDS=()
stop_all() {
  local p m
  for p in "${E2E_PIDS[@]}" "${TSM_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  for p in "${TSM_PIDS[@]}"; do wait "$p" 2>/dev/null; done
  for m in "$W"/tsm-*; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  e2e_cleanup
}
trap stop_all EXIT
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "load average at start: $(load); N=$N cached and $FIRST first-need provisionings per platform"

for p in sgx tdx sev-snp; do "$VOUCH" sim init --platform "$p" "sim-$p" >/dev/null || fail "sim init $p"; done
for p in tdx sev-snp; do
  mkdir -p "tsm-$p"
  "$VOUCH" sim tsm --sim "sim-$p" --mount "$W/tsm-$p" >"tsm-$p.log" 2>&1 &
  TSM_PIDS+=($!)
  wait_until "the emulated configfs-tsm on tsm-$p" 50 test -d "tsm-$p/report"
done
# One emulator per platform: each `vouch sim init` makes its own sim root, and a PCS serves the
# root CA CRL of one root only (Intel has one).
declare -A PCS
for p in sgx tdx sev-snp; do
  "$VOUCH" -o json sim pcs --serve "sim-$p" --listen 127.0.0.1:0 --cert-out "pcs-$p.pem" >"pcs-$p.out" 2>"pcs-$p.log" &
  E2E_PIDS+=($!)
  wait_until "vouch sim pcs ($p) prints its URL" 100 file_has "pcs-$p.out" '"url"'
  PCS[$p]=$(jq_get '["url"]' <"pcs-$p.out")
done

MRTD=$(printf 'vouch-agent-sim-tdx-mrtd-v1' | sha384sum | cut -d' ' -f1)
MEAS=$(printf 'vouch-agent-sim-snp-measurement-v1' | sha384sum | cut -d' ' -f1)
# A fresh manager that has never seen any collateral but its own DATA/sim, which the benchmark
# does not use; the sim agents' TDX and SEV-SNP identities accepted in zone default.
fresh_manager() {  # PLATFORM (whose emulator is the PCS and KDS)
  rm -rf "$W/manager" "$W/cli.json"
  start_dev_manager --pccs-url "${PCS[$1]}" --kds-url "${PCS[$1]}" --collateral-ca-file "$W/pcs-$1.pem" \
    --kds-min-interval-ms "$KDS_MS" --unauth-rate 1000000 --unauth-burst 1000000
  local flags task
  for flags in "--platform tdx --mrtd $MRTD" "--platform sev-snp --measurement $MEAS"; do
    # shellcheck disable=SC2086  # flags are words
    task=$("$VOUCH" zone node-identity add default $flags -o json 2>/dev/null | jq_get '["task_id"]' 2>/dev/null) || continue
    [[ -n "$task" && "$task" != None ]] && "$VOUCH" task approve "$task" >/dev/null
  done
  TOKEN=$("$VOUCH" zone join-token default --uses 10000 --ttl 86400)
}
run() {  # PLATFORM COUNT
  local extra=()
  case $1 in
    sgx) extra=(--vouch "$VOUCH" --sim "$W/sim-sgx") ;;
    tdx) extra=(--tsm "$W/tsm-tdx/report") ;;
    sev-snp) extra=(--tsm "$W/tsm-sev-snp/report") ;;
  esac
  python3 "$CLIENT" "$URL" "$CA" "$TOKEN" "$1" "$2" "${extra[@]}" || fail "provisioning $1: $(tail -5 "$E2E_TMP/vouchd.log")"
}

declare -A first
for p in sgx tdx sev-snp; do
  for ((r = 0; r < FIRST; r++)); do
    fresh_manager "$p"
    first[$p]+="$(run "$p" 1)"$'\n'
    kill -TERM "$VOUCHD_PID"; wait "$VOUCHD_PID" 2>/dev/null
  done
done
for p in sgx tdx sev-snp; do
  fresh_manager "$p"
  run "$p" 1 >/dev/null  # the collateral is fetched
  echo "cached  $(run "$p" "$N")"
  echo "requests the $p emulator answered: $(curl -fsS --cacert "pcs-$p.pem" "${PCS[$p]}/sim/v1/state" | jq_get '["counts"]')"
  kill -TERM "$VOUCHD_PID"; wait "$VOUCHD_PID" 2>/dev/null
  printf '%s' "${first[$p]}" >"first-$p.json"
  python3 - "$p" "first-$p.json" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
def pct(xs, p):
    xs = sorted(xs); k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1)); return round(xs[k], 2)
out = {"platform": sys.argv[1], "count": len(rows)}
for k in ("nonce", "evidence", "provision", "total"):
    xs = [r[k]["p50"] for r in rows]
    out[k] = {"p50": pct(xs, 50), "p99": pct(xs, 99), "max": round(max(xs), 2)}
print("first   " + json.dumps(out))
PY
done
echo "load average at end: $(load)"
