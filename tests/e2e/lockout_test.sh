#!/usr/bin/env bash
# End-to-end, issue 13 "No lock-out by anonymous callers", against a real vouchd on loopback.
# Sources are told apart by loopback address (127.0.0.x): each flood comes from its own.
# - 1 MiB of nested JSON ("[[[[...") to every operation with a requestBody in openapi.json: 4xx,
#   and vouchd answers /healthz after each.
# - A login flood from one source gets 429 rate_limited with Retry-After; another source still
#   logs in. A login flood spread over many sources (past the per-source limit) keeps vouchd's
#   peak RSS (VmHWM) below start + (password-hash slots + 2) x 32 MiB + 100 MiB: each scrypt
#   takes 32 MiB and at most max(2, cores) run at once; without the semaphore the 64 handler
#   threads would take up to 2 GiB.
# - After a nonce flood, a request made after Retry-After succeeds.
# - Connections beyond --max-connections-per-source are closed at once; other sources are served.
# - Cluster join is refused (cluster_join_disabled) without --allow-cluster-join.
# - Unauthenticated failures are audited in aggregate (rows with detail.count summing to what was
#   refused; written at shutdown too).
# - `vouch audit verify` fails once the newest audit row (the chain head) is deleted.
# Usage: lockout_test.sh VOUCHD VOUCH
source "$(dirname "$0")/lib.sh"
# shellcheck disable=SC2034  # start_dev_manager (lib.sh) runs it
VOUCHD=$1
VOUCH=$2
CLIENT=$(dirname "$0")/lockout_client.py
OPENAPI=$(cd "$(dirname "$0")/../.." && pwd)/docs/api/openapi.json
command -v sqlite3 >/dev/null || { echo "SKIP: sqlite3 is needed"; exit 77; }
# Small limits so that floods trip them quickly (the defaults are 10/s, burst 100, 1024).
LIMITS=(--unauth-rate 5 --unauth-burst 10 --max-connections-per-source 40)
stop() { kill -TERM "$VOUCHD_PID"; wait "$VOUCHD_PID" 2>/dev/null || true; }
client() { python3 "$CLIENT" "$1" --port "$PORT" --ca "$CA" "${@:2}"; }
get() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }
alive() { kill -0 "$VOUCHD_PID" 2>/dev/null && curl -fsS --cacert "$CA" "$URL/healthz" >/dev/null; }
start_dev_manager "${LIMITS[@]}"
grep -q "open-file limit" "$E2E_TMP/vouchd.log" || fail "vouchd did not log its open-file limit"
ok "vouchd logs its open-file limit ($(grep -o 'open-file limit.*' "$E2E_TMP/vouchd.log" | head -1))"
TOKEN=$(jq_get '["token"]' <<<"$(client once --source 127.0.0.2 --path /api/v1/sys/auth \
  --body '{"username":"admin","password":"admin-password-123"}' | get 'd["body"]')") || fail "token"

# ---- 1 MiB of nested JSON to every JSON route
out=$(client nested --source 127.0.0.3 --token "$TOKEN" --openapi "$OPENAPI") || fail "nested JSON walk: $out"
n=$(get 'len(d["results"])' <<<"$out")
[[ $n -ge 15 ]] || fail "only $n operations with a request body in openapi.json"
bad=$(get '[r for r in d["results"] if not (400 <= r["status"] < 500) or r["alive"] != 200]' <<<"$out")
expect_eq "1 MiB of nested JSON answers 4xx on all $n JSON operations, vouchd up after each" "[]" "$bad"
alive || fail "vouchd died"
expect_eq "cluster join refused before parsing without --allow-cluster-join" "cluster_join_disabled" \
  "$(get '[r["code"] for r in d["results"] if r["op"] == "POST /api/v1/cluster/join"][0]' <<<"$out")"

# ---- login flood from one source: 429 with Retry-After; another source still logs in
out=$(client flood --source 127.0.0.5 --path /api/v1/sys/auth --body '{"username":"admin","password":"wrong-password"}' \
  -n 200 -c 20)
LOGIN_429=$(get 'd["codes"].get("rate_limited", 0)' <<<"$out")
LOGIN_BAD=$(get 'd["codes"].get("invalid_credentials", 0)' <<<"$out")
[[ $LOGIN_429 -gt 100 ]] || fail "login flood: expected mostly 429 rate_limited, got $out"
ok "login flood from one source: $LOGIN_429 of 200 answered 429 rate_limited, $LOGIN_BAD invalid_credentials"
expect_eq "every 429 carries Retry-After >= 1" "True" "$(get 'len(d["retry_after"]) >= d["codes"]["rate_limited"] and min(d["retry_after"]) >= 1' <<<"$out")"
expect_eq "another source logs in meanwhile" 200 \
  "$(client once --source 127.0.0.7 --path /api/v1/sys/auth --body '{"username":"admin","password":"admin-password-123"}' | get 'd["status"]')"

