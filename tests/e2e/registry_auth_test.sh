#!/usr/bin/env bash
# vouch convert against auth-enabled docker-registry instances (no Docker engine):
#  - registry A: `auth: htpasswd` (bcrypt, htpasswd -B) over TLS from a test CA on 127.0.0.2
#    (so it is not treated as a loopback HTTP registry; --registry-ca-file)
#  - registry B: `auth: token` over HTTP on 127.0.0.1, with registry_token_server.py (HTTPS, same
#    test CA) issuing RS256 JWTs whose x5c chain ends at the registry's rootcertbundle.
# Checks: credentials from flags and from a Docker-style config.json ($DOCKER_CONFIG and
# --authfile), registry-to-registry both ways with auth on both ends, skopeo reads the result,
# wrong or missing credentials are one clear line, a non-zero exit and nothing pushed.
# Usage: registry_auth_test.sh VOUCH VOUCH_RTE
source "$(dirname "$0")/lib.sh"
VOUCH=$1
RTE=$2
require_tools docker-registry umoci skopeo htpasswd openssl busybox
cd "$E2E_TMP" || fail "cd $E2E_TMP"
export VOUCH_CONFIG=$E2E_TMP/cli/config.json
unset DOCKER_CONFIG
export HOME=$E2E_TMP/home
mkdir -p "$HOME"

# --- PKI: a TLS CA (registry A, token server) and a token-signing CA (registry B's rootcertbundle) ---
make_registry_pki
ok "test CAs and certificates made with openssl"

# --- registry A: htpasswd (bcrypt) over TLS on 127.0.0.2 ---
printf 'alice-secret-1\n' > alice.pw
printf 'bob-secret-2\n' > bob.pw
printf 'wrong-password\n' > wrong.pw
htpasswd -B -b -c htpasswd alice alice-secret-1 >/dev/null 2>&1 || fail "htpasswd -B"
PA=$(free_port)
REGA=127.0.0.2:$PA
start_registry a "$REGA" --tls --htpasswd "$E2E_TMP/htpasswd"

# --- token server + registry B: token auth over HTTP on 127.0.0.1 ---
printf 'bob:bob-secret-2\nalice:alice-secret-1\n' > token-users
PT=$(free_port)
start_token_server "$PT" token-users
PB=$(free_port)
REGB=127.0.0.1:$PB
start_registry b "$REGB" --token "$PT"
touch token.log
# registry A, registry B and the token server answer (401, 401, 200)
servers_up() {
  local a b t
  a=$(curl -s -o /dev/null -w '%{http_code}' --cacert tls-ca.pem "https://$REGA/v2/")
  b=$(curl -s -o /dev/null -w '%{http_code}' "http://$REGB/v2/")
  t=$(curl -s -o /dev/null -w '%{http_code}' --cacert tls-ca.pem "https://127.0.0.1:$PT/token?service=x")
  echo "$a $b $t: $(tail -c 300 a.log b.log token-server.log 2>/dev/null)"
  [[ $a == 401 && $b == 401 && $t == 200 ]]
}
wait_until "both registries and the token server answer (401 401 200)" 100 servers_up
expect_contains "registry A asks for Basic" 'Basic realm="vouch-e2e"' \
  "$(curl -s -D - -o /dev/null --cacert tls-ca.pem "https://$REGA/v2/")"
expect_contains "registry B asks for a Bearer token" "Bearer realm=\"https://127.0.0.1:$PT/token\"" \
  "$(curl -s -D - -o /dev/null "http://$REGB/v2/")"

# --- a busybox image, pushed with skopeo to both registries ---
image_begin img:v1
image_add_busybox sh
mkdir -p "$IMAGE_ROOT/etc"
echo "hello" > "$IMAGE_ROOT/etc/motd"
image_end img:v1
umoci config --image img:v1 --config.cmd /bin/sh >/dev/null
mkdir certs.d && cp tls-ca.pem certs.d/ca.crt
skopeo copy -q --dest-cert-dir certs.d --dest-creds alice:alice-secret-1 oci:img:v1 "docker://$REGA/src/app:v1" \
  || fail "skopeo push to the htpasswd registry"
skopeo copy -q --dest-tls-verify=false --dest-creds bob:bob-secret-2 oci:img:v1 "docker://$REGB/src/app:v1" \
  || fail "skopeo push to the token registry"
ok "test image pushed to both registries with skopeo"

# manifest_in STORE REPO TAG: does the registry's storage hold that tag? (no credentials needed)
manifest_in() { [[ -e "$1/docker/registry/v2/repositories/$2/_manifests/tags/$3" ]]; }
repo_in() { [[ -e "$1/docker/registry/v2/repositories/$2" ]]; }
CONV_NOCA=(--runtime "$RTE" --signing-key key.pem --no-certificate -o json)
CONV=("${CONV_NOCA[@]}" --registry-ca-file tls-ca.pem)

# --- A (Basic, HTTPS) -> B (Bearer), credentials from flags ---
out=$("$VOUCH" convert --input "$REGA/src/app:v1" --output "$REGB/tee/app:v1" "${CONV[@]}" \
      --input-user alice --input-password-file alice.pw --output-user bob --output-password-file bob.pw) \
  || fail "convert htpasswd registry -> token registry"
digest=$(jq_get '["digest"]' <<<"$out")
inspect=$(skopeo inspect --tls-verify=false --creds bob:bob-secret-2 "docker://$REGB/tee/app:v1") \
  || fail "skopeo inspect of the converted image"
expect_eq "Basic in, Bearer out: token registry holds the converted digest" "$digest" "$(jq_get '["Digest"]' <<<"$inspect")"
expect_eq "converted image has the runtime layer" 2 \
  "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["Layers"]))' <<<"$inspect")"
