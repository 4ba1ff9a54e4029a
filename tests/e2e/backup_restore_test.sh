#!/usr/bin/env bash
# End-to-end (issue 18, backups): a backup taken while vouchd issues certificates and takes
# heartbeats, vouchd killed with -9, its data directory destroyed, the backup restored into a new
# directory with the master key, and the restored manager serves the same zone root,
# certificates, CRL, audit chain (same head) and the agent provisioned before, which keeps
# getting workload certificates without re-provisioning. Then every refusal of restore.
# Usage: backup_restore_test.sh VOUCHD VOUCH VOUCH_AGENT
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"
VOUCHD=$1
VOUCH=$2
AGENT=$3
require_tools openssl python3 curl

start_dev_manager --heartbeat-interval 2
"$VOUCH" zone ca default >"$E2E_TMP/zone-ca.pem" || fail "zone ca"
# The node keeps its own copies of the service CA and the sim platform (as a real node does), not
# paths into the manager's data directory, which is destroyed below.
mkdir -p "$E2E_TMP/node"
cp "$D/service-ca.pem" "$E2E_TMP/node/service-ca.pem" && cp -r "$D/sim" "$E2E_TMP/node/sim" || fail "copy to the node"
SOCK=$E2E_TMP/agent/agent.sock
"$AGENT" --server "$URL" --ca-file "$E2E_TMP/node/service-ca.pem" --data-dir "$E2E_TMP/agent" --socket "$SOCK" \
  --tee sim --sim "$E2E_TMP/node/sim" --join-token "$("$VOUCH" zone join-token default)" --batch-interval-ms 200 \
  >>"$E2E_TMP/agent.log" 2>&1 &
