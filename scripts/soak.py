#!/usr/bin/env python3
"""Soak test: is worker memory bounded? A long mixed load against `pyblogd -w 2`, RSS sampled.

Starts the release binary (built with `cargo build --release --locked` unless --binary or
--no-build says otherwise) with two workers on 127.0.0.1 and a fresh database in a temporary
directory, seeds posts, then sends --requests requests (default 200,000) mixed over every
route: post views, list and home pages, forms, static files, HEAD, 404s, creates, edits and
deletes (each client keeps at most five posts of its own, so the database keeps its size), invalid
forms and malformed requests. Client processes keep keep-alive connections.

Worker RSS (VmRSS of the master's children) is sampled after a warm-up (--warmup, default half
of the requests), then after each twentieth of the rest. A single RSS sample swings by 10-20%
from one moment to the next (the allocator hands freed memory back to the kernel in bursts), so the
verdict compares high-water marks: the largest RSS each worker reached in the first half of the
samples after the warm-up against the second half; a leak raises the later mark, a cache that
has filled does not. The plain growth from the warm-up sample to the end sample is printed too,
with the master's RSS. The warm-up is long because a worker's memory legitimately fills for a
while: the SQLite page cache of each pooled connection (up to 2 MiB, one per busy handler
thread) and the handler threads' malloc arenas grow until the working set is covered. For the
same reason the database keeps its size over the run: with a growing database the page caches
grow with it (up to their bound) and look like a leak of ~10 bytes per request.

Exit status 1 when the high-water growth reaches --max-growth percent (default 10), when a
worker was replaced, or when a request got an unexpected answer. Bounded by --max-seconds.

Do not run it while something compiles on the machine: the client and the compiler would share
two cores, and the request rate (not the memory figures) would suffer.

Examples:
  scripts/soak.py
  scripts/soak.py --requests 20000 --clients 2
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import posts  # noqa: E402  (scripts/lib)
import procfs  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOOPBACK = "127.0.0.1"
SEED_POSTS = 200

# route → (weight, expected statuses)
ROUTES = {
    "view": (28, {200}),
    "home": (12, {200}),
    "list": (10, {200}),
    "new_form": (5, {200}),
    # Edit and delete pages of this client's own post, or of a seeded post, which is not this
    # client's and must be refused: see `foreign` below.
    "edit_form": (3, {200, 404}),
    "delete_form": (2, {200, 404}),
    "style": (8, {200}),
    "script": (4, {200}),
    "head": (2, {200}),
    "not_found": (3, {404}),
    "missing_post": (2, {404}),
    "create": (4, {303}),
    "delete": (4, {303, 404}),
    "edit": (3, {303, 404}),
    "invalid_form": (3, {422}),
    "bad_encoding": (2, {400}),
    "malformed": (2, {400}),
    "method": (1, {405}),
}

CONTENT = (
    "## A soak post\n\nSome *Markdown* with `code`, a [link](https://example.com) and a list:\n\n"
    "- one\n- two\n\n```rust\nfn main() {\n    println!(\"soak\");\n}\n```\n\n"
    "| a | b |\n|---|---|\n| 1 | 2 |\n"
)


def form(title: str, content: str = CONTENT) -> str:
    return urllib.parse.urlencode({"title": title, "name": "soak", "content": content})


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


class Client:
    """One keep-alive connection that reconnects when the server closes it."""

    def __init__(self, port: int):
        self.port = port
        self.conn: http.client.HTTPConnection | None = None
        # Cookies the server set (the edit key of each post this client created) by name, with
        # the path they are scoped to, sent back like a browser does: only to that path and
        # below. Only the author may edit or delete a post.
        self.cookies: dict[str, tuple[str, str]] = {}

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, dict, bytes]:
        jar = "".join(f"; {name}={value}" for name, (value, scope) in self.cookies.items()
                      if path == scope or path.startswith(scope.rstrip("/") + "/"))
        headers = {"Host": "soak", "Cookie": f"pyblogd_csrf={posts.CSRF}{jar}"}
        if body is not None:
            # As our own page posts: its Origin, and the CSRF token the cookie holds.
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Origin"] = "http://soak"
            body = f"csrf_token={posts.CSRF}&{body}"
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(LOOPBACK, self.port, timeout=30)
            try:
                self.conn.request(method, path, body=body, headers=headers)
                resp = self.conn.getresponse()
                data = resp.read()
                for cookie in resp.headers.get_all("Set-Cookie") or []:
                    name, _, rest = cookie.partition("=")
                    value = rest.split(";", 1)[0]
                    scope = re.search(r"; Path=([^;]*)", cookie)
                    if "Max-Age=0" in cookie:
                        self.cookies.pop(name, None)
                    else:
                        self.cookies[name] = (value, scope.group(1) if scope else "/")
                if resp.getheader("Connection", "").lower() == "close":
                    self.close()
                return resp.status, dict(resp.getheaders()), data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # An idle keep-alive connection the server closed between requests: retry once
                # on a new connection (the request never reached it).
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def malformed(port: int) -> int:
    """A smuggling-shaped request on its own connection; the status of the answer."""
    with socket.create_connection((LOOPBACK, port), timeout=30) as s:
        s.sendall(b"POST /posts HTTP/1.1\r\nHost: soak\r\nContent-Length: 5\r\n"
                  b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    match = re.match(rb"HTTP/1\.1 (\d{3})", data)
    return int(match.group(1)) if match else 0


def run_client(port: int, count: int, seed: int, ids: list[int], queue) -> None:
    """Sends `count` requests of the mix; reports (statuses per route, unexpected answers)."""
    rng = random.Random(seed)
    names = list(ROUTES)
    weights = [ROUTES[n][0] for n in names]
    statuses: Counter = Counter()
    unexpected: list[str] = []
    mine: list[int] = []  # posts this client created, deleted oldest first
    client = Client(port)
    serial = 0
    for _ in range(count):
        route = rng.choices(names, weights)[0]
        # Keep at most a few of this client's posts alive, so the database does not grow over
        # the run and memory tied to its size (SQLite's page cache) cannot pass for a leak.
        if route == "create" and len(mine) >= 5:
            route = "delete"
        elif route == "delete" and not mine:
            route = "create"
        some_id = rng.choice(ids)
        serial += 1
        foreign = False
        try:
            if route == "view":
                status, _, _ = client.request("GET", f"/posts/{some_id}")
            elif route == "home":
                status, _, _ = client.request("GET", "/")
            elif route == "list":
                status, _, _ = client.request("GET", f"/posts?page={rng.randint(1, 12)}")
            elif route == "new_form":
                status, _, _ = client.request("GET", "/new")
            elif route == "edit_form":
                target = mine[-1] if mine else some_id
                foreign = target not in mine
                status, _, _ = client.request("GET", f"/posts/{target}/edit")
            elif route == "delete_form":
                target = mine[-1] if mine else some_id
                foreign = target not in mine
                status, _, _ = client.request("GET", f"/posts/{target}/delete")
            elif route == "style":
                status, _, _ = client.request("GET", "/static/style.css")
            elif route == "script":
                status, _, _ = client.request("GET", "/static/app.js")
            elif route == "head":
                status, _, _ = client.request("HEAD", "/")
            elif route == "not_found":
                status, _, _ = client.request("GET", f"/nope/{serial}")
            elif route == "missing_post":
                status, _, _ = client.request("GET", f"/posts/{10**9 + serial}")
            elif route == "create":
                status, headers, _ = client.request("POST", "/posts", form(f"soak {seed}-{serial}"))
                location = headers.get("Location", "")
                if status == 303 and location.startswith("/posts/"):
                    mine.append(int(location.rsplit("/", 1)[1]))
            elif route == "delete":
                # Deletes only what this client created, so the seeded posts stay for views.
                target = mine.pop(0)
                status, _, _ = client.request("POST", f"/posts/{target}/delete", "")
            elif route == "edit":
                target = mine[-1] if mine else some_id
                foreign = target not in mine
                status, _, _ = client.request("POST", f"/posts/{target}/edit", form(f"edited {serial}"))
            elif route == "invalid_form":
                status, _, _ = client.request("POST", "/posts", form("", ""))
            elif route == "bad_encoding":
                status, _, _ = client.request("POST", "/posts", "title=%zz&name=x&content=y")
            elif route == "malformed":
                status = malformed(port)
            else:  # method
                status, _, _ = client.request("PUT", "/posts")
        except (OSError, http.client.HTTPException) as e:
            status = 0
            if len(unexpected) < 20:
                unexpected.append(f"{route}: {type(e).__name__}: {e}")
        statuses[(route, status)] += 1
        # Another author's post: its edit and delete are refused, whatever else holds.
        expected = {403} if foreign else ROUTES[route][1]
        if status not in expected and status != 0 and len(unexpected) < 20:
            unexpected.append(f"{route}: {status}")
    client.close()
    queue.put((statuses, unexpected))


def run_phase(port: int, requests: int, clients: int, seed: int, ids: list[int]) -> tuple[Counter, list[str]]:
    """Spreads `requests` over `clients` processes and waits for all of them."""
    queue = multiprocessing.Queue()
    share = [requests // clients + (1 if i < requests % clients else 0) for i in range(clients)]
    procs = [
        multiprocessing.Process(target=run_client, args=(port, share[i], seed * 100 + i, ids, queue))
        for i in range(clients)
    ]
    for p in procs:
        p.start()
    statuses: Counter = Counter()
    unexpected: list[str] = []
    for _ in procs:
        got, bad = queue.get()
        statuses.update(got)
        unexpected.extend(bad)
    for p in procs:
        p.join()
    return statuses, unexpected


def worker_rss(master: int) -> dict[int, int]:
    return {w: procfs.rss_kib(w) or 0 for w in sorted(procfs.children(master))}


def high_water(samples: list[dict[int, int]]) -> dict[int, int]:
    """The largest RSS each worker reached over `samples`."""
    mark: dict[int, int] = {}
    for sample in samples:
        for worker, rss in sample.items():
            mark[worker] = max(mark.get(worker, 0), rss)
    return mark


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--warmup", type=int, help="requests before the first sample (default: half)")
    parser.add_argument("--clients", type=int, default=4, help="client processes (default 4)")
    parser.add_argument("--binary", help="pyblogd to run (default: target/release/pyblogd)")
    parser.add_argument("--no-build", action="store_true", help="do not run cargo build first")
    parser.add_argument("--max-growth", type=float, default=10.0, help="percent (default 10)")
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    if args.requests < 1000 or args.clients < 1:
        parser.error("need at least 1000 requests and one client")
    warmup = args.warmup if args.warmup is not None else args.requests // 2
    if not 0 < warmup < args.requests:
        parser.error("--warmup must be between 0 and --requests")

    binary = os.path.abspath(args.binary) if args.binary else os.path.join(ROOT, "target", "release", "pyblogd")
    if not args.binary and not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--locked", "-p", "pyblogd"], cwd=ROOT, check=True)

    workdir = tempfile.mkdtemp(prefix="pyblogd-soak-")
    port = free_port()
    log_path = os.path.join(workdir, "server.log")
    log = open(log_path, "wb")
    server = subprocess.Popen(
        [binary, "-w", "2", "--bind", f"{LOOPBACK}:{port}", "--log-level", "warning"],
        cwd=workdir, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        # One client posts as fast as it can: no POST rate limit.
        env={**os.environ, "POST_RATE_LIMIT": "0"},
    )
    started = time.monotonic()
    try:
        ready = procfs.wait_until(lambda: _answers(port), time.monotonic() + 30, 0.05)
        if not ready or len(procfs.children(server.pid)) != 2:
            print(f"pyblogd did not come up with 2 workers (log: {log_path})", file=sys.stderr)
            return 1
        seeder = Client(port)
        ids = []
        for i in range(SEED_POSTS):
            status, headers, _ = seeder.request("POST", "/posts", form(f"seed {i}"))
            if status != 303:
                print(f"seeding failed: {status} (log: {log_path})", file=sys.stderr)
                return 1
            ids.append(int(headers["Location"].rsplit("/", 1)[1]))
        seeder.close()

        deadline = started + args.max_seconds
        phase_started = time.monotonic()
        early_count = min(args.requests // 10, warmup)
        statuses, unexpected = run_phase(port, early_count, args.clients, 1, ids)
        workers_early = worker_rss(server.pid)
        if warmup > early_count:
            got, bad = run_phase(port, warmup - early_count, args.clients, 50, ids)
            statuses.update(got)
            unexpected.extend(bad)
        workers_before = worker_rss(server.pid)
        print(f"warm-up: {warmup} requests in {time.monotonic() - phase_started:.1f} s; "
              f"worker RSS {', '.join(f'{w}: {mib(r)}' for w, r in workers_before.items())}")

        # The rest in slices: progress shows, RSS is sampled, --max-seconds can cut it short.
        rest = args.requests - warmup
        slices = 20
        done = warmup
        samples: list[dict[int, int]] = []
        for i in range(slices):
            if time.monotonic() >= deadline:
                print(f"stopping early: --max-seconds {args.max_seconds:.0f} reached", file=sys.stderr)
                break
            n = rest // slices + (1 if i < rest % slices else 0)
            got, bad = run_phase(port, n, args.clients, 2 + i, ids)
            statuses.update(got)
            unexpected.extend(bad)
            done += n
            samples.append(worker_rss(server.pid))
            print(f"  {done:>8} requests, {time.monotonic() - phase_started:6.1f} s: worker RSS "
                  f"{', '.join(f'{w}: {mib(r)}' for w, r in samples[-1].items())}", flush=True)
        elapsed = time.monotonic() - phase_started
        workers_after = samples[-1] if samples else worker_rss(server.pid)
        master_rss = procfs.rss_kib(server.pid) or 0
    finally:
        procfs.stop_tree(server.pid)
        log.close()

    total = sum(statuses.values())
    per_route = Counter()
    for (route, status), n in statuses.items():
        per_route[f"{route} {status}"] += n
    print(f"\n{total} requests in {elapsed:.1f} s ({total / elapsed:.0f}/s) over {args.clients} clients")
    print("answers: " + ", ".join(f"{k}: {v}" for k, v in sorted(per_route.items())))
    before, after = sum(workers_before.values()), sum(workers_after.values())
    growth = (after - before) * 100.0 / before if before else float("inf")
    print(f"worker RSS after warm-up: {', '.join(f'{w}: {mib(r)}' for w, r in workers_before.items())}"
          f" (total {mib(before)})")
    print(f"worker RSS at the end:    {', '.join(f'{w}: {mib(r)}' for w, r in workers_after.items())}"
          f" (total {mib(after)})")
    print(f"  growth from the warm-up sample to the end sample: {growth:+.1f}%")
    early = sum(workers_early.values())
    if early:
        print(f"  growth since the first {early_count} requests: "
              f"{(after - early) * 100.0 / early:+.1f}% (from {mib(early)})")
    half = len(samples) // 2
    first_mark, second_mark = high_water(samples[:half]), high_water(samples[half:])
    marks = sum(second_mark.values()), sum(first_mark.values())
    mark_growth = (marks[0] - marks[1]) * 100.0 / marks[1] if marks[1] else float("inf")
    print(f"worker RSS high-water, first half after warm-up:  "
          f"{', '.join(f'{w}: {mib(r)}' for w, r in first_mark.items())} (total {mib(marks[1])})")
    print(f"worker RSS high-water, second half after warm-up: "
          f"{', '.join(f'{w}: {mib(r)}' for w, r in second_mark.items())} (total {mib(marks[0])})")
    print(f"worker RSS high-water growth: {mark_growth:+.1f}% (target < {args.max_growth:.0f}%)")
    print(f"master RSS: {mib(master_rss)}")
    failed = False
    if set(workers_before) != set(workers_after):
        print(f"FAIL: workers were replaced ({sorted(workers_before)} -> {sorted(workers_after)})")
        failed = True
    if mark_growth >= args.max_growth:
        print("FAIL: worker memory grew past the target")
        failed = True
    if unexpected:
        print(f"FAIL: unexpected answers (first {len(unexpected[:20])}): {unexpected[:20]}")
        failed = True
    if failed:
        print(f"(server log and database kept in {workdir})")
    else:
        print("OK")
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0


def _answers(port: int) -> bool:
    """Whether GET / is answered 200 right now."""
    client = Client(port)
    try:
        return client.request("GET", "/")[0] == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        client.close()


if __name__ == "__main__":
    sys.exit(main())
