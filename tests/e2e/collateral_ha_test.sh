#!/usr/bin/env bash
# Issue 14, the collateral service in vouchd (docs/collateral.md): two vouchd members on one
# PostgreSQL share one copy. Member A takes its sources from config.json ("collateral"), member B
# is given a dead --pccs-url: B cannot fetch, A fetches on first need, B then verifies with A's copy
# without a request to the PCS; a TCB recovery refreshed through A is what B sees; the metrics of
# remaining validity and fetch failures; bad collateral settings refuse to start.
# Usage: collateral_ha_test.sh VOUCHD VOUCH
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg.sh"
VOUCHD=$1
VOUCH=$2
require_tools curl python3
export VOUCH_CONFIG=$E2E_TMP/cli.json
printf 'admin-password-123\n' >"$E2E_TMP/admin.pw"

# ---- a TDX sim vendor served by the PCS emulator
"$VOUCH" sim init --platform tdx "$E2E_TMP/sim-tdx" >/dev/null || fail "vouch sim init --platform tdx"
"$VOUCH" sim pcs --serve "$E2E_TMP/sim-tdx" --listen 127.0.0.1:0 --cert-out "$E2E_TMP/pcs-ca.pem" -o json \
  >"$E2E_TMP/pcs.out" 2>"$E2E_TMP/pcs.log" &
E2E_PIDS+=("$!")
wait_until "vouch sim pcs prints its URL" 100 file_has "$E2E_TMP/pcs.out" '"url"'
PCS=$(jq_get '["url"]' <"$E2E_TMP/pcs.out")
# pcs_count PREFIX: requests the emulator answered on routes starting with PREFIX.
pcs_count() {
  curl -sS --cacert "$E2E_TMP/pcs-ca.pem" "$PCS/sim/v1/state" |
    python3 -c 'import json,sys; c=json.load(sys.stdin)["counts"]; print(sum(v for k,v in c.items() if k.startswith(sys.argv[1])))' "$1"
}
"$VOUCH" sim quote --sim "$E2E_TMP/sim-tdx" --agent --report-data "$(printf 'ab%.0s' {1..32})" \
  --out "$E2E_TMP/tdx.quote" || fail "vouch sim quote (tdx)"

# ---- two members on one PostgreSQL (one data directory, two listeners)
start_postgres
D=$E2E_TMP/a
PA=$(free_port); PB=$(free_port)
UA=https://127.0.0.1:$PA; UB=https://127.0.0.1:$PB
"$VOUCHD" init --data-dir "$D" --admin-user admin --admin-password-file "$E2E_TMP/admin.pw" --store "$PG_URL" \
  --listen "127.0.0.1:$PA" --dev >/dev/null || fail "vouchd init on PostgreSQL"
CA=$D/service-ca.pem
# Bad settings refuse to start, naming the setting.
set_config() {  # JSON object merged into config.json's "collateral"
  python3 - "$D/config.json" "$1" <<'PY'
import json, sys
p = sys.argv[1]
try:
    c = json.load(open(p))
except FileNotFoundError:
    c = {}
c["collateral"] = json.loads(sys.argv[2])
json.dump(c, open(p, "w"))
PY
}
set_config '{"refresh_margin_hours": -1}'
out=$("$VOUCHD" serve --data-dir "$D" 2>&1)
expect_contains "config.json: a negative refresh margin refuses to start" "collateral.refresh_margin_hours" "$out"
set_config '{}'
out=$("$VOUCHD" serve --data-dir "$D" --pccs-url "http://127.0.0.1:$PB" 2>&1)
expect_contains "--pccs-url must be https" "must be an https:// URL" "$out"
set_config "{\"pccs_url\": \"$PCS\", \"kds_url\": \"$PCS\", \"ca_file\": \"$E2E_TMP/pcs-ca.pem\", \"refresh_margin_hours\": 48}"

serve() {  # NAME URL [FLAGS...]
  "$VOUCHD" serve --data-dir "$D" "${@:3}" >>"$E2E_TMP/$1.log" 2>&1 &
  local pid=$!
  E2E_PIDS+=("$pid")
  wait_healthy "$2" "$CA" "$pid" || fail "vouchd $1 did not become healthy: $(tail -20 "$E2E_TMP/$1.log")"
}
serve a "$UA" --listen "127.0.0.1:$PA" --collateral-refresh-check-seconds 1
serve b "$UB" --listen "127.0.0.1:$PB" --pccs-url "https://127.0.0.1:9" --collateral-refresh-check-seconds 1
expect_contains "member A logs its sources from config.json" "collateral service: Intel $PCS" "$(cat "$E2E_TMP/a.log")"

