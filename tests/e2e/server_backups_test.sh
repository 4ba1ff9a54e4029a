#!/usr/bin/env bash
# End-to-end (issue 18, backups taken by the server): `vouch backup create` against a serving dev
# manager writes a verified archive into DATA/backups, `vouch backup list` shows it verified,
# `vouchd backup --verify` accepts the file, earlier backups are not archived again, retention
# keeps --backup-keep files, and /metrics has vouch_backup_newest_age_seconds and
# vouch_backups_total.
# Usage: server_backups_test.sh VOUCHD VOUCH
source "$(dirname "$0")/lib.sh"
record_api  # every API answer the CLI gets is checked against docs/api/openapi.json at the end
VOUCHD=$1
VOUCH=$2
require_tools python3 curl

start_dev_manager --backup-keep 2
metrics() { curl -fsS --cacert "$CA" "$URL/metrics"; }
expect_contains "no backup yet: the age is -1" "vouch_backup_newest_age_seconds -1" "$(metrics)"

"$VOUCH" backup create -o json >"$E2E_TMP/b1.json" 2>"$E2E_TMP/err" || fail "backup create: $(cat "$E2E_TMP/err")"
B1=$(jq_get '["name"]' <"$E2E_TMP/b1.json")
expect_contains "the backup is named by its time" "vouch-backup-" "$B1"
[[ -f "$D/backups/$B1" ]] || fail "no $D/backups/$B1"
ok "the archive is in DATA/backups"
expect_eq "its size is the file's" "$(stat -c %s "$D/backups/$B1")" "$(jq_get '["size"]' <"$E2E_TMP/b1.json")"
expect_eq "its sha256 is the file's" "$(sha256sum "$D/backups/$B1" | cut -d' ' -f1)" "$(jq_get '["sha256"]' <"$E2E_TMP/b1.json")"
"$VOUCHD" backup --verify "$D/backups/$B1" >"$E2E_TMP/verify.out" 2>&1 || fail "verify: $(cat "$E2E_TMP/verify.out")"
ok "vouchd backup --verify accepts the server's backup"
LIST=$("$VOUCH" backup list)
expect_contains "backup list shows it" "$B1" "$LIST"
expect_contains "backup list: verified" "yes" "$LIST"

"$VOUCH" backup create -o json >"$E2E_TMP/b2.json" || fail "second backup"
B2=$(jq_get '["name"]' <"$E2E_TMP/b2.json")
members() {  # the archive's member paths (docs/operations.md, "Archive format")
  python3 -c '
import json, struct, sys
b = open(sys.argv[1], "rb").read()
(n,) = struct.unpack("<I", b[12:16])
for f in json.loads(b[16:16 + n])["files"]: print(f["path"])' "$1"
}
M=$(members "$D/backups/$B2") || fail "cannot read the manifest of $B2"
[[ $M != *backups/* && $M != *.vbk* ]] || fail "the second backup archives the first: $M"
ok "a backup does not hold the earlier ones"
"$VOUCH" backup create >/dev/null || fail "third backup"
N=$(find "$D/backups" -name 'vouch-backup-*.vbk' | wc -l)
expect_eq "retention keeps --backup-keep 2" "2" "$N"
[[ ! -f "$D/backups/$B1" ]] || fail "the oldest backup $B1 was kept"
ok "the oldest backup was deleted"
expect_eq "backup list has 2 entries" "2" "$("$VOUCH" backup list -o json | jq_get '["backups"].__len__()')"

TEXT=$(metrics)
expect_contains "metric: backups_total ok" 'vouch_backups_total{result="ok"} 3' "$TEXT"
AGE=$(sed -n 's/^vouch_backup_newest_age_seconds \(.*\)$/\1/p' <<<"$TEXT")
python3 -c 'import sys; v = float(sys.argv[1]); sys.exit(0 if 0 <= v < 600 else 1)' "$AGE" \
  || fail "vouch_backup_newest_age_seconds is '$AGE'"
ok "metric: the newest backup's age is $AGE s"
AUDIT=$("$VOUCH" audit list --action backup.create -o json)
expect_contains "audited backup.create" "$B2" "$AUDIT"

# ---- settings from config.json, and the schedule: at start with no backup, one is taken
kill -TERM "$VOUCHD_PID"; wait "$VOUCHD_PID" 2>/dev/null
set_backups() {  # JSON: config.json's "backups" object
  python3 -c '
import json, sys
p = sys.argv[1] + "/config.json"
c = json.load(open(p)); c["backups"] = json.loads(sys.argv[2]); json.dump(c, open(p, "w"))' "$D" "$1"
}
set_backups '{"keep": 0}'
OUT=$("$VOUCHD" serve --data-dir "$D" 2>&1) && fail "vouchd served with backups.keep 0"
expect_contains "config.json backups.keep 0 is refused" "backups.keep" "$OUT"
set_backups "{\"dir\": \"$E2E_TMP/elsewhere\", \"keep\": 1}"
serve_manager --backup-interval-hours 1
has_one() { [[ $(find "$E2E_TMP/elsewhere" -name 'vouch-backup-*.vbk' 2>/dev/null | wc -l) == 1 ]]; }
wait_until "the schedule takes a backup at start into config.json's folder" 300 has_one
SCHED=$(find "$E2E_TMP/elsewhere" -name 'vouch-backup-*.vbk')
"$VOUCHD" backup --verify "$SCHED" >/dev/null 2>&1 || fail "the scheduled backup does not verify"
ok "the scheduled backup verifies"
"$VOUCH" backup create >/dev/null || fail "backup create into config.json's folder"
expect_eq "backups.keep 1 from config.json" "1" "$(find "$E2E_TMP/elsewhere" -name 'vouch-backup-*.vbk' | wc -l)"
validate_recorded_api
echo "server_backups e2e: $E2E_PASSED checks passed"
