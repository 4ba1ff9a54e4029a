#!/usr/bin/env bash
# `vouch sim init --platform tdx|sev-snp`, `vouch sim quote` and `vouch evidence verify` as whole
# processes (docs/sim.md): TDX quotes v4/v5 and SEV-SNP evidence (report ‖ certificate table) are
# genuine only with --allow-sim and say insecure_sim; tcb-recovery turns TDX OutOfDate; a revoked
# VCEK and tampered evidence are refused; options of another platform are usage errors.
# Usage: sim_platforms_cli_test.sh VOUCH
source "$(dirname "$0")/lib.sh"
VOUCH=$1

# verify NAME EXPECTED_RC ARGS... ; leaves the JSON in $OUT
verify() {
  local name=$1 want=$2
  shift 2
  OUT=$("$VOUCH" evidence verify -o json "$@" 2>"$E2E_TMP/err")
  local rc=$?
  [[ $rc == "$want" ]] || fail "$name: exit $rc, expected $want; stderr: $(cat "$E2E_TMP/err"); out: ${OUT:0:600}"
  ok "$name: exit $rc"
}
field() { echo "$OUT" | jq_get "$1"; }
hex() { printf "$1%.0s" $(seq 1 "$2"); }

# --- TDX
"$VOUCH" sim init --platform tdx "$E2E_TMP/tdx" >/dev/null || fail "sim init --platform tdx"
expect_eq "tdx folder has TDX TCB Info" TDX "$(jq_get '["tcbInfo"]["id"]' <"$E2E_TMP/tdx/tcbInfo.json")"
expect_eq "tdx folder has a TD_QE identity" TD_QE "$(jq_get '["enclaveIdentity"]["id"]' <"$E2E_TMP/tdx/qeIdentity.json")"
"$VOUCH" sim quote --sim "$E2E_TMP/tdx" --report-data 00ff --mrtd "$(hex 11 48)" --rtmr "1=$(hex 22 48)" \
  --out "$E2E_TMP/tdx4.dat" >/dev/null || fail "sim quote (tdx v4)"
verify "tdx v4 without --allow-sim" 2 --evidence "$E2E_TMP/tdx4.dat" --collateral "$E2E_TMP/tdx"
expect_eq "tdx v4 without --allow-sim: chain" chain_untrusted "$(field '["error"]["code"]')"
verify "tdx v4 with --allow-sim" 0 --evidence "$E2E_TMP/tdx4.dat" --collateral "$E2E_TMP/tdx" --allow-sim
expect_eq "tdx v4 platform" tdx "$(field '["platform"]')"
expect_eq "tdx v4 insecure" true "$(field '["insecure_sim"]')"
expect_eq "tdx v4 status" UpToDate "$(field '["tcb_status"]')"
expect_eq "tdx v4 mrtd" "$(hex 11 48)" "$(field '["measurements"]["mrtd"]')"
expect_eq "tdx v4 rtmr1" "$(hex 22 48)" "$(field '["measurements"]["rtmr1"]')"
"$VOUCH" sim quote --sim "$E2E_TMP/tdx" --report-data 01 --agent --quote-version 5 --td-report 1.5 \
  --out "$E2E_TMP/tdx5.dat" >/dev/null || fail "sim quote (tdx v5)"
verify "tdx v5 (TD report 1.5)" 0 --evidence "$E2E_TMP/tdx5.dat" --collateral "$E2E_TMP/tdx" --allow-sim
expect_eq "tdx v5 quote version" 5 "$(field '["details"]["quote_version"]')"
"$VOUCH" sim quote --sim "$E2E_TMP/tdx" --report-data 01 --mrenclave "$(hex 00 32)" --out "$E2E_TMP/x" 2>/dev/null
expect_eq "an SGX option on a tdx folder is a usage error" 2 "$?"
"$VOUCH" sim tcb-recovery "$E2E_TMP/tdx" >/dev/null || fail "sim tcb-recovery (tdx)"
verify "tdx after tcb-recovery" 1 --evidence "$E2E_TMP/tdx4.dat" --collateral "$E2E_TMP/tdx" --allow-sim
expect_eq "tdx after tcb-recovery status" OutOfDate "$(field '["tcb_status"]')"

