"""Units left running by a manager that died without stopping them.

Every process a manager spawns carries MANAGERPID (the manager's pid) and
UNITMGR_MANAGER (its runtime directory) in its environment, and descendants
inherit both. When a new manager takes the lock from a dead one, it stops the
processes that still carry the dead manager's two values, and only then starts
units, so no unit ever runs twice.

Stopping rather than adopting is deliberate: the orphans were re-parented
away from the manager, so it could neither read their exit status nor drain
their output pipes, and a unit whose output and exit are lost is worse than a
restarted one. A process that cleared its environment escapes this search.
"""

from __future__ import annotations

import logging
import os
import signal
import time

from unitmgr.manager.processes import read_cmdline

log = logging.getLogger(__name__)


def _environ(pid: int) -> list[bytes]:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f.read().split(b"\0")
    except OSError:
        return []


def find_leftovers(previous_pid: int, runtime_dir: str) -> list[int]:
    markers = {f"MANAGERPID={previous_pid}".encode(), f"UNITMGR_MANAGER={runtime_dir}".encode()}
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        if markers.issubset(_environ(int(entry))):
            found.append(int(entry))
    return found


def stop_leftovers(previous_pid: int, runtime_dir: str, timeout: float = 10.0) -> list[int]:
    """SIGTERM the dead manager's processes, SIGKILL what remains after `timeout`; return the pids."""
    pids = find_leftovers(previous_pid, runtime_dir)
    if not pids:
        return []
    for pid in pids:
        log.warning("stopping pid %d left running by the previous manager (pid %d): %s",
                    pid, previous_pid, read_cmdline(pid))
        try:
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    # Start-up is the only place this runs, before the event loop exists, so a
    # short poll is the simple way to wait for processes that are not our children.
    while time.monotonic() < deadline and find_leftovers(previous_pid, runtime_dir):
        time.sleep(0.05)
    for pid in find_leftovers(previous_pid, runtime_dir):
        log.warning("pid %d ignored SIGTERM for %gs; sending SIGKILL", pid, timeout)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids
