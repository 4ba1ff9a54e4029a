#!/usr/bin/env bash
# Certificate issuance throughput (POST /api/v1/certificates, admin token, one P-256 CSR) through
# one `curl --parallel` process (THREADS connections, SECONDS*100 requests): SQLite, PostgreSQL with one vouchd, PostgreSQL with two
# vouchd (the second joined by attestation). Figures in BENCHMARKS.md ("HA back end").
# Usage: bench/ha_issuance.sh VOUCHD VOUCH [SECONDS] [THREADS]
E2E=$(cd "$(dirname "$0")/../tests/e2e" && pwd)
source "$E2E/lib.sh"
source "$E2E/pg.sh"
VOUCHD=$1; VOUCH=$2; SECS=${3:-5}; THREADS=${4:-8}
printf 'admin-password-123\n' >"$E2E_TMP/admin.pw"
start_postgres
serve() {  # DIR URL (members accept joins: the second instance joins the first)
  "$VOUCHD" serve --data-dir "$1" --allow-cluster-join >>"$E2E_TMP/serve.log" 2>&1 &
  E2E_PIDS+=($!)
  wait_healthy "$2" "$CA" $! || fail "vouchd did not start"
}
setup() {  # DIR PORT [--store URL]: init, serve, one approved build; sets CA, TOKEN, BUILD
  local dir=$1 port=$2; shift 2
  "$VOUCHD" init --data-dir "$dir" --admin-user admin --admin-password-file "$E2E_TMP/admin.pw" \
    --listen "127.0.0.1:$port" --dev "$@" >/dev/null || fail "init"
  CA=$dir/service-ca.pem
  [[ -e "$dir/sim/sim-secrets.json" ]] || "$VOUCH" sim init "$dir/sim" >/dev/null
  serve "$dir" "https://127.0.0.1:$port"
  export VOUCH_CONFIG=$dir/cli.json
  "$VOUCH" login --server "https://127.0.0.1:$port" --ca-file "$CA" --user admin --password-file "$E2E_TMP/admin.pw" >/dev/null
  "$VOUCH" zone create bench --approvals 1 >/dev/null
  "$VOUCH" app create web --zone bench --domain web.example.com >/dev/null
  approve_domains "$VOUCH" web
  local b
  b=$("$VOUCH" build create --app web --mrenclave "$(printf 'ab%.0s' {1..32})" --mrsigner "$(printf 'cd%.0s' {1..32})" \
      --isvprodid 1 --isvsvn 1 -o json)
  "$VOUCH" task approve "$(echo "$b" | jq_get '["task_id"]')" >/dev/null
  BUILD=$(echo "$b" | jq_get '["id"]')
  TOKEN=$(curl -fsS --cacert "$CA" -X POST "https://127.0.0.1:$port/api/v1/sys/auth" \
    -d '{"username":"admin","password":"admin-password-123"}' | jq_get '["token"]')
}
run() {  # LABEL URLS: N requests with one `curl --parallel` (keep-alive, THREADS at a time)
  local urls=() n=$((SECS * 100)) i
  IFS=, read -r -a bases <<<"$2"
  for ((i = 0; i < n; i++)); do urls+=(-o /dev/null "${bases[$((i % ${#bases[@]}))]}/api/v1/certificates"); done
  python3 -c 'import json,sys; json.dump({"build_id": sys.argv[1], "csr": open(sys.argv[2]).read()}, open(sys.argv[3], "w"))' \
    "$BUILD" "$E2E_TMP/w.csr" "$E2E_TMP/body.json"
  local t0 t1
  t0=$(date +%s.%N)
  curl -sS --no-progress-meter -Z --parallel-max "$THREADS" --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary @"$E2E_TMP/body.json" -w '%{http_code}\n' "${urls[@]}" >"$E2E_TMP/codes.txt"
  t1=$(date +%s.%N)
  local okn
  okn=$(grep -c "^201$" "$E2E_TMP/codes.txt")
  python3 -c 'import sys; n,ok,t=int(sys.argv[2]),int(sys.argv[3]),float(sys.argv[4]); print("| %s | %d | %.1f | %d |" % (sys.argv[1], ok, ok / t, n - ok))' \
    "$1" "$n" "$okn" "$(echo "$t1 - $t0" | bc)"
}
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$E2E_TMP/w.key" -out "$E2E_TMP/w.csr" \
  -subj "/CN=web.example.com" -addext "subjectAltName=DNS:web.example.com" 2>/dev/null
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $((SECS * 100)) requests, $THREADS in parallel"
echo "| store, instances | certificates | per second | failed |"
echo "|---|---|---|---|"
P0=$(free_port); setup "$E2E_TMP/s" "$P0"
run "SQLite, 1" "https://127.0.0.1:$P0"
P1=$(free_port); P2=$(free_port)
setup "$E2E_TMP/a" "$P1" --store "$PG_URL"
run "PostgreSQL, 1" "https://127.0.0.1:$P1"
"$VOUCHD" join --data-dir "$E2E_TMP/b" --peer "https://127.0.0.1:$P1" --ca-file "$CA" --store "$PG_URL" \
  --listen "127.0.0.1:$P2" --tee sim --sim "$E2E_TMP/a/sim" >/dev/null || fail "join"
serve "$E2E_TMP/b" "https://127.0.0.1:$P2"
run "PostgreSQL, 2" "https://127.0.0.1:$P1,https://127.0.0.1:$P2"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
