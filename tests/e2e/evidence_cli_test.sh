#!/usr/bin/env bash
# `vouch evidence verify` as a whole process over every folder of the shared real-hardware test
# vectors: exit code, JSON verdict (platform, genuine, tcb_status, advisory_ids, insecure_sim,
# error code) exactly as each folder's PROVENANCE.md / expected.json states. Also sim evidence from
# `vouch sim init` (accepted only with --allow-sim) and malformed input.
# Usage: evidence_cli_test.sh VOUCH SHARED_DIR
source "$(dirname "$0")/lib.sh"
VOUCH=$1
T=$2/testdata/attestation
[[ -d $T ]] || fail "no test vectors at $T"

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

# --- SGX DCAP, Ice Lake, complete collateral: genuine, OutOfDate, no advisories -> exit 1
d=$T/sgx-dcap/dcap-rs-icx-2025-02
verify "sgx icx" 1 --evidence "$d/quote.dat" --collateral "$d" --at 2025-02-13T04:00:32Z
expect_eq "sgx icx platform" sgx "$(field '["platform"]')"
expect_eq "sgx icx genuine" true "$(field '["genuine"]')"
expect_eq "sgx icx status" OutOfDate "$(field '["tcb_status"]')"
expect_eq "sgx icx advisories" "[]" "$(field '["advisory_ids"]')"
expect_eq "sgx icx not sim" false "$(field '["insecure_sim"]')"
expect_eq "sgx icx debug reported" false "$(field '["measurements"]["debug"]')"
[[ $(field '["measurements"]["mrenclave"]') =~ ^[0-9a-f]{64}$ ]] || fail "mrenclave not 64 hex"
ok "sgx icx mrenclave is 32 bytes hex"
# Same evidence with the real clock: the collateral has expired -> not genuine.
verify "sgx icx at now (expired collateral)" 2 --evidence "$d/quote.dat" --collateral "$d"
expect_contains "sgx icx expired code" expired "$(field '["error"]["code"]')"
# Before the PCK CRL was issued -> not yet valid.
verify "sgx icx before collateral" 2 --evidence "$d/quote.dat" --collateral "$d" --at 2025-02-13T03:00:00Z

# --- Intel's SYNTHETIC sample: UpToDate with its own test root, untrusted with the real root
d=$T/sgx-dcap/intel-qvl-sample-SYNTHETIC
verify "synthetic with real root" 2 --evidence "$d/quote.dat" --collateral "$d" --at 2023-11-14T22:13:20Z
expect_contains "synthetic untrusted code" untrusted "$(field '["error"]["code"]')"
verify "synthetic with its test root" 0 --evidence "$d/quote.dat" --collateral "$d" \
  --at 2023-11-14T22:13:20Z --trust-root "$d/trustedRootCaCert.pem"
expect_eq "synthetic status" UpToDate "$(field '["tcb_status"]')"

# --- TDX v4 Sapphire Rapids, two collateral generations: OutOfDate with three advisories
for c in dcap-rs-spr-v4-2025-02:2025-02-13T04:00:32Z automata-spr-v4-2025-10:2025-10-24T07:10:18Z; do
  d=$T/tdx/${c%%:*}
  verify "tdx ${c%%:*}" 1 --evidence "$d/quote.dat" --collateral "$d" --at "${c#*:}"
  expect_eq "tdx ${c%%:*} platform" tdx "$(field '["platform"]')"
  expect_eq "tdx ${c%%:*} status" OutOfDate "$(field '["tcb_status"]')"
  expect_eq "tdx ${c%%:*} advisories" '["INTEL-SA-00960", "INTEL-SA-00982", "INTEL-SA-00986"]' \
    "$(field '["advisory_ids"]')"
  [[ $(field '["measurements"]["mrtd"]') =~ ^[0-9a-f]{96}$ ]] || fail "mrtd not 48 bytes hex"
  ok "tdx ${c%%:*} mrtd is 48 bytes hex"
done