# ---- login flood over 40 sources (past the per-source limit): peak RSS stays bounded
rss_kib() { awk -v k="$1:" '$1 == k {print $2}' "/proc/$VOUCHD_PID/status"; }
BASE=$(rss_kib VmRSS)
SLOTS=$(( $(nproc) > 2 ? $(nproc) : 2 ))
BOUND=$(( BASE + (SLOTS + 2) * 32 * 1024 + 100 * 1024 ))
pids=()
for i in $(seq 10 49); do
  client flood --source "127.0.0.$i" --path /api/v1/sys/auth --body '{"username":"nobody","password":"wrong-password"}' \
    -n 8 -c 8 >"$E2E_TMP/spread.$i" & pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a flood client failed"; done
PEAK=$(rss_kib VmHWM)
alive || fail "vouchd died during the spread login flood"
statuses=$(cat "$E2E_TMP"/spread.* | python3 -c 'import json,sys
t={}
for line in sys.stdin:
    for k,v in json.loads(line)["codes"].items(): t[k]=t.get(k,0)+v
print(json.dumps(t, sort_keys=True))')
[[ $PEAK -lt $BOUND ]] || fail "peak RSS ${PEAK} KiB >= bound ${BOUND} KiB (start ${BASE} KiB, $SLOTS slots); answers $statuses"
ok "320 concurrent logins over 40 sources: peak RSS $((PEAK / 1024)) MiB < bound $((BOUND / 1024)) MiB (answers $statuses)"

# ---- nonce flood: Retry-After honoured, then a request succeeds
out=$(client flood --source 127.0.0.6 --path /api/v1/nodes/nonce --body '{}' -n 300 -c 10)
[[ $(get 'd["codes"].get("rate_limited", 0)' <<<"$out") -gt 200 ]] || fail "nonce flood: expected 429s, got $out"
ok "nonce flood: $(get 'd["codes"]["rate_limited"]' <<<"$out") of 300 answered 429 rate_limited"
wait_s=$(get 'max(d["retry_after"])' <<<"$out")
[[ $wait_s -ge 1 && $wait_s -le 5 ]] || fail "Retry-After $wait_s out of [1, 5]"
sleep "$wait_s"  # what the flood was told to do
expect_eq "after Retry-After ($wait_s s) a nonce is issued to the same source" 201 \
  "$(client once --source 127.0.0.6 --path /api/v1/nodes/nonce --body '{}' | get 'd["status"]')"

# ---- connections per source
out=$(client connections --source 127.0.0.8 --other 127.0.0.9 -n 40)
expect_eq "the 41st connection from one source is closed" True "$(get 'd["extra_closed"]' <<<"$out")"
expect_eq "  promptly (< 2 s)" True "$(get 'd["seconds"] < 2' <<<"$out")"
expect_eq "another source is served meanwhile" 200 "$(get 'd["other_source_status"]' <<<"$out")"
alive || fail "vouchd died"

# ---- aggregated audit of unauthenticated failures (written at shutdown at the latest)
expect_eq "audit chain verifies" true "$("$VOUCH" audit verify -o json | jq_get '["ok"]' | tr '[:upper:]' '[:lower:]')"
stop
q() { sqlite3 "$D/vouch.db" "$1"; }
sum_count() {  # ACTOR ACTION OUTCOME
  q "SELECT COALESCE(SUM(json_extract(detail, '\$.count')), 0) || ' ' || COUNT(*) FROM audit WHERE actor = '$1' AND action = '$2' AND outcome = '$3'"
}
read -r total rows <<<"$(sum_count anonymous:127.0.0.5 auth.login denied:invalid_credentials)"
expect_eq "failed logins of 127.0.0.5: counts sum to the $LOGIN_BAD refusals" "$LOGIN_BAD" "$total"
[[ $rows -ge 1 && $rows -le 4 ]] || fail "failed logins of one source in $rows rows (expected one or two per minute)"
ok "  in $rows audit rows, not one per failure"
read -r total rows <<<"$(sum_count anonymous:127.0.0.5 "POST /api/v1/sys/auth" denied:rate_limited)"
expect_eq "rate-limited logins of 127.0.0.5: counts sum to the $LOGIN_429 refusals" "$LOGIN_429" "$total"
[[ $rows -le 4 ]] || fail "rate-limited logins in $rows rows"
ok "  in $rows audit rows"

# ---- audit verify fails once the newest row (the chain head) is gone
q "DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)"
# (and joining enabled through config.json this time)
python3 - "$D/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); c.setdefault("cluster", {})["allow_join"] = True
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
serve_manager "${LIMITS[@]}"
expect_eq "config.json cluster.allow_join enables the cluster nonce" 200 \
  "$(client once --source 127.0.0.11 --path /api/v1/cluster/nonce --body '{}' | get 'd["status"]')"
if "$VOUCH" audit verify >"$E2E_TMP/verify.out" 2>&1; then fail "audit verify passed with the head row deleted"; fi
expect_contains "audit verify names the missing head" "missing" "$(cat "$E2E_TMP/verify.out")"
alive || fail "vouchd died"
echo "PASS ($E2E_PASSED checks)"
