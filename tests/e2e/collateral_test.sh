#!/usr/bin/env bash
# Issue 14, collateral service: `vouch sim pcs` serves every complete real collateral folder of
# ../shared/testdata/attestation (and sim TDX / SEV-SNP folders) as Intel PCS v4 and AMD KDS do; a
# vouchd whose --pccs-url/--kds-url point at it has never seen that collateral, fetches it on first
# need, and answers POST /api/v1/evidence/verify with each folder's expected verdict at its
# verify_at (the same verdict as the offline `vouch evidence verify --collateral DIR`). Then: the
# PCCS read side, `vouch collateral` and `vouch evidence verify --server`, a broken signature
# refused while the good copy stays, the PCS down, bad input.
# Usage: collateral_test.sh VOUCHD VOUCH SHARED_DIR
source "$(dirname "$0")/lib.sh"
record_api  # every API answer the CLI gets is checked against docs/api/openapi.json at the end
# shellcheck disable=SC2034  # start_dev_manager (lib.sh) runs it
VOUCHD=$1
VOUCH=$2
T=$3/testdata/attestation
require_tools curl python3 openssl

# ---- sim folders and the emulator
"$VOUCH" sim init --platform tdx "$E2E_TMP/sim-tdx" >/dev/null || fail "vouch sim init --platform tdx"
"$VOUCH" sim init --platform sev-snp "$E2E_TMP/sim-snp" >/dev/null || fail "vouch sim init --platform sev-snp"
# Every folder the README table marks complete for offline verification.
REAL=(sgx-dcap/dcap-rs-icx-2025-02 sgx-dcap/intel-qvl-sample-SYNTHETIC tdx/dcap-rs-spr-v4-2025-02
  tdx/automata-spr-v4-2025-10 tdx/go-tdx-guest-spr-e4-v4-2023-07 tdx/automata-emr-v5-2025-06
  sev-snp/go-sev-guest-milan sev-snp/trustee-milan)
SERVE=()
for f in "${REAL[@]}"; do SERVE+=(--serve "$T/$f"); done
"$VOUCH" sim pcs "${SERVE[@]}" --serve "$E2E_TMP/sim-tdx" --serve "$E2E_TMP/sim-snp" --listen 127.0.0.1:0 \
  --cert-out "$E2E_TMP/pcs-ca.pem" -o json >"$E2E_TMP/pcs.out" 2>"$E2E_TMP/pcs.log" &
PCS_PID=$!
E2E_PIDS+=("$PCS_PID")
wait_until "vouch sim pcs prints its URL" 100 file_has "$E2E_TMP/pcs.out" '"url"'
PCS=$(jq_get '["url"]' <"$E2E_TMP/pcs.out")
pcs() { curl -sS --cacert "$E2E_TMP/pcs-ca.pem" "$@"; }
pcs_clock() { pcs -X POST -d "{\"now\": $1}" "$PCS/sim/v1/clock" >/dev/null || fail "set the emulator's clock to $1"; }
# pcs_count ROUTE [STATUS]: requests the emulator answered on ROUTE (with STATUS).
pcs_count() { pcs "$PCS/sim/v1/state" | python3 -c 'import json,sys; c=json.load(sys.stdin)["counts"]; print(sum(v for k,v in c.items() if k.startswith(sys.argv[1]+" "+sys.argv[2])))' "$1" "${2:-}"; }
# The emulator itself: exact status codes.
code=$(pcs -o /dev/null -w '%{http_code}' "$PCS/sgx/certification/v4/tcb?fmspc=ffffffffffff")
expect_eq "sim pcs: unknown FMSPC answers 404" 404 "$code"
hdr=$(pcs -D - -o /dev/null "$PCS/sgx/certification/v4/tcb?fmspc=00606A00")
expect_contains "sim pcs: malformed fmspc answers 400 with Error-Code" "Error-Code: InvalidRequestSyntax" "$hdr"

