#!/usr/bin/env bash
# Server-side conversion (issue 15) versus the physical floor, in the same run (BENCHMARKS.md
# "Server-side conversion"). Per run:
#   floor       bench_convert's floor on the same image (one pass that decompresses every layer
#               and SHA-256-hashes the decompressed stream, libarchive + OpenSSL, one thread), and
#               in the same process its CLI conversion layout -> layout (BENCHMARKS.md "Conversion");
#   server      POST /api/v1/conversions to a vouchd (release build, SQLite, one worker) until the
#               job record says done: vouchd pulls the image from a local docker-registry (HTTP on
#               loopback, digests checked), converts it with the app's sealed key, pushes the
#               output to the same repository under a new tag (the input layers are already there:
#               only the runtime layer, config and manifest are uploaded) and records the build.
#               Timed by the client, polling GET /api/v1/conversions/{id} every 20 ms;
#               "worker": the workers' own time for it (vouch_conversion_duration_seconds, from
#               the claim to the pushed output; without the POST, the claim and the final write);
#   first update  POST until the first record whose progress shows bytes done (and until the job
#               left "queued").
# Prints the load average with each figure. The image is bench/make_big_image.sh's (made if DIR
# does not exist).
# Usage: bench/convert_service_bench.sh [DIR [RUNS]]     (DIR default /tmp/convert-bench/big, tag $TAG or "big")
#        BUILD=build/release by default (vouchd, vouch, vouch-rte, bench_convert).
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(cd "${BUILD:-$SRC/build/release}" && pwd)
IMAGE=${1:-/tmp/convert-bench/big}
RUNS=${2:-3}
TAG=${TAG:-big}
VOUCHD=$BUILD/apps/vouchd/vouchd
VOUCH=$BUILD/apps/vouch/vouch
RTE=$BUILD/apps/vouch-rte/vouch-rte
BENCH_CONVERT=$BUILD/bench/bench_convert
for f in "$VOUCHD" "$VOUCH" "$RTE" "$BENCH_CONVERT"; do [[ -x $f ]] || { echo "missing $f (build it)" >&2; exit 2; }; done
for t in docker-registry skopeo umoci curl python3; do command -v "$t" >/dev/null || { echo "$t is not installed" >&2; exit 2; }; done
[[ -d $IMAGE ]] || "$SRC/bench/make_big_image.sh" "$IMAGE"

TMP=$(mktemp -d /tmp/vouch-convsvc-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# --- a local docker-registry holding the image ---
RP=$(free_port)
REG=127.0.0.1:$RP
cat >"$TMP/reg.yml" <<YML
version: 0.1
log: {level: error}
storage: {filesystem: {rootdirectory: $TMP/registry}}
http: {addr: "$REG"}
YML
docker-registry serve "$TMP/reg.yml" >"$TMP/reg.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do curl -fsS "http://$REG/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
skopeo copy -q --dest-tls-verify=false "oci:$IMAGE:$TAG" "docker://$REG/bench/image:in"

# --- vouchd (dev data directory, SQLite) and the CLI ---
D=$TMP/manager
MP=$(free_port)
URL=https://127.0.0.1:$MP
printf 'bench-password-123\n' >"$TMP/admin.pw"
"$VOUCHD" init --dev --data-dir "$D" --admin-user admin --admin-password-file "$TMP/admin.pw" \
  --listen "127.0.0.1:$MP" >/dev/null
"$VOUCHD" serve --data-dir "$D" ${VOUCHD_FLAGS:-} >"$TMP/vouchd.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 200); do curl -fsS --cacert "$D/service-ca.pem" "$URL/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
export VOUCH_CONFIG=$TMP/cli.json
"$VOUCH" login --server "$URL" --ca-file "$D/service-ca.pem" --user admin --password-file "$TMP/admin.pw" >/dev/null
"$VOUCH" app create bench --zone default --domain bench.example.com >/dev/null
"$VOUCH" registry create local --url "http://$REG" --insecure >/dev/null
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$TMP/cli.json")

# One server-side conversion, timed by the client: prints "total first_update claimed" in seconds.
server_run() {  # OUTPUT_TAG
  python3 - "$URL" "$D/service-ca.pem" "$TOKEN" "$REG/bench/image:in" "$REG/bench/image:$1" <<'PY'
import json, ssl, sys, time, urllib.request
url, ca, token, src, dst = sys.argv[1:6]
ctx = ssl.create_default_context(cafile=ca)
def call(method, path, body=None):
    req = urllib.request.Request(url + path, method=method, data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, context=ctx) as r:
        return json.load(r)
def worker_seconds():  # vouch_conversion_duration_seconds_sum{result="done"}: the workers' own time
    req = urllib.request.Request(url + "/metrics", headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, context=ctx) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("vouch_conversion_duration_seconds_sum") and 'result="done"' in line:
                return float(line.split()[-1])
    return 0.0
before = worker_seconds()
t0 = time.monotonic()
job = call("POST", "/api/v1/conversions", {"app": "bench", "input_image": src, "output_image": dst, "options": {}})
first = claimed = None
while True:
    now = time.monotonic()
    p = job.get("progress") or {}
    if claimed is None and job["state"] != "queued":
        claimed = now - t0
    if first is None and (p.get("bytes_done") or 0) > 0:
        first = now - t0
    if job["state"] in ("done", "failed", "cancelled"):
        break
    time.sleep(0.02)
    job = call("GET", "/api/v1/conversions/" + job["id"])
total = time.monotonic() - t0
if job["state"] != "done":
    sys.exit("conversion %s: %s" % (job["state"], json.dumps(job.get("error"))))
print("%.2f %.3f %.3f %.2f" % (total, first if first is not None else -1, claimed if claimed is not None else -1,
                               worker_seconds() - before))
PY
}

echo "image oci:$IMAGE:$TAG ($(du -sh "$IMAGE" | cut -f1)), $RUNS runs, $(nproc) cores"
for r in $(seq 1 "$RUNS"); do
  floor_line=$("$BENCH_CONVERT" "oci:$IMAGE:$TAG" "$RTE" "$TMP/work" 1 | grep '^run ')
  floor=$(sed -E 's/.*floor ([0-9.]+) s.*/\1/' <<<"$floor_line")
  cli=$(sed -E 's/.*convert ([0-9.]+) s.*/\1/' <<<"$floor_line")
  mb=$(sed -E 's/.*compressed, ([0-9.]+) MB uncompressed.*/\1/' <<<"$floor_line")
  load_floor=$(loadavg)
  read -r total first claimed worker < <(server_run "out$r")
  load_server=$(loadavg)
  python3 - "$r" "$floor" "$cli" "$total" "$first" "$claimed" "$mb" "$worker" "$load_floor" "$load_server" <<'PY'
import sys
r, floor, cli, total, first, claimed, mb, worker = sys.argv[1], *map(float, sys.argv[2:9])
print(f"run {r}: {mb:.0f} MB uncompressed | floor {floor:.2f} s ({mb / floor:.0f} MB/s) [load {sys.argv[9]}] | "
      f"CLI layout->layout {cli:.2f} s (ratio {cli / floor:.2f}) | server-side {total:.2f} s ({mb / total:.0f} MB/s, "
      f"ratio {total / floor:.2f}; worker {worker:.2f} s) [load {sys.argv[10]}] | first progress update {first:.3f} s "
      f"(claimed {claimed:.3f} s)")
PY
done