E2E_PIDS+=("$!")
wait_agent_socket "$SOCK" "$E2E_TMP/agent.log" "$!"
NODE=$(curl -fsS --unix-socket "$SOCK" http://agent/v1/version | jq_get '["node_id"]')
expect_contains "agent provisioned a node" "node_" "$NODE"

"$VOUCH" app create web --zone default --domain web.example.com >/dev/null || fail "app create"
approve_domains "$VOUCH" web
MRS=$(printf 'cd%.0s' {1..32})
MRE=$(printf 'a%.0s' {1..64})
BUILD=$("$VOUCH" build create --app web --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 -o json \
  | jq_get '["id"]') || fail "build create"
"$VOUCH" task approve "$("$VOUCH" build get "$BUILD" -o json | jq_get '["task_id"]')" >/dev/null || fail "approve build"
wcert() {  # OUT
  "$VOUCH" workload cert --socket "$SOCK" --out "$1" --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 \
    --dns web.example.com
}
for i in 1 2 3; do wcert "$E2E_TMP/w$i" >/dev/null 2>"$E2E_TMP/err" || fail "workload cert $i: $(cat "$E2E_TMP/err")"; done
"$VOUCH" cert revoke "$(jq_get '["serial"]' <"$E2E_TMP/w2/instance.json")" --reason "test" >/dev/null || fail "revoke"
# An admin-issued certificate too (vouch cert issue).
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$E2E_TMP/m.key" \
  -subj "/CN=web.example.com" -out "$E2E_TMP/m.csr" 2>/dev/null || fail "openssl req"
"$VOUCH" cert issue --build "$BUILD" --csr "$E2E_TMP/m.csr" --out "$E2E_TMP/m.pem" >/dev/null 2>"$E2E_TMP/err" \
  || fail "cert issue: $(cat "$E2E_TMP/err")"

cert_statuses() {  # serial status lines, sorted
  "$VOUCH" cert list --limit 1000 -o json | python3 -c '
import json, sys
for c in sorted(json.load(sys.stdin)["items"], key=lambda c: c["serial"]): print(c["serial"], c["status"])'
}
audit_head() {  # "seq hash" of the newest audit entry
  "$VOUCH" audit list -o json | python3 -c '
import json, sys
e = max(json.load(sys.stdin)["items"], key=lambda e: e["seq"]); print(e["seq"], e["hash"])'
}

# ---- backup under load: workload certificates and heartbeats keep coming while it runs
CERTS_BEFORE_LOAD=$(cert_statuses)
touch "$E2E_TMP/load.on"
(
  n=0
  while [[ -f "$E2E_TMP/load.on" ]]; do
    n=$((n + 1))
    wcert "$E2E_TMP/load$n" >/dev/null 2>&1 || echo "load cert $n failed" >>"$E2E_TMP/load.err"
    "$VOUCH" workload heartbeat --socket "$SOCK" --dir "$E2E_TMP/w1" >/dev/null 2>&1 || true
  done
  echo "$n" >"$E2E_TMP/load.count"
) &
LOAD_PID=$!
wait_until "the load has issued two certificates" 300 test -f "$E2E_TMP/load2/cert.pem"
"$VOUCHD" backup --data-dir "$D" --out "$E2E_TMP/under-load.vbk" >"$E2E_TMP/backup.out" 2>&1 \
  || fail "backup under load: $(cat "$E2E_TMP/backup.out")"
AFTER=$(($(find "$E2E_TMP" -maxdepth 1 -name 'load[0-9]*' -type d | wc -l) + 1))
wait_until "the load issues a certificate after the backup" 300 test -f "$E2E_TMP/load$AFTER/cert.pem"
rm -f "$E2E_TMP/load.on"
wait "$LOAD_PID"
[[ ! -s "$E2E_TMP/load.err" ]] || fail "issuance failed during the backup: $(cat "$E2E_TMP/load.err")"
ok "$(cat "$E2E_TMP/load.count") workload certificates issued while the backup ran, none failed"
expect_eq "the archive is mode 0600" 600 "$(stat -c %a "$E2E_TMP/under-load.vbk")"
out=$("$VOUCHD" backup --verify "$E2E_TMP/under-load.vbk" 2>&1) || fail "verify: $out"
expect_contains "backup --verify passes" "under-load.vbk: ok" "$out"
if grep -qaF "$(head -c 32 "$D/master.key")" "$E2E_TMP/under-load.vbk"; then fail "the archive holds the master key"; fi
ok "the archive does not contain master.key's bytes"

# ---- the state to come back: taken quiet, right before the last backup
ZONE_ROOT=$("$VOUCH" zone ca default)
CERTS=$(cert_statuses)
HEAD=$(audit_head)
[[ $(echo "$CERTS" | wc -l) -ge 6 ]] || fail "expected at least 6 certificates, got: $CERTS"
"$VOUCHD" backup --data-dir "$D" --out "$E2E_TMP/last.vbk" >/dev/null 2>&1 || fail "backup"
expect_eq "no audited change while the last backup ran" "$HEAD" "$(audit_head)"
cp "$D/master.key" "$E2E_TMP/custodian.key"  # a key file kept apart from the backups, and
"$VOUCHD" master-key split --data-dir "$D" --threshold 2 --shares 3 --out "$E2E_TMP/shares" >/dev/null 2>&1 \
  || fail "master-key split"  # 2-of-3 custodian shares
mapfile -t SHARES < <(find "$E2E_TMP/shares" -type f | sort)
expect_eq "three share files" 3 "${#SHARES[@]}"

# ---- disaster: kill -9, data directory gone
kill -9 "$VOUCHD_PID"
wait_until "vouchd has exited" 100 process_gone "$VOUCHD_PID"
rm -rf "$D"
OLD_D=$D

# ---- refusals first (each: one line, non-zero exit, nothing written)
refused() {  # WHAT WANT-IN-MESSAGE TARGET-DIR ARGS...
  local what=$1 want=$2 target=$3 out
  shift 3
  if out=$("$VOUCHD" restore "$@" 2>&1); then fail "$what: restore succeeded"; fi
  expect_contains "$what: refused" "$want" "$out"
  expect_eq "$what: one line" 1 "$(echo "$out" | wc -l)"
  [[ ! -e "$target" ]] || [[ -n "$(ls -A "$target" 2>/dev/null)" ]] || fail "$what: $target was created"
  if compgen -G "$target.restore-*" >/dev/null; then fail "$what: a staging directory was left behind"; fi
}
R=$E2E_TMP/restored/data
python3 - "$E2E_TMP/last.vbk" "$E2E_TMP/flipped.vbk" <<'PY'
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[len(b) // 2] ^= 0x01; open(sys.argv[2], "wb").write(b)
PY
refused "flipped byte" "checksum mismatch" "$R" --from "$E2E_TMP/flipped.vbk" --data-dir "$R" \
  --master-key-file "$E2E_TMP/custodian.key"
out=$("$VOUCHD" backup --verify "$E2E_TMP/flipped.vbk" 2>&1) && fail "verify accepted a flipped byte"
expect_contains "backup --verify refuses the flipped byte" "checksum mismatch" "$out"
head -c 32 /dev/urandom >"$E2E_TMP/wrong.key"
refused "wrong master key" "does not open the backup's sealed secrets" "$R" --from "$E2E_TMP/last.vbk" \
  --data-dir "$R" --master-key-file "$E2E_TMP/wrong.key"
refused "one share of a 2-of-3 split" "too_few_shares" "$R" --from "$E2E_TMP/last.vbk" --data-dir "$R" \
  --share "${SHARES[0]}"
python3 - "${SHARES[1]}" "$E2E_TMP/flipped-share.txt" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines(True)
i = next(n for n, l in enumerate(lines) if l.upper().startswith("VS1-"))
c = lines[i][8]
lines[i] = lines[i][:8] + ("1" if c != "1" else "2") + lines[i][9:]
open(sys.argv[2], "w").write("".join(lines))
PY
refused "a flipped byte in a share" "share_corrupt" "$R" --from "$E2E_TMP/last.vbk" --data-dir "$R" \
  --share "${SHARES[0]}" --share "$E2E_TMP/flipped-share.txt"

# ---- restore into a new directory with m of n shares, and serve
out=$("$VOUCHD" restore --from "$E2E_TMP/last.vbk" --data-dir "$R" --share "${SHARES[2]}" --share "${SHARES[0]}" 2>&1) \
  || fail "restore: $out"
ok "restored from the archive and 2 of the 3 custodian shares"
expect_contains "restore unsealed the zone CA key" "1 zone CA key(s) unsealed" "$out"
expect_eq "restored master.key is 0600" 600 "$(stat -c %a "$R/master.key")"
# shellcheck disable=SC2034  # serve_manager (lib.sh) reads D and CA
D=$R
CA=$D/service-ca.pem
serve_manager --heartbeat-interval 2
# The CLI's session from before the backup (sessions are in the store); only the CA path moved.
export VOUCH_CA_FILE=$CA
expect_eq "audit chain head is the one before the backup" "$HEAD" "$(audit_head)"
expect_eq "same zone root" "$ZONE_ROOT" "$("$VOUCH" zone ca default)"
expect_eq "every certificate listed with its status" "$CERTS" "$(cert_statuses)"
expect_contains "the revoked certificate is revoked" "revoked" "$CERTS"
"$VOUCH" zone crl default >"$E2E_TMP/crl.pem" || fail "zone crl"
out=$(openssl crl -in "$E2E_TMP/crl.pem" -noout -verify -CAfile "$E2E_TMP/zone-ca.pem" 2>&1)
expect_contains "CRL verifies with openssl crl -verify" "verify OK" "$out"
expect_eq "audit chain verifies" true "$("$VOUCH" audit verify -o json | jq_get '["ok"]')"
"$VOUCH" login --server "$URL" --user admin --password-file "$E2E_TMP/admin.pw" >/dev/null \
  || fail "login to the restored manager"
ok "the admin user of the backup logs in to the restored manager"
NODES=$("$VOUCH" node list -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')
wcert "$E2E_TMP/after" >/dev/null 2>"$E2E_TMP/err" || fail "workload cert after restore: $(cat "$E2E_TMP/err")"
openssl verify -CAfile "$E2E_TMP/zone-ca.pem" "$E2E_TMP/after/cert.pem" >/dev/null || fail "new cert does not chain"
ok "the agent provisioned before the backup gets a workload certificate from the restored manager"
expect_eq "the agent was not provisioned again" "$NODES" \
  "$("$VOUCH" node list -o json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["items"]))')"
expect_eq "the same node" "$NODE" "$(curl -fsS --unix-socket "$SOCK" http://agent/v1/version | jq_get '["node_id"]')"

refused "non-empty data directory" "is not empty" "$R" --from "$E2E_TMP/last.vbk" --data-dir "$R" \
  --master-key-file "$E2E_TMP/custodian.key"
"$VOUCHD" backup --data-dir "$R" --out "$E2E_TMP/newer.vbk" --test-schema-version 9999 >/dev/null 2>&1 \
  || fail "backup with a newer schema"
out=$("$VOUCHD" backup --verify "$E2E_TMP/newer.vbk" 2>&1) && fail "verify accepted a newer schema"
expect_contains "backup --verify refuses a newer schema" "newer than this vouchd" "$out"
refused "newer schema" "newer than this vouchd" "$E2E_TMP/r2" --from "$E2E_TMP/newer.vbk" --data-dir "$E2E_TMP/r2" \
  --master-key-file "$E2E_TMP/custodian.key"

# ---- the backup taken under load restores to a consistent state too (served beside the first)
R2=$E2E_TMP/restored2
"$VOUCHD" restore --from "$E2E_TMP/under-load.vbk" --data-dir "$R2" --master-key-file "$E2E_TMP/custodian.key" \
  >/dev/null 2>&1 || fail "restore of the backup under load"
P2=$(free_port)
"$VOUCHD" serve --data-dir "$R2" --listen "127.0.0.1:$P2" >>"$E2E_TMP/vouchd2.log" 2>&1 &
E2E_PIDS+=("$!")
wait_healthy "https://127.0.0.1:$P2" "$R2/service-ca.pem" "$!" || fail "restored-under-load vouchd: $(tail -5 "$E2E_TMP/vouchd2.log")"
export VOUCH_CONFIG=$E2E_TMP/cli2.json VOUCH_CA_FILE=$R2/service-ca.pem
"$VOUCH" login --server "https://127.0.0.1:$P2" --ca-file "$R2/service-ca.pem" --user admin \
  --password-file "$E2E_TMP/admin.pw" >/dev/null || fail "login to the second restore"
expect_eq "the under-load backup's audit chain verifies" true "$("$VOUCH" audit verify -o json | jq_get '["ok"]')"
LISTED=$(cert_statuses)
missing=$(comm -23 <(echo "$CERTS_BEFORE_LOAD" | cut -d' ' -f1) <(echo "$LISTED" | cut -d' ' -f1))
expect_eq "every certificate issued before the load is in the under-load backup" "" "$missing"
[[ $(echo "$LISTED" | wc -l) -gt $(echo "$CERTS_BEFORE_LOAD" | wc -l) ]] || fail "the under-load backup holds no certificate of the load"
ok "the under-load backup holds certificates issued during the load"
[[ -d "$OLD_D" ]] && fail "the old data directory came back"

# ---- PostgreSQL store: pg_dump into the archive while vouchd serves, database dropped, restored
# into a fresh database with pg_restore (skipped, saying so, without PostgreSQL server binaries).
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || [[ -n "${VOUCH_PG_BINDIR:-}" ]]; then
  require_tools pg_dump pg_restore
  start_postgres
  export VOUCH_CONFIG=$E2E_TMP/cli-pg.json VOUCH_CA_FILE=$E2E_TMP/pg/service-ca.pem
  P3=$(free_port)
  "$VOUCHD" init --data-dir "$E2E_TMP/pg" --admin-user admin --admin-password-file "$E2E_TMP/admin.pw" \
    --store "$PG_URL" --listen "127.0.0.1:$P3" >/dev/null || fail "vouchd init on PostgreSQL"
  serve_pg() {
    "$VOUCHD" serve --data-dir "$E2E_TMP/pg" >>"$E2E_TMP/vouchd-pg.log" 2>&1 &
    PG_VOUCHD=$!
    E2E_PIDS+=("$PG_VOUCHD")
    wait_healthy "https://127.0.0.1:$P3" "$E2E_TMP/pg/service-ca.pem" "$PG_VOUCHD" \
      || fail "vouchd on PostgreSQL: $(tail -5 "$E2E_TMP/vouchd-pg.log")"
  }
  serve_pg
  "$VOUCH" login --server "https://127.0.0.1:$P3" --user admin --password-file "$E2E_TMP/admin.pw" >/dev/null \
    || fail "login (PostgreSQL)"
  "$VOUCH" app create api --zone default --domain web.example.com >/dev/null || fail "app create (PostgreSQL)"
  approve_domains "$VOUCH" api
  PB=$("$VOUCH" build create --app api --mrenclave "$MRE" --mrsigner "$MRS" --isvprodid 1 --isvsvn 1 -o json \
    | jq_get '["id"]') || fail "build create (PostgreSQL)"
  "$VOUCH" task approve "$("$VOUCH" build get "$PB" -o json | jq_get '["task_id"]')" >/dev/null || fail "approve (PostgreSQL)"
  for i in 1 2; do
    "$VOUCH" cert issue --build "$PB" --csr "$E2E_TMP/m.csr" --out "$E2E_TMP/pg-m$i.pem" >/dev/null || fail "cert issue $i (PostgreSQL)"
  done
  PG_SERIAL=$("$VOUCH" cert list -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["items"][0]["serial"])')
  "$VOUCH" cert revoke "$PG_SERIAL" --reason test >/dev/null || fail "cert revoke (PostgreSQL)"
  PG_ROOT=$("$VOUCH" zone ca default)
  PG_CERTS=$(cert_statuses)
  PG_HEAD=$(audit_head)
  expect_contains "PostgreSQL: a revoked certificate among them" "$PG_SERIAL revoked" "$PG_CERTS"
  out=$("$VOUCHD" backup --data-dir "$E2E_TMP/pg" --out "$E2E_TMP/pg.vbk" 2>&1) || fail "backup (PostgreSQL): $out"
  expect_contains "PostgreSQL backup: pg_dump into the archive" "store:           postgres" "$out"
  out=$("$VOUCHD" backup --verify "$E2E_TMP/pg.vbk" 2>&1) || fail "verify (PostgreSQL): $out"
  expect_contains "PostgreSQL backup --verify passes (pg_restore --list)" "pg.vbk: ok" "$out"
  kill -9 "$PG_VOUCHD"
  wait_until "vouchd (PostgreSQL) has exited" 100 process_gone "$PG_VOUCHD"
  cp "$E2E_TMP/pg/master.key" "$E2E_TMP/pg.key"
  rm -rf "$E2E_TMP/pg"
  pg_run "$PG_BIN/dropdb" -h 127.0.0.1 -p "$PG_PORT" -U vouch vouch || fail "dropdb"
  pg_run "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U vouch vouch || fail "createdb"
  refused "PostgreSQL archive without --store" "give --store postgres://" "$E2E_TMP/pg" --from "$E2E_TMP/pg.vbk" \
    --data-dir "$E2E_TMP/pg" --master-key-file "$E2E_TMP/pg.key"
  out=$("$VOUCHD" restore --from "$E2E_TMP/pg.vbk" --data-dir "$E2E_TMP/pg" --store "$PG_URL" \
    --master-key-file "$E2E_TMP/pg.key" 2>&1) || fail "restore (PostgreSQL): $out"
  ok "restored a PostgreSQL store into a fresh database"
  refused "PostgreSQL database not empty" "store_not_empty" "$E2E_TMP/pg-again" --from "$E2E_TMP/pg.vbk" \
    --data-dir "$E2E_TMP/pg-again" --store "$PG_URL" --master-key-file "$E2E_TMP/pg.key"
  serve_pg
  expect_eq "PostgreSQL: audit chain head is the one before the backup" "$PG_HEAD" "$(audit_head)"
  expect_eq "PostgreSQL: same zone root" "$PG_ROOT" "$("$VOUCH" zone ca default)"
  expect_eq "PostgreSQL: every certificate listed with its status" "$PG_CERTS" "$(cert_statuses)"
  expect_eq "PostgreSQL: audit chain verifies" true "$("$VOUCH" audit verify -o json | jq_get '["ok"]')"
  "$VOUCH" zone ca default >"$E2E_TMP/pg-root.pem"
  "$VOUCH" zone crl default >"$E2E_TMP/pg-crl.pem" || fail "zone crl (PostgreSQL)"
  expect_contains "PostgreSQL: CRL verifies with openssl crl -verify" "verify OK" \
    "$(openssl crl -in "$E2E_TMP/pg-crl.pem" -noout -verify -CAfile "$E2E_TMP/pg-root.pem" 2>&1)"
else
  echo "# PostgreSQL part skipped: no PostgreSQL server binaries (Debian package postgresql)"
fi
echo "backup_restore e2e: $E2E_PASSED checks passed"
