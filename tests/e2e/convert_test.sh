#!/usr/bin/env bash
# vouch convert + vouch-rte with real tools: images built with umoci (no Docker engine), a local
# docker-registry on loopback, skopeo to pull results back, runc to run converted images.
# Usage: convert_test.sh VOUCH VOUCH_RTE [VOUCHD [VOUCH_AGENT]]
# With VOUCHD: `--app` registration. With VOUCH_AGENT too: the converted image runs under runc with
# the agent socket bind-mounted and serves TLS on its issued certificate.
source "$(dirname "$0")/lib.sh"
VOUCH=$1
RTE=$2
VOUCHD=${3:-}
AGENT=${4:-}
HERE=$(cd "$(dirname "$0")" && pwd)
for tool in docker-registry umoci skopeo runc busybox; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (scripts/setup.d/convert.list)"
done
BUSYBOX=$(command -v busybox)
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' || BUSYBOX=/bin/busybox
cd "$E2E_TMP" || fail "cd $E2E_TMP"
export VOUCH_CONFIG=$E2E_TMP/cli/config.json
RUNC_ROOT=$E2E_TMP/runc
trap 'runc_cleanup; e2e_cleanup' EXIT

# --- registry on loopback ---
PORT=$(free_port)
REG=127.0.0.1:$PORT
cat > registry.yml <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $E2E_TMP/registry}}
http: {addr: $REG}
YML
docker-registry serve registry.yml > registry.log 2>&1 &
E2E_PIDS+=($!)
wait_until "the registry answers on $REG" 100 curl -fsS "http://$REG/v2/"
curl -fsS "http://$REG/v2/" >/dev/null || fail "docker-registry did not start"
ok "docker-registry serves on $REG"

# --- a busybox image built with umoci ---
build_busybox() {  # NAME CMD...
  local name=$1; shift
  umoci init --layout "img-$name" >/dev/null
  umoci new --image "img-$name:v1" >/dev/null
  umoci unpack --image "img-$name:v1" "b-$name" >/dev/null
  mkdir -p "b-$name/rootfs/bin" "b-$name/rootfs/etc"
  cp "$BUSYBOX" "b-$name/rootfs/bin/busybox"
  for l in sh echo sleep cat kill true; do ln -s busybox "b-$name/rootfs/bin/$l"; done
  echo "hello from $name" > "b-$name/rootfs/etc/motd"
  umoci repack --image "img-$name:v1" "b-$name" >/dev/null
  local args=()
  for a in "$@"; do args+=(--config.cmd "$a"); done
  umoci config --image "img-$name:v1" "${args[@]}" --config.env GREETING=hi --config.workingdir /etc >/dev/null
  rm -rf "b-$name"
}
build_busybox app /bin/sh -c 'cat /etc/motd; echo "greeting=$GREETING"; exit 7'
build_busybox sig /bin/sh -c "trap 'echo got-term; exit 42' TERM; echo ready; while :; do sleep 0.1; done"
skopeo copy -q --dest-tls-verify=false oci:img-app:v1 "docker://$REG/apps/busybox:v1" || fail "skopeo push"
ok "test image built with umoci and pushed with skopeo"

# --- registry to registry ---
out=$("$VOUCH" convert --input "$REG/apps/busybox:v1" --output "$REG/apps/busybox:v1-tee" --runtime "$RTE" \
      --signing-key key.pem --no-certificate --isvprodid 12 --isvsvn 3 -o json) || fail "convert registry->registry"
digest=$(jq_get '["digest"]' <<<"$out")
mrenclave=$(jq_get '["mrenclave"]' <<<"$out")
expect_eq "isvprodid in the JSON" 12 "$(jq_get '["isvprodid"]' <<<"$out")"
expect_eq "signing key generated on first use" True "$(python3 -c 'import json,sys; print(json.load(sys.stdin)["signing_key_generated"])' <<<"$out")"
expect_eq "mrsigner is SHA-256 of the public key" \
  "$(openssl pkey -in key.pem -pubout -outform DER | sha256sum | cut -d' ' -f1)" "$(jq_get '["mrsigner"]' <<<"$out")"
