#!/usr/bin/env python3
"""Mixed-workload load test for a pyblogd server on this machine (loopback only).

Each of --concurrency threads keeps its own keep-alive connection (reconnecting when the server
closes it) and sends a mix of requests: post views, list pages, the home page, the new-post form,
valid new posts (POST /posts) and static files. Progress is printed every second on stderr, a
summary on stdout at the end. Any connection error, timeout, 5xx or unexpected status is a
failure, and any failure makes the exit status 1.

--during-reload N sends HUP to the master N times spread over the run, waiting for each reload
to finish (every old worker gone, as many new ones running) before the next; --usr2 performs one
binary upgrade mid-run (USR2, wait for PIDFILE.oldbin and the new master's workers, TERM the old
master). Both report the failures seen while they were under way and how long each took.

Examples:
  scripts/loadtest.py --url http://127.0.0.1:8000 --duration 30 --rate 500
  scripts/loadtest.py --url http://127.0.0.1:8000 --during-reload 5 --pid-file /run/pyblogd.pid
  scripts/loadtest.py --url http://[::1]:8000 --usr2 --pid-file pyblogd.pid --report-json out.json
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import os
import random
import re
import select
import signal
import socket
import sys
import threading
import time
import urllib.parse
from array import array
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import posts  # noqa: E402  (scripts/lib)
import procfs  # noqa: E402

MAX_DURATION = 600
LOOPBACK_NAMES = ("127.0.0.1", "::1", "localhost")

# route name → (weight, expected status)
ROUTES = {
    "view": (50, 200),    # GET /posts/ID of a random existing post (counts a view)
    "list": (15, 200),    # GET /posts?page=N
    "home": (15, 200),    # GET /
    "static": (8, 200),   # GET /static/... as linked from the home page
    "create": (7, 303),   # POST /posts with a valid form → 303 Location /posts/ID
    "form": (5, 200),     # GET /new
}
_POST_LINK = re.compile(r'href="(?:[^"]*)?/posts/(\d+)"')
_STATIC_LINK = re.compile(r'(?:href|src)="(/static/[^"#]+)"')
_CREATED = re.compile(r"/posts/(\d+)$")


class UsageError(Exception):
    """A bad option or target: reported on one line, exit status 2."""


# --- the target ------------------------------------------------------------------------------

def loopback_target(url: str) -> tuple[str, int]:
    """(host, port) of an http:// URL on 127.0.0.1, [::1] or localhost; anything else is refused."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http":
        raise UsageError(f"only http:// URLs are supported, not {url!r}")
    host = parts.hostname or ""
    if host not in LOOPBACK_NAMES:
        raise UsageError(f"refusing to load {host or url!r}: only 127.0.0.1, [::1] and localhost are allowed")
    port = parts.port or 80
    for *_, addr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        if not ipaddress.ip_address(addr[0]).is_loopback:
            raise UsageError(f"refusing {host}: it resolves to {addr[0]}, which is not a loopback address")
    return host, port


class Site:
    """What the load test knows of the blog: post ids, list pages, static paths. Shared by all
    threads; created posts are added as they appear."""

    def __init__(self, ids: list[int], pages: list[int], statics: list[str]):
        self.ids = ids
        self.pages = pages
        self.statics = statics
        self.lock = threading.Lock()

    def add_post(self, post_id: int) -> None:
        with self.lock:
            self.ids.append(post_id)


def discover(host: str, port: int, deadline: float) -> Site:
    """Reads the home page and list pages (at most 20, until `deadline`) for ids and static paths."""
    conn = http.client.HTTPConnection(host, port, timeout=10)

    def get(path: str) -> tuple[int, str]:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode("utf-8", "replace")

    ids: set[int] = set()
    pages: list[int] = []
    status, home = get("/")
    if status != 200:
        raise UsageError(f"GET / answered {status}: is this a pyblogd blog?")
    ids.update(int(i) for i in _POST_LINK.findall(home))
    statics = sorted(set(_STATIC_LINK.findall(home))) or ["/static/style.css"]
    for page in range(1, 21):
        if time.monotonic() > deadline:
            break
        status, body = get(f"/posts?page={page}")
        found = {int(i) for i in _POST_LINK.findall(body)}
        if status != 200 or (page > 1 and not found):
            break
        pages.append(page)
        ids.update(found)
        if not found:
            break
    conn.close()
    return Site(sorted(ids), pages or [1], statics)


