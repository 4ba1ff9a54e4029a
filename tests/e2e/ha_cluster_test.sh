#!/usr/bin/env bash
# End-to-end: two vouchd instances on one real PostgreSQL (issue 7).
#   - the second joins by attestation only (sim evidence of its binary's measurement); a modified
#     binary and sim evidence where sim is not allowed get nothing
#   - no sticky sessions: concurrent approvals through both never count twice, concurrent
#     issuance never duplicates a serial, the audit chain stays one chain
#   - the CLI fails over between the two URLs
#   - kill -9 of one instance under load: clients carry on through the other, nothing committed lost
#   - PostgreSQL restarted under load: the instances reconnect on their own
#   - an agent given both URLs: kill -9 of the instance it uses while workloads get certificates
#     and heartbeat; it carries on through the other (failure window printed), every acknowledged
#     heartbeat and every received certificate is in the store; the CLI keeps working
# Usage: ha_cluster_test.sh VOUCHD VOUCH [VOUCH_AGENT]
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"
VOUCHD=$1
VOUCH=$2
AGENT=${3:-}
LOAD="python3 $(dirname "$0")/ha_load.py"
export VOUCH_CONFIG=$E2E_TMP/cli.json
printf 'admin-password-123\n' >"$E2E_TMP/admin.pw"
printf 'approver-password-1\n' >"$E2E_TMP/a1.pw"
printf 'approver-password-2\n' >"$E2E_TMP/a2.pw"

