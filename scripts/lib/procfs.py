"""What /proc says about pyblogd's processes: children, run state, resident memory, pidfiles.

The bench, the load test and the reload check watch the master and its workers from outside,
as an operator would. Workers are the master's children: read from /proc/PID/task/*/children
when the kernel has CONFIG_PROC_CHILDREN, else found by scanning /proc/*/stat for the parent pid.
"""

from __future__ import annotations

import glob
import os
import signal
import time


def _stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name, or None when the pid is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name may hold spaces and parentheses: the fields start after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def state(pid: int) -> str | None:
    """The one-letter run state (R, S, D, Z...), or None when the pid does not exist."""
    fields = _stat(pid)
    return fields[0] if fields else None


def is_running(pid: int) -> bool:
    """True while the process exists and has not exited (a zombie has exited)."""
    return state(pid) not in (None, "Z", "X")


def _children_from_task_files(pid: int) -> set[int] | None:
    files = glob.glob(f"/proc/{pid}/task/*/children")
    if not files:
        return None
    found: set[int] = set()
    for path in files:
        try:
            with open(path) as f:
                found.update(int(p) for p in f.read().split())
        except FileNotFoundError:
            continue
    return found


def _children_from_scan(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat(int(entry))
            if fields and len(fields) > 1 and fields[1] == str(pid):
                found.add(int(entry))
    return found


_HAS_CHILDREN_FILES: bool | None = None


def children(pid: int) -> set[int]:
    """Pids whose parent is `pid` and that have not exited (zombies are left out)."""
    global _HAS_CHILDREN_FILES
    kids: set[int] | None = None
    if _HAS_CHILDREN_FILES is not False:
        kids = _children_from_task_files(pid)
        if _HAS_CHILDREN_FILES is None and os.path.exists(f"/proc/{pid}"):
            _HAS_CHILDREN_FILES = kids is not None
    if kids is None:
        kids = _children_from_scan(pid)
    return {k for k in kids if is_running(k)}


def rss_kib(pid: int) -> int | None:
    """VmRSS of the process in KiB, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def read_pidfile(path: str) -> int | None:
    """The pid written in `path`, or None when the file is missing, empty or half-written."""
    try:
        with open(path) as f:
            text = f.read().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() else None


def signal_pid(pid: int, sig: int) -> bool:
    """Sends `sig`; False when the process is already gone."""
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


def wait_until(predicate, deadline: float, interval: float = 0.01) -> bool:
    """Polls `predicate` until it holds (True) or time.monotonic() passes `deadline` (False)."""
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def stop_tree(pid: int, grace: float = 15.0) -> None:
    """TERM a master and wait up to `grace` s for it and its workers; KILL whatever remains."""
    family = {pid} | children(pid)
    signal_pid(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    wait_until(lambda: not any(is_running(p) for p in family), deadline, 0.02)
    for p in family:
        if is_running(p):
            signal_pid(p, signal.SIGKILL)


def pids_with_argument(fragment: str) -> set[int]:
    """Running processes with `fragment` in one of their arguments. The scripts pass their own
    unique temporary directory, so that cleanup finds the workers of a master that died
    without taking them along, and nothing else."""
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if any(fragment.encode() in a for a in args) and is_running(int(entry)):
            found.add(int(entry))
    return found


def stop_all_with_argument(fragment: str, grace: float = 15.0) -> None:
    """TERM, then KILL after `grace` s, every process that `pids_with_argument` finds."""
    pids = pids_with_argument(fragment)
    for p in pids:
        signal_pid(p, signal.SIGTERM)
    wait_until(lambda: not any(is_running(p) for p in pids), time.monotonic() + grace, 0.02)
    for p in pids:
        if is_running(p):
            signal_pid(p, signal.SIGKILL)