# --- one client thread -----------------------------------------------------------------------

class Stats:
    """Counters of one thread, merged at the end; the progress printer reads `count`/`failures`."""

    def __init__(self) -> None:
        self.count = 0
        self.failures = 0
        self.by_route: Counter = Counter()
        self.route_failures: Counter = Counter()
        self.status: Counter = Counter()
        self.kinds: Counter = Counter()
        self.latency = array("d")
        self.route_latency: dict[str, array] = {r: array("d") for r in ROUTES}
        self.failure_log: list[dict] = []   # first few failures, for the report
        self.failure_times: array = array("d")
        self.idle_closed = 0                # keep-alive connections the server closed between requests


class Client(threading.Thread):
    def __init__(self, index: int, args, host: str, port: int, site: Site, t0: float, end: float):
        super().__init__(name=f"client-{index}", daemon=True)
        self.args, self.host, self.port, self.site = args, host, port, site
        self.t0, self.end = t0, end
        self.rng = random.Random(args.seed * 1000 + index)
        self.stats = Stats()
        self.sock: socket.socket | None = None
        self.host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.routes = list(ROUTES)
        self.weights = [ROUTES[r][0] for r in self.routes]
        self.interval = args.concurrency / args.rate if args.rate > 0 else 0.0
        self.next_at = t0 + self.interval * index / max(1, args.concurrency)

    def run(self) -> None:
        while True:
            now = time.monotonic()
            if now >= self.end:
                break
            if self.interval:
                if self.next_at > now:
                    time.sleep(min(self.next_at - now, self.end - now))
                    continue
                # Running late: carry on, but never burst to catch up more than a second.
                self.next_at = max(self.next_at + self.interval, now - 1.0)
            self.one_request()
        self.close()

    def pick(self) -> tuple[str, str, str | None]:
        route = self.rng.choices(self.routes, self.weights)[0]
        site = self.site
        if route == "view" and not site.ids:
            route = "home"
        if route == "view":
            with site.lock:
                post_id = self.rng.choice(site.ids)
            return route, f"/posts/{post_id}", None
        if route == "list":
            return route, f"/posts?page={self.rng.choice(site.pages)}", None
        if route == "home":
            return route, "/", None
        if route == "static":
            return route, self.rng.choice(site.statics), None
        if route == "form":
            return route, "/new", None
        return route, "/posts", posts.form_body(posts.generate(self.rng, self.rng.randint(1, 10**6)))

    def connection(self) -> tuple[socket.socket, bool]:
        """The thread's socket and whether it is being reused. A kept-alive socket that is
        readable before we send means the server closed it while idle: reconnect, no failure."""
        if self.sock is not None:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable:
                return self.sock, True
            self.stats.idle_closed += 1
            self.close()
        self.sock = socket.create_connection((self.host, self.port), timeout=self.args.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.sock, False

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def one_request(self) -> None:
        route, path, body = self.pick()
        method = "POST" if body is not None else "GET"
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host_header}\r\nUser-Agent: pyblogd-loadtest\r\n"
        if body is not None:
            # As our own page posts: the Origin and the CSRF cookie its form's token repeats.
            head += (f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n"
                     f"Origin: http://{self.host_header}\r\nCookie: pyblogd_csrf={posts.CSRF}\r\n")
        data = (head + "\r\n" + (body or "")).encode()
        started = time.monotonic()
        status, location, failure = None, "", None
        reused = False
        try:
            # The request is built before the idle check so that the window in which the server
            # may close the connection under us is as short as the check-then-send itself.
            sock, reused = self.connection()
            sock.sendall(data)
            resp = http.client.HTTPResponse(sock, method=method)
            resp.begin()
            resp.read()
            status, location = resp.status, resp.getheader("Location") or ""
            if resp.will_close:
                self.close()
        except ConnectionRefusedError:
            failure = "connect refused"
        except (socket.timeout, TimeoutError):
            failure = "timeout"
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
            # The server closed the connection without an answer. A reset (RST) means it closed
            # with our request unread in its receive buffer: the request reached the server and
            # was dropped. A plain close (FIN, RemoteDisconnected) on a reused connection means
            # the server closed it before our request arrived: the keep-alive close race, which
            # the idle check above narrows to the time between that check and the send.
            # (RemoteDisconnected is a ConnectionResetError subclass but means an empty read: FIN.)
            if isinstance(e, http.client.RemoteDisconnected):
                how = "closed"
            else:
                how = "reset" if isinstance(e, ConnectionResetError) else "closed"
            failure = f"{how} without answer ({'reused' if reused else 'new'} connection, {type(e).__name__})"
        except (OSError, http.client.HTTPException) as e:
            failure = f"{type(e).__name__}: {e}"
        if failure is not None:
            self.close()
        elapsed = time.monotonic() - started

        st = self.stats
        st.count += 1
        st.by_route[route] += 1
        if status is not None:
            st.status[status] += 1
            st.latency.append(elapsed)
            st.route_latency[route].append(elapsed)
            expected = ROUTES[route][1]
            if status >= 500:
                failure = f"status {status}"
            elif status != expected:
                failure = f"unexpected status {status} (expected {expected})"
            elif route == "create":
                match = _CREATED.search(urllib.parse.urlsplit(location).path)
                if match:
                    self.site.add_post(int(match.group(1)))
                else:
                    failure = f"303 without a /posts/ID Location ({location!r})"
        if failure is not None:
            st.failures += 1
            st.route_failures[route] += 1
            st.kinds[failure] += 1
            st.failure_times.append(started - self.t0)
            if len(st.failure_log) < 20:
                st.failure_log.append({"t_s": round(started - self.t0, 3), "route": route,
                                       "method": method, "path": path, "failure": failure})


