#!/usr/bin/env bash
# Master-key custody and rotation (issue 18, docs/custody.md): split 2-of-3 while serving, combine
# (too few, flipped digit, mixed splits refused), rotation refused while vouchd serves, rotation
# killed by SIGKILL (137, sent by the process to itself at the step) inside its transaction and after its commit: each restart serves
# with wholly the old or wholly the new key, and a later rotation opens every sealed value.
# Usage: master_key_test.sh VOUCHD VOUCH
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "$0")/lib.sh"
VOUCHD=$1
VOUCH=$2

start_dev_manager --heartbeat-interval 10
"$VOUCH" zone create prod >/dev/null || fail "vouch zone create prod"
ok "manager serving with zones default and prod"

# Custody: split while serving; the share files are private.
S=$E2E_TMP/shares
out=$("$VOUCHD" master-key split --data-dir "$D" --threshold 2 --shares 3 --out "$S" 2>&1) || fail "split: $out"
expect_contains "split names the key and its files" "share-3-of-3.txt" "$out"
expect_eq "share files are 0600" "600" "$(stat -c %a "$S/share-2-of-3.txt")"
"$VOUCHD" master-key combine --share "$S/share-3-of-3.txt" --share "$S/share-1-of-3.txt" --out "$E2E_TMP/k" >/dev/null \
  || fail "combine 2 of 3"
cmp -s "$E2E_TMP/k" "$D/master.key" || fail "2 of 3 shares did not give master.key"
ok "any 2 of the 3 shares give master.key"
out=$("$VOUCHD" master-key combine --share "$S/share-2-of-3.txt" --out "$E2E_TMP/k1" 2>&1) && fail "one share accepted"
expect_contains "one share is refused" "too_few_shares" "$out"
python3 - "$S/share-2-of-3.txt" "$E2E_TMP/bad.txt" <<'PY'
import sys
lines = open(sys.argv[1]).read().split("\n")
i = next(n for n, l in enumerate(lines) if l.startswith("VS1-"))
l = lines[i]; p = 30
lines[i] = l[:p] + ("1" if l[p] != "1" else "2") + l[p + 1:]
open(sys.argv[2], "w").write("\n".join(lines))
PY
out=$("$VOUCHD" master-key combine --share "$S/share-1-of-3.txt" --share "$E2E_TMP/bad.txt" --out "$E2E_TMP/k2" 2>&1) \
  && fail "a flipped digit was accepted"
expect_contains "a flipped digit is refused" "share_corrupt" "$out"
[[ ! -e "$E2E_TMP/k2" ]] || fail "a refused combine wrote a key"
ok "a refused combine writes nothing"

# Shares encrypted to custodians' P-256 keys: each custodian decrypts only their own.
for i in 1 2 3; do
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$E2E_TMP/c$i.key" 2>/dev/null || fail "openssl genpkey"
  openssl pkey -in "$E2E_TMP/c$i.key" -pubout -out "$E2E_TMP/c$i.pub" 2>/dev/null || fail "openssl pkey -pubout"
done
E=$E2E_TMP/enc
"$VOUCHD" master-key split --data-dir "$D" --threshold 2 --shares 3 --out "$E" \
  --custodian-key "$E2E_TMP/c1.pub" --custodian-key "$E2E_TMP/c2.pub" --custodian-key "$E2E_TMP/c3.pub" >/dev/null \
  || fail "split to custodian keys"
grep -q '^VS1-' "$E/share-1-of-3.txt" && fail "an encrypted share file holds the plain code"
out=$("$VOUCHD" master-key decrypt-share --share "$E/share-1-of-3.txt" --custodian-private-key "$E2E_TMP/c2.key" \
  --out "$E2E_TMP/p1-wrong" 2>&1) && fail "another custodian decrypted share 1"
expect_contains "another custodian's key is refused" "wrong_custodian_key" "$out"
"$VOUCHD" master-key decrypt-share --share "$E/share-1-of-3.txt" --custodian-private-key "$E2E_TMP/c1.key" \
  --out "$E2E_TMP/p1" >/dev/null || fail "custodian 1 decrypts share 1"
"$VOUCHD" master-key decrypt-share --share "$E/share-3-of-3.txt" --custodian-private-key "$E2E_TMP/c3.key" \
  --out "$E2E_TMP/p3" >/dev/null || fail "custodian 3 decrypts share 3"