# docker-registry's challenge lists the actions in Go map order, so either order is a push token.
grep -qE "^issued user=bob service=vouch-e2e-registry scope=repository:tee/app:(pull,push|push,pull)$" token.log \
  || fail "token server issued no push token for bob: $(head -c 400 token.log)"
ok "token server issued a push token for bob"
skopeo copy -q --src-tls-verify=false --src-creds bob:bob-secret-2 "docker://$REGB/tee/app:v1" oci:pulled:v1 \
  || fail "skopeo pull of the converted image"
ok "converted image pulled back from the token registry with skopeo"

# --- B (Bearer) -> A (Basic, HTTPS), credentials from $DOCKER_CONFIG/config.json ---
b64() { printf '%s' "$1" | base64 -w0; }
mkdir -p dockercfg
cat > dockercfg/config.json <<JSON
{"auths": {"$REGA": {"auth": "$(b64 alice:alice-secret-1)"},
           "http://$REGB": {"auth": "$(b64 bob:bob-secret-2)"}}}
JSON
out=$(DOCKER_CONFIG=$E2E_TMP/dockercfg "$VOUCH" convert --input "$REGB/src/app:v1" --output "$REGA/tee/app:v2" \
      "${CONV[@]}") || fail "convert token registry -> htpasswd registry with \$DOCKER_CONFIG"
digest=$(jq_get '["digest"]' <<<"$out")
inspect=$(skopeo inspect --cert-dir certs.d --creds alice:alice-secret-1 "docker://$REGA/tee/app:v2") \
  || fail "skopeo inspect on registry A"
expect_eq "Bearer in, Basic out (\$DOCKER_CONFIG/config.json): htpasswd registry holds the digest" "$digest" \
  "$(jq_get '["Digest"]' <<<"$inspect")"
expect_contains "token server issued a pull token for bob" \
  "issued user=bob service=vouch-e2e-registry scope=repository:src/app:pull" "$(cat token.log)"

# --- --authfile, ~/.docker/config.json ignored when --authfile is given ---
mkdir -p "$HOME/.docker"
cat > "$HOME/.docker/config.json" <<JSON
{"auths": {"$REGA": {"auth": "$(b64 alice:nope)"}, "$REGB": {"auth": "$(b64 bob:nope)"}}}
JSON
out=$("$VOUCH" convert --input "$REGA/src/app:v1" --output "$REGB/tee/app:v3" "${CONV[@]}" \
      --authfile dockercfg/config.json) || fail "convert with --authfile"
expect_eq "--authfile: token registry holds the digest" "$(jq_get '["digest"]' <<<"$out")" \
  "$(skopeo inspect --tls-verify=false --creds bob:bob-secret-2 "docker://$REGB/tee/app:v3" | jq_get '["Digest"]')"

# --- wrong and missing credentials: one line, non-zero, nothing pushed ---
refused() {  # WHAT EXPECTED-TEXT STORE REPO -- convert args...
  local what=$1 want=$2 store=$3 repo=$4
  shift 5
  local err rc
  err=$("$VOUCH" convert "${CONV_NOCA[@]}" "$@" 2>&1 >/dev/null)
  rc=$?
  [[ $rc -ne 0 ]] || fail "$what: convert succeeded"
  [[ $(wc -l <<<"$err") -eq 1 ]] || fail "$what: expected one line of error, got: $err"
  expect_contains "$what: clear error" "$want" "$err"
  [[ $err != *"vouch login"* ]] || fail "$what: a registry refusal should not point at vouch login: $err"
  echo "  # $err"
  ! repo_in "$store" "$repo" || fail "$what: something was pushed to $repo"
  ok "$what: nothing pushed"
}
# ~/.docker/config.json now holds wrong passwords for both registries.
CA=(--registry-ca-file tls-ca.pem)
refused "wrong output password (token server refuses)" 'token service https://127.0.0.1:'"$PT"'/token refused the credentials of user "bob"' store-b wrongout \
  -- "${CA[@]}" --input "$REGA/src/app:v1" --output "$REGB/wrongout/app:v1" --input-user alice --input-password-file alice.pw
expect_contains "token server saw the wrong password" "refused user=bob" "$(cat token.log)"
refused "wrong input password (htpasswd registry refuses)" "refused the credentials" store-b wrongin \
  -- "${CA[@]}" --input "$REGA/src/app:v1" --output "$REGB/wrongin/app:v1" --input-user alice --input-password-file wrong.pw \
  --output-user bob --output-password-file bob.pw
refused "wrong output password (htpasswd registry refuses)" "refused the credentials" store-a wrongout \
  -- "${CA[@]}" --input "$REGB/src/app:v1" --output "$REGA/wrongout/app:v1" --input-user bob --input-password-file bob.pw \
  --output-user alice --output-password-file wrong.pw
rm -rf "$HOME/.docker"
refused "no credentials for the htpasswd registry" "needs credentials" store-b nocred \
  -- "${CA[@]}" --input "$REGA/src/app:v1" --output "$REGB/nocred/app:v1" --output-user bob --output-password-file bob.pw
refused "no credentials for the token registry" "needs credentials" store-b anon \
  -- "${CA[@]}" --input "$REGA/src/app:v1" --output "$REGB/anon/app:v1" --input-user alice --input-password-file alice.pw
refused "registry CA not trusted" "certificate" store-b noca \
  -- --input "$REGA/src/app:v1" --output "$REGB/noca/app:v1" --registry-ca-file token-ca.pem --input-user alice --input-password-file alice.pw \
  --output-user bob --output-password-file bob.pw

echo "PASS registry_auth_test ($E2E_PASSED checks)"
