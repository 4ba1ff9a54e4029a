#!/usr/bin/env python3
"""Load for the HA e2e tests and the benchmark: threads issue certificates (POST /api/v1/certificates)
with curl through a list of vouchd URLs, failing over to the next URL when one cannot be reached, like the
CLI and the agents. Prints one JSON object: counts, serials, and the failure window (first to
last failed request, and the longest time without any success)."""
import argparse, json, os, subprocess, sys, tempfile, threading, time

ap = argparse.ArgumentParser()
ap.add_argument("--urls", required=True, help="comma-separated https:// URLs")
ap.add_argument("--ca", required=True)
ap.add_argument("--token", required=True)
ap.add_argument("--build", required=True)
ap.add_argument("--csr", required=True, help="PEM CSR file")
ap.add_argument("--seconds", type=float, default=3)
ap.add_argument("--threads", type=int, default=4)
ap.add_argument("--path", default="/api/v1/certificates")
ap.add_argument("--times", action="store_true", help="also print every success time")
a = ap.parse_args()

urls = a.urls.split(",")
fd, body_file = tempfile.mkstemp(prefix="vouch-load-")
with os.fdopen(fd, "w") as f:
    json.dump({"build_id": a.build, "csr": open(a.csr).read()}, f)
lock = threading.Lock()
ok_times, fail_times, serials, errors = [], [], [], {}
start = time.monotonic()


def post(url):
    """One request with curl (an independent client): (http status or None, body)."""
    r = subprocess.run(["curl", "-s", "--cacert", a.ca, "-m", "30", "-X", "POST", "-H", "Authorization: Bearer " + a.token,
                        "-H", "Content-Type: application/json", "--data-binary", "@" + body_file,
                        "-w", "\n%{http_code}", url + a.path], capture_output=True, text=True)
    if r.returncode != 0:
        return None, "curl_exit_%d" % r.returncode
    text, _, code = r.stdout.rpartition("\n")
    return int(code), text


def worker(i):
    current = i % len(urls)
    while time.monotonic() - start < a.seconds:
        t0 = time.monotonic()
        done = False
        for attempt in range(len(urls)):
            url = urls[(current + attempt) % len(urls)]
            code, text = post(url)
            if code is None:  # not delivered (refused, reset, TLS): try the next URL
                with lock:
                    errors[text] = errors.get(text, 0) + 1
                continue
            if code // 100 == 2:
                with lock:
                    ok_times.append(time.monotonic() - start)
                    serials.append(json.loads(text).get("serial"))
                current = (current + attempt) % len(urls)
                done = True
            else:
                with lock:
                    errors["http_%d" % code] = errors.get("http_%d" % code, 0) + 1
            break  # the server answered: not a failover case
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
os.unlink(body_file)
ok_sorted = sorted(ok_times)
gaps = [b - a_ for a_, b in zip(ok_sorted, ok_sorted[1:])]
print(json.dumps({
    "ok": len(ok_times), "failed": len(fail_times), "errors": errors, "seconds": round(elapsed, 2),
    "per_second": round(len(ok_times) / elapsed, 1),
    "failure_window": round(max(fail_times) - min(fail_times), 3) if fail_times else 0,
    "longest_gap": round(max(gaps), 3) if gaps else None,
    "serials": serials,
    "ok_times": [round(t, 2) for t in ok_sorted] if "--times" in sys.argv else None,
}))