# ---- a vouchd that has never seen this collateral
start_dev_manager --pccs-url "$PCS" --kds-url "$PCS" --collateral-ca-file "$E2E_TMP/pcs-ca.pem" --kds-min-interval-ms 0
TOKEN=$(curl -sS --cacert "$CA" -d "{\"username\":\"admin\",\"password\":\"$(cat "$E2E_TMP/admin.pw")\"}" \
  "$URL/api/v1/sys/auth" | jq_get '["token"]')
[[ -n "$TOKEN" ]] || fail "no session token in $VOUCH_CONFIG"
held=$("$VOUCH" collateral list -o json | python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin)["items"] if i["source"] != "import"))')
expect_eq "the manager holds no fetched collateral before the first need (only --dev's imported sim folder)" 0 "$held"

# verify FILE AT [PLATFORM]: POST /api/v1/evidence/verify, the verdict JSON on stdout.
verify() {
  python3 - "$1" "$2" "${3:-}" >"$E2E_TMP/req.json" <<'PY'
import base64, json, sys
body = {"evidence": base64.b64encode(open(sys.argv[1], "rb").read()).decode()}
if sys.argv[2]: body["at"] = sys.argv[2]
if sys.argv[3]: body["platform"] = sys.argv[3]
print(json.dumps(body))
PY
  curl -sS --cacert "$CA" -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data-binary @"$E2E_TMP/req.json" "$URL/api/v1/evidence/verify"
}
# explain VERDICT_JSON: shows the whole verdict on stderr before a check about it fails.
explain() { echo "server verdict: ${1:0:2000}" >&2; }
# summary VERDICT_JSON -> "genuine=<b> tcb=<status> adv=<a,b> sim=<b>"
summary() {
  python3 -c '
import json, sys
v = json.loads(sys.argv[1])
print("genuine=%s tcb=%s adv=%s sim=%s" % (v.get("genuine"), v.get("tcb_status"), ",".join(v.get("advisory_ids") or []), v.get("insecure_sim")))' "$1"
}
# live_at TIME: the emulated vendors serve what they served at TIME, and the manager's refresher
# runs then (`vouch collateral refresh`: every held item fetched again). A real PCS serves only
# current collateral, so a manager verifies evidence `at` a past time with what it fetched (or was
# imported) then; this replays the dates of the folders in order. (Items the emulator does not
# serve, e.g. --dev's imported sim SGX folder, fail to refresh: exit 4 is expected here.)
live_at() {  # TIME | now
  if [[ $1 == now ]]; then pcs_clock null; else pcs_clock "\"$1\""; fi
  "$VOUCH" collateral refresh -o json >"$E2E_TMP/refresh.json" 2>/dev/null
  local rc=$?
  [[ $rc == 0 || $rc == 4 ]] || fail "vouch collateral refresh at $1 exited $rc"
}
# check_folder NAME EVIDENCE AT EXPECTED_SUMMARY: the server verdict (collateral fetched from the
# emulator at its clock) is the expected one and equals the offline verdict with the folder.
check_folder() {
  local name=$1 ev=$2 at=$3 want=$4 got local_v
  live_at "$at"
  got=$(verify "$T/$name/$ev" "$at") || fail "$name: POST /api/v1/evidence/verify"
  [[ "$(summary "$got")" == "$want" ]] || explain "$got"
  expect_eq "$name: verdict through POST /api/v1/evidence/verify at $at" "$want" "$(summary "$got")"
  local_v=$("$VOUCH" evidence verify --evidence "$T/$name/$ev" --collateral "$T/$name" --at "$at" -o json 2>/dev/null)
  expect_eq "$name: same verdict as vouch evidence verify --collateral (offline)" "$(summary "$local_v")" "$(summary "$got")"
}
ADV="INTEL-SA-00960,INTEL-SA-00982,INTEL-SA-00986"
# Chronological order: what a manager running through these dates would have fetched.
check_folder tdx/go-tdx-guest-spr-e4-v4-2023-07 quote.dat 2023-07-01T01:00:00Z \
  "genuine=True tcb=TcbLevelNotSupported adv= sim=False"