start_postgres
ok "PostgreSQL on 127.0.0.1:$PG_PORT as ${PG_USER:-$(id -un)}"
psql_q() { pg_run "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U vouch -d vouch -tAc "$1"; }

A=$E2E_TMP/a; B=$E2E_TMP/b
PA=$(free_port); PB=$(free_port)
UA=https://127.0.0.1:$PA; UB=https://127.0.0.1:$PB
"$VOUCHD" init --data-dir "$A" --admin-user admin --admin-password-file "$E2E_TMP/admin.pw" --store "$PG_URL" \
  --listen "127.0.0.1:$PA" --dev >/dev/null || fail "vouchd init on PostgreSQL"
CA=$A/service-ca.pem
# init --dev makes the sim vendor in DIR/sim (INTERFACES.md); make it here if this build does not.
[[ -e "$A/sim/sim-secrets.json" ]] || "$VOUCH" sim init "$A/sim" >/dev/null || fail "sim init"
declare -A PID  # serve's instances by name
serve() {  # serve DIR URL NAME [FLAGS...]: sets PID[NAME]
  "$VOUCHD" serve --data-dir "$1" "${@:4}" >>"$E2E_TMP/$3.log" 2>&1 &
  local pid=$!
  E2E_PIDS+=("$pid")
  PID[$3]=$pid
  wait_healthy "$2" "$CA" "$pid" || { tail -20 "$E2E_TMP/$3.log"; fail "vouchd $3 did not become healthy"; }
}
# Joining is off unless asked for (also in --dev data directories): refused before the body is read.
serve "$A" "$UA" a
expect_contains "cluster join refused without --allow-cluster-join" '"code":"cluster_join_disabled"' \
  "$(curl -sS --cacert "$CA" -H 'Content-Type: application/json' -d '{}' "$UA/api/v1/cluster/nonce")"
kill "${PID[a]}"; wait "${PID[a]}" 2>/dev/null || true
serve "$A" "$UA" a --allow-cluster-join
expect_eq "instance A serves on PostgreSQL" "ready" "$(curl -fsS --cacert "$CA" "$UA/readyz")"

# ---- join by attestation
"$VOUCHD" join --data-dir "$B" --peer "$UA" --ca-file "$CA" --store "$PG_URL" --listen "127.0.0.1:$PB" \
  --tee sim --sim "$A/sim" >"$E2E_TMP/join.out" 2>&1 || fail "vouchd join: $(cat "$E2E_TMP/join.out")"
expect_contains "join reports the measurement" "$("$VOUCHD" measurement)" "$(cat "$E2E_TMP/join.out")"
cmp -s "$A/master.key" "$B/master.key" || fail "the joined member has a different master key"
ok "the joined member holds the cluster master key"
expect_eq "its master key is private" 600 "$(stat -c %a "$B/master.key")"
[[ ! -e "$B/sim/sim-secrets.json" ]] || fail "the sim vendor's secrets were copied"
ok "only public collateral was copied"
serve "$B" "$UB" b
expect_eq "instance B serves with the shared TLS identity (same CA)" "ok" "$(curl -fsS --cacert "$CA" "$UB/healthz")"

cp "$VOUCHD" "$E2E_TMP/vouchd-modified" && printf 'tampered' >>"$E2E_TMP/vouchd-modified"
if "$E2E_TMP/vouchd-modified" join --data-dir "$E2E_TMP/c" --peer "$UA" --ca-file "$CA" --store "$PG_URL" \
  --listen 127.0.0.1:1 --tee sim --sim "$A/sim" 2>"$E2E_TMP/err"; then fail "a modified binary joined"; fi
expect_contains "a modified binary is refused" "not an approved vouchd build" "$(cat "$E2E_TMP/err")"
[[ ! -e "$E2E_TMP/c/master.key" ]] || fail "the refused joiner got a master key"
ok "the refused joiner has no master key"
"$VOUCH" sim init "$E2E_TMP/othersim" >/dev/null || fail "sim init"
if "$VOUCHD" join --data-dir "$E2E_TMP/c" --peer "$UA" --ca-file "$CA" --store "$PG_URL" --listen 127.0.0.1:1 \
  --tee sim --sim "$E2E_TMP/othersim" 2>"$E2E_TMP/err"; then fail "evidence from an unknown sim vendor joined"; fi
expect_contains "evidence from another (untrusted) vendor is refused" "not genuine" "$(cat "$E2E_TMP/err")"
expect_eq "both refusals and the grant are audited" "1 2" \
  "$(psql_q "SELECT COUNT(*) FILTER (WHERE outcome='ok'), COUNT(*) FILTER (WHERE outcome='denied') FROM audit WHERE action='cluster.join'" | tr '|' ' ')"

# ---- CLI against both, failover
"$VOUCH" login --server "$UA,$UB" --ca-file "$CA" --user admin --password-file "$E2E_TMP/admin.pw" >/dev/null || fail "login"
"$VOUCH" user create approver1 --role approver --password-file "$E2E_TMP/a1.pw" >/dev/null || fail "user create"
"$VOUCH" user create approver2 --role approver --password-file "$E2E_TMP/a2.pw" >/dev/null || fail "user create"
login() { curl -fsS --cacert "$CA" -X POST "$2/api/v1/sys/auth" -H 'Content-Type: application/json' \
  -d "{\"username\":\"$1\",\"password\":\"$(cat "$E2E_TMP/$3.pw")\"}" | jq_get '["token"]'; }
TA1=$(login approver1 "$UA" a1); TA2=$(login approver2 "$UB" a2); TADM=$(login admin "$UB" admin)
api() { curl -s --cacert "$CA" -H "Authorization: Bearer $1" -H 'Content-Type: application/json' "${@:2}"; }
expect_eq "a session made on A works on B (no sticky sessions)" approver1 \
  "$(api "$TA1" "$UB/api/v1/sys/whoami" | jq_get '["name"]')"

"$VOUCH" zone create prod --approvals 2 >/dev/null || fail "zone create"
"$VOUCH" app create web --zone prod --domain web.example.com >/dev/null || fail "app create"
# The initial domain is an approval task under the zone's quorum: both approvers approve it.
for t in $("$VOUCH" app get web -o json | python3 -c 'import json,sys; print(" ".join(t["task_id"] for t in json.load(sys.stdin)["domain_tasks"]))'); do
  for tok in "$TA1" "$TA2"; do
    [[ $(api "$tok" -o /dev/null -w '%{http_code}' -X POST "$UA/api/v1/tasks/$t/approve" -d '{}') == 200 ]] \
      || fail "approve domain task $t"
  done
done
MRS=$(printf 'cd%.0s' {1..32})
# Concurrent approvals: the same approver 8 times through both instances at once.
builds=()
for i in 1 2 3; do
  b=$("$VOUCH" build create --app web --mrenclave "$(printf "%02x" "$i")$(printf 'ab%.0s' {1..31})" --mrsigner "$MRS" \
      --isvprodid 1 --isvsvn "$i" -o json) || fail "build create"
  builds+=("$(echo "$b" | jq_get '["id"]') $(echo "$b" | jq_get '["task_id"]')")
done
# (wait for the curls only: a plain `wait` would wait for the servers too)
jobs_=()
for entry in "${builds[@]}"; do
  task=${entry#* }
  for i in 1 2 3 4; do
    api "$TA1" -o /dev/null -X POST "$UA/api/v1/tasks/$task/approve" -d '{}' & jobs_+=($!)
    api "$TA1" -o /dev/null -X POST "$UB/api/v1/tasks/$task/approve" -d '{}' & jobs_+=($!)
  done
done
wait "${jobs_[@]}"
for entry in "${builds[@]}"; do
  build=${entry% *}; task=${entry#* }
  expect_eq "8 concurrent approvals by one approver count once ($build)" "pending 1" \
    "$(api "$TADM" "$UA/api/v1/builds/$build" | jq_get '["status"]') $(psql_q "SELECT COUNT(*) FROM task_approvals WHERE task_id='$task'")"
  api "$TA2" -o /dev/null -X POST "$UB/api/v1/tasks/$task/approve" -d '{}' & j1=$!
  api "$TA2" -o /dev/null -X POST "$UA/api/v1/tasks/$task/approve" -d '{}' & j2=$!
  wait $j1 $j2
  expect_eq "a second approver (twice, through both) approves it ($build)" "approved 2" \
    "$(api "$TADM" "$UB/api/v1/builds/$build" | jq_get '["status"]') $(psql_q "SELECT COUNT(*) FROM task_approvals WHERE task_id='$task'")"
done
BUILD=${builds[0]% *}

# ---- concurrent issuance through both instances
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$E2E_TMP/w.key" -out "$E2E_TMP/w.csr" \
  -subj "/CN=web.example.com" -addext "subjectAltName=DNS:web.example.com" 2>/dev/null || fail "openssl req"
$LOAD --urls "$UA,$UB" --ca "$CA" --token "$TADM" --build "$BUILD" --csr "$E2E_TMP/w.csr" --seconds 3 --threads 4 \
  >"$E2E_TMP/load1.json" || fail "load"
n_ok=$(jq_get '["ok"]' <"$E2E_TMP/load1.json")
[[ $n_ok -gt 10 ]] || fail "too few certificates issued: $(head -c 300 "$E2E_TMP/load1.json")"
expect_eq "no errors under concurrent issuance on two instances" 0 "$(jq_get '["failed"]' <"$E2E_TMP/load1.json")"
expect_eq "$n_ok certificates, $n_ok distinct serials in the store" "$n_ok $n_ok" \
  "$(psql_q "SELECT COUNT(*), COUNT(DISTINCT serial) FROM certificates" | tr '|' ' ')"
expect_eq "the audit chain is one valid chain" true "$(api "$TADM" "$UA/api/v1/audit/verify" | jq_get '["ok"]')"

# Revocation through B is in the CRL served by A.
SERIAL=$(psql_q "SELECT serial FROM certificates LIMIT 1")
api "$TADM" -o /dev/null -X POST "$UB/api/v1/certificates/$SERIAL/revoke" -d '{}'
curl -fsS --cacert "$CA" "$UA/api/v1/zones/prod/crl" -o "$E2E_TMP/crl.der" || fail "CRL"
expect_contains "a revocation made on B is in A's CRL" "$(echo "$SERIAL" | tr a-f A-F)" \
  "$(openssl crl -inform DER -in "$E2E_TMP/crl.der" -noout -text | tr -d ':' | tr a-f A-F)"

# ---- kill -9 one instance under load
$LOAD --urls "$UA,$UB" --ca "$CA" --token "$TADM" --build "$BUILD" --csr "$E2E_TMP/w.csr" --seconds 6 --threads 4 \
  >"$E2E_TMP/load2.json" &
LOADPID=$!
sleep 2  # on purpose: the load runs a while before the kill (a fixed time, nothing to poll for)
kill -9 "${PID[a]}"
"$VOUCH" build list -o json >/dev/null || fail "the CLI did not fail over to B"
ok "the CLI fails over to B while A is dead"
wait $LOADPID || fail "load under kill -9"
echo "# kill -9 under load: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("serials"); print(json.dumps(d))' "$E2E_TMP/load2.json")"
missing=$(python3 - "$E2E_TMP/load2.json" "$PG_PORT" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
print("\n".join(d["serials"]))
PY
)
n2=$(jq_get '["ok"]' <"$E2E_TMP/load2.json")
[[ $n2 -gt 10 ]] || fail "clients did not carry on through B"
ok "clients carried on through B ($n2 certificates in 6 s)"
expect_eq "no request failed on both instances" 0 "$(jq_get '["failed"]' <"$E2E_TMP/load2.json")"
echo "$missing" >"$E2E_TMP/serials.txt"
in_db=$(psql_q "SELECT serial FROM certificates" | sort)
lost=$(comm -23 <(sort "$E2E_TMP/serials.txt") <(echo "$in_db") | wc -l)
expect_eq "every acknowledged certificate is in the store" 0 "$lost"
serve "$A" "$UA" a
expect_eq "A restarts and serves again" ready "$(curl -fsS --cacert "$CA" "$UA/readyz")"

# ---- PostgreSQL restarted under load
$LOAD --urls "$UA,$UB" --ca "$CA" --token "$TADM" --build "$BUILD" --csr "$E2E_TMP/w.csr" --seconds 6 --threads 4 \
  >"$E2E_TMP/load3.json" &
LOADPID=$!
sleep 2  # on purpose: the load runs a while before the restart (a fixed time, nothing to poll for)
restart_postgres || fail "PostgreSQL restart"
wait $LOADPID || fail "load under PostgreSQL restart"
echo "# PostgreSQL restart under load: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); d.pop("serials"); print(json.dumps(d))' "$E2E_TMP/load3.json")"
kill -0 "${PID[a]}" && kill -0 "${PID[b]}" || fail "an instance died when PostgreSQL restarted"
ok "both instances survived the PostgreSQL restart"
expect_eq "A reconnected on its own" ready "$(curl -fsS --cacert "$CA" "$UA/readyz")"
expect_eq "B reconnected on its own" ready "$(curl -fsS --cacert "$CA" "$UB/readyz")"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["ok"] > 0 and max(d["errors"].get("http_500",0), 0) == 0 else 1)' \
  "$E2E_TMP/load3.json" || fail "requests failed with 500 or none succeeded: $(head -c 300 "$E2E_TMP/load3.json")"
ok "no 500s while PostgreSQL restarted"
comm -23 <(python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["serials"]))' "$E2E_TMP/load3.json" | sort) \
  <(psql_q "SELECT serial FROM certificates" | sort) >"$E2E_TMP/lost3.txt"
expect_eq "every acknowledged certificate survived the restart" 0 "$(wc -l <"$E2E_TMP/lost3.txt")"
expect_eq "the audit chain is still one valid chain" true "$(api "$TADM" "$UB/api/v1/audit/verify" | jq_get '["ok"]')"

# ---- an agent with both URLs; kill -9 of the instance it is using, under load
if [[ -n "$AGENT" ]]; then
  "$VOUCH" login --server "$UA" --server "$UB" --ca-file "$CA" --user admin --password-file "$E2E_TMP/admin.pw" >/dev/null \
    || fail "login with a repeated --server"
  expect_eq "vouch login --server A --server B saves both" "$UA,$UB" \
    "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["server"])' "$VOUCH_CONFIG")"
  "$VOUCH" app create svc --zone default --domain svc.example.com >/dev/null || fail "app create svc"
  approve_domains "$VOUCH" svc
  MRE=$(printf 'ee%.0s' {1..32})
  b=$("$VOUCH" build create --app svc --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 -o json) || fail "build create"
  "$VOUCH" task approve "$(echo "$b" | jq_get '["task_id"]')" >/dev/null || fail "approve"
  AG=$E2E_TMP/agent; SOCK=$AG/agent.sock
  "$AGENT" --server "$UA,$UB" --ca-file "$CA" --data-dir "$AG" --socket "$SOCK" --tee sim --sim "$A/sim" \
    --join-token "$("$VOUCH" zone join-token default)" --batch-interval-ms 100 --checkin-interval 1 >>"$E2E_TMP/agent.log" 2>&1 &
  AGENT_PID=$!; E2E_PIDS+=("$AGENT_PID")
  wait_agent_socket "$SOCK" "$E2E_TMP/agent.log"
  expect_contains "the agent is provisioned through the first URL" node_ "$(curl -fsS --unix-socket "$SOCK" http://agent/v1/version)"
  expect_eq "the agent keeps its manager list in its data dir" "[\"$UA\", \"$UB\"]" \
    "$(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["servers"]))' "$AG/agent.json")"
  wc_() { "$VOUCH" workload cert --socket "$SOCK" --out "$1" --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 \
    --retry-seconds 20 >/dev/null 2>>"$E2E_TMP/wc.err"; }
  mkdir -p "$E2E_TMP/hb" "$E2E_TMP/certs"
  for w in 1 2 3; do wc_ "$E2E_TMP/hb/$w" || fail "workload $w: $(tail -1 "$E2E_TMP/wc.err")"; done
  ok "three workloads got certificates through the agent"
  # Load: three workloads heartbeating every 10 ms, two getting a new certificate in a loop.
  LOADERS=()
  for w in 1 2 3; do
    ( while [[ ! -e $E2E_TMP/stop ]]; do
        "$VOUCH" workload heartbeat --socket "$SOCK" --dir "$E2E_TMP/hb/$w" --count 20 --interval-ms 10 >/dev/null 2>&1 || sleep 0.05
      done ) &
    LOADERS+=("$!")
  done
  for j in 1 2; do
    ( i=0
      while [[ ! -e $E2E_TMP/stop ]]; do
        i=$((i + 1)); t0=$(date +%s%3N)
        if wc_ "$E2E_TMP/certs/$j-$i"; then r=ok; else r=failed; fi
        echo "$t0 $(date +%s%3N) $r" >>"$E2E_TMP/certs/times-$j"
      done ) &
    LOADERS+=("$!")
  done
  sleep 2  # on purpose: the load runs a while before and after the kill (fixed times, nothing to poll for)
  KILL_MS=$(date +%s%3N)
  kill -9 "${PID[a]}"
  sleep 3
  touch "$E2E_TMP/stop"
  for p in "${LOADERS[@]}"; do wait "$p"; done
  kill -0 "$AGENT_PID" 2>/dev/null || fail "the agent died"
  "$VOUCH" app list -o json >"$E2E_TMP/apps.json" || fail "vouch app list after A was killed"
  expect_contains "the CLI (both URLs) keeps working after A is killed" '"svc"' "$(cat "$E2E_TMP/apps.json")"
  read -r window before after failed < <(cat "$E2E_TMP"/certs/times-* | sort -n | awk -v k="$KILL_MS" '
    $3 == "ok" && $2 > k && (first == "" || $2 < first) { first = $2 }
    $3 == "ok" && $2 <= k { before++ } $3 == "ok" && $2 > k { after++ } $3 != "ok" { failed++ }
    END { print (first == "" ? -1 : first - k), before + 0, after + 0, failed + 0 }')
  [[ "$after" -gt 0 ]] || fail "no certificate was issued through B after A was killed"
  echo "# agent failover: kill -9 of A -> first certificate through B after ${window} ms; certificates: $before before, $after after the kill, $failed requests failed for good"
  ok "the agent carried on through B ($after certificates after the kill, first after $window ms)"
  expect_eq "no workload certificate request failed for good" 0 "$failed"
  queued() { find "$AG/queue" -maxdepth 1 -regextype posix-extended -regex '.*/[0-9]{20}' 2>/dev/null | wc -l; }
  wait_until "the agent's queue drains through B" 200 output_is 0 queued
  expect_eq "the agent's queue drained through B" 0 "$(queued)"
  for w in 1 2 3; do
    inst=$(jq_get '["instance_id"]' <"$E2E_TMP/hb/$w/instance.json")
    acked=$(jq_get '["last_seq"]' <"$E2E_TMP/hb/$w/instance.json")
    expect_eq "workload $w: every acknowledged heartbeat arrived ($acked)" "$acked" \
      "$(psql_q "SELECT last_seq FROM instances WHERE id = '$inst'")"
  done
  lost=0; n=0
  for f in "$E2E_TMP"/certs/*/instance.json; do
    s=$(jq_get '["serial"]' <"$f"); n=$((n + 1))
    [[ "$(psql_q "SELECT COUNT(*) FROM certificates WHERE serial = '$s'")" == 1 ]] || lost=$((lost + 1))
  done
  expect_eq "all $n certificates the workloads received are in the store" 0 "$lost"
  kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
  "$AGENT" --ca-file "$CA" --data-dir "$AG" --socket "$SOCK" --tee sim --sim "$A/sim" >>"$E2E_TMP/agent.log" 2>&1 &
  AGENT_PID=$!; E2E_PIDS+=("$AGENT_PID")
  wait_agent_socket "$SOCK" "$E2E_TMP/agent.log"
  wc_ "$E2E_TMP/after-restart" || fail "agent restarted without --server: $(tail -1 "$E2E_TMP/wc.err")"
  ok "restarted without --server, the agent uses its saved list (A still down)"
  kill "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null
fi

# ---- sim evidence where the cluster does not allow sim
kill "${PID[b]}"; wait "${PID[b]}" 2>/dev/null
python3 - "$B/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c["cluster"]["allow_sim"] = False
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
serve "$B" "$UB" b --allow-cluster-join
if "$VOUCHD" join --data-dir "$E2E_TMP/c" --peer "$UB" --ca-file "$CA" --store "$PG_URL" --listen 127.0.0.1:1 \
  --tee sim --sim "$A/sim" 2>"$E2E_TMP/err"; then fail "sim evidence joined a cluster that does not allow sim"; fi
expect_contains "sim evidence is refused where sim is not allowed" "simulated TEE, which is not allowed" "$(cat "$E2E_TMP/err")"
[[ ! -e "$E2E_TMP/c/master.key" ]] || fail "the refused joiner got a master key"
ok "the refused joiner has no master key"
echo "passed $E2E_PASSED checks"
