# shellcheck shell=bash
# Shared helpers for the e2e shell tests. Each check prints one line; the test fails at the first
# failed check with a message saying what was expected and what was seen.
set -uo pipefail
E2E_PASSED=0
E2E_PIDS=()
e2e_cleanup() {
  for pid in "${E2E_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  [[ -n "${E2E_TMP:-}" && "${E2E_KEEP:-0}" != 1 ]] && rm -rf "$E2E_TMP"
}
trap e2e_cleanup EXIT
E2E_TMP=$(mktemp -d /tmp/vouch-e2e.XXXXXX)

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { E2E_PASSED=$((E2E_PASSED + 1)); echo "ok $E2E_PASSED - $*"; }
# expect_eq WHAT EXPECTED ACTUAL
expect_eq() { [[ "$2" == "$3" ]] || fail "$1: expected '$2', got '$3'"; ok "$1"; }
expect_contains() { [[ "$3" == *"$2"* ]] || fail "$1: expected to contain '$2', got '${3:0:400}'"; ok "$1"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_healthy() {  # URL CA PID
  for _ in $(seq 1 200); do
    curl -fsS --cacert "$2" "$1/healthz" >/dev/null 2>&1 && return 0
    kill -0 "$3" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
# Runs CMD... every 0.1 s until it succeeds, at most TRIES times; on timeout fails the test naming
# DESCRIPTION (what it waited for) and CMD's last output. CMD runs in a subshell: variables it sets
# do not reach the caller (read the state again after the wait).
wait_until() {  # DESCRIPTION TRIES CMD...
  local what=$1 tries=$2 out="" i
  shift 2
  for ((i = 0; i < tries; i++)); do
    out=$("$@" 2>&1) && return 0
    sleep 0.1
  done
  fail "timed out after $((tries / 10)).$((tries % 10)) s waiting until $what; last output: '${out:0:400}'"
}
# For wait_until: prints CMD's output and succeeds when it is WANT.
output_is() {  # WANT CMD...
  local want=$1 out
  shift
  out=$("$@" 2>&1)
  echo "$out"
  [[ "$out" == "$want" ]]
}
# For wait_until: something accepts TCP connections on 127.0.0.1:PORT.
tcp_open() { (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null; }
# For wait_until: PID has exited.
process_gone() { ! kill -0 "$1" 2>/dev/null || { echo "process $1 is still running"; return 1; }; }
# For wait_until: FILE exists and contains TEXT.
file_has() { grep -q -- "$2" "$1" 2>/dev/null || { echo "no '$2' in $1"; return 1; }; }
jq_get() { python3 -c 'import json,sys; d=json.load(sys.stdin); exec("v=d"+sys.argv[1]); print(v if not isinstance(v,(dict,list,bool)) or v is None else json.dumps(v))' "$1"; }
# Approves every pending domain task of an app (its initial domains are approval tasks too).
approve_domains() {  # VOUCH APP
  local t
  for t in $("$1" app get "$2" -o json | python3 -c 'import json,sys; print(" ".join(t["task_id"] for t in json.load(sys.stdin)["domain_tasks"]))'); do
    "$1" task approve "$t" >/dev/null || fail "approve domain task $t of app $2"
  done
}
# Waits (10 s at most) until the agent answers on its socket; fails the test showing the end of its
# log, and at once if the agent's PID (when given) has exited.
wait_agent_socket() {  # SOCKET LOGFILE [PID]
  wait_until "the agent answers on $1" 100 _agent_up_or_gone "$@"
  if [[ -n "${3:-}" ]] && ! kill -0 "$3" 2>/dev/null; then fail "the agent exited: $(tail -5 "$2" 2>/dev/null)"; fi
}
_agent_up_or_gone() {  # SOCKET LOGFILE [PID]
  curl -fsS --unix-socket "$1" http://agent/v1/version >/dev/null 2>&1 && return 0
  [[ -n "${3:-}" ]] && ! kill -0 "$3" 2>/dev/null && return 0
  tail -5 "$2" 2>/dev/null
  return 1
}
# Fails naming the first tool that is missing (scripts/setup installs them all).
require_tools() {  # TOOL...
  local t
  for t in "$@"; do command -v "$t" >/dev/null || fail "$t is not installed (run scripts/setup)"; done
}
# A fresh `vouchd init --dev` manager in $E2E_TMP/manager on a free loopback port, served until
# healthy (SERVE_FLAGS go to `vouchd serve`), and the CLI ($VOUCH, config $E2E_TMP/cli.json) signed
# in as admin (password in $E2E_TMP/admin.pw). Needs VOUCHD and VOUCH; sets D, PORT, URL, CA and
# VOUCHD_PID. Logs go to $E2E_TMP/vouchd.log.
# shellcheck disable=SC2034  # the variables are the caller's
start_dev_manager() {  # [SERVE_FLAGS...]
  D=$E2E_TMP/manager
  PORT=$(free_port)
  URL=https://127.0.0.1:$PORT
  CA=$D/service-ca.pem
  export VOUCH_CONFIG=$E2E_TMP/cli.json
  printf 'admin-password-123\n' >"$E2E_TMP/admin.pw"
  "$VOUCHD" init --dev --data-dir "$D" --admin-user admin --admin-password-file "$E2E_TMP/admin.pw" \
    --listen "127.0.0.1:$PORT" >/dev/null || fail "vouchd init --dev"
  serve_manager "$@"
  "$VOUCH" login --server "$URL" --ca-file "$CA" --user admin --password-file "$E2E_TMP/admin.pw" >/dev/null \
    || fail "vouch login as admin"
}
# (Re)starts `vouchd serve` on start_dev_manager's data directory until healthy; sets VOUCHD_PID.
serve_manager() {  # [SERVE_FLAGS...]
  "$VOUCHD" serve --data-dir "$D" "$@" >>"$E2E_TMP/vouchd.log" 2>&1 &
  VOUCHD_PID=$!
  E2E_PIDS+=("$VOUCHD_PID")
  wait_healthy "$URL" "$CA" "$VOUCHD_PID" || fail "vouchd did not become healthy: $(tail -20 "$E2E_TMP/vouchd.log")"
}
# A vouch-agent on the sim TEE of the manager in $D at $URL, provisioned with a fresh join token of
# zone default (through $VOUCH), answering on DIR/agent.sock; AGENT_FLAGS go to vouch-agent, its
# log to LOG. Needs AGENT, D, URL and VOUCH; sets SOCK and AGENT_PID.
start_sim_agent() {  # DIR LOG [AGENT_FLAGS...]
  local dir=$1 log=$2
  shift 2
  SOCK=$dir/agent.sock
  "$AGENT" --server "$URL" --ca-file "$D/service-ca.pem" --data-dir "$dir" --socket "$SOCK" --tee sim \
    --sim "$D/sim" --join-token "$("$VOUCH" zone join-token default)" "$@" >>"$log" 2>&1 &
  AGENT_PID=$!
  E2E_PIDS+=("$AGENT_PID")
  wait_agent_socket "$SOCK" "$log" "$AGENT_PID"
}
# Checks every API answer the CLI received against docs/api/openapi.json: a test opts in with
# `record_api` before its first vouch call (the CLI then records each answer, VOUCH_RECORD_API in
# docs/cli.md) and `validate_recorded_api` at its end (ui/tests/openapi_responses.mjs, with node and
# the ui/ npm packages that scripts/setup installs).
E2E_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
record_api() { export VOUCH_RECORD_API=$E2E_TMP/api.jsonl; }
validate_recorded_api() {
  local out
  [[ -s "${VOUCH_RECORD_API:-}" ]] || fail "no API answer was recorded (call record_api before the first vouch call)"
  command -v node >/dev/null || fail "node is not installed (run scripts/setup)"
  [[ -d "$E2E_SRC/ui/node_modules/@apidevtools/swagger-parser" ]] \
    || fail "$E2E_SRC/ui/node_modules has no swagger-parser (run scripts/setup, or npm ci in ui/)"
  out=$(node "$E2E_SRC/ui/tests/openapi_responses.mjs" "$E2E_SRC/docs/api/openapi.json" "$VOUCH_RECORD_API" 2>&1) \
    || fail "recorded API answers do not match docs/api/openapi.json:
$out"
  ok "${out#ok - }"
}
# Containers run by runc under $RUNC_ROOT (the caller's): deleted, for an EXIT trap.
runc_cleanup() { for c in $(runc --root "$RUNC_ROOT" list -q 2>/dev/null); do runc --root "$RUNC_ROOT" delete -f "$c" >/dev/null 2>&1; done; }
# Emulated configfs-tsm kernels (`vouch sim tsm`, FUSE) on $E2E_TMP/tsm-NAME; run from $E2E_TMP.
TSM_PIDS=()
mount_tsm() {  # NAME SIM_DIR [FLAGS...]
  mkdir -p "$E2E_TMP/tsm-$1"
  "$VOUCH" sim tsm --sim "$2" --mount "$E2E_TMP/tsm-$1" "${@:3}" >"$E2E_TMP/tsm-$1.log" 2>&1 &
  TSM_PIDS+=($!)
  wait_until "the emulated configfs-tsm is mounted on tsm-$1" 50 test -d "$E2E_TMP/tsm-$1/report"
}
# They unmount on SIGTERM; a mount left behind (a killed emulator) is detached so that the temp
# dir can be removed. For an EXIT trap.
tsm_cleanup() {
  local pid m
  for pid in "${TSM_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${TSM_PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  for m in "$E2E_TMP"/tsm-*; do mountpoint -q "$m" 2>/dev/null && umount -l "$m"; done
  return 0
}
