"""Per-unit figures for `status`: tasks, memory, CPU time and the process list."""

from __future__ import annotations

from typing import Any

import psutil
from unitmgr.manager.processes import read_cmdline


def unit_statistics(pids: set[int]) -> dict[str, Any]:
    """Sum the figures of a unit's live processes; processes that vanish meanwhile are skipped."""
    memory = 0
    cpu = 0.0
    listing = []
    for pid in sorted(pids):
        try:
            process = psutil.Process(pid)
            with process.oneshot():
                memory += process.memory_info().rss
                times = process.cpu_times()
                cpu += times.user + times.system
                ppid = process.ppid()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        listing.append({"pid": pid, "ppid": ppid, "cmdline": read_cmdline(pid)})
    return {
        "tasks": len(listing),
        "memory_bytes": memory if listing else None,
        "cpu_seconds": cpu if listing else None,
        "processes": listing,
    }