TOKEN=$(curl -sS --cacert "$CA" -d "{\"username\":\"admin\",\"password\":\"$(cat "$E2E_TMP/admin.pw")\"}" \
  "$UA/api/v1/sys/auth" | jq_get '["token"]')
[[ -n "$TOKEN" ]] || fail "no session token"
verify() {  # URL -> "genuine=<b> tcb=<status> sim=<b> code=<error code>"
  python3 -c 'import base64,json,sys; print(json.dumps({"evidence": base64.b64encode(open(sys.argv[1],"rb").read()).decode()}))' \
    "$E2E_TMP/tdx.quote" >"$E2E_TMP/req.json"
  curl -sS --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary @"$E2E_TMP/req.json" "$1/api/v1/evidence/verify" |
    python3 -c 'import json,sys; v=json.load(sys.stdin); print("genuine=%s tcb=%s sim=%s code=%s" % (v.get("genuine"), v.get("tcb_status"), v.get("insecure_sim"), (v.get("error") or {}).get("code","")))'
}

# ---- B cannot fetch; A fetches once; B uses A's copy
expect_eq "member B (its PCS unreachable) has no collateral for the TDX quote" \
  "genuine=False tcb=None sim=False code=missing_collateral" "$(verify "$UB")"
expect_eq "nothing was asked of the emulator by B" 0 "$(pcs_count tdx_tcb)"
expect_eq "member A fetches on first need and verifies" "genuine=True tcb=UpToDate sim=True code=" "$(verify "$UA")"
expect_eq "A asked for the TDX TCB Info once" 1 "$(pcs_count "tdx_tcb 200")"
before=$(pcs_count "")
expect_eq "member B verifies with the copy A stored" "genuine=True tcb=UpToDate sim=True code=" "$(verify "$UB")"
expect_eq "no request to the PCS for B's verification" "$before" "$(pcs_count "")"

# ---- metrics: remaining validity (refresher, every second) and B's fetch failures
metric() { curl -sS --cacert "$CA" "$1/metrics" | grep -F "$2" || true; }
has_metric() { [[ -n "$(metric "$1" "$2")" ]] || { echo "no $2 in $1/metrics"; return 1; }; }
wait_until "A's /metrics has vouch_collateral_remaining_seconds for the TDX TCB Info" 50 \
  has_metric "$UA" 'vouch_collateral_remaining_seconds{kind="tdx_tcb_info"'
secs=$(metric "$UA" 'vouch_collateral_remaining_seconds{kind="tdx_tcb_info"' | awk '{print int($2)}' | head -1)
[[ $secs -gt 86400 ]] || fail "remaining validity of the TDX TCB Info is $secs s, expected more than a day"
ok "remaining validity is published ($secs s)"
wait_until "B's /metrics counts its failed fetches" 50 \
  has_metric "$UB" 'vouch_collateral_fetch_failures_total{source="pcs",kind="tdx_tcb_info"}'

# ---- a TCB recovery refreshed through A is what B sees
"$VOUCH" sim tcb-recovery "$E2E_TMP/sim-tdx" >/dev/null || fail "vouch sim tcb-recovery"
"$VOUCH" login --server "$UA" --ca-file "$CA" --user admin --password-file "$E2E_TMP/admin.pw" >/dev/null ||
  fail "vouch login"
"$VOUCH" collateral refresh -o json >"$E2E_TMP/refresh.json" 2>&1
grep -q '"stored"' "$E2E_TMP/refresh.json" || fail "vouch collateral refresh: $(cat "$E2E_TMP/refresh.json")"
expect_eq "after the refresh through A, B sees the new TCB Info (OutOfDate)" \
  "genuine=True tcb=OutOfDate sim=True code=" "$(verify "$UB")"
n=$(curl -sS --cacert "$CA" -H "Authorization: Bearer $TOKEN" "$UA/api/v1/audit?limit=1000" |
  python3 -c 'import json,sys; print(sum(1 for e in json.load(sys.stdin)["items"] if e["action"]=="collateral.store" and e["outcome"]=="ok" and e["target"].startswith("tdx_tcb_info:")))')
expect_eq "each stored TDX TCB Info version is in the audit log" 2 "$n"
echo "collateral_ha: $E2E_PASSED checks passed"