inspect=$(skopeo inspect --tls-verify=false "docker://$REG/apps/busybox:v1-tee") || fail "skopeo inspect output"
expect_eq "registry has the converted manifest digest" "$digest" "$(jq_get '["Digest"]' <<<"$inspect")"
expect_eq "one layer added" 2 "$(python3 -c 'import json,sys; print(len(json.load(sys.stdin)["Layers"]))' <<<"$inspect")"
cfg=$(skopeo inspect --tls-verify=false --config "docker://$REG/apps/busybox:v1-tee")
expect_eq "entrypoint is the runtime" '["/vouch/vouch-rte"]' "$(jq_get '["config"]["Entrypoint"]' <<<"$cfg")"
expect_contains "env kept" "GREETING=hi" "$(jq_get '["config"]["Env"]' <<<"$cfg")"
expect_eq "workdir kept" /etc "$(jq_get '["config"]["WorkingDir"]' <<<"$cfg")"
skopeo copy -q --src-tls-verify=false "docker://$REG/apps/busybox:v1-tee" oci:pulled:v1 || fail "skopeo pull back"
ok "converted image pulled back with skopeo"
m2=$("$VOUCH" convert --input oci:img-app:v1 --output "docker-archive:$E2E_TMP/app.tar" --runtime "$RTE" \
     --signing-key key.pem --no-certificate --isvprodid 12 --isvsvn 3 -o json) || fail "convert layout->archive"
expect_eq "same image, same key: same mrenclave (layout->archive)" "$mrenclave" "$(jq_get '["mrenclave"]' <<<"$m2")"
skopeo inspect docker-archive:app.tar > /dev/null || fail "skopeo cannot read the docker archive"
ok "docker-archive output read by skopeo"
skopeo copy -q docker-archive:app.tar oci:from-archive:v1 || fail "skopeo copy from the archive"
ok "docker-archive output copied by skopeo"
m3=$("$VOUCH" convert --input "docker-archive:$E2E_TMP/app.tar" --output oci:twice:v1 --runtime "$RTE" \
     --signing-key key.pem --no-certificate -o json 2>&1)
expect_contains "converting a converted image is refused" "already" "$m3"

# --- --app registers a pending build with the manager ---
if [[ -n "$VOUCHD" ]]; then
  D=$E2E_TMP/manager
  MPORT=$(free_port)
  URL=https://127.0.0.1:$MPORT
  printf 'admin-password-123\n' > admin.pw
  "$VOUCHD" init --data-dir "$D" --admin-user admin --admin-password-file admin.pw --listen "127.0.0.1:$MPORT" --dev \
    >/dev/null || fail "vouchd init"
  "$VOUCHD" serve --data-dir "$D" > vouchd.log 2>&1 &
  E2E_PIDS+=($!)
  wait_healthy "$URL" "$D/service-ca.pem" "${E2E_PIDS[-1]}" || fail "vouchd did not start: $(cat vouchd.log)"
  "$VOUCH" login --server "$URL" --ca-file "$D/service-ca.pem" --user admin --password-file admin.pw >/dev/null \
    || fail "login"
  "$VOUCH" zone create prod --allow-sim >/dev/null || fail "zone create"
  "$VOUCH" app create web --zone prod --domain web.example.com >/dev/null || fail "app create"
  reg=$("$VOUCH" convert --input "$REG/apps/busybox:v1" --output "$REG/apps/busybox:v1-web" --runtime "$RTE" \
        --app web --isvprodid 4 -o json) || fail "convert --app"
  build_id=$(jq_get '["build_id"]' <<<"$reg")
  expect_eq "build registered pending" pending "$(jq_get '["build_status"]' <<<"$reg")"
  expect_eq "default signing key kept beside the context" "$E2E_TMP/cli/signing-key.pem" "$(jq_get '["signing_key"]' <<<"$reg")"
  expect_eq "signing key file is private" 600 "$(stat -c %a "$E2E_TMP/cli/signing-key.pem")"
  b=$("$VOUCH" build get "$build_id" -o json) || fail "build get"
  expect_eq "manager has the converter's mrenclave" "$(jq_get '["mrenclave"]' <<<"$reg")" \
    "$(jq_get '["measurements"]["mrenclave"]' <<<"$b")"
  expect_eq "manager has the image digest" "$(jq_get '["digest"]' <<<"$reg")" "$(jq_get '["image_digest"]' <<<"$b")"
  err=$(VOUCH_CONFIG=$E2E_TMP/nobody.json "$VOUCH" convert --input oci:img-app:v1 --output oci:never:v1 \
        --runtime "$RTE" --app web --signing-key key.pem 2>&1)
  [[ ! -d never ]] || fail "converted although --app could not be registered"
  expect_contains "--app without a login is refused before converting" "login" "$err"