live_at 2023-11-14T22:13:20Z
got=$(verify "$T/sgx-dcap/intel-qvl-sample-SYNTHETIC/quote.dat" 2023-11-14T22:13:20Z)
expect_eq "intel-qvl-sample-SYNTHETIC: not genuine under the real Intel root (its test root is not trusted)" \
  "false" "$(jq_get '["genuine"]' <<<"$got")"
check_folder sgx-dcap/dcap-rs-icx-2025-02 quote.dat 2025-02-13T04:00:32Z "genuine=True tcb=OutOfDate adv= sim=False"
check_folder tdx/dcap-rs-spr-v4-2025-02 quote.dat 2025-02-13T04:00:32Z "genuine=True tcb=OutOfDate adv=$ADV sim=False"
check_folder tdx/automata-emr-v5-2025-06 quote.dat 2025-06-15T00:00:00Z "genuine=True tcb=TcbLevelNotSupported adv= sim=False"
check_folder tdx/automata-spr-v4-2025-10 quote.dat 2025-10-24T07:10:18Z "genuine=True tcb=OutOfDate adv=$ADV sim=False"
pcs_clock null
check_folder sev-snp/go-sev-guest-milan attestation.bin 2025-01-01T00:00:00Z "genuine=True tcb=UpToDate adv= sim=False"
check_folder sev-snp/trustee-milan test-report.bin 2025-06-01T00:00:00Z "genuine=True tcb=UpToDate adv= sim=False"
# ---- sim TDX and SEV-SNP evidence: genuine, marked insecure_sim
live_at now
"$VOUCH" sim quote --sim "$E2E_TMP/sim-tdx" --report-data 01 --out "$E2E_TMP/sim-tdx.quote" >/dev/null || fail "sim TDX quote"
got=$(verify "$E2E_TMP/sim-tdx.quote" "")
[[ "$(summary "$got")" == *sim=True* && "$(summary "$got")" == genuine=True* ]] || explain "$got"
expect_eq "sim TDX quote: genuine and insecure_sim (collateral fetched from the sim folder)" \
  "genuine=True tcb=UpToDate adv= sim=True" "$(summary "$got")"
"$VOUCH" sim quote --sim "$E2E_TMP/sim-snp" --report-data 02 --out "$E2E_TMP/sim-snp.bin" >/dev/null || fail "sim SNP evidence"
got=$(verify "$E2E_TMP/sim-snp.bin" "" sev-snp)
[[ "$(summary "$got")" == genuine=True* ]] || explain "$got"
# (Report only, the sim VCEK would have to come from KDS with the sim chain; the emulator here also
# serves the real Milan chain for product Milan, so the sim evidence carries its table as the
# emulated kernel's auxblob does. The KDS fetch of a VCEK is shown by the real Milan reports above.)
expect_eq "sim SEV-SNP evidence (report + certificate table): genuine and insecure_sim" \
  "genuine=True tcb=UpToDate adv= sim=True" "$(summary "$got")"
n=$(pcs_count vcek_crl 200)
[[ $n -ge 1 ]] || fail "the AMD CRL (the sim folder's, served for product Milan) was never fetched from the emulated KDS"
ok "the AMD CRL was fetched from the emulated KDS ($n answers)"

# The VLEK report: a VLEK is not on KDS; it comes in the evidence's certificate table.
cert_table() {  # REPORT OUT (GUID=DER)...
  python3 - "$@" <<'PY'
import sys, uuid, struct
report, out, pairs = sys.argv[1], sys.argv[2], sys.argv[3:]
certs = [(uuid.UUID(p.split("=", 1)[0]).bytes, open(p.split("=", 1)[1], "rb").read()) for p in pairs]
table, body, off = b"", b"", 24 * (len(certs) + 1)
for guid, der in certs:
    table += guid + struct.pack("<II", off + len(body), len(der))
    body += der
open(out, "wb").write(open(report, "rb").read() + table + b"\0" * 24 + body)
PY
}
VLEK_GUID=a8074bc2-a25a-483e-aae6-39c045a0b8a1
VCEK_GUID=63da758d-e664-4564-adc5-f4b93be8accd
cert_table "$T/sev-snp/trustee-milan/test-vlek-report.bin" "$E2E_TMP/vlek-evidence.bin" \
  "$VLEK_GUID=$T/sev-snp/trustee-milan/test-vlek.der" || fail "build the VLEK certificate table"
