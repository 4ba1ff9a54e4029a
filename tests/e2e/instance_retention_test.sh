#!/usr/bin/env bash
# End-to-end (issue 16, pruning of stopped instances): `vouchd serve --instance-retention-days`
# deletes at start the instances stopped longer ago than the retention, and nothing else (running
# ones, recently stopped ones, certificates), with one `instance.prune` audit entry carrying the
# count and vouch_instances_pruned_total in /metrics; 0 keeps everything; the dashboard's counts
# answer (docs/operations.md, "A million instances").
# Usage: instance_retention_test.sh VOUCHD VOUCH
source "$(dirname "$0")/lib.sh"
record_api  # every API answer the CLI gets is checked against docs/api/openapi.json at the end
VOUCHD=$1
VOUCH=$2
require_tools python3 curl sqlite3

start_dev_manager --instance-retention-days 0
DB=$D/vouch.db
sql() { sqlite3 -cmd ".timeout 5000" "$DB" "$@"; }
ZONE=$(sql "SELECT id FROM zones WHERE name = 'default'")
NOW=$(date +%s)
DAY=86400
# Two instances stopped 31 days ago (due), one stopped 29 days ago, one running but silent for
# 40 days (unresponsive, never pruned), each with its certificate.
sql <<SQL || fail "seeding instances"
INSERT INTO apps (id, name, zone_id, domains, created_at, created_by) VALUES ('app_e2e', 'e2e', '$ZONE', '[]', $NOW, 'e2e');
INSERT INTO builds (id, app_id, platform, mrenclave, mrsigner, isvprodid, isvsvn, debug, status, created_at, created_by)
  VALUES ('bld_e2e', 'app_e2e', 'sgx', 'aa', 'bb', 0, 0, 0, 'approved', $NOW, 'e2e');
INSERT INTO nodes (id, zone_id, platform, tcb_status, advisory_ids, public_key_sha256, status, created_at)
  VALUES ('node_e2e', '$ZONE', 'sgx', 'UpToDate', '[]', 'k', 'active', $NOW);
INSERT INTO instances (id, app_id, build_id, node_id, serial, status, last_seq, first_seen, last_heartbeat) VALUES
  ('inst_old1', 'app_e2e', 'bld_e2e', 'node_e2e', 'e2e1', 'stopped', 5, $NOW - 40 * $DAY, $NOW - 31 * $DAY),
  ('inst_old2', 'app_e2e', 'bld_e2e', 'node_e2e', 'e2e2', 'stopped', 5, $NOW - 40 * $DAY, $NOW - 31 * $DAY),
  ('inst_recent', 'app_e2e', 'bld_e2e', 'node_e2e', 'e2e3', 'stopped', 5, $NOW - 40 * $DAY, $NOW - 29 * $DAY),
  ('inst_silent', 'app_e2e', 'bld_e2e', 'node_e2e', 'e2e4', 'running', 5, $NOW - 40 * $DAY, $NOW - 40 * $DAY);
INSERT INTO certificates (serial, zone_id, kind, app_id, build_id, node_id, instance_id, subject, sans, not_before,
  not_after, pem, status, issued_to, created_at)
  SELECT 'e2e' || i, '$ZONE', 'workload', 'app_e2e', 'bld_e2e', 'node_e2e', 'inst', 'CN=w', '[]', $NOW - 40 * $DAY,
    $NOW + 3 * $DAY, 'pem', 'valid', 'e2e', $NOW - 40 * $DAY FROM (SELECT 1 AS i UNION SELECT 2 UNION SELECT 3 UNION SELECT 4);
SQL
metrics() { curl -fsS --cacert "$CA" "$URL/metrics"; }
expect_contains "retention 0: nothing pruned" "vouch_instances_pruned_total 0" "$(metrics)"
expect_eq "retention 0: every instance kept" "4" "$(sql "SELECT count(*) FROM instances")"
expect_contains "vouchd says it keeps them" "kept forever (--instance-retention-days 0)" "$(cat "$E2E_TMP/vouchd.log")"

# The dashboard's counts, with a session token of admin.
TOKEN=$(curl -sS --cacert "$CA" -d "{\"username\":\"admin\",\"password\":\"$(cat "$E2E_TMP/admin.pw")\"}" \
  "$URL/api/v1/sys/auth" | jq_get '["token"]')
[[ -n "$TOKEN" ]] || fail "no session token"
# Each answer is also recorded for validate_recorded_api (the CLI's record format, docs/cli.md).
api() {
  local body
  body=$(curl -fsS --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$URL/api/v1/$1") || return 1
  python3 -c 'import json,sys; print(json.dumps({"method": "GET", "path": sys.argv[1], "status": 200,
    "content_type": "application/json", "body": json.loads(sys.argv[2])}))' "/api/v1/${1%%\?*}" "$body" >>"$VOUCH_RECORD_API"
  echo "$body"
}
expect_eq "counts: one unresponsive, three stopped, none running" '1 3 0' \
  "$(api instances/counts | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["unresponsive"], d["stopped"], d["running"])')"
expect_eq "certificates/counts: 4 valid, 4 expiring within 7 days" '4 4' \
  "$(api certificates/counts | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["valid"], d["expiring"])')"
expect_eq "?status=stopped lists the three" "inst_old1 inst_old2 inst_recent" \
  "$(api 'instances?status=stopped' | python3 -c 'import json,sys; print(" ".join(sorted(i["id"] for i in json.load(sys.stdin)["items"])))')"

kill -TERM "$VOUCHD_PID"
wait_until "vouchd stopped" 100 process_gone "$VOUCHD_PID"
serve_manager --instance-retention-days 30
wait_until "the pruning run at start" 100 output_is "vouch_instances_pruned_total 2" \
  bash -c "curl -fsS --cacert '$CA' '$URL/metrics' | grep '^vouch_instances_pruned_total'"
ok "metrics: 2 pruned"
expect_eq "the two stopped 31 days ago are gone, the rest stay" "inst_recent inst_silent" \
  "$(sql "SELECT group_concat(id, ' ') FROM (SELECT id FROM instances ORDER BY id)")"
expect_eq "certificates stay" "4" "$(sql "SELECT count(*) FROM certificates WHERE serial LIKE 'e2e%'")"
expect_eq "one audit entry, actor system, with the count" "system|instances|ok|2" \
  "$(sql "SELECT actor, target, outcome, json_extract(detail, '\$.count') FROM audit WHERE action = 'instance.prune'")"
"$VOUCH" audit verify >"$E2E_TMP/verify.out" 2>&1 || fail "audit verify: $(cat "$E2E_TMP/verify.out")"
ok "the audit chain verifies"
"$VOUCHD" serve --data-dir "$D" --instance-retention-days -1 >"$E2E_TMP/bad.out" 2>&1 && fail "a negative retention was accepted"
expect_contains "a negative retention is refused" "instance-retention-days" "$(cat "$E2E_TMP/bad.out")"
validate_recorded_api
echo "PASS: $E2E_PASSED checks"