# --- TDX levels this FMSPC's TCB Info does not cover: TcbLevelNotSupported -> exit 1
d=$T/tdx/go-tdx-guest-spr-e4-v4-2023-07
verify "tdx spr-e4 v4" 1 --evidence "$d/quote.dat" --collateral "$d" --at 2023-07-01T01:00:00Z
expect_eq "tdx spr-e4 status" TcbLevelNotSupported "$(field '["tcb_status"]')"
d=$T/tdx/automata-emr-v5-2025-06
verify "tdx emr v5" 1 --evidence "$d/quote.dat" --collateral "$d" --at 2025-06-15T00:00:00Z
expect_eq "tdx emr v5 status" TcbLevelNotSupported "$(field '["tcb_status"]')"

# --- Partial folders verify as far as their provenance says: signatures, QE binding and PCK chain
# are checked and pass; without CRLs/QE identity the verdict fails closed (exit 2,
# missing_collateral) and says how far it got, including the TCB level it could evaluate.
d=$T/tdx/go-tdx-guest-emr-v5-partial
verify "tdx emr v5 partial" 2 --evidence "$d/quote.dat" --collateral "$d" --at 2026-02-03T01:00:00Z
expect_eq "tdx emr v5 partial code" missing_collateral "$(field '["error"]["code"]')"
expect_contains "tdx emr v5 partial signatures verified" "signatures and chain verified" "$(field '["error"]["message"]')"
expect_eq "tdx emr v5 partial TCB level from TCB Info" UpToDate "$(field '["details"]["tcb_status_partial"]')"
expect_eq "tdx emr v5 partial TDX module" UpToDate "$(field '["details"]["tdx_module_tcb_status"]')"
expect_eq "tdx emr v5 partial QE isvsvn" 7 "$(field '["details"]["qe_isvsvn"]')"
# A flipped signature byte turns the partial verdict from missing_collateral into a signature error.
python3 - "$d/quote.dat" "$E2E_TMP/partial-flipped.dat" <<'PYEOF'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[48 + 2 + 4 + 648 + 4 + 5] ^= 1  # v5: header, body type/size, TD report 1.5 body, sig length, inside the signature
open(sys.argv[2], 'wb').write(b)
PYEOF
verify "tdx emr v5 partial, flipped signature" 2 --evidence "$E2E_TMP/partial-flipped.dat" --collateral "$d" --at 2026-02-03T01:00:00Z
[[ $(field '["error"]["code"]') != missing_collateral ]] || fail "a flipped signature must not read as missing collateral"
ok "tdx emr v5 partial, flipped signature: $(field '["error"]["code"]')"
d=$T/sgx-dcap/trustee-occlum-quote-only
verify "sgx occlum quote only" 2 --evidence "$d/quote.dat" --collateral "$d"
expect_eq "sgx occlum code" missing_collateral "$(field '["error"]["code"]')"
expect_contains "sgx occlum signatures verified" "signatures and chain verified" "$(field '["error"]["message"]')"
for q in tdx_quote_4.dat tdx_quote_6.dat; do
  d=$T/tdx/trustee-quotes-only
  verify "tdx trustee $q" 2 --evidence "$d/$q" --collateral "$d"
  expect_eq "tdx trustee $q code" missing_collateral "$(field '["error"]["code"]')"
done

# --- SEV-SNP Milan with its VCEK and the built-in AMD roots
d=$T/sev-snp/go-sev-guest-milan
verify "snp milan" 0 --evidence "$d/attestation.bin" --collateral "$d"
expect_eq "snp milan platform" sev-snp "$(field '["platform"]')"
expect_eq "snp milan genuine" true "$(field '["genuine"]')"
[[ $(field '["measurements"]["measurement"]') =~ ^[0-9a-f]{96}$ ]] || fail "measurement not 48 bytes hex"
ok "snp milan measurement is 48 bytes hex"