got=$(verify "$E2E_TMP/vlek-evidence.bin" 2025-06-01T00:00:00Z sev-snp)
expect_eq "trustee-milan: VLEK report with its certificate table accepted at 2025-06-01" \
  "genuine=True tcb=UpToDate adv= sim=False" "$(summary "$got")"
for bad in test-vcek-invalid-legacy.der test-vcek-invalid-new.der; do
  cert_table "$T/sev-snp/trustee-milan/test-report.bin" "$E2E_TMP/bad-evidence.bin" \
    "$VCEK_GUID=$T/sev-snp/trustee-milan/$bad" || fail "build a certificate table"
  got=$(verify "$E2E_TMP/bad-evidence.bin" 2025-06-01T00:00:00Z)
  expect_eq "trustee-milan: the report with $bad in its certificate table is rejected" "false" \
    "$(jq_get '["genuine"]' <<<"$got")"
done

# ---- fetched once, then served from the store
n_before=$(pcs_count tdx_tcb)
got=$(verify "$T/tdx/automata-spr-v4-2025-10/quote.dat" 2025-10-24T07:10:18Z)
expect_eq "a second verification uses the stored collateral (no new TDX TCB Info request)" "$n_before" "$(pcs_count tdx_tcb)"
list=$("$VOUCH" collateral list -o json)
kinds=$(python3 -c 'import json,sys; print(" ".join(sorted({i["kind"]+":"+i["source"] for i in json.loads(sys.argv[1])["items"]})))' "$list")
for k in sgx_tcb_info:pcs tdx_tcb_info:pcs td_qe_identity:pcs qe_identity:pcs pck_crl:pcs root_ca_crl:pcs amd_vcek:kds amd_crl:kds; do
  expect_contains "vouch collateral list shows $k" "$k" "$kinds"
done
table=$("$VOUCH" collateral list)
expect_contains "vouch collateral list (table) names the FMSPC 00806f050000" "00806f050000" "$table"

# ---- the PCCS read side (a node's Intel QPL with pccs_url = vouchd)
curl -sS --cacert "$CA" -D "$E2E_TMP/pccs.h" -o "$E2E_TMP/pccs.body" "$URL/sgx/certification/v4/tcb?fmspc=00606A000000" ||
  fail "GET /sgx/certification/v4/tcb from vouchd"
cmp -s "$E2E_TMP/pccs.body" "$T/sgx-dcap/dcap-rs-icx-2025-02/tcbInfo.json" || fail "the PCCS route did not serve the TCB Info byte for byte"
ok "PCCS /sgx/certification/v4/tcb serves the fetched TCB Info byte for byte, without credentials"
expect_contains "PCCS answer carries TCB-Info-Issuer-Chain (URL-encoded PEM)" "TCB-Info-Issuer-Chain: -----BEGIN%20CERTIFICATE-----%0A" "$(cat "$E2E_TMP/pccs.h")"
code=$(curl -sS --cacert "$CA" -o "$E2E_TMP/pccs.body" -w '%{http_code}' "$URL/sgx/certification/v4/pckcrl?ca=nobody")
expect_eq "PCCS pckcrl with a bad ca answers 400" 400 "$code"
expect_eq "… with a JSON error" invalid_ca "$(jq_get '["error"]["code"]' <"$E2E_TMP/pccs.body")"

curl -sS --cacert "$CA" -D "$E2E_TMP/qe.h" -o "$E2E_TMP/qe.body" "$URL/tdx/certification/v4/qe/identity?update=standard" ||
  fail "GET /tdx/certification/v4/qe/identity from vouchd"
