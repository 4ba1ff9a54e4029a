#!/usr/bin/env bash
# Issue 16 soak (BENCHMARKS.md, "Scale (issue 16)"): heartbeats at a fixed rate (80 % of the
# measured maximum) for DURATION seconds with issuance through the agent beside them, on vouchd
# with INST seeded instances. Before the clock: one unpaced round, so that every instance's
# heartbeat key is derived and cached (and a second one, the maximum, when RATE is not given). Reports per INTERVAL: heartbeats accepted/s, batch latency
# p50/p99, certificates issued, vouchd's RSS and the load average; then the acceptance checks:
# vouchd's RSS after the first interval grows by at most 5 %, every interval's p99 batch latency
# is within 2x of the first's, nothing is dropped (accepted = sent; the store's SUM(last_seq)
# equals the sum of the highest acknowledged seq of every instance; every certificate answered is
# in the store).
# Usage: bench/soak.sh BUILD_DIR
# Environment (defaults): RATE (heartbeats/s; else 0.8 x MAX, MAX a measured maximum, e.g.
#   bench/scale_bench.sh's best SQLite round; with neither, 0.8 x a second unpaced round here,
#   keys cached, measured right before the soak) INST=1000000 BATCH=100 HB_CONNS=4 DURATION=600
#   INTERVAL=60 SQLITE_ANALYZE=0 (1: ANALYZE after seeding, see scale_bench.sh) ISSUE_RATE=100 (certificates/s, 0: none) ISSUE_CONNS=4 AUTH=mac STORE=sqlite (or pg)
#   OUT=DIR (kept: results.jsonl, soak.txt, rss.txt, logs; default /tmp/vouch-soak.<time>)
set -uo pipefail
E2E=$(cd "$(dirname "$0")/../tests/e2e" && pwd)
source "$E2E/lib.sh"
source "$E2E/pg.sh"
B=$(cd "$1" && pwd)
INST=${INST:-1000000} BATCH=${BATCH:-100} HB_CONNS=${HB_CONNS:-4} DURATION=${DURATION:-600} INTERVAL=${INTERVAL:-60}
ISSUE_RATE=${ISSUE_RATE:-100} ISSUE_CONNS=${ISSUE_CONNS:-4} AUTH=${AUTH:-mac}
if [[ -z ${RATE:-} && -n ${MAX:-} ]]; then RATE=$(python3 -c "print(int(0.8 * float('$MAX')))"); fi
OUT=${OUT:-/tmp/vouch-soak.$(date -u +%Y%m%dT%H%M%S)}
# shellcheck source=bench/scale_lib.sh
source "$(dirname "$0")/scale_lib.sh"
: >"$R"
log "soak: ${STORE:-sqlite}, $INST instances, ${RATE:-0.8 x the measured maximum} heartbeats/s in batches of $BATCH" \
  "over $HB_CONNS connections, issuance $ISSUE_RATE/s, ${DURATION} s in intervals of ${INTERVAL} s; load average $(load)"
setup_manager "${STORE:-sqlite}" 1
seed_instances "${NODES[0]}" "${NODES[0]}"
certs_before=$(sql "SELECT COUNT(*) FROM certificates WHERE kind = 'workload'")

# Unpaced rounds before the clock: round 1 derives and caches every key; without RATE or MAX,
# round 2 (keys cached) is the measured maximum of this configuration and RATE = 0.8 x it.
seq_base=1
unpaced() {  # SEQ LABEL
  log "unpaced round $1 ($2): load average $(load)"
  "$GEN" heartbeats --server "$U1" --ca-file "$CA" --cert "$W/a0/node-cert.pem" --key "$W/a0/node-key.pem" \
    --key-pem "$W/w/key.pem" --instances "$INST" --batch "$BATCH" --threads "$HB_CONNS" --seq "$1" --auth "$AUTH" \
    --hb-pub "$W/hb-pub.pem" >"$W/warm.out" 2>"$W/warm.err" || { cat "$W/warm.err"; fail "unpaced round $1"; }
  cat "$W/warm.out"
  rec "$2" "$(cat "$W/warm.out")" "load=\"$(load)\""
}
unpaced 1 warmup
if [[ -z ${RATE:-} ]]; then
  unpaced 2 max
  seq_base=2
  RATE=$(jq_get '["per_second"]' <"$W/warm.out" | python3 -c "import sys; print(int(0.8 * float(sys.stdin.read())))")
  log "RESULT measured maximum $(jq_get '["per_second"]' <"$W/warm.out" | cut -d. -f1)/s (keys cached): the soak runs at $RATE/s"
fi
log "vouchd RSS after the unpaced rounds: $(rss_kb "$V1") kB"