# --- reloads and upgrades --------------------------------------------------------------------

class Operator(threading.Thread):
    """Sends HUPs and the USR2 at their scheduled times, one after the other, and watches /proc
    to tell when each has finished. Every wait ends at the end of the run at the latest."""

    def __init__(self, args, t0: float, end: float):
        super().__init__(name="operator", daemon=True)
        self.args, self.t0, self.end = args, t0, end
        kinds = ["hup"] * args.during_reload + (["usr2"] if args.usr2 else [])
        self.schedule = [(args.duration * (k + 1) / (len(kinds) + 1), kind) for k, kind in enumerate(kinds)]
        self.events: list[dict] = []
        self.current = ""  # what is under way, for the progress line

    def master(self) -> int | None:
        if self.args.pid_file:
            return procfs.read_pidfile(self.args.pid_file)
        return self.args.master_pid

    def run(self) -> None:
        for number, (offset, kind) in enumerate(self.schedule, start=1):
            if not procfs.wait_until(lambda: time.monotonic() >= self.t0 + offset, self.end, 0.02):
                break
            self.current = f"{kind} {number}/{len(self.schedule)}"
            event = self.hup() if kind == "hup" else self.usr2()
            event.update(kind=kind, number=number)
            self.events.append(event)
            self.current = ""

    def hup(self) -> dict:
        master = self.master()
        if master is None or not procfs.is_running(master):
            return {"ok": False, "error": f"no running master (pid {master})"}
        old = procfs.children(master)
        started = time.monotonic()
        os.kill(master, signal.SIGHUP)

        def finished() -> bool:
            now = procfs.children(master)
            return now.isdisjoint(old) and len(now) >= len(old)

        done = procfs.wait_until(finished, self.end)
        ended = time.monotonic()
        new = procfs.children(master)
        event = {"ok": done and procfs.is_running(master), "start_s": started - self.t0,
                 "end_s": ended - self.t0, "wall_s": ended - started,
                 "old_workers": sorted(old), "new_workers": sorted(new)}
        if not done:
            event["error"] = "reload not finished by the end of the run"
        elif not procfs.is_running(master):
            event["error"] = "the master exited during the reload"
        return event

    def usr2(self) -> dict:
        pidfile = self.args.pid_file
        old = procfs.read_pidfile(pidfile)
        if old is None or not procfs.is_running(old):
            return {"ok": False, "error": f"no running master in {pidfile}"}
        old_workers = procfs.children(old)
        oldbin = pidfile + ".oldbin"
        started = time.monotonic()
        os.kill(old, signal.SIGUSR2)
        event: dict = {"ok": False, "start_s": started - self.t0, "old_master": old,
                       "old_workers": sorted(old_workers), "saw_oldbin": False}

        def new_master() -> int | None:
            if os.path.exists(oldbin):
                event["saw_oldbin"] = True
            pid = procfs.read_pidfile(pidfile)
            return pid if pid not in (None, old) and procfs.is_running(pid) else None

        if not procfs.wait_until(lambda: new_master() is not None and event["saw_oldbin"], self.end):
            event["error"] = ("no new master in the pidfile by the end of the run" if new_master() is None
                              else f"{oldbin} never appeared")
            return self.finish(event, started)
        new = new_master()
        event["new_master"] = new
        event["new_master_s"] = time.monotonic() - started

        # Ready: as many workers as before, all asleep (waiting for connections) three polls running.
        calm = {"n": 0}

        def ready() -> bool:
            workers = procfs.children(new)
            asleep = len(workers) >= len(old_workers) and all(procfs.state(w) == "S" for w in workers)
            calm["n"] = calm["n"] + 1 if asleep else 0
            return calm["n"] >= 3

        if not procfs.wait_until(ready, self.end, 0.05):
            event["error"] = "the new master's workers were not ready by the end of the run"
            return self.finish(event, started)
        event["new_workers"] = sorted(procfs.children(new))
        event["new_ready_s"] = time.monotonic() - started
        event["sent_term"] = procfs.signal_pid(old, signal.SIGTERM) if procfs.is_running(old) else False
        gone = procfs.wait_until(
            lambda: not procfs.is_running(old) and not any(procfs.is_running(w) for w in old_workers), self.end)
        if not gone:
            event["error"] = "the old master or its workers still ran at the end of the run"
            return self.finish(event, started)
        event["pidfile_after"] = procfs.read_pidfile(pidfile)
        event["oldbin_left"] = os.path.exists(oldbin)
        if event["pidfile_after"] != new:
            event["error"] = f"{pidfile} holds {event['pidfile_after']} after the upgrade, not {new}"
        elif event["oldbin_left"]:
            event["error"] = f"{oldbin} was left behind"
        else:
            event["ok"] = True
        return self.finish(event, started)

    def finish(self, event: dict, started: float) -> dict:
        ended = time.monotonic()
        event.update(end_s=ended - self.t0, wall_s=ended - started)
        return event