fi

# --- hostile and broken inputs: a clear error and nothing pushed ---
hostile() {  # KIND EXPECTED-TEXT [extra convert args...]
  python3 "$HERE/make_image.py" "bad-$1" "$1"
  local err
  err=$("$VOUCH" convert --input "oci:bad-$1:t" --output "$REG/bad/$1:t" --runtime "$RTE" --signing-key key.pem \
        --no-certificate "${@:3}" 2>&1 >/dev/null)
  local rc=$?
  [[ $rc -ne 0 ]] || fail "hostile image $1 was converted"
  [[ $(wc -l <<<"$err") -eq 1 ]] || fail "hostile image $1: expected one line of error, got: $err"
  expect_contains "hostile image $1 refused" "$2" "$err"
  echo "  # $err"
  curl -fsS "http://$REG/v2/bad/$1/manifests/t" >/dev/null 2>&1 && fail "hostile image $1: something was pushed"
  ok "hostile image $1: nothing pushed"
}
hostile dotdot '".."'
hostile absolute "absolute path"
hostile symlink-escape "escapes the image root"
hostile device "device node"
hostile through-symlink "passes through the symlink"
hostile truncated "truncated gzip input"
hostile truncated-tar "runcated"
hostile digest-mismatch "expected"
hostile diff-id-mismatch "but the image config's rootfs.diff_ids[0] is sha256:"
hostile wrong-media-type "not an image config"
hostile multiarch "no manifest for platform linux/amd64 (it offers: linux/arm64/v8)"
# Decompression bombs (~260 KB of gzip, 256 MiB of zeros) against --max-content-size: refused at
# the tar header that crosses the limit, so at most the limit is inflated.
hostile bomb-entry "tar entry zero0 is 268435456 bytes, more than the limit 67108864" --max-content-size 64M
hostile bomb-many "uncompressed image content exceeds the limit of 67108864 bytes" --max-content-size 64M
"$VOUCH" convert --input oci:bad-bomb-many:t --output oci:bomb-ok:t --runtime "$RTE" --signing-key key.pem \
  --no-certificate -o json > /dev/null || fail "the same layer under the default --max-content-size"
