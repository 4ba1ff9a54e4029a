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
  fail "timed out after $((tries / 10)).$((tries % 10)) s waiting until $what; last output: '${out:0:600}'"
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
# A busybox that runs inside an image (statically linked: /bin/busybox, Debian's busybox-static,
# when the one on PATH is not). Prints its path.
static_busybox() {
  local b
  b=$(command -v busybox)
  file -L "$b" 2>/dev/null | grep -q 'statically linked' || b=/bin/busybox
  echo "$b"
}
# OCI images built with umoci in a layout under the current directory: image_begin LAYOUT:TAG makes
# the layout (when new) and the image and unpacks it, the caller adds files under $IMAGE_ROOT (or
# with image_add_busybox / image_add_openssl), image_end LAYOUT:TAG repacks it. Its config (`umoci
# config`) is the caller's. One image at a time.
image_begin() {  # LAYOUT:TAG
  local layout=${1%%:*}
  [[ -d "$layout" ]] || umoci init --layout "$layout" >/dev/null || fail "umoci init --layout $layout"
  umoci new --image "$1" >/dev/null || fail "umoci new --image $1"
  IMAGE_BUNDLE=$E2E_TMP/image-bundle
  umoci unpack --image "$1" "$IMAGE_BUNDLE" >/dev/null || fail "umoci unpack --image $1"
  IMAGE_ROOT=$IMAGE_BUNDLE/rootfs
}
image_end() {  # LAYOUT:TAG
  umoci repack --image "$1" "$IMAGE_BUNDLE" >/dev/null || fail "umoci repack --image $1"
  rm -rf "$IMAGE_BUNDLE"
}
# A static busybox at /bin/busybox with /bin/APPLET links to it.
image_add_busybox() {  # [APPLET...]
  local a
  mkdir -p "$IMAGE_ROOT/bin"
  cp "$(static_busybox)" "$IMAGE_ROOT/bin/busybox" || fail "copy busybox into the image"
  for a in "$@"; do ln -s busybox "$IMAGE_ROOT/bin/$a"; done
}
# The host's /usr/bin/openssl at the same path, with the shared libraries it loads.
image_add_openssl() {
  local lib
  mkdir -p "$IMAGE_ROOT/usr/bin"
  cp /usr/bin/openssl "$IMAGE_ROOT/usr/bin/openssl" || fail "copy openssl into the image"
  for lib in $(ldd /usr/bin/openssl | grep -oE '/[^ ]+'); do
    mkdir -p "$IMAGE_ROOT$(dirname "$lib")"
    cp -L "$lib" "$IMAGE_ROOT$lib" || fail "copy $lib into the image"
  done
}
# An image LAYOUT:TAG holding a static busybox (with /bin/APPLET links) and openssl.
openssl_image() {  # LAYOUT:TAG [APPLET...]
  image_begin "$1"
  image_add_busybox "${@:2}"
  image_add_openssl
  image_end "$1"
}
# Approves the build a `vouch convert -o json` made (its answer in CONV_JSON).
approve_converted_build() {  # CONV_JSON
  local build
  build=$("$VOUCH" build get "$(jq_get '["build_id"]' <<<"$1")" -o json) || fail "vouch build get"
  "$VOUCH" task approve "$(jq_get '["task_id"]' <<<"$build")" >/dev/null || fail "approve the build"
}
# Registry test PKI in the current directory, made with openssl: make_ca NAME CN writes a CA
# NAME.pem/NAME.key, make_cert NAME CA KEYSPEC SUBJECT EXT a certificate NAME.pem/NAME.key issued by
# CA with the extensions EXT (lines of an openssl extfile).
make_ca() {  # NAME CN
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$1.key" -out "$1.pem" \
    -days 2 -subj "/CN=$2" -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign \
    2>/dev/null || fail "openssl: CA $1"
}
make_cert() {  # NAME CA KEYSPEC SUBJECT EXT
  openssl req -new -newkey "$3" -nodes -keyout "$1.key" -out "$1.csr" -subj "$4" 2>/dev/null || fail "csr $1"
  printf '%s\n' "$5" >"$1.ext"
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 2 -out "$1.pem" \
    -extfile "$1.ext" 2>/dev/null || fail "openssl: cert $1"
}
# What the registries of the conversion tests use: a TLS CA tls-ca with a server certificate tls for
# 127.0.0.2 and 127.0.0.1, and a token-signing CA token-ca with the signer's chain signer-chain.pem
# (signer.key signs the tokens of registry_token_server.py).
make_registry_pki() {
  make_ca tls-ca "vouch e2e TLS CA"
  make_cert tls tls-ca ec:<(openssl ecparam -name prime256v1) "/CN=127.0.0.2" \
    "subjectAltName=IP:127.0.0.2,IP:127.0.0.1
extendedKeyUsage=serverAuth"
  make_ca token-ca "vouch e2e token CA"
  make_cert signer token-ca rsa:2048 "/CN=token signer" "keyUsage=critical,digitalSignature"
  cat signer.pem token-ca.pem >signer-chain.pem
}
# registry_token_server.py on 127.0.0.1:PORT (HTTPS with make_registry_pki's tls, tokens signed by
# its signer) for the users of USERS_FILE ("user:password" lines); it logs the scopes it granted to
# $E2E_TMP/token.log.
start_token_server() {  # PORT USERS_FILE
  python3 "$E2E_SRC/tests/e2e/registry_token_server.py" "$1" tls.pem tls.key signer.key signer-chain.pem \
    vouch-e2e-issuer "$2" "$E2E_TMP/token.log" >token-server.log 2>&1 &
  E2E_PIDS+=($!)
}
# A docker-registry on ADDR (config NAME.yml, log NAME.log, storage $E2E_TMP/store-NAME):
# anonymous plain HTTP unless told: --tls serves HTTPS with make_registry_pki's tls certificate,
# --htpasswd FILE asks for Basic auth, --token PORT for tokens of start_token_server's server on
# 127.0.0.1:PORT, --readonly refuses every push.
start_registry() {  # NAME ADDR [--tls] [--htpasswd FILE] [--token PORT] [--readonly]
  local name=$1 addr=$2 tls="" auth="" storage=""
  shift 2
  while (($#)); do
    case $1 in
      --tls) tls=", tls: {certificate: $E2E_TMP/tls.pem, key: $E2E_TMP/tls.key}" ;;
      --htpasswd) auth="auth: {htpasswd: {realm: vouch-e2e, path: $2}}"; shift ;;
      --token)
        auth="auth: {token: {realm: \"https://127.0.0.1:$2/token\", service: vouch-e2e-registry, issuer: vouch-e2e-issuer, rootcertbundle: $E2E_TMP/token-ca.pem}}"
        shift ;;
      --readonly) storage=", maintenance: {readonly: {enabled: true}}" ;;
      *) fail "start_registry: unknown option $1" ;;
    esac
    shift
  done
  printf '%s\n' "version: 0.1" "log: {level: error}" \
    "storage: {filesystem: {rootdirectory: $E2E_TMP/store-$name}$storage}" "http: {addr: \"$addr\"$tls}" \
    "$auth" >"$name.yml"
  docker-registry serve "$name.yml" >"$name.log" 2>&1 &
  E2E_PIDS+=($!)
}
# throttle_proxy.py on LISTEN forwarding to TARGET, its answers sent at BYTES_PER_SECOND.
start_throttle_proxy() {  # LISTEN TARGET BYTES_PER_SECOND
  python3 "$E2E_SRC/tests/e2e/throttle_proxy.py" "$1" "$2" "$3" >"proxy-$1.log" 2>&1 &
  E2E_PIDS+=($!)
}
# Unpacks LAYOUT:TAG (an image converted with vouch-rte) into the runc bundle DIR: no terminal, the
# agent socket SOCKET bind-mounted at /run/vouch/agent.sock; --host-network shares the host's
# network namespace, --env NAME=VALUE adds to the process environment.
unpack_for_runc() {  # LAYOUT:TAG DIR SOCKET [--host-network] [--env NAME=VALUE]...
  local image=$1 dir=$2 sock=$3 host_net=0 env=()
  shift 3
  while (($#)); do
    case $1 in
      --host-network) host_net=1 ;;
      --env) env+=("$2"); shift ;;
      *) fail "unpack_for_runc: unknown option $1" ;;
    esac
    shift
  done
  umoci unpack --image "$image" "$dir" >/dev/null || fail "umoci unpack --image $image $dir"
  python3 - "$dir/config.json" "$sock" "$host_net" "${env[@]}" <<'PY' || fail "cannot write the runc config of $dir"
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
c["process"]["env"].extend(sys.argv[4:])
c["mounts"].append({"destination": "/run/vouch/agent.sock", "type": "bind", "source": sys.argv[2], "options": ["bind"]})
if sys.argv[3] == "1":
    c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
json.dump(c, open(sys.argv[1], "w"))
PY
}
# For the EXIT trap of a test with containers and emulated configfs-tsm kernels, before
# e2e_cleanup (or pg.sh's pg_cleanup): the containers deleted, every process of E2E_PIDS sent
# SIGTERM, the emulators stopped and unmounted (tsm_cleanup).
stop_containers_and_tsm() {
  local p
  runc_cleanup
  for p in "${E2E_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; done
  tsm_cleanup
}