cmp -s "$E2E_TMP/qe.body" "$T/tdx/automata-spr-v4-2025-10/qeIdentity.json" ||
  fail "PCCS TD_QE identity is not the newest real one held (automata-spr-v4-2025-10): $(head -c 200 "$E2E_TMP/qe.body")"
ok "PCCS /tdx/certification/v4/qe/identity serves the newest TD_QE identity held, byte for byte"
expect_contains "… with SGX-Enclave-Identity-Issuer-Chain" "SGX-Enclave-Identity-Issuer-Chain: -----BEGIN%20CERTIFICATE" "$(cat "$E2E_TMP/qe.h")"

# ---- vouch collateral export / import (air-gapped sites)
"$VOUCH" collateral export "$E2E_TMP/export" >/dev/null || fail "vouch collateral export"
[[ -f "$E2E_TMP/export/manifest.json" ]] || fail "vouch collateral export wrote no manifest.json"
n=$(find "$E2E_TMP/export" -type f | wc -l)
[[ $n -ge 10 ]] || fail "vouch collateral export wrote only $n files"
ok "vouch collateral export writes every stored version ($n files with manifest.json)"
out=$("$VOUCH" collateral import "$E2E_TMP/export" -o json)
rc=$?
[[ $rc == 0 || $rc == 4 ]] || fail "vouch collateral import of the export exited $rc: ${out:0:300}"
# Every item comes back unchanged except the sim AMD CRL: its sim ARK reached vouchd only inside
# the sim evidence's certificate table, so an import cannot check that CRL's signature (refused).
expect_eq "importing the export again stores nothing new; only the sim AMD CRL cannot be checked" "stored=0 refused=amd_crl" \
  "$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); print("stored=%d refused=%s" % (r["stored"], ",".join(o["kind"] for o in r["outcomes"] if o["result"] == "refused")))' "$out")"
"$VOUCH" collateral import "$E2E_TMP/sim-tdx" >/dev/null 2>"$E2E_TMP/import.err" || fail "vouch collateral import of a sim folder: $(cat "$E2E_TMP/import.err")"
expect_contains "vouch collateral import never sends a sim folder's sim-secrets.json" "not sent: sim-secrets.json" "$(cat "$E2E_TMP/import.err")"

# ---- vouch evidence verify --server: same output and exit code as offline
out=$("$VOUCH" evidence verify --server "$URL" --evidence "$T/tdx/dcap-rs-spr-v4-2025-02/quote.dat" --at 2025-02-13T04:00:32Z -o json)
rc=$?
expect_eq "vouch evidence verify --server exits 1 for a genuine OutOfDate quote" 1 "$rc"
expect_eq "vouch evidence verify --server prints the server's verdict" "genuine=True tcb=OutOfDate adv=$ADV sim=False" "$(summary "$out")"
"$VOUCH" evidence verify --server "$URL" --evidence "$T/tdx/dcap-rs-spr-v4-2025-02/quote.dat" --collateral "$T/tdx/dcap-rs-spr-v4-2025-02" >/dev/null 2>&1
expect_eq "vouch evidence verify --server with --collateral is a usage error (exit 2)" 2 "$?"
out=$(VOUCH_SERVER=https://127.0.0.1:1 "$VOUCH" evidence verify --evidence "$T/tdx/dcap-rs-spr-v4-2025-02/quote.dat" \
  --collateral "$T/tdx/dcap-rs-spr-v4-2025-02" --at 2025-02-13T04:00:32Z -o json 2>&1)
expect_eq "\$VOUCH_SERVER alone keeps vouch evidence verify offline" "genuine=True tcb=OutOfDate adv=$ADV sim=False" "$(summary "$out")"

