#!/usr/bin/env python3
"""Summary of a bench/scale_bench.sh run (results.jsonl): the issue-16 figures, their ratios and
targets, and the model of N PostgreSQL members on N machines (BENCHMARKS.md, "Scale (issue 16)")."""
import json
import sys


def main(path):
    rows = [json.loads(line) for line in open(path) if line.strip()]
    run = next((r for r in rows if r["label"] == "run"), {})

    def hb(store, prefix):
        return sorted((r for r in rows if r.get("store") == store and r["label"].startswith(prefix)),
                      key=lambda r: r["round_seq"])

    def best_later(rs):  # rounds after the first: keys cached
        later = rs[1:] or rs
        return max(later, key=lambda r: r["per_second"]) if later else None

    def fmt(x, d=0):
        return "-" if x is None else f"{x:,.{d}f}"

    def per_hb_gen(r):
        return 1e6 * r.get("generator_cpu_s", 0) / max(1, r["accepted"])

    floor = next((r for r in rows if r["label"] == "floor"), None)
    out = []
    p = out.append
    p(f"run: {run.get('started', '?')} commit {run.get('commit', '?')}, {run.get('inst', 0):,} instances, "
      f"batches of {run.get('batch')}, {run.get('hb_conns')} connections, auth {run.get('auth')}, "
      f"load average at start {run.get('load')}")
    p("")
    p("| measure | figure | compared with (same run) | ratio | target | load average (before, after) |")
    p("|---|---|---|---|---|---|")
    sq, pg1, pg2 = hb("sqlite", "hb1_"), hb("pg", "hb1_"), hb("pg", "hb2_")
    sq_best, pg1_best, pg2_best = best_later(sq), best_later(pg1), best_later(pg2)
    fl = floor["per_second"] if floor else None

    def rounds(rs):
        return " / ".join(fmt(r["per_second"]) for r in rs)

    def loads(r):
        return f"{r.get('load_before', '?')}; {r.get('load_after', '?')}"

    if sq:
        p(f"| heartbeats, SQLite, round 1 (one ECDH per instance) | {fmt(sq[0]['per_second'])}/s | floor "
          f"{fmt(fl)}/s | {fmt(sq[0]['per_second'] / fl, 2) if fl else '-'} | | {loads(sq[0])} |")
        p(f"| heartbeats, SQLite, later rounds ({rounds(sq[1:])}), best | {fmt(sq_best['per_second'])}/s | floor "
          f"{fmt(fl)}/s | {fmt(sq_best['per_second'] / fl, 2) if fl else '-'} | >= 100,000/s: "
          f"{'met' if sq_best['per_second'] >= 100000 else 'NOT met'} | {loads(sq_best)} |")
    if pg1:
        ratio = pg1_best["per_second"] / sq_best["per_second"] if sq_best else None
        p(f"| heartbeats, PostgreSQL, one vouchd, round 1 | {fmt(pg1[0]['per_second'])}/s | | | | {loads(pg1[0])} |")
        p(f"| heartbeats, PostgreSQL, one vouchd, later rounds ({rounds(pg1[1:])}), best | "
          f"{fmt(pg1_best['per_second'])}/s | SQLite {fmt(sq_best['per_second']) if sq_best else '-'}/s | "
          f"{fmt(ratio, 2)} | >= 0.7: {'met' if ratio and ratio >= 0.7 else 'NOT met'} | {loads(pg1_best)} |")
    if pg2:
        ratio = pg2_best["per_second"] / pg1_best["per_second"] if pg1_best else None
        p(f"| heartbeats, PostgreSQL, two vouchd, rounds {rounds(pg2)} (round 1: the second vouchd derives its keys), "
          f"best later | {fmt(pg2_best['per_second'])}/s | one vouchd {fmt(pg1_best['per_second'])}/s | "
          f"{fmt(ratio, 2)} | >= 1.0: {'met' if ratio and ratio >= 1.0 else 'NOT met'} | {loads(pg2_best)} |")
    iss = {r["store"]: r for r in rows if r["label"] == "issue"}
    if "sqlite" in iss:
        p(f"| issuance through the agent, SQLite | {fmt(iss['sqlite']['per_second'])}/s (p99 "
          f"{fmt(iss['sqlite']['latency_ms']['p99'], 1)} ms) | | | | {loads(iss['sqlite'])} |")
    if "pg" in iss and "sqlite" in iss:
        ratio = iss["pg"]["per_second"] / iss["sqlite"]["per_second"]
        p(f"| issuance through the agent, PostgreSQL, one vouchd | {fmt(iss['pg']['per_second'])}/s (p99 "
          f"{fmt(iss['pg']['latency_ms']['p99'], 1)} ms) | SQLite {fmt(iss['sqlite']['per_second'])}/s | {fmt(ratio, 2)} "
          f"| >= 0.7: {'met' if ratio >= 0.7 else 'NOT met'} | {loads(iss['pg'])} |")
    for r in rows:
        if r["label"] == "rss":
            b = r["bytes_per_instance"]
            p(f"| vouchd RSS, {run.get('inst', 0):,} instances, {r.get('cached', run.get('inst', 0)):,} keys cached, {r['store']} | {r['after_kb'] / 1024:.1f} MB "
              f"(empty server {r['empty_kb'] / 1024:.1f} MB, seeded store at start {r['seeded_start_kb'] / 1024:.1f} MB) | "
              f"| {b} bytes per instance ({r['bytes_per_instance_vs_seeded_start']} above the seeded start; after: {r.get('parts', '')}) | <= 400: "
              f"{'met' if b <= 400 else 'NOT met'} | {r.get('load')} |")
    for r in rows:
        if r["label"] == "get":
            p99 = r["latency_ms"]["p99"]
            p(f"| GET /api/v1/instances{r['query']}, {r['store']} ({r['requests']} requests, "
              f"{r['items_per_answer']:.0f} items each) | p50 {r['latency_ms']['p50']:.1f} ms, p99 {p99:.1f} ms | | | "
              f"<= 50 ms: {'met' if p99 <= 50 else 'NOT met'} | {loads(r)} |")
    fs = next((r for r in rows if r["label"] == "fsync"), None)
    if fs:
        f50 = fs["fsync_ms"]["p50"]
        inflight = run.get("hb_conns", 4) * run.get("batch", 100)
        p(f"| fsync of 4 KiB on the stores' disk | p50 {f50:.2f} ms, p99 {fs['fsync_ms']['p99']:.2f} ms | | "
          f"{inflight} heartbeats in flight / p50 = {inflight / (f50 / 1000):,.0f}/s at most | | {fs.get('load')} |")
    p("")
    p("CPU per heartbeat in the timed rounds (from /proc/PID/stat; generator from getrusage):")
    for name, rs in (("SQLite", sq), ("PostgreSQL, one vouchd", pg1), ("PostgreSQL, two vouchd (sum)", pg2)):
        for r in rs:
            p(f"  {name}, seq {r['round_seq']} ({r.get('sent', r['instances']):,} heartbeats): {fmt(r['per_second'])}/s, vouchd {r['vouchd_us']} us ({r.get('vouchd_sys_us', '?')} in the kernel), PostgreSQL "
              f"{r['pg_us']} us, generator {per_hb_gen(r):.1f} us, vouchd context switches per batch {r.get('vouchd_ctxsw_per_batch', '?')}")
    for s, r in iss.items():
        p(f"  issuance {s}: vouchd {r['vouchd_us']} us, agent {r['agent_us']} us, PostgreSQL {r['pg_us']} us per certificate")
    # Model: N members, each on its own 2-core machine, one PostgreSQL on its own 2-core machine.
    base = pg2_best or pg1_best
    if base and base["pg_us"] > 0:
        v_total, q = base["vouchd_us"], base["pg_us"]
        p("")
        p(f"Model (from the {'two' if base is pg2_best else 'one'}-vouchd round at {fmt(base['per_second'])}/s: vouchd "
          f"{v_total} us and PostgreSQL {q} us of CPU per heartbeat): N members on N 2-core machines, PostgreSQL on "
          f"its own 2-core machine; each bound = cores x 1e6 / CPU us per heartbeat:")
        for n in (1, 2, 4, 8):
            members = n * 2e6 / v_total
            pgb = 2e6 / q
            p(f"  N={n}: members {fmt(members)}/s, PostgreSQL {fmt(pgb)}/s -> {fmt(min(members, pgb))}/s "
              f"({'members' if members < pgb else 'PostgreSQL'} bound)")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