# --- reporting -------------------------------------------------------------------------------

def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def summarise(args, clients: list[Client], operator: Operator | None, elapsed: float, site: Site) -> dict:
    total = Stats()
    for c in clients:
        s = c.stats
        total.count += s.count
        total.failures += s.failures
        total.by_route.update(s.by_route)
        total.route_failures.update(s.route_failures)
        total.status.update(s.status)
        total.kinds.update(s.kinds)
        total.latency.extend(s.latency)
        for r in ROUTES:
            total.route_latency[r].extend(s.route_latency[r])
        total.failure_log.extend(s.failure_log)
        total.failure_times.extend(s.failure_times)
        total.idle_closed += s.idle_closed
    events = operator.events if operator else []

    # A failure belongs to the last event signalled before it (or to "steady" before any).
    phases = Counter()
    for t in total.failure_times:
        kind = "steady"
        for e in events:
            if e.get("start_s", 1e18) <= t:
                kind = e["kind"]
        phases[kind] += 1
    walls = [e["wall_s"] for e in events if e["kind"] == "hup" and e.get("ok")]
    report = {
        "url": args.url, "duration_s": round(elapsed, 3), "rate": args.rate, "concurrency": args.concurrency,
        "posts_known_at_start": len(site.ids), "requests": total.count,
        "requests_per_s": round(total.count / elapsed, 1) if elapsed > 0 else None,
        "failures": total.failures,
        "failures_by_phase": {"steady": phases["steady"], "hup": phases["hup"], "usr2": phases["usr2"]},
        "failure_kinds": dict(total.kinds.most_common()),
        "first_failures": sorted(total.failure_log, key=lambda f: f["t_s"])[:20],
        "status": {str(k): v for k, v in sorted(total.status.items())},
        "idle_connections_closed_by_server": total.idle_closed,
        "latency_ms": {"p50": ms(percentile(total.latency, 50)), "p90": ms(percentile(total.latency, 90)),
                       "p99": ms(percentile(total.latency, 99)),
                       "max": ms(max(total.latency) if total.latency else None)},
        "routes": {r: {"count": total.by_route[r], "failures": total.route_failures[r],
                       "p50_ms": ms(percentile(total.route_latency[r], 50)),
                       "p99_ms": ms(percentile(total.route_latency[r], 99))} for r in ROUTES},
        "reloads": [e for e in events if e["kind"] == "hup"],
        "reload_wall_ms": {"count": len(walls), "mean": ms(sum(walls) / len(walls)) if walls else None,
                           "max": ms(max(walls)) if walls else None},
        "usr2": next((e for e in events if e["kind"] == "usr2"), None),
    }
    report["events_ok"] = all(e.get("ok") for e in events) and len(events) == len(operator.schedule if operator else [])
    report["ok"] = report["failures"] == 0 and report["events_ok"]
    return report