# ---- a broken signature is refused; the last good copy stays
sha_before=$("$VOUCH" collateral list --kind sgx_tcb_info --key 00606a000000 -o json | jq_get '["items"][0]["sha256"]')
pcs_clock '"2025-02-13T04:00:32Z"'
pcs -X POST -d '{"next": 1}' "$PCS/sim/v1/corrupt" >/dev/null || fail "arm the emulator's broken signature"
out=$("$VOUCH" collateral refresh --kind sgx_tcb_info --key 00606a000000 -o json 2>"$E2E_TMP/refresh.err")
rc=$?
expect_eq "vouch collateral refresh exits 4 when the answer is refused" 4 "$rc"
expect_eq "the refused answer's reason" collateral_bad_signature "$(jq_get '["outcomes"][0]["reason"]' <<<"$out")"
sha_after=$("$VOUCH" collateral list --kind sgx_tcb_info --key 00606a000000 -o json | jq_get '["items"][0]["sha256"]')
expect_eq "the last good TCB Info stays current" "$sha_before" "$sha_after"

# ---- the PCS down: evidence still verifies from the store
pcs -X POST -d '{"status": 503}' "$PCS/sim/v1/fail" >/dev/null || fail "take the emulator down"
got=$(verify "$T/sgx-dcap/dcap-rs-icx-2025-02/quote.dat" 2025-02-13T04:00:32Z)
expect_eq "with the PCS answering 503, stored collateral still verifies" "genuine=True tcb=OutOfDate adv= sim=False" "$(summary "$got")"
pcs -X POST -d '{"status": 0}' "$PCS/sim/v1/fail" >/dev/null

# ---- bad input: 4xx JSON errors, never 500
post_code() { curl -sS --cacert "$CA" -o "$E2E_TMP/err.json" -w '%{http_code}' -H "Authorization: Bearer $TOKEN" --data-binary "$1" "$URL/api/v1/evidence/verify"; }
expect_eq "evidence not base64: 400" 400 "$(post_code '{"evidence":"***"}')"
expect_eq "… code invalid_evidence" invalid_evidence "$(jq_get '["error"]["code"]' <"$E2E_TMP/err.json")"
expect_eq "unknown platform: 400" 400 "$(post_code '{"evidence":"AAAA","platform":"arm-cca"}')"
expect_eq "bad at: 400" 400 "$(post_code '{"evidence":"AAAA","at":"noon"}')"
expect_eq "not JSON: 400" 400 "$(post_code 'evidence=AAAA')"
code=$(curl -sS --cacert "$CA" -o /dev/null -w '%{http_code}' --data-binary '{"evidence":"AAAA"}' "$URL/api/v1/evidence/verify")
expect_eq "without credentials: 401" 401 "$code"
got=$(post_code "{\"evidence\":\"$(head -c 3000 /dev/urandom | base64 -w0)\"}")
expect_eq "random bytes: 200 with a verdict" 200 "$got"
expect_eq "… not genuine" false "$(jq_get '["genuine"]' <"$E2E_TMP/err.json")"
# ---- KDS rate limit: a 429 fails the fetch as rate limited (vouchd then waits Retry-After before
# its next KDS request: CollateralServiceTest.KdsIsPacedAndHonoursRetryAfter)
pcs -X POST -d '{"seconds": 30}' "$PCS/sim/v1/kds-interval" >/dev/null || fail "set the emulator's KDS interval"
"$VOUCH" collateral refresh --kind amd_crl --key Milan -o json >/dev/null 2>&1
before=$(pcs_count vcek_crl 429)
out=$("$VOUCH" collateral refresh --kind amd_crl --key Milan -o json 2>/dev/null)
expect_eq "KDS answering 429: the refresh fails as rate limited" collateral_rate_limited "$(jq_get '["outcomes"][0]["reason"]' <<<"$out")"
expect_eq "… after one 429 from KDS" $((before + 1)) "$(pcs_count vcek_crl 429)"
kill -0 "$VOUCHD_PID" 2>/dev/null || fail "vouchd exited"
ok "vouchd still up"
validate_recorded_api
echo "collateral: $E2E_PASSED checks passed"
