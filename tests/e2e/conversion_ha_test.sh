#!/usr/bin/env bash
# Issue 15, conversion jobs on a cluster (docs/convert.md "Server-side conversion"): two vouchd
# members on one PostgreSQL. Member A claims a job (its lease in the conversions row) and is killed
# with -9 in the middle of the pull (the input comes through throttle_proxy.py at 1 MB/s, so the
# pull takes seconds whatever the machine); member B takes the job over once A's lease has expired
# and finishes it: the job ends done, with one build, the output in the registry.
# Usage: conversion_ha_test.sh VOUCHD VOUCH VOUCH_RTE
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"
VOUCHD=$1
VOUCH=$2
RTE=$3  # the converters embed it (--conversion-runtime)
require_tools docker-registry umoci skopeo busybox curl python3
cd "$E2E_TMP" || fail "cd $E2E_TMP"
export VOUCH_CONFIG=$E2E_TMP/cli.json HOME=$E2E_TMP/home DOCKER_CONFIG=$E2E_TMP/no-docker-config
mkdir -p "$HOME"
printf 'admin-password-123\n' >admin.pw

# --- an anonymous registry on loopback, and the same behind a 1 MB/s proxy ---
PR=$(free_port)
REG=127.0.0.1:$PR
start_registry reg "$REG"
PX=$(free_port)
SLOW=127.0.0.1:$PX
start_throttle_proxy "$SLOW" "$REG" 1000000
wait_until "the registry answers, directly and through the proxy" 100 \
  bash -c "curl -fsS http://$REG/v2/ && curl -fsS http://$SLOW/v2/"
image_begin img:big
image_add_busybox
head -c 4000000 /dev/urandom >"$IMAGE_ROOT/noise"
image_end img:big
umoci config --image img:big --config.cmd /bin/busybox --config.cmd true >/dev/null
skopeo copy -q --dest-tls-verify=false oci:img:big "docker://$REG/src/big:v1" || fail "skopeo push"
ok "registry on $REG, a 1 MB/s proxy on $SLOW, an image with a 4 MB layer of random bytes"

# --- two members on one PostgreSQL: A's data directory, and a copy of it for B made before either
# serves (each then makes its own member id, the owner name of its leases) ---
start_postgres
psql_q() { (cd / && pg_run "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U vouch -d vouch -tAc "$1"); }
DA=$E2E_TMP/a; DB=$E2E_TMP/b
PA=$(free_port); PB=$(free_port)
UA=https://127.0.0.1:$PA; UB=https://127.0.0.1:$PB
"$VOUCHD" init --data-dir "$DA" --admin-user admin --admin-password-file admin.pw --store "$PG_URL" \
  --listen "127.0.0.1:$PA" --dev >/dev/null || fail "vouchd init on PostgreSQL"
[[ ! -e $DA/member-id ]] || fail "init made a member id: a copy of the data directory would share it"
cp -a "$DA" "$DB"
CA=$DA/service-ca.pem
# A 5 s lease (a hidden test knob), so that the take-over comes within seconds.
FLAGS=(--conversion-lease-seconds 5 --conversion-runtime "$RTE")
declare -A PID  # serve's members by name
serve() {  # NAME DIR URL [FLAGS...]: sets PID[NAME]
  "$VOUCHD" serve --data-dir "$2" "${FLAGS[@]}" "${@:4}" >>"$E2E_TMP/$1.log" 2>&1 &
  local pid=$!
  E2E_PIDS+=("$pid")
  PID[$1]=$pid
  wait_healthy "$3" "$CA" "$pid" || fail "vouchd $1 did not become healthy: $(tail -20 "$E2E_TMP/$1.log")"
}
serve a "$DA" "$UA" --listen "127.0.0.1:$PA"
"$VOUCH" login --server "$UA,$UB" --ca-file "$CA" --user admin --password-file admin.pw >/dev/null || fail "login"
"$VOUCH" app create ha --zone default --domain ha.example.com >/dev/null || fail "app create"
"$VOUCH" registry create local --url "http://$REG" --insecure >/dev/null || fail "registry create local"
"$VOUCH" registry create slow --url "http://$SLOW" --insecure >/dev/null || fail "registry create slow"

# --- member A claims the job; B joins; A is killed mid-pull ---
"$VOUCH" conversion create --app ha --no-certificate --input "$SLOW/src/big:v1" --output "$REG/tee/big:v1" \
  -o json >job.json || fail "conversion create"
JOB=$(jq_get '["id"]' <job.json)
moving() {
  "$VOUCH" conversion get "$JOB" -o json | python3 -c '
import json, sys
j = json.load(sys.stdin); p = j.get("progress") or {}
print(j["state"], p.get("bytes_done"), "of", p.get("bytes_total"))
sys.exit(0 if j["state"] == "pulling" and (p.get("bytes_done") or 0) > 0 else 1)'
}
wait_until "member A pulls the job's input" 150 moving
owner=$(psql_q "SELECT lease_owner FROM conversions WHERE id = '$JOB'")
[[ -n $owner ]] || fail "the pulling job has no lease owner"
ok "member A claimed $JOB (lease owner '$owner')"
serve b "$DB" "$UB" --listen "127.0.0.1:$PB"
kill -9 "${PID[a]}"
wait "${PID[a]}" 2>/dev/null
state=$(psql_q "SELECT state FROM conversions WHERE id = '$JOB'")
[[ $state != "done" ]] || fail "the job was done before member A was killed"
ok "member A killed with -9 while the job was '$state'"

# --- member B takes it over and finishes it ---
out=$(timeout 150 "$VOUCH" conversion get "$JOB" --wait -o json 2>wait.err)
rc=$?
expect_eq "member B finishes the job (get --wait exits 0)" 0 "$rc"
expect_eq "the job is done" "done" "$(jq_get '["state"]' <<<"$out")"
[[ $(jq_get '["attempts"]' <<<"$out") -ge 2 ]] || fail "attempts: $(jq_get '["attempts"]' <<<"$out"), expected 2 or more"
ok "the job was attempted again ($(jq_get '["attempts"]' <<<"$out") attempts)"
MA=$(cat "$DA/member-id") MB=$(cat "$DB/member-id")
[[ -n $MA && -n $MB && $MA != "$MB" ]] || fail "member ids: A '$MA', B '$MB'"
expect_eq "the job was claimed by member A" "$MA" "$owner"
log=$(jq_get '["log"]' <<<"$out")
expect_contains "the job's log says member A stopped answering and the job was taken over" \
  "member $MA stopped answering during pulling; taken over" "$log"
expect_contains "the job's log says member B ran the next attempt" "on member $MB" "$log"
expect_eq "exactly one build for the job" 1 "$(psql_q "SELECT COUNT(*) FROM builds WHERE app_id = (SELECT app_id FROM conversions WHERE id = '$JOB')")"
expect_eq "the build is the job's" "$(jq_get '["build_id"]' <<<"$out")" \
  "$(psql_q "SELECT id FROM builds WHERE app_id = (SELECT app_id FROM conversions WHERE id = '$JOB')")"
expect_eq "the registry holds the output digest" "$(jq_get '["output_digest"]' <<<"$out")" \
  "$(skopeo inspect --tls-verify=false "docker://$REG/tee/big:v1" | jq_get '["Digest"]')"
echo "PASS conversion_ha_test ($E2E_PASSED checks)"