def print_summary(r: dict) -> None:
    lat = r["latency_ms"]
    print(f"\n{r['requests']} requests in {r['duration_s']:.1f} s ({r['requests_per_s']} req/s) "
          f"against {r['url']}, {r['concurrency']} connections, rate {r['rate'] or 'unthrottled'}")
    print(f"latency p50 {lat['p50']} ms, p90 {lat['p90']} ms, p99 {lat['p99']} ms, max {lat['max']} ms")
    print("route      count  failures   p50 ms   p99 ms")
    for name, s in r["routes"].items():
        print(f"{name:<8} {s['count']:>7} {s['failures']:>9} {s['p50_ms'] or '-':>8} {s['p99_ms'] or '-':>8}")
    print("status:", ", ".join(f"{k}: {v}" for k, v in r["status"].items()) or "none")
    print(f"keep-alive connections closed by the server while idle (reconnected): "
          f"{r['idle_connections_closed_by_server']}")
    print(f"FAILURES: {r['failures']}", end="")
    if r["failures"]:
        print(" — " + "; ".join(f"{k}: {v}" for k, v in r["failure_kinds"].items()))
        for f in r["first_failures"][:5]:
            print(f"  at {f['t_s']:.3f} s {f['method']} {f['path']}: {f['failure']}")
    else:
        print()
    for e in r["reloads"]:
        state = "ok" if e.get("ok") else f"FAILED: {e.get('error')}"
        wall = f"{e['wall_s'] * 1000:.0f} ms" if "wall_s" in e else "-"
        print(f"HUP {e['number']}: {wall}, {len(e.get('old_workers', []))} old → "
              f"{len(e.get('new_workers', []))} new workers, {state}")
    if r["reloads"]:
        w = r["reload_wall_ms"]
        print(f"HUP reloads: {w['count']} finished, wall time mean {w['mean']} ms, max {w['max']} ms; "
              f"failed requests during reloads: {r['failures_by_phase']['hup']}")
    u = r["usr2"]
    if u:
        state = "ok" if u.get("ok") else f"FAILED: {u.get('error')}"
        print(f"USR2 upgrade: master {u.get('old_master')} → {u.get('new_master')}, "
              f"{u.get('wall_s', 0) * 1000:.0f} ms to old master gone, {state}; "
              f"failed requests during the upgrade: {r['failures_by_phase']['usr2']}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="loadtest.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="pyblogd base URL (loopback only)")
    p.add_argument("--duration", type=float, default=10, help=f"seconds to run (default 10, max {MAX_DURATION})")
    p.add_argument("--rate", type=float, default=200, help="total requests/s; 0 = as fast as possible (default 200)")
    p.add_argument("--concurrency", type=int, default=8, help="client threads, one connection each (default 8)")
    p.add_argument("--timeout", type=float, default=10, help="seconds before a request counts as timed out")
    p.add_argument("--during-reload", type=int, default=0, metavar="N", help="send N HUPs spread over the run")
    p.add_argument("--usr2", action="store_true", help="do one USR2 binary upgrade mid-run (needs --pid-file)")
    p.add_argument("--pid-file", help="the master's pidfile (pyblogd --pid)")
    p.add_argument("--master-pid", type=int, help="the master's pid, when there is no pidfile")
    p.add_argument("--report-json", metavar="FILE", help="also write the summary as JSON to FILE")
    p.add_argument("--seed", type=int, default=1, help="random seed of the request mix")
    p.add_argument("--quiet", action="store_true", help="no per-second progress")
    args = p.parse_args(argv)
    if not 0 < args.duration <= MAX_DURATION:
        raise UsageError(f"--duration must be in (0, {MAX_DURATION}]")
    if args.rate < 0 or args.concurrency < 1 or args.timeout <= 0:
        raise UsageError("--rate must be ≥ 0, --concurrency ≥ 1, --timeout > 0")
    if args.during_reload < 0:
        raise UsageError("--during-reload must be ≥ 0")
    if args.usr2 and not args.pid_file:
        raise UsageError("--usr2 needs --pid-file (the upgrade is followed through PIDFILE and PIDFILE.oldbin)")
    if (args.during_reload or args.usr2) and not (args.pid_file or args.master_pid):
        raise UsageError("--during-reload needs --pid-file or --master-pid")
    return args