# --- Malformed evidence: truncated quote, random bytes, empty file -> exit 2 with a code
d=$T/sgx-dcap/dcap-rs-icx-2025-02
head -c 700 "$d/quote.dat" >"$E2E_TMP/trunc.dat"
verify "truncated quote" 2 --evidence "$E2E_TMP/trunc.dat" --collateral "$d" --at 2025-02-13T04:00:32Z
expect_eq "truncated not genuine" false "$(field '["genuine"]')"
head -c 2000 /dev/urandom >"$E2E_TMP/random.dat"
verify "random bytes" 2 --evidence "$E2E_TMP/random.dat"
: >"$E2E_TMP/empty.dat"
verify "empty file" 2 --evidence "$E2E_TMP/empty.dat"
# One flipped byte in the quote's signature area.
python3 - "$d/quote.dat" "$E2E_TMP/flipped.dat" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[436 + 4 + 10] ^= 1   # inside the ECDSA quote signature (after header+body and the u32 length)
open(sys.argv[2], 'wb').write(b)
EOF
verify "flipped signature byte" 2 --evidence "$E2E_TMP/flipped.dat" --collateral "$d" --at 2025-02-13T04:00:32Z
expect_contains "flipped signature code" signature "$(field '["error"]["code"]')"
"$VOUCH" evidence verify --evidence /nonexistent/quote.dat >/dev/null 2>"$E2E_TMP/err"
rc=$?
expect_eq "missing file exit" 2 "$rc"
expect_eq "missing file one-line error" 1 "$(wc -l <"$E2E_TMP/err")"

# --- Sim: a sim vendor's quotes verify only with --allow-sim, and say insecure_sim
"$VOUCH" sim init "$E2E_TMP/sim" >/dev/null || fail "vouch sim init"
"$VOUCH" sim quote --sim "$E2E_TMP/sim" --report-data 00ff --out "$E2E_TMP/sim.dat" >/dev/null || fail "vouch sim quote"
simcol=$E2E_TMP/sim
verify "sim quote without --allow-sim" 2 --evidence "$E2E_TMP/sim.dat" --collateral "$simcol"
verify "sim quote with --allow-sim" 0 --evidence "$E2E_TMP/sim.dat" --collateral "$simcol" --allow-sim
expect_eq "sim verdict says insecure" true "$(field '["insecure_sim"]')"
expect_eq "sim status" UpToDate "$(field '["tcb_status"]')"
expect_eq "sim report data bound" "00ff$(printf '0%.0s' $(seq 1 124))" "$(field '["report_data"]')"
"$VOUCH" sim init --tcb out-of-date "$E2E_TMP/sim-ood" >/dev/null || fail "vouch sim init --tcb out-of-date"
"$VOUCH" sim quote --sim "$E2E_TMP/sim-ood" --report-data 00ff --out "$E2E_TMP/sim-ood.dat" >/dev/null || fail "vouch sim quote (ood)"
simcol=$E2E_TMP/sim-ood
verify "out-of-date sim quote" 1 --evidence "$E2E_TMP/sim-ood.dat" --collateral "$simcol" --allow-sim
expect_eq "out-of-date sim status" OutOfDate "$(field '["tcb_status"]')"

"$VOUCH" sim init --tcb sw-hardening-needed "$E2E_TMP/sim-swh" >/dev/null || fail "vouch sim init --tcb sw-hardening-needed"
"$VOUCH" sim quote --sim "$E2E_TMP/sim-swh" --report-data 01 --out "$E2E_TMP/sim-swh.dat" >/dev/null || fail "vouch sim quote (swh)"
verify "sw-hardening-needed sim quote" 0 --evidence "$E2E_TMP/sim-swh.dat" --collateral "$E2E_TMP/sim-swh" --allow-sim
expect_eq "sw-hardening-needed sim status" SWHardeningNeeded "$(field '["tcb_status"]')"
"$VOUCH" sim init --revoked "$E2E_TMP/sim-rev" >/dev/null || fail "vouch sim init --revoked"
"$VOUCH" sim quote --sim "$E2E_TMP/sim-rev" --report-data 01 --out "$E2E_TMP/sim-rev.dat" >/dev/null || fail "vouch sim quote (revoked)"
verify "revoked-PCK sim quote" 2 --evidence "$E2E_TMP/sim-rev.dat" --collateral "$E2E_TMP/sim-rev" --allow-sim
expect_contains "revoked-PCK code" revoked "$(field '["error"]["code"]')"

echo "evidence_cli: $E2E_PASSED checks passed"
