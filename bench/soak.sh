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
#   keys cached, measured right before the soak) INST=1000000 BATCH=100 HB_CONNS=4 (connections of
#   the unpaced rounds, as in scale_bench.sh) SOAK_CONNS=8 (connections of the fixed-rate part: each
#   waits for its answer, so they carry at most SOAK_CONNS x BATCH / mean batch latency per second;
#   4 carried 77,000/s only while the mean stayed under 5.2 ms, BENCHMARKS.md "Soak") DURATION=600
#   INTERVAL=60 SQLITE_ANALYZE=0 (1: ANALYZE after seeding, see scale_bench.sh) ISSUE_RATE=100 (certificates/s, 0: none) ISSUE_CONNS=4 AUTH=mac STORE=sqlite (or pg)
#   OUT=DIR (kept: results.jsonl, soak.txt, rss.txt, logs; default /tmp/vouch-soak.<time>)
set -uo pipefail
E2E=$(cd "$(dirname "$0")/../tests/e2e" && pwd)
source "$E2E/lib.sh"
source "$E2E/pg.sh"
B=$(cd "$1" && pwd)
INST=${INST:-1000000} BATCH=${BATCH:-100} HB_CONNS=${HB_CONNS:-4} SOAK_CONNS=${SOAK_CONNS:-8} DURATION=${DURATION:-600} INTERVAL=${INTERVAL:-60}
ISSUE_RATE=${ISSUE_RATE:-100} ISSUE_CONNS=${ISSUE_CONNS:-4} AUTH=${AUTH:-mac}
if [[ -z ${RATE:-} && -n ${MAX:-} ]]; then RATE=$(python3 -c "print(int(0.8 * float('$MAX')))"); fi
OUT=${OUT:-/tmp/vouch-soak.$(date -u +%Y%m%dT%H%M%S)}
# shellcheck source=bench/scale_lib.sh
source "$(dirname "$0")/scale_lib.sh"
: >"$R"
log "soak: ${STORE:-sqlite}, $INST instances, ${RATE:-0.8 x the measured maximum} heartbeats/s in batches of $BATCH" \
  "over $SOAK_CONNS connections (unpaced rounds: $HB_CONNS), issuance $ISSUE_RATE/s, ${DURATION} s in intervals of ${INTERVAL} s; load average $(load)"
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