def main(argv: list[str]) -> int:
    try:
        args = parse_args(argv)
        host, port = loopback_target(args.url)
        site = discover(host, port, time.monotonic() + 5)
    except UsageError as e:
        print(f"loadtest: {e}", file=sys.stderr)
        return 2
    except (OSError, http.client.HTTPException) as e:
        print(f"loadtest: cannot reach {args.url}: {e}", file=sys.stderr)
        return 2

    t0 = time.monotonic()
    end = t0 + args.duration
    clients = [Client(i, args, host, port, site, t0, end) for i in range(args.concurrency)]
    operator = Operator(args, t0, end) if (args.during_reload or args.usr2) else None
    for c in clients:
        c.start()
    if operator:
        operator.start()

    last_count, tick = 0, t0
    while time.monotonic() < end:
        time.sleep(max(0.0, min(1.0, end - time.monotonic(), tick + 1.0 - time.monotonic())))
        tick = time.monotonic()
        count = sum(c.stats.count for c in clients)
        if not args.quiet:
            failures = sum(c.stats.failures for c in clients)
            doing = f"  [{operator.current}]" if operator and operator.current else ""
            print(f"{tick - t0:5.1f} s  {count - last_count:6d} req/s  failures so far {failures}{doing}",
                  file=sys.stderr, flush=True)
        last_count = count
    # In-flight requests end within --timeout; the operator's waits end with the run.
    for c in clients:
        c.join(timeout=args.timeout + 1)
    if operator:
        operator.join(timeout=5)
    report = summarise(args, clients, operator, time.monotonic() - t0, site)
    print_summary(report)
    if args.report_json:
        with open(args.report_json, "w") as out:
            json.dump(report, out, indent=2)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
