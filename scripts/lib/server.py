"""Starting, probing and measuring a pyblogd server on the loopback interface.

Used as a module by `loadtest.py` and `reload_check.py`, and as a small command line by `bench`
(bash), which cannot poll a socket or time a start precisely on its own:

    server.py free-port
    server.py wait-ready PORT [--path P] [--timeout S] [--pid PID]
    server.py get PORT PATH --out FILE   (saves a 200 body, e.g. the stylesheet nginx serves too)
    server.py start-time PORT --log FILE [--runs N] -- PYBLOGD ARGS...
    server.py memory MASTER_PID          (prints JSON: master and worker VmRSS in KiB)
    server.py stop PID                   (TERM, bounded wait, KILL leftovers)
    server.py stop-all-with DIR          (the same for every process with DIR in its arguments)
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import statistics
import subprocess
import sys
import time

import procfs

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """An ephemeral TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def probe(port: int, path: str = "/", timeout: float = 2.0) -> int | None:
    """Status of one GET on a fresh connection, or None when nothing answered."""
    conn = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_ready(port: int, timeout: float, pid: int | None = None, interval: float = 0.002,
               path: str = "/") -> bool:
    """Polls GET `path` until it answers 200; False on timeout or when `pid` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe(port, path, timeout=1.0) == 200:
            return True
        if pid is not None and not procfs.is_running(pid):
            return False
        time.sleep(interval)
    return False


def start_time_ms(argv: list[str], port: int, log_path: str, timeout: float = 30.0) -> float:
    """Milliseconds from spawning `argv` to its first 200 on GET /; the server is stopped after."""
    with open(log_path, "ab") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        if not wait_ready(port, timeout, proc.pid, interval=0.001):
            raise RuntimeError(f"pyblogd did not answer GET / within {timeout:.0f} s (log: {log_path})")
        return (time.perf_counter() - started) * 1000.0
    finally:
        procfs.stop_tree(proc.pid)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def memory(master: int) -> dict:
    """Resident memory of a master and its workers, in KiB."""
    workers = sorted(procfs.children(master))
    return {
        "master_pid": master,
        "master_rss_kib": procfs.rss_kib(master),
        "worker_rss_kib": {str(w): procfs.rss_kib(w) for w in workers},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("free-port")
    ready = sub.add_parser("wait-ready")
    ready.add_argument("port", type=int)
    ready.add_argument("--timeout", type=float, default=30.0)
    ready.add_argument("--pid", type=int)
    ready.add_argument("--path", default="/")
    get = sub.add_parser("get")
    get.add_argument("port", type=int)
    get.add_argument("path")
    get.add_argument("--out", required=True)
    start = sub.add_parser("start-time")
    start.add_argument("port", type=int)
    start.add_argument("--log", required=True)
    start.add_argument("--runs", type=int, default=3)
    mem = sub.add_parser("memory")
    mem.add_argument("pid", type=int)
    stop = sub.add_parser("stop")
    stop.add_argument("pid", type=int)
    stop_all = sub.add_parser("stop-all-with")
    stop_all.add_argument("fragment")
    argv = sys.argv[1:]
    command_line: list[str] = []
    if "--" in argv:  # start-time: everything after -- is the server's command line
        cut = argv.index("--")
        argv, command_line = argv[:cut], argv[cut + 1 :]
    args = parser.parse_args(argv)

    if args.command == "free-port":
        print(free_port())
    elif args.command == "wait-ready":
        if not wait_ready(args.port, args.timeout, args.pid, path=args.path):
            print(f"server on port {args.port} not ready within {args.timeout:.0f} s", file=sys.stderr)
            return 1
    elif args.command == "get":
        conn = http.client.HTTPConnection(LOOPBACK, args.port, timeout=10)
        conn.request("GET", args.path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            print(f"GET {args.path} answered {resp.status}", file=sys.stderr)
            return 1
        with open(args.out, "wb") as out:
            out.write(body)
    elif args.command == "start-time":
        if not command_line:
            parser.error("start-time needs the server's command line after --")
        runs = [start_time_ms(command_line, args.port, args.log) for _ in range(max(1, args.runs))]
        print(json.dumps({"runs_ms": runs, "median_ms": statistics.median(runs), "max_ms": max(runs)}))
    elif args.command == "memory":
        print(json.dumps(memory(args.pid)))
    elif args.command == "stop":
        procfs.stop_tree(args.pid)
    elif args.command == "stop-all-with":
        if len(args.fragment) < 12:  # a unique temporary directory, never a broad name
            parser.error("stop-all-with needs a unique temporary path")
        procfs.stop_all_with_argument(args.fragment)
    return 0


if __name__ == "__main__":
    sys.exit(main())
