#!/usr/bin/env python3
"""Load for the HA e2e tests and the benchmark: threads issue certificates (POST /api/v1/certificates)
through a list of vouchd URLs, failing over to the next URL when one cannot be reached, like the
CLI and the agents. Prints one JSON object: counts, serials, and the failure window (first to
last failed request, and the longest time without any success)."""
import argparse, json, ssl, sys, threading, time, urllib.error, urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--urls", required=True, help="comma-separated https:// URLs")
ap.add_argument("--ca", required=True)
ap.add_argument("--token", required=True)
ap.add_argument("--build", required=True)
ap.add_argument("--csr", required=True, help="PEM CSR file")
ap.add_argument("--seconds", type=float, default=3)
ap.add_argument("--threads", type=int, default=4)
ap.add_argument("--path", default="/api/v1/certificates")
a = ap.parse_args()

urls = a.urls.split(",")
ctx = ssl.create_default_context(cafile=a.ca)
body = json.dumps({"build_id": a.build, "csr": open(a.csr).read()}).encode()
lock = threading.Lock()
ok_times, fail_times, serials, errors = [], [], [], {}
start = time.monotonic()


def worker(i):
    current = i % len(urls)
    while time.monotonic() - start < a.seconds:
        t0 = time.monotonic()
        done = False
        for attempt in range(len(urls)):
            url = urls[(current + attempt) % len(urls)]
            req = urllib.request.Request(url + a.path, data=body, method="POST",
                                         headers={"Authorization": "Bearer " + a.token,
                                                  "Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
                    serial = json.load(r).get("serial")
                with lock:
                    ok_times.append(time.monotonic() - start)
                    serials.append(serial)
                current = (current + attempt) % len(urls)
                done = True
                break
            except urllib.error.HTTPError as e:
                key = "http_%d" % e.code
                with lock:
                    errors[key] = errors.get(key, 0) + 1
                break  # the server answered: not a failover case
            except Exception as e:  # connection refused/reset: try the next URL
                key = type(e).__name__
                with lock:
                    errors[key] = errors.get(key, 0) + 1
        if not done:
            with lock:
                fail_times.append(t0 - start)
            time.sleep(0.05)


threads = [threading.Thread(target=worker, args=(i,)) for i in range(a.threads)]
for t in threads:
    t.start()
for t in threads:
    t.join()
elapsed = time.monotonic() - start
ok_sorted = sorted(ok_times)
gaps = [b - a_ for a_, b in zip(ok_sorted, ok_sorted[1:])]
print(json.dumps({
    "ok": len(ok_times), "failed": len(fail_times), "errors": errors, "seconds": round(elapsed, 2),
    "per_second": round(len(ok_times) / elapsed, 1),
    "failure_window": round(max(fail_times) - min(fail_times), 3) if fail_times else 0,
    "longest_gap": round(max(gaps), 3) if gaps else None,
    "serials": serials,
}))