"$VOUCHD" master-key combine --share "$E2E_TMP/p1" --share "$E2E_TMP/p3" --out "$E2E_TMP/k.enc" >/dev/null \
  || fail "combine decrypted shares"
cmp -s "$E2E_TMP/k.enc" "$D/master.key" || fail "decrypted shares did not give master.key"
ok "shares encrypted to custodians: two decrypted shares give master.key"

# Rotation is offline: refused while vouchd serves.
cp "$D/master.key" "$E2E_TMP/key.0"
out=$("$VOUCHD" master-key rotate --data-dir "$D" 2>&1) && fail "rotation ran while vouchd serves"
expect_contains "rotation refused while serving" "stop vouchd" "$out"
cmp -s "$E2E_TMP/key.0" "$D/master.key" || fail "a refused rotation changed master.key"
kill -TERM "$VOUCHD_PID"
wait_until "vouchd stopped" 200 process_gone "$VOUCHD_PID"

# Killed inside the transaction: the restart rolls back to the old key.
"$VOUCHD" master-key rotate --data-dir "$D" --test-crash-at in_transaction >/dev/null 2>&1
expect_eq "rotation died inside its transaction" "137" "$?"
[[ -e "$D/master.key.next" ]] || fail "the crash left no master.key.next"
serve_manager
cmp -s "$E2E_TMP/key.0" "$D/master.key" || fail "after a crash before commit master.key is not the old key"
[[ ! -e "$D/master.key.next" ]] || fail "master.key.next survived the restart"
ok "crash before commit: serving with wholly the old key"
kill -TERM "$VOUCHD_PID"
wait_until "vouchd stopped" 200 process_gone "$VOUCHD_PID"

# Killed after the commit, before the files moved: the restart completes the rotation.
"$VOUCHD" master-key rotate --data-dir "$D" --test-crash-at committed >/dev/null 2>&1
expect_eq "rotation died after its commit" "137" "$?"
cp "$D/master.key.next" "$E2E_TMP/key.1"
serve_manager
cp "$D/tls/server.key.sealed" "$E2E_TMP/tls.1"
cmp -s "$E2E_TMP/key.1" "$D/master.key" || fail "after a crash after commit master.key is not the new key"
ok "crash after commit: serving with wholly the new key"
"$VOUCH" zone create staging >/dev/null || fail "zone create after the rotation"
audit=$("$VOUCH" audit list 2>&1)
expect_contains "the rotation is audited" "master_key.rotate" "$audit"
"$VOUCH" audit verify >/dev/null || fail "vouch audit verify after the rotations"
ok "the audit chain verifies"
kill -TERM "$VOUCHD_PID"
wait_until "vouchd stopped" 200 process_gone "$VOUCHD_PID"

# A clean rotation re-seals every value: it opens each one with master.key first, so it proves
# none (zone CAs default, prod, staging; the node CA) is left under another key.
out=$("$VOUCHD" master-key rotate --data-dir "$D" 2>&1) || fail "rotation: $out"
expect_contains "every zone CA key re-sealed" "3 zone CA key(s), the node CA key" "$out"
cmp -s "$E2E_TMP/key.1" "$D/master.key" && fail "the clean rotation kept the key"
# Shares of an older key still combine to that key, which no longer opens the store.
"$VOUCHD" master-key combine --share "$S/share-1-of-3.txt" --share "$S/share-2-of-3.txt" --out "$E2E_TMP/k.old" >/dev/null \
  || fail "combine old shares"
cmp -s "$E2E_TMP/k.old" "$E2E_TMP/key.0" || fail "old shares did not give the old key"
ok "old shares give the old key only"
# A member still holding an older key is told to re-join.
M2=$E2E_TMP/member
cp -a "$D" "$M2"
cp "$E2E_TMP/key.1" "$M2/master.key"
cp "$E2E_TMP/tls.1" "$M2/tls/server.key.sealed"
chmod 600 "$M2/master.key"
out=$("$VOUCHD" serve --data-dir "$M2" --listen "127.0.0.1:$(free_port)" 2>&1) && fail "an old-key member served"
expect_contains "an old-key member refuses to start" "must re-join" "$out"
serve_manager
ok "serving after the rotations"
echo "master_key: $E2E_PASSED checks passed"