ok "the bomb layer converts under the default limit (64G): the limit, not the ratio, decides"
# Layers whose registry manifest lies about their size (docker-registry does not check it).
lying() {  # NAME SIZE-EXPRESSION EXPECTED-TEXT: re-tag the base image with the layer size changed
  python3 - "http://$REG/v2/bad/lying" "$2" "$1" <<'PY' || fail "cannot push the lying manifest $1"
import json, sys, urllib.request
base, expr, tag = sys.argv[1:4]
acc = "application/vnd.oci.image.manifest.v1+json"
m = json.load(urllib.request.urlopen(urllib.request.Request(base + "/manifests/orig", headers={"Accept": acc})))
size = m["layers"][0]["size"]
m["layers"][0]["size"] = eval(expr, {"size": size})
req = urllib.request.Request(base + "/manifests/" + tag, data=json.dumps(m).encode(), method="PUT",
                             headers={"Content-Type": acc})
urllib.request.urlopen(req)
PY
  local err
  err=$("$VOUCH" convert --input "$REG/bad/lying:$1" --output "$REG/bad/lying-out:$1" --runtime "$RTE" \
        --signing-key key.pem --no-certificate 2>&1 >/dev/null)
  [[ $? -ne 0 ]] || fail "layer with a lying size ($1) was converted"
  [[ $(wc -l <<<"$err") -eq 1 ]] || fail "lying size $1: expected one line of error, got: $err"
  expect_contains "layer size lie ($1) refused" "$3" "$err"
  curl -fsS "http://$REG/v2/bad/lying-out/manifests/$1" >/dev/null 2>&1 && fail "lying size $1: something was pushed"
  ok "lying size $1: nothing pushed"
}
python3 "$HERE/make_image.py" lying-base plain
skopeo copy -q --dest-tls-verify=false oci:lying-base:t "docker://$REG/bad/lying:orig" || fail "skopeo push lying-base"
lying huge "100 << 30" "over the limit"
lying smaller "size // 2" "larger than its announced size"
lying larger "size + 100" "truncated"
python3 "$HERE/make_image.py" zstd zstd
"$VOUCH" convert --input oci:zstd:t --output oci:zstd-out:t --runtime "$RTE" --signing-key key.pem \
  --no-certificate -o json > /dev/null || fail "zstd layer"
ok "zstd layer converted"
"$VOUCH" convert --input oci:bad-multiarch:t --platform linux/arm64 --output oci:arm:t --runtime "$RTE" \
  --signing-key key.pem --no-certificate -o json > /dev/null || fail "--platform linux/arm64"
ok "--platform picks the arm64 manifest from an index"

# --- run with runc ---
bundle() {  # IMAGE-LAYOUT:TAG DIR
  umoci unpack --image "$1" "$2" >/dev/null || fail "umoci unpack $1"
  python3 - "$2/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["process"]["terminal"] = False
json.dump(c, open(sys.argv[1], "w"))
PY
}
bundle pulled:v1 run-app
log=$(cd run-app && runc --root "$RUNC_ROOT" run app1 2>&1)
rc=$?
expect_eq "application exit code passes through vouch-rte" 7 "$rc"
expect_contains "application ran with its files" "hello from app" "$log"
expect_contains "application got the manifest env" "greeting=hi" "$log"
expect_contains "runtime verified the files" "verified" "$log"

"$VOUCH" convert --input oci:img-sig:v1 --output oci:sig-out:v1 --runtime "$RTE" --signing-key key.pem \
  --no-certificate -o json > /dev/null || fail "convert sig image"
bundle sig-out:v1 run-sig
(cd run-sig && exec runc --root "$RUNC_ROOT" run sig1 > ../sig.log 2>&1) &
runpid=$!
wait_until "the signal test app is ready" 100 file_has sig.log ready
runc --root "$RUNC_ROOT" kill sig1 TERM
wait $runpid
expect_eq "SIGTERM forwarded to the application, its exit code returned" 42 $?
expect_contains "the application saw SIGTERM" "got-term" "$(cat sig.log)"

bundle pulled:v1 run-bad
echo "tampered" >> run-bad/rootfs/etc/motd
log=$(cd run-bad && runc --root "$RUNC_ROOT" run bad1 2>&1)
rc=$?
expect_eq "modified file: runtime refuses to start" 1 "$rc"
expect_contains "modified file named" "integrity check failed: /etc/motd" "$log"
[[ "$log" != *"hello from app"* ]] || fail "the application ran despite the modified file"
ok "the application did not run"

