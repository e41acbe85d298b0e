"""Readings from /proc, and the clean-up of every process the benchmark started.

The benchmark makes itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER),
so when a manager dies, its workers are re-parented to the benchmark and not
to init. Clean-up then walks the benchmark's own descendants and kills them
by pid, which stops everything a run started and nothing else.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import time
from pathlib import Path

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def become_subreaper() -> bool:
    """Make orphaned descendants re-parent to this process; return False where the kernel refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    return libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def children(pid: int) -> list[int]:
    """Return the direct children of `pid`, from /proc/PID/task/*/children; empty once it is gone."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(word) for word in f.read().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Return every descendant of `pid`, parents before their children."""
    found: list[int] = []
    pending = children(pid)
    while pending:
        child = pending.pop(0)
        found.append(child)
        pending += children(child)
    return found


def comm(pid: int) -> str:
    """Return the process name (what exec set), or "" when the process is gone."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the name; index 0 is field 3 (state) of proc(5)."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rindex(")") + 2:].split()


def is_zombie(pid: int) -> bool:
    try:
        return stat_fields(pid)[0] == "Z"
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of `pid` itself (not of its reaped children)."""
    fields = stat_fields(pid)
    # utime and stime are fields 14 and 15 of proc(5).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid`, from the second field of /proc/PID/statm."""
    resident = Path(f"/proc/{pid}/statm").read_text().split()[1]
    return int(resident) * PAGE_SIZE


class WorkerWatch:
    """Tracks which children of a manager have exec'd a given program.

    A pid is checked once it has the expected name, then remembered, so a poll
    over 500 workers reads only the children lists and the new pids."""

    def __init__(self, manager_pid: int, name: str = "sleep"):
        self.manager_pid = manager_pid
        self.name = name
        self.known: set[int] = set()

    def running(self) -> set[int]:
        current = set(children(self.manager_pid))
        self.known &= current
        for pid in current - self.known:
            if comm(pid) == self.name and not is_zombie(pid):
                self.known.add(pid)
        return set(self.known)


def reap_orphans(keep: set[int]) -> None:
    """Reap exited children of this process other than those in `keep` (Popen objects reap their own)."""
    for pid in children(os.getpid()):
        if pid not in keep and is_zombie(pid):
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass


def kill_leftovers(keep: set[int]) -> list[int]:
    """Kill every descendant of this process (orphans re-parented here included) and reap them."""
    killed: list[int] = []
    end = time.monotonic() + 15.0
    while time.monotonic() < end:
        alive = [pid for pid in descendants(os.getpid()) if comm(pid) and not is_zombie(pid)]
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
        time.sleep(0.02)
        reap_orphans(keep)
    reap_orphans(keep)
    if killed:
        log.debug("killed %d leftover processes", len(set(killed)))
    return sorted(set(killed))


def cgroup2_dir() -> Path | None:
    """Return the cgroup v2 directory this process belongs to, or None without a cgroup v2 mount."""
    mount = next((line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
                  if line.split()[2] == "cgroup2"), None)
    own = next((line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines()
                if line.startswith("0::")), None)
    if mount is None or own is None:
        return None
    return Path(mount + own)


def remove_cgroups(prefix: str) -> int:
    """Remove the empty cgroup trees named PREFIX* next to this process's own; return how many."""
    base = cgroup2_dir()
    if base is None:
        return 0
    removed = 0
    for top in base.glob(f"{prefix}*"):
        # Deepest directories first: a cgroup can only be removed once it has no children.
        for directory in sorted((d for d in top.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
            try:
                directory.rmdir()
            except OSError:
                continue
        try:
            top.rmdir()
            removed += 1
        except OSError as exc:
            log.warning("could not remove the cgroup %s: %s", top, exc)
    return removed

