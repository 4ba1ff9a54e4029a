#!/usr/bin/env python3
"""Heartbeat load for e2e.heartbeat_durability: posts batches of ECDSA-signed heartbeats straight to
vouchd (POST /api/v1/heartbeats over mTLS with a node agent's certificate), as the agent relays them,
until vouchd stops answering (or --seconds pass). Each thread owns some instances and sends each of
them one to three heartbeats per batch with increasing seq. Writes, after every answer, the highest
seq vouchd acknowledged as accepted per instance (--acked, JSON, atomically replaced) and the highest
seq sent (--sent). Exits 0 when it stopped because vouchd went away or time ran out; 1 when vouchd
answered something unexpected (a non-200, or a refusal of a heartbeat that should be accepted).

  heartbeat_load.py URL CA NODE_CERT NODE_KEY --acked FILE --sent FILE [--seconds S] [--threads N] DIR...

Each DIR is a `vouch workload cert --out DIR` folder (instance.json, key.pem)."""
import argparse, base64, http.client, json, os, ssl, sys, threading, time
from urllib.parse import urlparse

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

ap = argparse.ArgumentParser()
ap.add_argument("url")
ap.add_argument("ca")
ap.add_argument("cert")
ap.add_argument("key")
ap.add_argument("dirs", nargs="+")
ap.add_argument("--acked", required=True)
ap.add_argument("--sent", required=True)
ap.add_argument("--seconds", type=float, default=60)
ap.add_argument("--threads", type=int, default=4)
a = ap.parse_args()

instances = []
for d in a.dirs:
    info = json.load(open(os.path.join(d, "instance.json")))
    key = serialization.load_pem_private_key(open(os.path.join(d, "key.pem"), "rb").read(), None)
    instances.append({"id": info["instance_id"], "key": key, "seq": int(info.get("last_seq", 0))})

lock = threading.Lock()
acked = {i["id"]: 0 for i in instances}
sent = {i["id"]: 0 for i in instances}
unexpected = []
stop = threading.Event()
start = time.monotonic()


def save():
    for path, data in ((a.acked, acked), (a.sent, sent)):
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.replace(tmp, path)


def heartbeat(inst, seq):
    ts = int(time.time())
    msg = "vouch-heartbeat-v1\n%s\n%d\n%d\n%s" % (inst["id"], seq, ts, "running")
    sig = inst["key"].sign(msg.encode(), ec.ECDSA(hashes.SHA256()))
    return {"instance_id": inst["id"], "seq": seq, "timestamp": ts, "status": "running",
            "signature": base64.b64encode(sig).decode()}


def worker(mine, n):
    u = urlparse(a.url)
    ctx = ssl.create_default_context(cafile=a.ca)
    ctx.load_cert_chain(a.cert, a.key)
    conn = http.client.HTTPSConnection(u.hostname, u.port, context=ctx, timeout=10)
    k = 0
    while not stop.is_set() and time.monotonic() - start < a.seconds:
        batch = []
        for inst in mine:
            for _ in range(1 + (k + n) % 3):  # one to three per instance: repeated instances in a batch
                inst["seq"] += 1
                batch.append(heartbeat(inst, inst["seq"]))
        k += 1
        with lock:
            for h in batch:
                sent[h["instance_id"]] = max(sent[h["instance_id"]], h["seq"])
            save()
        try:
            conn.request("POST", "/api/v1/heartbeats", body=json.dumps({"node": {"load": "e2e"}, "heartbeats": batch}),
                         headers={"Content-Type": "application/json"})
            r = conn.getresponse()
            body = r.read()
        except (OSError, http.client.HTTPException):
            stop.set()  # vouchd went away: what it acknowledged so far is what counts
            return
        if r.status != 200:
            with lock:
                unexpected.append("HTTP %d: %s" % (r.status, body[:200]))
            stop.set()
            return
        answer = json.loads(body)
        refused = {(x["instance_id"], x["seq"]) for x in answer.get("rejected", [])}
        with lock:
            if refused:
                unexpected.append("refused: %s" % sorted(refused)[:5])
            for h in batch:
                if (h["instance_id"], h["seq"]) not in refused:
                    acked[h["instance_id"]] = max(acked[h["instance_id"]], h["seq"])
            save()


save()
threads = [threading.Thread(target=worker, args=(instances[t::a.threads], t)) for t in range(a.threads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps({"acked": sum(acked.values()), "sent": sum(sent.values()), "unexpected": unexpected[:5]}))
sys.exit(1 if unexpected else 0)