# --- with the agent: certificate, TLS from the host, pending build, heartbeats ---
if [[ -n "$VOUCHD" && -n "$AGENT" ]]; then
  "$VOUCH" zone ca default > zone-ca.pem || fail "zone ca default"
  "$VOUCH" app create tls --zone default --domain tls.example.com >/dev/null || fail "app create tls"
  approve_domains "$VOUCH" tls
  A=$E2E_TMP/agent
  SOCK=$A/agent.sock
  TOKEN=$("$VOUCH" zone join-token default) || fail "join-token"
  "$AGENT" --server "$URL" --ca-file "$D/service-ca.pem" --data-dir "$A" --socket "$SOCK" --tee sim --sim "$D/sim" \
    --join-token "$TOKEN" --batch-interval-ms 200 > agent.log 2>&1 &
  E2E_PIDS+=($!)
  wait_agent_socket "$SOCK" agent.log
  ok "vouch-agent provisioned with the sim TEE"

  # An image with openssl and its libraries copied in (no package manager, no Docker).
  umoci init --layout img-tls >/dev/null
  umoci new --image img-tls:v1 >/dev/null
  umoci unpack --image img-tls:v1 b-tls >/dev/null
  mkdir -p b-tls/rootfs/bin b-tls/rootfs/usr/bin
  cp "$BUSYBOX" b-tls/rootfs/bin/busybox
  for l in sh echo sleep cat; do ln -s busybox "b-tls/rootfs/bin/$l"; done
  cp /usr/bin/openssl b-tls/rootfs/usr/bin/openssl
  for lib in $(ldd /usr/bin/openssl | grep -oE '/[^ ]+'); do
    mkdir -p "b-tls/rootfs$(dirname "$lib")"
    cp -L "$lib" "b-tls/rootfs$lib"
  done
  umoci repack --image img-tls:v1 b-tls >/dev/null
  rm -rf b-tls
  TPORT=$(free_port)
  umoci config --image img-tls:v1 --config.entrypoint /usr/bin/openssl --config.cmd s_server \
    --config.cmd -accept --config.cmd "$TPORT" --config.cmd -cert --config.cmd /run/vouch/certs/cert.pem \
    --config.cmd -key --config.cmd /run/vouch/certs/key.pem --config.cmd -www >/dev/null
  conv=$("$VOUCH" convert --input oci:img-tls:v1 --output oci:tls-out:v1 --runtime "$RTE" --app tls \
         --cert-dns tls.example.com --heartbeat-interval 1 -o json) || fail "convert the openssl image"
  TLS_BUILD=$(jq_get '["build_id"]' <<<"$conv")
  "$VOUCH" convert --input oci:img-tls:v1 --output oci:tls-pending:v1 --runtime "$RTE" --app tls \
    --cert-dns tls.example.com --isvsvn 9 -o json >/dev/null || fail "convert the pending build"

  runc_bundle() {  # IMAGE DIR: unpack, agent socket bind-mounted, host network
    bundle "$1" "$2"
    python3 - "$2/config.json" "$SOCK" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["mounts"].append({"destination": "/run/vouch/agent.sock", "type": "bind", "source": sys.argv[2], "options": ["bind"]})
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
json.dump(c, open(sys.argv[1], "w"))
PY
  }
  # Pending: no certificate, the runtime says why, the app does not start.
  runc_bundle tls-pending:v1 run-pending
  (cd run-pending && exec runc --root "$RUNC_ROOT" run pend1 > ../pending.log 2>&1) &
  pendpid=$!
  wait_until "the pending build's runtime says it has no certificate yet" 100 file_has pending.log "no certificate yet"
  expect_contains "pending build: the runtime says why" "build_pending" "$(cat pending.log)"
  [[ ! -e run-pending/rootfs/run/vouch/certs/cert.pem ]] || fail "a certificate was written for a pending build"
  ok "pending build: no certificate issued"
  runc --root "$RUNC_ROOT" kill pend1 TERM
  wait $pendpid
  expect_eq "pending runtime stops on SIGTERM" 143 $?

  # Approved: openssl s_server inside serves the issued certificate to the host.
  "$VOUCH" task approve "$("$VOUCH" build get "$TLS_BUILD" -o json | jq_get '["task_id"]')" >/dev/null || fail "approve"
  runc_bundle tls-out:v1 run-tls
  (cd run-tls && exec runc --root "$RUNC_ROOT" run tls1 > ../tls.log 2>&1) &
  tlspid=$!
  wait_until "the converted app listens on port $TPORT" 200 tcp_open "$TPORT"
  out=$(echo | openssl s_client -connect "127.0.0.1:$TPORT" -verify_return_error -CAfile zone-ca.pem \
        -verify_hostname tls.example.com 2>&1)
  expect_contains "s_client -verify_return_error -CAfile zone-ca.pem accepts the converted app" "Verification: OK" "$out"
  code=$(curl -s -o /dev/null -w '%{http_code}' --cacert zone-ca.pem --resolve "tls.example.com:$TPORT:127.0.0.1" \
         "https://tls.example.com:$TPORT/")
  expect_eq "curl --cacert zone-ca.pem reaches the converted app" 200 "$code"
  tls_instance_is() { "$VOUCH" instance list --app tls -o json | grep -q "\"$1\"" || { echo "no $1 instance"; return 1; }; }
  wait_until "a heartbeat shows the tls instance running" 50 tls_instance_is running
  inst=$("$VOUCH" instance list --app tls -o json)
  expect_contains "heartbeats show the instance running" '"running"' "$inst"
  runc --root "$RUNC_ROOT" kill tls1 TERM
  wait $tlspid
  rc=$?
  [[ $rc -ne 0 ]] || true
  wait_until "a heartbeat shows the tls instance stopped" 100 tls_instance_is stopped
  expect_contains "heartbeats show the instance stopped" '"stopped"' "$("$VOUCH" instance list --app tls -o json)"

  # Start-up benchmark (BENCHMARKS.md): CONVERT_STARTUP_RUNS=N times `runc run` until the app
  # completes a TLS handshake, converted image vs. the original image with a pre-made certificate.
  if [[ -n "${CONVERT_STARTUP_RUNS:-}" ]]; then
    bundle img-tls:v1 run-orig
    python3 - "run-orig/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
