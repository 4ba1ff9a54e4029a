#!/usr/bin/env bash
# `vouch evidence verify` as a whole process (BENCHMARKS.md, "Attestation" / "Process").
# Usage: bench/cli_startup.sh BUILD_DIR [BASELINE_VOUCH_BINARY] [RUNS]
#   Times, with hyperfine on loopback-free offline commands: /bin/true (the machine's process
#   floor), `vouch --version`, and `vouch -o json evidence verify` of a complete SGX and a complete
#   TDX folder; with a baseline binary (e.g. an older build), the same commands for it in the
#   same run. Then page faults and CPU per run (perf stat) and instructions (callgrind).
set -euo pipefail
B=$(cd "$1" && pwd)
BASE=${2:-}
RUNS=${3:-300}
SHARED=$(cd "$(dirname "$0")/../../shared" && pwd)
V=$B/apps/vouch/vouch
SGX=$SHARED/testdata/attestation/sgx-dcap/dcap-rs-icx-2025-02
TDX=$SHARED/testdata/attestation/tdx/dcap-rs-spr-v4-2025-02
SGX_AT=2025-02-13T04:00:32Z
TDX_AT=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["verify_at"])' "$TDX/expected.json")
sgx() { echo "$1 -o json evidence verify --evidence $SGX/quote.dat --collateral $SGX --at $SGX_AT"; }
tdx() { echo "$1 -o json evidence verify --evidence $TDX/quote.dat --collateral $TDX --at $TDX_AT"; }
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
cmds=(/bin/true "$V --version" "$(sgx "$V")" "$(tdx "$V")")
[[ -n $BASE ]] && cmds+=("$BASE --version" "$(sgx "$BASE")" "$(tdx "$BASE")")
hyperfine -N -i --warmup 20 --runs "$RUNS" --export-json /tmp/vouch-cli-startup.json "${cmds[@]}" |
  grep -E 'Benchmark|Time|Range'
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for c in "${cmds[@]:1}"; do
  # shellcheck disable=SC2086
  stats=$(perf stat -r 50 -e task-clock,page-faults $c 2>&1 >/dev/null | grep -E 'task-clock|page-faults' |
    awk '{printf "%s %s  ", $1, $2}' || true)
  # shellcheck disable=SC2086
  ins=$(valgrind --tool=callgrind --callgrind-out-file=/dev/null $c 2>&1 >/dev/null | awk '/refs:/ {print $4}' || true)
  echo "$stats instructions $ins  :: ${c//$SHARED\/testdata\/attestation\//}"
done