# vouchd's RSS and the load average every 5 s, from the soak's start.
: >"$OUT/rss.txt"
(
  t0=$(date +%s.%N)
  while kill -0 "$V1" 2>/dev/null; do
    echo "$(python3 -c "import time; print(round(time.time() - $t0, 1))") $(rss_kb "$V1") $(load)" >>"$OUT/rss.txt"
    sleep 5
  done
) &
sampler=$!
E2E_PIDS+=("$sampler")
log "soak starts: load average $(load)"
v0=$(ticks "$V1")
"$GEN" soak --server "$U1" --ca-file "$CA" --cert "$W/a0/node-cert.pem" --key "$W/a0/node-key.pem" \
  --key-pem "$W/w/key.pem" --instances "$INST" --batch "$BATCH" --threads "$HB_CONNS" --rate "$RATE" \
  --duration "$DURATION" --interval "$INTERVAL" --seq-base "$seq_base" --auth "$AUTH" --hb-pub "$W/hb-pub.pem" \
  --issue-socket "$W/a0.sock" --issue-rate "$ISSUE_RATE" --issue-threads "$ISSUE_CONNS" \
  --mrenclave "$MRE" --mrsigner "$MRS" --dns web.example.com >"$W/soak.out" 2>"$W/soak.err"
soak_rc=$?
v1=$(ticks "$V1")
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null
cat "$W/soak.out"
[[ -s $W/soak.err ]] && { echo "generator stderr:"; head -5 "$W/soak.err"; }
while read -r line; do rec soak_interval "$line"; done < <(grep '"interval"' "$W/soak.out")
summary=$(grep '"mode":"soak"' "$W/soak.out")
[[ -n $summary ]] || fail "no soak summary (generator exit $soak_rc)"
sum_store=$(sql "SELECT COALESCE(SUM(last_seq), 0) FROM instances WHERE id LIKE 'inst_b%'")
certs_after=$(sql "SELECT COUNT(*) FROM certificates WHERE kind = 'workload'")
rec soak "$summary" "rate_target=$RATE" "sum_last_seq_store=$sum_store" "certificates_recorded=$((certs_after - certs_before))" \
  "vouchd_cpu_s=$(( (v1 - v0) / HZ ))" "load_end=\"$(load)\""
python3 - "$R" "$OUT/rss.txt" "$INTERVAL" <<'PY' | tee "$OUT/soak.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rss = [l.split() for l in open(sys.argv[2]) if l.strip()]
interval = float(sys.argv[3])
ivs = [r for r in rows if r["label"] == "soak_interval"]
s = next(r for r in rows if r["label"] == "soak")
def rss_at(t):  # the last sample at or before t
    c = [x for x in rss if float(x[0]) <= t]
    return int((c or rss[:1])[-1][1])
print("| interval | heartbeats/s | batch p50 ms | batch p99 ms | max ms | issued | issue p99 ms | vouchd RSS MB (end) | load average (end) |")
print("|---|---|---|---|---|---|---|---|---|")
for r in ivs:
    end = r["interval"] * interval
    c = [x for x in rss if float(x[0]) <= end] or rss[:1]
    print(f"| {r['interval']} | {r['per_second']:,.0f} | {r['batch_latency_ms']['p50']:.1f} | {r['batch_latency_ms']['p99']:.1f} "
          f"| {r['batch_latency_ms']['max']:.1f} | {r['issued']} | {r['issue_latency_ms']['p99']:.1f} | {rss_at(end) / 1024:.1f} "
          f"| {' '.join(c[-1][2:5])} |")
full = [r for r in ivs if r["interval"] * interval <= s["seconds"] + 1]
first = full[0] if full else None
after_first = rss_at(interval)
end_rss = int(rss[-1][1]) if rss else 0
peak_after = max([int(x[1]) for x in rss if float(x[0]) >= interval] or [end_rss])
growth = (peak_after - after_first) / after_first if after_first else 0
p99_ratio = max(r["batch_latency_ms"]["p99"] for r in full) / first["batch_latency_ms"]["p99"] if first else 0
print()
print(f"rate: target {s['rate_target']:,}/s, achieved {s['per_second']:,.0f}/s over {s['seconds']:.0f} s "
      f"(largest lag behind schedule {s['max_lag_ms']:.0f} ms)")
print(f"RSS: {after_first / 1024:.1f} MB after the first interval, peak after it {peak_after / 1024:.1f} MB, end "
      f"{end_rss / 1024:.1f} MB: growth {100 * growth:.2f} % (target <= 5 %: {'met' if growth <= 0.05 else 'NOT met'})")
print(f"p99 batch latency: first interval {first['batch_latency_ms']['p99']:.1f} ms, worst interval "
      f"{p99_ratio:.2f}x of it (target <= 2x: {'met' if p99_ratio <= 2 else 'NOT met'})" if first else "no interval")
dropped = s["sent"] - s["accepted"]
print(f"heartbeats: sent {s['sent']:,}, accepted {s['accepted']:,}, dropped {dropped:,}, failed batches "
      f"{s['failed_batches']}; store SUM(last_seq) {s['sum_last_seq_store']:,} vs acknowledged {s['sum_acked_seq']:,} "
      f"({'equal' if s['sum_last_seq_store'] == s['sum_acked_seq'] else 'DIFFERENT'})")
print(f"issuance: {s['issued']:,} certificates answered, {s['certificates_recorded']:,} recorded, {s['issue_failed']} failed")
print(f"vouchd CPU during the soak: {s['vouchd_cpu_s']} s; load average at the end {s['load_end']}")
ok = growth <= 0.05 and p99_ratio <= 2 and dropped == 0 and s["failed_batches"] == 0 and \
    s["sum_last_seq_store"] == s["sum_acked_seq"] and s["certificates_recorded"] == s["issued"]
print("soak acceptance: " + ("met" if ok else "NOT met"))
PY
log "results in $OUT"
