#!/usr/bin/env python3
"""Node provisioning latency, as a node agent sees it (bench/provision_bench.sh).

  provision_client.py URL CA TOKEN PLATFORM N [--tsm REPORT_DIR] [--vouch VOUCH --sim SIM_DIR]

Each of the N provisionings does what vouch-agent does: a fresh P-256 key (made before the clock
starts), POST /api/v1/nodes/nonce, evidence binding SHA-256(SPKI DER || nonce) || 32 zero bytes,
POST /api/v1/nodes. Evidence for tdx / sev-snp comes from a configfs-tsm report directory (the
emulated kernel of `vouch sim tsm`): a fresh entry, inblob written, outblob (and auxblob) read,
entry removed. For sgx it is `vouch sim quote --agent` (a process start per quote). Every answer
must be 201 (the run fails otherwise). One connection with keep-alive, as the agent's.

Prints one JSON object: per-phase latencies in ms (nonce, evidence, provision = the POST that
verifies and issues, total) with p50, p99, max, and the count.
"""
import base64
import hashlib
import http.client
import json
import os
import ssl
import subprocess
import sys
import time
import uuid
from urllib.parse import urlparse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = min(len(xs) - 1, max(0, int(round(p / 100.0 * len(xs) + 0.5)) - 1))
    return round(xs[k], 2)


def main():
    url, ca, token, platform, n = sys.argv[1:6]
    n = int(n)
    opts = sys.argv[6:]
    tsm = opts[opts.index("--tsm") + 1] if "--tsm" in opts else None
    vouch = opts[opts.index("--vouch") + 1] if "--vouch" in opts else None
    sim = opts[opts.index("--sim") + 1] if "--sim" in opts else None
    if platform in ("tdx", "sev-snp") and not tsm:
        sys.exit("--tsm REPORT_DIR is needed for " + platform)
    if platform == "sgx" and not (vouch and sim):
        sys.exit("--vouch and --sim are needed for sgx")
    u = urlparse(url)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ssl.create_default_context(cafile=ca), timeout=60)

    def post(path, body):
        conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else {}

    phases = {"nonce": [], "evidence": [], "provision": [], "total": []}
    tmp = os.environ.get("TMPDIR", "/tmp")
    for i in range(n):
        spki = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        t0 = time.perf_counter()
        status, nonce = post("/api/v1/nodes/nonce", {})
        if status != 201:
            sys.exit(f"nonce: {status} {nonce}")
        t1 = time.perf_counter()
        binding = hashlib.sha256(spki + bytes.fromhex(nonce["nonce"])).digest()
        if platform == "sgx":
            qfile = os.path.join(tmp, f"provision-bench-{os.getpid()}.dat")
            subprocess.run([vouch, "sim", "quote", "--sim", sim, "--agent", "--report-data", binding.hex(), "--out", qfile],
                           check=True, stdout=subprocess.DEVNULL)
            evidence = open(qfile, "rb").read()
        else:
            entry = os.path.join(tsm, "bench-" + uuid.uuid4().hex)
            os.mkdir(entry)
            try:
                with open(os.path.join(entry, "inblob"), "wb") as f:
                    f.write(binding + bytes(32))
                evidence = open(os.path.join(entry, "outblob"), "rb").read()
                if platform == "sev-snp":
                    evidence += open(os.path.join(entry, "auxblob"), "rb").read()
            finally:
                os.rmdir(entry)
        t2 = time.perf_counter()
        status, answer = post("/api/v1/nodes", {
            "join_token": token, "nonce": nonce["nonce"], "public_key": base64.b64encode(spki).decode(),
            "platform": platform, "evidence": base64.b64encode(evidence).decode(), "info": {"version": "bench"}})
        t3 = time.perf_counter()
        if status != 201:
            sys.exit(f"provisioning {i}: {status} {answer}")
        for name, dt in (("nonce", t1 - t0), ("evidence", t2 - t1), ("provision", t3 - t2), ("total", t3 - t0)):
            phases[name].append(dt * 1000.0)
    print(json.dumps({"platform": platform, "count": n,
                      **{k: {"p50": pct(v, 50), "p99": pct(v, 99), "max": round(max(v), 2)} for k, v in phases.items()}}))


if __name__ == "__main__":
    main()
