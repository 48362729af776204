#!/usr/bin/env python3
"""Checks that no request fails while pyblogd reloads (HUP) and upgrades its binary (USR2).

Starts `pyblogd -w 4` on 127.0.0.1 with a temporary database of 30 posts, runs scripts/loadtest.py
against it (a mixed load of views, lists, home, POSTs and static files) while sending 10 HUPs
and then one USR2 upgrade, and prints the failed requests during the reloads, during the
upgrade, and the mean and max reload wall time (signal → every old worker gone). Everything is
stopped and removed at the end; the whole check takes well under 2 minutes.

Exit status: 0 when no request failed and every reload and the upgrade finished, 1 otherwise,
2 when the server could not be started.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(SCRIPTS)
sys.path.insert(0, os.path.join(SCRIPTS, "lib"))
import posts  # noqa: E402  (scripts/lib)
import procfs  # noqa: E402
import server  # noqa: E402


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="reload_check.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default=os.path.join(REPO, "target", "release", "pyblogd"),
                   help="pyblogd to run (default target/release/pyblogd, built when missing)")
    p.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    p.add_argument("--hups", type=int, default=10, help="HUP reloads to send (default 10)")
    p.add_argument("--duration", type=float, default=45, help="seconds of load, at most 90 (default 45)")
    p.add_argument("--rate", type=float, default=300, help="requests/s of the load (default 300)")
    p.add_argument("--concurrency", type=int, default=8, help="client connections (default 8)")
    p.add_argument("--report-json", metavar="FILE", help="also write loadtest's JSON summary to FILE")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (database, log)")
    args = p.parse_args()
    if not 5 <= args.duration <= 90:
        p.error("--duration must be between 5 and 90 seconds")
    return args


def ensure_binary(path: str) -> None:
    if os.access(path, os.X_OK):
        return
    if path != os.path.join(REPO, "target", "release", "pyblogd"):
        raise SystemExit(f"reload_check: no executable at {path}")
    print("building target/release/pyblogd (cargo build --release --locked)", flush=True)
    subprocess.run(["cargo", "build", "--release", "--locked"], cwd=REPO, check=True)


def main() -> int:
    args = parse_args()
    ensure_binary(args.binary)
    tmp = tempfile.mkdtemp(prefix="pyblogd-reload-check.")
    run_dir = os.path.join(tmp, "run")  # the server's working directory: no .env or overrides
    os.mkdir(run_dir)
    pidfile = os.path.join(tmp, "pyblogd.pid")
    log_path = os.path.join(tmp, "pyblogd.log")
    report_path = args.report_json or os.path.join(tmp, "loadtest.json")
    port = server.free_port()
    proc: subprocess.Popen | None = None
    # TERM/INT end the check through the `finally` below, like any other exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(130))
    try:
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                [args.binary, "-w", str(args.workers), "--bind", f"127.0.0.1:{port}",
                 "--database-uri", f"sqlite:///{os.path.join(tmp, 'blog.db')}", "--pid", pidfile],
                cwd=run_dir, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                # One address posts at full speed here: no POST rate limit.
                env={**os.environ, "POST_RATE_LIMIT": "0"})
        if not server.wait_ready(port, 30, proc.pid):
            print(f"reload_check: pyblogd did not answer GET / within 30 s; its log:\n{tail(log_path)}",
                  file=sys.stderr)
            return 2
        posts.seed(port, 30, views=60)
        print(f"pyblogd -w {args.workers} on 127.0.0.1:{port}, master {proc.pid}; "
              f"{args.duration:.0f} s of load at {f'{args.rate:.0f} req/s' if args.rate else 'full speed'} "
              f"with {args.hups} HUPs, then one USR2",
              flush=True)
        loadtest = subprocess.run(
            [os.path.join(SCRIPTS, "loadtest.py"), "--url", f"http://127.0.0.1:{port}",
             "--duration", str(args.duration), "--rate", str(args.rate), "--concurrency", str(args.concurrency),
             "--during-reload", str(args.hups), "--usr2", "--pid-file", pidfile, "--quiet",
             "--report-json", report_path],
            stdout=subprocess.PIPE, text=True, timeout=args.duration + 40)
        if not os.path.exists(report_path):
            print(loadtest.stdout)
            print("reload_check: loadtest wrote no report", file=sys.stderr)
            return 2
        with open(report_path) as f:
            report = json.load(f)
        return summarise(report, args, proc, log_path, loadtest.stdout)
    except KeyboardInterrupt:
        return 130
    finally:
        stop_everything(proc, pidfile, tmp)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def summarise(report: dict, args, proc: subprocess.Popen, log_path: str, loadtest_output: str) -> int:
    phases = report["failures_by_phase"]
    reloads = report["reloads"]
    walls = report["reload_wall_ms"]
    usr2 = report.get("usr2") or {}
    finished = sum(1 for e in reloads if e.get("ok"))
    try:  # after the upgrade the original master should have stopped gracefully (exit 0)
        old_status = proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        old_status = None
    print()
    print(f"requests: {report['requests']} ({report['requests_per_s']} req/s), "
          f"failed: {report['failures']} (before the first HUP: {phases['steady']})")
    print(f"failed requests during {args.hups} HUP reloads: {phases['hup']}")
    print(f"failed requests during the USR2 upgrade: {phases['usr2']}")
    print(f"HUP reload wall time: mean {walls['mean']} ms, max {walls['max']} ms "
          f"({finished}/{args.hups} reloads finished)")
    if usr2:
        if usr2.get("ok"):
            print(f"USR2 upgrade: master {usr2['old_master']} → {usr2['new_master']}; new master in the pidfile "
                  f"after {usr2['new_master_s'] * 1000:.0f} ms, its workers ready after "
                  f"{usr2['new_ready_s'] * 1000:.0f} ms, old master gone after {usr2['wall_s'] * 1000:.0f} ms "
                  f"(old master exit status {old_status})")
        else:
            print(f"USR2 upgrade FAILED: {usr2.get('error')}")
    for e in reloads:
        if not e.get("ok"):
            print(f"HUP {e['number']} FAILED: {e.get('error')}")
    if report["failures"]:
        print("failures: " + "; ".join(f"{k}: {v}" for k, v in report["failure_kinds"].items()))
        for f in report["first_failures"][:10]:
            print(f"  at {f['t_s']:.3f} s {f['method']} {f['path']}: {f['failure']}")
    ok = report["ok"] and finished == args.hups and bool(usr2.get("ok"))
    if not ok:
        print(f"\nloadtest's summary:{loadtest_output}")
        print(f"end of the pyblogd log:\n{tail(log_path)}")
    print("\nreload_check: " + ("OK" if ok else "FAILED"))
    return 0 if ok else 1


def stop_everything(proc: subprocess.Popen | None, pidfile: str, tmp: str) -> None:
    """Stops whichever masters are running (the original one, or the one the upgrade started),
    then anything left with our temporary directory in its arguments (orphaned workers)."""
    masters = {procfs.read_pidfile(pidfile), procfs.read_pidfile(pidfile + ".oldbin")}
    if proc is not None:
        masters.add(proc.pid)
    for pid in masters - {None}:
        if procfs.is_running(pid):
            procfs.stop_tree(pid)
    procfs.stop_all_with_argument(tmp, grace=5)
    if proc is not None:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()


def tail(path: str, lines: int = 25) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)"


if __name__ == "__main__":
    started = time.monotonic()
    status = main()
    print(f"({time.monotonic() - started:.0f} s)")
    sys.exit(status)