# Every 5 s from the soak's start, one line of rss.txt: seconds, vouchd's RSS (kB), the load
# average (3 fields), then vouchd's RssAnon, RssFile, RssShmem (kB), the CPU ticks (user + system)
# of vouchd, of the generator and of the agent (issuance), the sizes of the store's WAL, its
# wal-index (-shm) and its database file (bytes; 0 on PostgreSQL), vouchd's thread count, and the
# WAL's frames written and checkpointed since its last restart (mxFrame, nBackfill), vouchd's
# rchar, wchar and write_bytes (/proc/PID/io), the disk's sectors written and ms busy (DISK=vda),
# vouchd's read_bytes (what its reads took from the disk rather than the page cache).
# Builtins and stat only, so that sampling costs the machine next to nothing.
sample() {  # T0
  local now anon=0 file=0 shmem=0 th=0 k v rest wal=0 shm=0 db=0 mx=0 bf=0 rch=0 wch=0 wb=0 rb=0 dk=()
  while read -r k v rest; do
    case $k in RssAnon:) anon=$v ;; RssFile:) file=$v ;; RssShmem:) shmem=$v ;; Threads:) th=$v ;; esac
  done <"/proc/$V1/status"
  if [[ $STORE == sqlite ]]; then
    wal=$(stat -c %s "$DB-wal" 2>/dev/null || echo 0) shm=$(stat -c %s "$DB-shm" 2>/dev/null || echo 0)
    db=$(stat -c %s "$DB" 2>/dev/null || echo 0)
    # The wal-index header (native order): mxFrame, the WAL's last valid frame, at byte 16;
    # nBackfill, the frames a checkpoint has copied into the database, at byte 96.
    read -r mx < <(od -An -tu4 -j16 -N4 "$DB-shm" 2>/dev/null)
    read -r bf < <(od -An -tu4 -j96 -N4 "$DB-shm" 2>/dev/null)
  fi
  # vouchd's file I/O (bytes read and written through system calls, bytes written to the disk) and
  # the disk's sectors written and milliseconds busy (/proc/diskstats, the store's device).
  while read -r k v rest; do
    case $k in rchar:) rch=$v ;; wchar:) wch=$v ;; read_bytes:) rb=$v ;; write_bytes:) wb=$v ;; esac
  done <"/proc/$V1/io"
  read -r -a dk < <(grep -w "${DISK:-vda}" /proc/diskstats)
  now=$(date +%s.%N)
  echo "$(awk -v a="$now" -v b="$1" 'BEGIN {printf "%.1f", a - b}') $(rss_kb "$V1") $(load) $anon $file $shmem" \
    "$(ticks "$V1") $(if [[ -e /proc/$GP/stat ]]; then ticks "$GP"; else echo "${GEN_TICKS:-0}"; fi)" \
    "$(ticks "${APIDS[0]}") $wal $shm $db $th ${mx:-0} ${bf:-0}" \
    "$rch $wch $wb ${dk[9]:-0} ${dk[12]:-0} $rb" >>"$OUT/rss.txt"
}
: >"$OUT/rss.txt"
log "soak starts: load average $(load)"
v0=$(ticks "$V1")
"$GEN" soak --server "$U1" --ca-file "$CA" --cert "$W/a0/node-cert.pem" --key "$W/a0/node-key.pem" \
  --key-pem "$W/w/key.pem" --instances "$INST" --batch "$BATCH" --threads "$SOAK_CONNS" --rate "$RATE" \
  --duration "$DURATION" --interval "$INTERVAL" --seq-base "$seq_base" --auth "$AUTH" --hb-pub "$W/hb-pub.pem" \
  --issue-socket "$W/a0.sock" --issue-rate "$ISSUE_RATE" --issue-threads "$ISSUE_CONNS" \
  --mrenclave "$MRE" --mrsigner "$MRS" --dns web.example.com >"$W/soak.out" 2>"$W/soak.err" &
GP=$!
E2E_PIDS+=("$GP")
(
  t0=$(date +%s.%N)
  while kill -0 "$GP" 2>/dev/null; do
    GEN_TICKS=$(ticks "$GP")  # the generator's last reading, for the sample after it exits
    sample "$t0"
    sleep 5
  done
  sample "$t0"
) &
sampler=$!
E2E_PIDS+=("$sampler")
wait "$GP"
soak_rc=$?
v1=$(ticks "$V1")
wait "$sampler" 2>/dev/null
if [[ ${MALLOC_PROBE:-1} == 1 ]] && command -v gdb >/dev/null; then
  # After the clock: glibc's own account of vouchd's heap (malloc_stats, per arena, into vouchd's
  # log), then what malloc_trim(0) gives back: free memory held by the arenas, not live data.
  before=$(rss_parts "$V1")
  timeout 60 gdb "/proc/$V1/exe" -p "$V1" -batch -ex 'call (void)malloc_stats()' -ex 'call (int)malloc_trim(0)' >"$OUT/gdb.txt" 2>&1
  log "RESULT vouchd after the soak: $before; after malloc_trim(0): $(rss_parts "$V1")"
  log "vouchd's arenas (malloc_stats): $(grep -c '^Arena' "$VLOG") arenas, totals: $(grep -A2 '^Total' "$VLOG" | tr '\n' ' ')"
fi
cat "$W/soak.out"
[[ -s $W/soak.err ]] && { echo "generator stderr:"; head -5 "$W/soak.err"; }
while read -r line; do rec soak_interval "$line"; done < <(grep '"interval"' "$W/soak.out")
summary=$(grep '"mode":"soak"' "$W/soak.out")
[[ -n $summary ]] || fail "no soak summary (generator exit $soak_rc)"
sum_store=$(sql "SELECT COALESCE(SUM(last_seq), 0) FROM instances WHERE id LIKE 'inst_b%'")
certs_after=$(sql "SELECT COUNT(*) FROM certificates WHERE kind = 'workload'")
rec soak "$summary" "rate_target=$RATE" "sum_last_seq_store=$sum_store" "certificates_recorded=$((certs_after - certs_before))" \
  "vouchd_cpu_s=$(( (v1 - v0) / HZ ))" "load_end=\"$(load)\""