json.dump(c, open(sys.argv[1], "w"))
PY
    mkdir -p run-orig/rootfs/run/vouch/certs
    cp run-tls/rootfs/run/vouch/certs/*.pem run-orig/rootfs/run/vouch/certs/
    time_to_tls() {  # DIR ID -> seconds from `runc run` to a completed, verified handshake
      # One Python process starts runc and polls (every 2 ms) with a TLS client that verifies
      # the chain against the zone CA; no process start per poll blurs the figure.
      python3 - "$1" "$2" "$TPORT" "$RUNC_ROOT" <<'PY'
import socket, ssl, subprocess, sys, time
bundle, cid, port, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
ctx = ssl.create_default_context(cafile="zone-ca.pem")
ctx.check_hostname = False
log = open(f"{cid}.log", "wb")
t0 = time.monotonic()
p = subprocess.Popen(["runc", "--root", root, "run", cid], cwd=bundle, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
while True:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            with ctx.wrap_socket(s) as t:
                break
    except (OSError, ssl.SSLError):
        if time.monotonic() - t0 > 30:
            sys.exit("no TLS server after 30 s")
        time.sleep(0.002)
t1 = time.monotonic()
subprocess.run(["runc", "--root", root, "kill", cid, "KILL"], stderr=subprocess.DEVNULL)
p.wait()
subprocess.run(["runc", "--root", root, "delete", "-f", cid], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(f"{t1 - t0:.3f}")
PY
    }
    for i in $(seq 1 "$CONVERT_STARTUP_RUNS"); do
      o=$(time_to_tls run-orig "orig$i"); c=$(time_to_tls run-tls "conv$i")
      echo "startup run $i: original ${o}s converted ${c}s"
    done
  fi
fi

echo "PASS convert_test ($E2E_PASSED checks)"
