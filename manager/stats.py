"""Per-unit figures: tasks, memory, CPU time and CPU %, open files, I/O bytes.

A sample reads `/proc/PID/{stat,statm,smaps_rollup,io,fd}` of every live
process of a unit and sums them. Tasks count threads, as the kernel's
`pids.max` does. Memory is the proportional set size (PSS) where
`smaps_rollup` is readable, so pages shared between a unit's processes count
once, and the resident set size (RSS) otherwise. CPU time includes the time of
children that the unit's own processes have reaped (cutime and cstime).
CPU % comes from two samples: the CPU time each process used between them,
divided by the wall time between them. Processes that exit between the
listing and the read are skipped.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from unitmgr.manager.processes import read_cmdline

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class ProcessFigures:
    pid: int
    ppid: int
    threads: int
    cpu_seconds: float
    rss: int
    pss: int | None = None
    fds: int | None = None
    read_bytes: int | None = None
    write_bytes: int | None = None


@dataclass
class UnitSample:
    """The summed figures of one unit at `time` (monotonic seconds)."""

    time: float
    processes: list[ProcessFigures] = field(default_factory=list)

    @property
    def tasks(self) -> int:
        return sum(p.threads for p in self.processes)

    @property
    def rss(self) -> int:
        return sum(p.rss for p in self.processes)

    @property
    def pss(self) -> int | None:
        if not self.processes or any(p.pss is None for p in self.processes):
            return None
        return sum(p.pss for p in self.processes if p.pss is not None)

    @property
    def memory(self) -> int:
        """Return PSS where every process's is readable, else RSS, in bytes."""
        pss = self.pss
        return self.rss if pss is None else pss

    @property
    def cpu_seconds(self) -> float:
        return sum(p.cpu_seconds for p in self.processes)

    def _total(self, attribute: str) -> int | None:
        values = [getattr(p, attribute) for p in self.processes]
        known = [v for v in values if v is not None]
        return sum(known) if known else None

    @property
    def fds(self) -> int | None:
        return self._total("fds")

    @property
    def read_bytes(self) -> int | None:
        return self._total("read_bytes")

    @property
    def write_bytes(self) -> int | None:
        return self._total("write_bytes")


def _read_stat(pid: int) -> tuple[int, int, float] | None:
    """Return (ppid, threads, CPU seconds including reaped children) from /proc/PID/stat."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The fields after comm; comm may contain spaces and ends at the last ')'.
    fields = data[data.rfind(b")") + 2 :].split()
    if len(fields) < 18 or fields[0] == b"Z":
        return None
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return int(fields[1]), int(fields[17]), ticks / CLOCK_TICKS


def _read_rss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE_SIZE
    except (OSError, IndexError, ValueError):
        return None


def _read_pss(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        return None
    return None


def _read_io(pid: int) -> tuple[int | None, int | None]:
    values: dict[bytes, int] = {}
    try:
        with open(f"/proc/{pid}/io", "rb") as f:
            for line in f:
                key, _, number = line.partition(b":")
                values[key] = int(number)
    except (OSError, ValueError):
        return None, None
    return values.get(b"read_bytes"), values.get(b"write_bytes")


def _count_fds(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def sample_process(pid: int, detailed: bool) -> ProcessFigures | None:
    stat = _read_stat(pid)
    rss = _read_rss(pid)
    if stat is None or rss is None:
        return None
    ppid, threads, cpu = stat
    figures = ProcessFigures(pid, ppid, threads, cpu, rss, _read_pss(pid))
    if detailed:
        figures.fds = _count_fds(pid)
        figures.read_bytes, figures.write_bytes = _read_io(pid)
    return figures


def sample_unit(pids: set[int], detailed: bool = True) -> UnitSample:
    """Sample every pid; `detailed` adds open files and I/O bytes, which limits do not need."""
    sample = UnitSample(time.monotonic())
    for pid in sorted(pids):
        figures = sample_process(pid, detailed)
        if figures is not None:
            sample.processes.append(figures)
    return sample


def cpu_percent(previous: UnitSample, current: UnitSample) -> float:
    """Return the CPU use between two samples in percent of one CPU (200 means two busy CPUs)."""
    elapsed = current.time - previous.time
    if elapsed <= 0:
        return 0.0
    before = {p.pid: p.cpu_seconds for p in previous.processes}
    used = 0.0
    for process in current.processes:
        # A process new since the previous sample counts from its start.
        used += max(process.cpu_seconds - before.get(process.pid, 0.0), 0.0)
    return 100.0 * used / elapsed


def unit_statistics(pids: set[int]) -> dict[str, Any]:
    """Return `status` fields for a unit's live processes (the older entry point, without CPU %)."""
    return statistics_fields(sample_unit(pids))


def statistics_fields(sample: UnitSample) -> dict[str, Any]:
    has_processes = bool(sample.processes)
    return {
        "tasks": sample.tasks,
        "memory_bytes": sample.memory if has_processes else None,
        "memory_rss": sample.rss if has_processes else None,
        "memory_pss": sample.pss,
        "cpu_seconds": sample.cpu_seconds if has_processes else None,
        "open_files": sample.fds,
        "io_read_bytes": sample.read_bytes,
        "io_write_bytes": sample.write_bytes,
        "processes": [
            {"pid": p.pid, "ppid": p.ppid, "cmdline": read_cmdline(p.pid), "rss": p.rss,
             "cpu_seconds": p.cpu_seconds}
            for p in sample.processes
        ],
    }
