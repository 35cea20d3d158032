#!/usr/bin/env python3
"""Registration and sign-in floods against a real `haechi serve` (issue 13, attack 1).

Starts `haechi serve` on a fresh data folder (the per-address registration limit raised, so
the flood reaches the password-hashing pool), sends N registrations at once, then N sign-ins
at once, and prints the answers by status, the server's resident memory (baseline and peak,
sampled every 20 ms) and `/healthz` latency measured throughout.

    python3 bench/auth_flood.py [--bin target/release/haechi] [-n 300]

Standard library only.
"""
import argparse
import concurrent.futures as cf
import json
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

PASSWORD = "correct horse battery staple"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except Exception:  # noqa: BLE001 - a refused connection is an answer too
        return "error"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/haechi")
    ap.add_argument("-n", type=int, default=300)
    args = ap.parse_args()
    data = tempfile.mkdtemp(prefix="haechi-flood-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, HAECHI_DATA_DIR=data, HAECHI_ADDR=f"127.0.0.1:{port}", HAECHI_LOG="warn",
               HAECHI_REGISTRATIONS_PER_HOUR="10000")
    server = subprocess.Popen([args.bin, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except Exception:  # noqa: BLE001
                time.sleep(0.1)
        baseline = rss_kib(server.pid)
        peak = [baseline]
        latencies = []
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kib(server.pid))
                time.sleep(0.02)

        def probe():
            while not stop.is_set():
                t = time.perf_counter()
                try:
                    urllib.request.urlopen(f"{base}/healthz", timeout=30).read()
                    latencies.append(time.perf_counter() - t)
                except Exception:  # noqa: BLE001
                    latencies.append(float("inf"))
                time.sleep(0.1)

        threads = [threading.Thread(target=sample), threading.Thread(target=probe)]
        for t in threads:
            t.start()
        results = {}
        with cf.ThreadPoolExecutor(max_workers=args.n) as pool:
            for phase, url, make in [
                ("register", f"{base}/api/v1/auth/register",
                 lambda i: {"email": f"flood{i}@example.com", "display_name": "flood", "password": PASSWORD}),
                ("sign-in", f"{base}/api/v1/auth/login",
                 lambda i: {"email": f"flood{i}@example.com", "password": PASSWORD}),
            ]:
                started = time.perf_counter()
                answers = list(pool.map(lambda i: post(url, make(i)), range(args.n)))
                counts = {}
                for a in answers:
                    counts[a] = counts.get(a, 0) + 1
                results[phase] = (counts, time.perf_counter() - started)
        stop.set()
        for t in threads:
            t.join()
        finite = sorted(x for x in latencies if x != float("inf"))
        print(f"haechi auth flood: {args.n} parallel requests per phase, {os.cpu_count()} cores")
        for phase, (counts, secs) in results.items():
            print(f"  {phase:8} {secs:6.1f} s  answers {dict(sorted(counts.items(), key=str))}")
        print(f"  memory   baseline {baseline / 1024:.0f} MiB, peak {peak[0] / 1024:.0f} MiB")
        if finite:
            p95 = finite[min(len(finite) - 1, int(len(finite) * 0.95))]
            print(f"  /healthz during the floods: {len(latencies)} probes, p50 {statistics.median(finite) * 1000:.1f} ms, "
                  f"p95 {p95 * 1000:.1f} ms, max {finite[-1] * 1000:.1f} ms, failed {len(latencies) - len(finite)}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