python3 - "$R" "$OUT/rss.txt" "$INTERVAL" "$HZ" "$SOAK_CONNS" "$BATCH" <<'PY' | tee "$OUT/soak.txt"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
rss = [l.split() for l in open(sys.argv[2]) if l.strip()]
interval = float(sys.argv[3])
ivs = [r for r in rows if r["label"] == "soak_interval"]
s = next(r for r in rows if r["label"] == "soak")
def at(t):  # the last sample at or before t
    c = [x for x in rss if float(x[0]) <= t]
    return (c or rss[:1])[-1]
def rss_at(t):
    return int(at(t)[1])
def extra(x, i):  # a field added with the CPU and WAL columns (0 in an older rss.txt)
    return int(x[i]) if len(x) > i else 0
HZ = float(sys.argv[4])
conns = int(sys.argv[5])
batch = int(sys.argv[6])
# The connections wait for each answer: they carry at most conns x batch / mean latency per second.
print("| interval | heartbeats/s | batch p50 ms | batch mean ms | batch p99 ms | max ms | connections carry at most /s "
      "| issued | issue p99 ms | vouchd RSS MB (end) "
      "| RssAnon MB | vouchd CPU us/heartbeat | generator CPU % | agent CPU % | WAL MB (end) | DB MB (end) "
      "| vouchd file reads MB/s | disk writes MB/s, busy % | load average (end) |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in ivs:
    end = r["interval"] * interval
    a, b = at(end - interval), at(end)
    dt = max(float(b[0]) - float(a[0]), 1e-9)
    vus = (extra(b, 8) - extra(a, 8)) / HZ * 1e6 / max(r["accepted"], 1) * (interval / dt)
    gen = 100 * (extra(b, 9) - extra(a, 9)) / HZ / dt
    agt = 100 * (extra(b, 10) - extra(a, 10)) / HZ / dt
    mean = r["batch_latency_ms"].get("mean", 0)
    carry = f"{conns * batch / mean * 1000:,.0f}" if mean else ""
    print(f"| {r['interval']} | {r['per_second']:,.0f} | {r['batch_latency_ms']['p50']:.1f} | {mean:.2f} | {r['batch_latency_ms']['p99']:.1f} "
          f"| {r['batch_latency_ms']['max']:.1f} | {carry} | {r['issued']} | {r['issue_latency_ms']['p99']:.1f} | {rss_at(end) / 1024:.1f} "
          f"| {extra(b, 5) / 1024:.1f} | {vus:.1f} | {gen:.0f} | {agt:.0f} | {extra(b, 11) / 2**20:.0f} | {extra(b, 13) / 2**20:,.0f} "
          f"| {(extra(b, 17) - extra(a, 17)) / 2**20 / dt:.0f} | {(extra(b, 20) - extra(a, 20)) * 512 / 2**20 / dt:.0f}, "
          f"{100 * (extra(b, 21) - extra(a, 21)) / 1000 / dt:.0f} | {' '.join(b[2:5])} |")
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
if rss and len(rss[-1]) > 22:
    f = lambda i: int(rss[-1][i]) - int(rss[0][i])
    print(f"store: WAL at most {max(extra(x, 11) for x in rss) / 2**20:.1f} MB, mxFrame at most {max(extra(x, 15) for x in rss)}; "
          f"database {extra(rss[0], 13) / 2**20:,.0f} -> {extra(rss[-1], 13) / 2**20:,.0f} MB; vouchd read {f(17) / 2**20:,.0f} MB "
          f"through system calls, {f(22) / 2**20:,.0f} MB of it from the disk; the disk wrote {f(20) * 512 / 2**20:,.0f} MB (every process)")
ok = growth <= 0.05 and p99_ratio <= 2 and dropped == 0 and s["failed_batches"] == 0 and \
    s["sum_last_seq_store"] == s["sum_acked_seq"] and s["certificates_recorded"] == s["issued"]
print("soak acceptance: " + ("met" if ok else "NOT met"))
PY
log "results in $OUT"
