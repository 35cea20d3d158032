#!/usr/bin/env python3
"""Queue benchmark: 200 runs of a 200-ticker x 5-year scenario through the job queue with two
worker processes, then the enqueue-to-start wait when workers are idle, then fairness: one
user queues a backlog of 40 runs and a second user queues one, and the second user's wait is
compared with the backlog's.

Starts its own `haechi serve` (no in-process workers) and two `haechi worker --concurrency 1`
processes on a fresh data folder, drives them through the REST API, and reads the timings the
server records for every run (queued_at, started_at, finished_at; Unix ms).

    bench/queue_bench.py [--runs 200] [--paced 50] [--redis redis://127.0.0.1:6379/]
                         [--database mysql://root@127.0.0.1:3306/haechi_bench] [--backlog 40]

Without --redis the embedded SQLite queue is used; without --database, SQLite.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "haechi")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Api:
    """A signed-in client: session cookie plus the CSRF header on unsafe requests."""

    def __init__(self, base):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        self.csrf = None

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("content-type", "application/json")
        if self.csrf and method != "GET":
            req.add_header("x-csrf-token", self.csrf)
        try:
            r = self.opener.open(req, timeout=60)
        except urllib.error.HTTPError as e:
            sys.exit(f"{method} {path}: {e.code} {e.read().decode(errors='replace')}")
        with r:
            text = r.read()
            if r.headers.get("content-type", "").startswith("application/json"):
                return json.loads(text)
            return text

    def login(self, email, password):
        self.csrf = self.call("POST", "/api/v1/auth/login", {"email": email, "password": password})["csrf_token"]


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, round(p / 100 * (len(values) - 1))))
    return values[k]


def wait_all(api, ids, timeout=900):
    deadline = time.time() + timeout
    pending = set(ids)
    runs = {}
    while pending:
        if time.time() > deadline:
            sys.exit(f"timed out with {len(pending)} runs unfinished")
        page = api.call("GET", "/api/v1/runs?per_page=200")
        for r in page["items"]:
            if r["id"] in pending and r["state"] in ("succeeded", "failed", "cancelled"):
                pending.discard(r["id"])
                runs[r["id"]] = r
        # The first page holds the newest 200; older ones are fetched one by one.
        for rid in list(pending)[:20]:
            r = api.call("GET", f"/api/v1/runs/{rid}")
            if r["state"] in ("succeeded", "failed", "cancelled"):
                pending.discard(rid)
                runs[rid] = r
        time.sleep(0.05)
    return [runs[i] for i in ids]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--paced", type=int, default=50, help="runs enqueued one at a time on idle workers")
    ap.add_argument("--redis")
    ap.add_argument("--database")
    ap.add_argument("--backlog", type=int, default=40, help="runs one user queues before another user queues one")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")

    work = tempfile.mkdtemp(prefix="haechi-queue-bench-")
    port = free_port()
    # The per-user quotas (active runs, stored bytes) are raised: this measures the queue.
    env = dict(os.environ, HAECHI_DATA_DIR=work, HAECHI_ADDR=f"127.0.0.1:{port}", HAECHI_WORKERS="0",
               HAECHI_LOG="warn", HAECHI_QUEUE_NAME=f"bench{os.getpid()}", HAECHI_MAX_ACTIVE_RUNS="1000",
               HAECHI_MAX_STORED_MIB="100000")
    if args.redis:
        env["HAECHI_REDIS_URL"] = args.redis
    if args.database:
        env["HAECHI_DATABASE_URL"] = args.database
    procs = []
    try:
        t = time.time()
        subprocess.run([BIN, "data", "load", "--tickers", "200", "--from", "2019-01-01", "--to", "2023-12-31"],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"market loaded in {time.time() - t:.1f} s")
        pw = "queue-timing-passphrase-9"
        for email in ("bench@example.com", "other@example.com"):
            subprocess.run([BIN, "user", "create", "--email", email], env=dict(env, HAECHI_NEW_USER_PASSWORD=pw),
                           check=True, stdout=subprocess.DEVNULL)
        procs.append(subprocess.Popen([BIN, "serve"], env=env))
        for _ in range(2):
            procs.append(subprocess.Popen([BIN, "worker", "--concurrency", "1"], env=env))
        api = Api(f"http://127.0.0.1:{port}")
        for _ in range(200):
            try:
                api.call("GET", "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        api.login("bench@example.com", pw)

        spec = {
            "name": "bench 200 x 5y", "capital": 1_000_000_000, "benchmark": "KS11",
            "period": {"start": "2019-01-02", "end": "2023-12-28"},
            "universe": {"all": True},
            "strategy": {"type": "momentum_rotation", "lookback": 120, "skip": 20, "top_n": 20, "frequency": "monthly"},
        }
        sid = api.call("POST", "/api/v1/scenarios", {"spec": spec})["id"]

        # Warm-up: the first run builds the market store in each worker.
        warm = [api.call("POST", f"/api/v1/scenarios/{sid}/runs", {})["id"] for _ in range(4)]
        wait_all(api, warm)

        t0 = time.time()
        ids = [api.call("POST", f"/api/v1/scenarios/{sid}/runs", {})["id"] for _ in range(args.runs)]
        enq = time.time() - t0
        runs = wait_all(api, ids)
        bad = [r for r in runs if r["state"] != "succeeded"]
        if bad:
            sys.exit(f"{len(bad)} runs did not succeed: {bad[0]}")
        first_q = min(r["queued_at"] for r in runs)
        last_f = max(r["finished_at"] for r in runs)
        waits = [r["started_at"] - r["queued_at"] for r in runs]
        first_start = min(r["started_at"] for r in runs) - first_q
        durs = [r["finished_at"] - r["started_at"] for r in runs]
        backend = ("redis" if args.redis else "sqlite queue") + " + " + ("mysql" if args.database else "sqlite db")
        print(f"[{backend}] burst: {args.runs} runs enqueued in {enq:.2f} s, all done in {(last_f - first_q) / 1000:.2f} s "
              f"= {args.runs / ((last_f - first_q) / 1000):.1f} runs/s; run time p50 {pct(durs, 50):.0f} ms; "
              f"wait p50 {pct(waits, 50):.0f} ms p99 {pct(waits, 99):.0f} ms (backlog included); first start after {first_start} ms")

        paced = []
        for _ in range(args.paced):
            rid = api.call("POST", f"/api/v1/scenarios/{sid}/runs", {})["id"]
            r = wait_all(api, [rid])[0]
            paced.append(r["started_at"] - r["queued_at"])
        print(f"[{backend}] idle workers: enqueue-to-start wait over {args.paced} runs: p50 {pct(paced, 50):.0f} ms, "
              f"p99 {pct(paced, 99):.0f} ms, max {max(paced):.0f} ms")

        # Fairness: first in, first out would start the other user's run after the whole backlog.
        other = Api(api.base)
        other.login("other@example.com", pw)
        osid = other.call("POST", "/api/v1/scenarios", {"spec": dict(spec, name="the other user")})["id"]
        backlog = [api.call("POST", f"/api/v1/scenarios/{sid}/runs", {})["id"] for _ in range(args.backlog)]
        late = other.call("POST", f"/api/v1/scenarios/{osid}/runs", {})["id"]
        mine = wait_all(api, backlog)
        theirs = wait_all(other, [late])[0]
        wait = theirs["started_at"] - theirs["queued_at"]
        # The backlog still waiting when the other user's run was queued, and how much of it
        # went first anyway (first in, first out: all of it).
        waiting = [r for r in mine if r["started_at"] >= theirs["queued_at"]]
        ahead = sum(1 for r in waiting if r["started_at"] < theirs["started_at"])
        drain = (max(r["finished_at"] for r in mine) - min(r["queued_at"] for r in mine)) / 1000
        print(f"[{backend}] fairness: another user's run queued behind {len(waiting)} waiting runs of one user "
              f"waited {wait} ms, {ahead} of them started before it; the backlog took {drain:.1f} s "
              f"(run time p50 {pct([r['finished_at'] - r['started_at'] for r in mine], 50):.0f} ms)")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
