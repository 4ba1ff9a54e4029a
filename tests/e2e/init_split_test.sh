#!/usr/bin/env bash
# vouchd init splits the new master key (issue 18, docs/custody.md): --split-threshold M
# --split-shares N --shares-out DIR [--custodian-key PEM ...] run `vouchd master-key split` on the
# new data directory (same share files, output and audit entry). Bad split flags (M or N out of
# range, M > N, half the flags, an existing out folder, a wrong number of custodian keys, a key that
# is not P-256) are refused before anything is created: no data directory, no share folder.
# Usage: init_split_test.sh VOUCHD VOUCH
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
VOUCHD=$1
VOUCH=$2
require_tools openssl python3

printf 'admin-password-123\n' >"$E2E_TMP/admin.pw"
D=$E2E_TMP/manager
PORT=$(free_port)
URL=https://127.0.0.1:$PORT
CA=$D/service-ca.pem
S=$E2E_TMP/shares
init() {  # [FLAGS...]
  "$VOUCHD" init --dev --data-dir "$D" --admin-user admin --admin-password-file "$E2E_TMP/admin.pw" \
    --listen "127.0.0.1:$PORT" "$@" 2>&1
}
for i in 1 2 3; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$E2E_TMP/c$i.key" 2>/dev/null || fail "openssl genpkey"
  openssl pkey -in "$E2E_TMP/c$i.key" -pubout -out "$E2E_TMP/c$i.pub" 2>/dev/null || fail "openssl pkey -pubout"
done
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 2>/dev/null | openssl pkey -pubout -out "$E2E_TMP/rsa.pub" 2>/dev/null \
  || fail "openssl RSA key"

# Refusals: each leaves no data directory and no share folder.
refused() {  # WHAT REASON FLAGS...
  local what=$1 reason=$2 out
  shift 2
  out=$(init "$@") && fail "$what: init accepted it: $out"
  [[ "$out" == *"$reason"* ]] || fail "$what: expected '$reason' in '${out:0:300}'"
  [[ ! -e "$D" && ! -e "$S" ]] || fail "$what: init created $D or $S"
  ok "$what: refused ($reason), nothing created"
}
refused "threshold 1" "invalid_split" --split-threshold 1 --split-shares 3 --shares-out "$S"
refused "threshold above the share count" "invalid_split" --split-threshold 4 --split-shares 3 --shares-out "$S"
refused "256 shares" "invalid_split" --split-threshold 2 --split-shares 256 --shares-out "$S"
refused "no --shares-out" "go together" --split-threshold 2 --split-shares 3
refused "a custodian key without the split" "go together" --custodian-key "$E2E_TMP/c1.pub"
refused "two custodian keys for three shares" "one custodian key per share" --split-threshold 2 --split-shares 3 \
  --shares-out "$S" --custodian-key "$E2E_TMP/c1.pub" --custodian-key "$E2E_TMP/c2.pub"
refused "an RSA custodian key" "invalid_custodian_key" --split-threshold 2 --split-shares 3 --shares-out "$S" \
  --custodian-key "$E2E_TMP/c1.pub" --custodian-key "$E2E_TMP/rsa.pub" --custodian-key "$E2E_TMP/c3.pub"
mkdir "$E2E_TMP/existing"
out=$(init --split-threshold 2 --split-shares 3 --shares-out "$E2E_TMP/existing") && fail "an existing out folder was accepted"
expect_contains "an existing out folder is refused" "share_file_exists" "$out"
[[ ! -e "$D" && -z "$(ls -A "$E2E_TMP/existing")" ]] || fail "a refused init wrote something"
ok "bad split flags create nothing"

# init with a 2-of-3 split.
out=$(init --split-threshold 2 --split-shares 3 --shares-out "$S") || fail "init --split-threshold 2 --split-shares 3: $out"
expect_contains "init reports the data directory" "initialised $D" "$out"
expect_contains "init names the share files" "share-3-of-3.txt" "$out"
expect_eq "share files are 0600" "600" "$(stat -c %a "$S/share-1-of-3.txt")"
expect_eq "the share folder is 0700" "700" "$(stat -c %a "$S")"
for pair in "1 2" "1 3" "2 3"; do
  read -r a b <<<"$pair"
  "$VOUCHD" master-key combine --share "$S/share-$a-of-3.txt" --share "$S/share-$b-of-3.txt" --out "$E2E_TMP/k$a$b" >/dev/null \
    || fail "combine shares $a and $b"
  cmp -s "$E2E_TMP/k$a$b" "$D/master.key" || fail "shares $a and $b did not give DATA/master.key"
done
ok "2 of the 3 init shares give master.key (each pair)"
out=$("$VOUCHD" master-key combine --share "$S/share-2-of-3.txt" --out "$E2E_TMP/k1" 2>&1) && fail "one share accepted"
expect_contains "one init share is refused" "too_few_shares" "$out"
out=$(init --split-threshold 2 --split-shares 3 --shares-out "$E2E_TMP/shares2") && fail "init over a data directory"
expect_contains "a second init is refused" "already holds" "$out"
[[ ! -e "$E2E_TMP/shares2" ]] || fail "a refused second init wrote shares"
ok "a refused second init writes no shares"

# The split is audited as master-key split's is; the manager serves with the key.
record_api
export VOUCH_CONFIG=$E2E_TMP/cli.json
serve_manager
"$VOUCH" login --server "$URL" --ca-file "$CA" --user admin --password-file "$E2E_TMP/admin.pw" >/dev/null || fail "vouch login"
audit=$("$VOUCH" audit list --action master_key.split -o json)
expect_contains "the split at init is audited" '"threshold": 2' "$audit"
expect_contains "the audit entry names the key, not its shares" "\"key_id\": \"$(sed -n 's/^key id \([0-9a-f]*\),.*/\1/p' "$S/share-1-of-3.txt")\"" "$audit"
"$VOUCH" audit verify >/dev/null || fail "vouch audit verify"
ok "the audit chain verifies"
validate_recorded_api
kill "$VOUCHD_PID"
wait "$VOUCHD_PID" 2>/dev/null

# Shares encrypted to custodians at init: two custodians' decrypted shares give the key.
rm -rf "$D"
E=$E2E_TMP/enc
out=$(init --split-threshold 2 --split-shares 3 --shares-out "$E" --custodian-key "$E2E_TMP/c1.pub" \
  --custodian-key "$E2E_TMP/c2.pub" --custodian-key "$E2E_TMP/c3.pub") || fail "init with custodian keys: $out"
grep -q '^VS1-' "$E/share-2-of-3.txt" && fail "an encrypted share file holds the plain code"
for i in 2 3; do
  "$VOUCHD" master-key decrypt-share --share "$E/share-$i-of-3.txt" --custodian-private-key "$E2E_TMP/c$i.key" \
    --out "$E2E_TMP/p$i" >/dev/null || fail "custodian $i decrypts share $i"
done
"$VOUCHD" master-key combine --share "$E2E_TMP/p2" --share "$E2E_TMP/p3" --out "$E2E_TMP/k.enc" >/dev/null || fail "combine"
cmp -s "$E2E_TMP/k.enc" "$D/master.key" || fail "decrypted init shares did not give master.key"
ok "init shares encrypted to custodians: two decrypted shares give master.key"
echo "init_split: all $E2E_PASSED checks passed"