# --- SEV-SNP
"$VOUCH" sim init --platform sev-snp --reported-tcb bl=3,tee=0,snp=20,ucode=209 "$E2E_TMP/snp" >/dev/null ||
  fail "sim init --platform sev-snp"
for f in cert_chain.pem vcek.der crl.der sim-secrets.json; do
  [[ -s $E2E_TMP/snp/$f ]] || fail "sev-snp folder lacks $f"
done
ok "sev-snp folder holds cert_chain.pem, vcek.der, crl.der, sim-secrets.json"
expect_eq "sim-secrets.json is private" 600 "$(stat -c %a "$E2E_TMP/snp/sim-secrets.json")"
"$VOUCH" sim quote --sim "$E2E_TMP/snp" --report-data 00ff --measurement "$(hex 33 48)" --host-data "$(hex 44 32)" \
  --vmpl 2 --out "$E2E_TMP/snp.ev" >/dev/null || fail "sim quote (sev-snp)"
verify "snp evidence without --allow-sim" 2 --evidence "$E2E_TMP/snp.ev"
expect_eq "snp evidence without --allow-sim: code" snp_sim_not_allowed "$(field '["error"]["code"]')"
verify "snp evidence with --allow-sim (table only)" 0 --evidence "$E2E_TMP/snp.ev" --allow-sim
expect_eq "snp platform" sev-snp "$(field '["platform"]')"
expect_eq "snp insecure" true "$(field '["insecure_sim"]')"
expect_eq "snp measurement" "$(hex 33 48)" "$(field '["measurements"]["measurement"]')"
expect_eq "snp host data" "$(hex 44 32)" "$(field '["measurements"]["host_data"]')"
expect_eq "snp vmpl" 2 "$(field '["measurements"]["vmpl"]')"
expect_eq "snp reported snp SPL" 20 "$(field '["measurements"]["reported_tcb"]["snp"]')"
head -c 1184 "$E2E_TMP/snp.ev" >"$E2E_TMP/snp.report"
verify "snp bare report with the folder, --allow-sim" 0 --evidence "$E2E_TMP/snp.report" --collateral "$E2E_TMP/snp" --allow-sim
expect_eq "snp bare report: CRL checked" true "$(field '["details"]["crl_checked"]')"
verify "snp bare report with the folder, no --allow-sim" 2 --evidence "$E2E_TMP/snp.report" --collateral "$E2E_TMP/snp"
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[0x90]^=1; open(sys.argv[2],"wb").write(b)' \
  "$E2E_TMP/snp.ev" "$E2E_TMP/snp-tampered.ev"
verify "tampered snp measurement" 2 --evidence "$E2E_TMP/snp-tampered.ev" --allow-sim
expect_eq "tampered snp: signature" snp_invalid_signature "$(field '["error"]["code"]')"
head -c 1200 "$E2E_TMP/snp.ev" >"$E2E_TMP/snp-cut.ev"
verify "snp evidence with a cut certificate table" 2 --evidence "$E2E_TMP/snp-cut.ev" --allow-sim
expect_eq "cut table code" snp_malformed_cert_table "$(field '["error"]["code"]')"
"$VOUCH" sim tcb-recovery "$E2E_TMP/snp" >/dev/null 2>&1
expect_eq "tcb-recovery on a sev-snp folder fails" 1 "$?"
"$VOUCH" sim init --platform sev-snp --revoked "$E2E_TMP/snp-rev" >/dev/null || fail "sim init --platform sev-snp --revoked"
"$VOUCH" sim quote --sim "$E2E_TMP/snp-rev" --report-data 01 --agent --out "$E2E_TMP/snp-rev.ev" >/dev/null ||
  fail "sim quote (revoked sev-snp)"
verify "revoked VCEK" 2 --evidence "$E2E_TMP/snp-rev.ev" --collateral "$E2E_TMP/snp-rev" --allow-sim
expect_eq "revoked VCEK code" snp_cert_revoked "$(field '["error"]["code"]')"
echo "sim_platforms_cli: $E2E_PASSED checks passed"
