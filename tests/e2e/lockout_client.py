#!/usr/bin/env python3
"""HTTP load and probes for lockout_test.sh (issue 13, "No lock-out by anonymous callers").

Each subcommand prints one JSON object. Requests go to https://127.0.0.1:PORT, verified against
the CA, from a chosen loopback source address (127.0.0.x) so that per-source limits can be told
apart.
"""
import argparse
import http.client
import json
import socket
import ssl
import sys
import threading
import time


def context(ca):
    ctx = ssl.create_default_context(cafile=ca)
    return ctx


def request(a, method, path, body=None, token=None, source="127.0.0.1", timeout=60):
    conn = http.client.HTTPSConnection("127.0.0.1", a.port, context=context(a.ca), timeout=timeout,
                                       source_address=(source, 0))
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data
    finally:
        conn.close()


def code_of(data):
    try:
        return json.loads(data)["error"]["code"]
    except Exception:  # noqa: BLE001 - not a JSON error body
        return None


def nested(a):
    """1 MiB of '[' to every operation with a requestBody in the OpenAPI document."""
    doc = json.load(open(a.openapi))
    body = b"[" * (1 << 20)
    results = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if not isinstance(op, dict) or "requestBody" not in op:
                continue
            url = path  # the document's paths are absolute (servers: [{"url": "/"}])
            for seg in [s for s in url.split("/") if s.startswith("{")]:
                url = url.replace(seg, "x")
            status, headers, data = request(a, method.upper(), url, body, a.token, a.source)
            alive, _, _ = request(a, "GET", "/healthz", source=a.source)
            results.append({"op": method.upper() + " " + url, "status": status, "code": code_of(data), "alive": alive})
    print(json.dumps({"results": results}))


def flood(a):
    """N requests over C threads; counts statuses, Retry-After values and error codes."""
    lock = threading.Lock()
    out = {"statuses": {}, "codes": {}, "retry_after": [], "errors": 0}
    todo = list(range(a.n))

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                todo.pop()
            try:
                status, headers, data = request(a, "POST", a.path, a.body.encode(), None, a.source)
            except Exception:  # noqa: BLE001 - counted: a refused or dropped connection
                with lock:
                    out["errors"] += 1
                continue
            with lock:
                out["statuses"][str(status)] = out["statuses"].get(str(status), 0) + 1
                c = code_of(data)
                if c:
                    out["codes"][c] = out["codes"].get(c, 0) + 1
                if "retry-after" in headers:
                    out["retry_after"].append(int(headers["retry-after"]))

    threads = [threading.Thread(target=worker) for _ in range(a.c)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps(out))


def once(a):
    status, headers, data = request(a, a.method, a.path, a.body.encode() if a.body else None, a.token, a.source)
    print(json.dumps({"status": status, "retry_after": headers.get("retry-after"), "code": code_of(data),
                      "body": data.decode(errors="replace")[:500]}))


def connections(a):
    """Holds N TCP connections from one source, then times how fast one more is closed."""
    held = []
    for _ in range(a.n):
        s = socket.create_connection(("127.0.0.1", a.port), timeout=5, source_address=(a.source, 0))
        held.append(s)
    time.sleep(0.2)  # let the server accept them all (it counts at accept)
    extra = socket.create_connection(("127.0.0.1", a.port), timeout=5, source_address=(a.source, 0))
    start = time.monotonic()
    try:
        closed = extra.recv(1) == b""
    except (ConnectionResetError, socket.timeout) as e:
        closed = isinstance(e, ConnectionResetError)
    elapsed = time.monotonic() - start
    # Meanwhile another source is served.
    other, _, _ = request(a, "GET", "/healthz", source=a.other)
    for s in held:
        s.close()
    extra.close()
    print(json.dumps({"extra_closed": closed, "seconds": round(elapsed, 3), "other_source_status": other}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("cmd")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--source", default="127.0.0.1")
    p.add_argument("--other", default="127.0.0.1")
    p.add_argument("--token")
    p.add_argument("--openapi")
    p.add_argument("--path", default="/")
    p.add_argument("--method", default="POST")
    p.add_argument("--body", default="")
    p.add_argument("-n", type=int, default=1)
    p.add_argument("-c", type=int, default=1)
    a = p.parse_args()
    {"nested": nested, "flood": flood, "once": once, "connections": connections}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
