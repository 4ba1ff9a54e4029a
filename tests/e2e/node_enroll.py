#!/usr/bin/env python3
"""A node agent's provisioning and renewal by hand, with sim evidence of a chosen identity.

  node_enroll.py provision URL CA VOUCH SIM OUTDIR --token T [quote options]
  node_enroll.py renew     URL CA VOUCH SIM OUTDIR --cert C --key K [quote options]
  node_enroll.py call      URL CA PATH --cert C --key K          (POST PATH {} over mutual TLS)
  node_enroll.py nonces    URL CA N [--source ADDR]              (N nonce requests on one connection)

Quote options go to `vouch sim quote` (--agent, --mrenclave HEX, --mrsigner HEX, --debug). A new
P-256 key is made for each provisioning and renewal; the answer's status and body are printed as
one JSON line {"status": N, "body": {...}}, and on 201 OUTDIR/node.key and OUTDIR/node.pem are
written. The evidence binds SHA-256(SubjectPublicKeyInfo || nonce bytes), as vouch-agent does.
"""
import base64
import hashlib
import http.client
import json
import os
import ssl
import subprocess
import sys
from urllib.parse import urlparse

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def connect(url, ca, cert=None, key=None, source=None):
    u = urlparse(url)
    ctx = ssl.create_default_context(cafile=ca)
    if cert:
        ctx.load_cert_chain(cert, key)
    return http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=30,
                                       source_address=(source, 0) if source else None)


def post(conn, path, body):
    conn.request("POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    try:
        parsed = json.loads(data) if data else {}
    except ValueError:
        parsed = {"raw": data.decode(errors="replace")}
    return r.status, parsed


def enroll(args, renewal):
    url, ca, vouch, sim, out = args[:5]
    opts = args[5:]
    token = cert = key = None
    quote_opts = []
    i = 0
    while i < len(opts):
        if opts[i] == "--token":
            token = opts[i + 1]; i += 2
        elif opts[i] == "--cert":
            cert = opts[i + 1]; i += 2
        elif opts[i] == "--key":
            key = opts[i + 1]; i += 2
        else:
            quote_opts.append(opts[i]); i += 1
    os.makedirs(out, exist_ok=True)
    priv = ec.generate_private_key(ec.SECP256R1())
    spki = priv.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    conn = connect(url, ca, cert, key)
    status, nonce = post(conn, "/api/v1/nodes/nonce", {})
    if status != 201:
        print(json.dumps({"status": status, "body": nonce}))
        return
    nonce_hex = nonce["nonce"]
    rd = hashlib.sha256(spki + bytes.fromhex(nonce_hex)).hexdigest()
    qfile = os.path.join(out, "quote.dat")
    subprocess.run([vouch, "sim", "quote", "--sim", sim, "--report-data", rd, "--out", qfile] + quote_opts,
                   check=True, stdout=subprocess.DEVNULL)
    body = {"nonce": nonce_hex, "public_key": base64.b64encode(spki).decode(), "platform": "sgx",
            "evidence": base64.b64encode(open(qfile, "rb").read()).decode(), "info": {"version": "e2e"}}
    if token:
        body["join_token"] = token
    status, answer = post(conn, "/api/v1/nodes/renew" if renewal else "/api/v1/nodes", body)
    if status == 201:
        with open(os.path.join(out, "node.key"), "wb") as f:
            f.write(priv.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
        with open(os.path.join(out, "node.pem"), "w") as f:
            f.write(answer["certificate_pem"])
    print(json.dumps({"status": status, "body": answer}))


def call(args):
    url, ca, path = args[:3]
    cert = args[args.index("--cert") + 1]
    key = args[args.index("--key") + 1]
    conn = connect(url, ca, cert, key)
    status, body = post(conn, path, {})
    print(json.dumps({"status": status, "body": body}))


def nonces(args):
    url, ca, n = args[0], args[1], int(args[2])
    source = args[args.index("--source") + 1] if "--source" in args else None
    conn = connect(url, ca, source=source)
    counts = {}
    for _ in range(n):
        try:
            conn.request("POST", "/api/v1/nodes/nonce", body="{}", headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            r.read()
            counts[r.status] = counts.get(r.status, 0) + 1
        except (http.client.HTTPException, OSError):
            counts["reconnect"] = counts.get("reconnect", 0) + 1
            conn.close()
            conn = connect(url, ca, source=source)
    print(json.dumps(counts))


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    if cmd in ("provision", "renew"):
        enroll(rest, cmd == "renew")
    elif cmd == "call":
        call(rest)
    elif cmd == "nonces":
        nonces(rest)
    else:
        sys.exit("unknown command " + cmd)
