"""Parsers of the process scheduling attributes: I/O and CPU scheduling, CPU affinity, OOM score.

These settings apply to each spawned process. Their ranges follow systemd
252, which checks them when it loads the unit; the manager calls the same
parsers when it spawns (manager/resourcesettings.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from unitmgr.units.cinteger import INT_MAX, parse_c_integer
from unitmgr.units.cpuset import parse_cpu_set
from unitmgr.units.values import UnitValueError, parse_ranged_int

# ioprio classes. systemd 252 also accepts the numbers 0..8, and the kernel rejects 4..8 at start.
IO_CLASSES = {"none": 0, "realtime": 1, "best-effort": 2, "idle": 3}
_MAX_IO_CLASS_NUMBER = 8
# sched_setscheduler policies by systemd's names. A number up to INT_MAX is passed through.
SCHED_POLICIES = {"other": 0, "fifo": 1, "rr": 2, "batch": 3, "idle": 5}


def _parse_name_or_number(name: str, text: str, names: dict[str, int], high: int, hint: str) -> int:
    """Parse a value that systemd reads as one of `names` or a C integer from 0 to `high`."""
    stripped = text.strip()
    if stripped in names:
        return names[stripped]
    number = parse_c_integer(stripped)
    if number is None or not 0 <= number <= high:
        raise UnitValueError(f"Invalid {name}= value '{text}', ignoring; use {hint}")
    return number


def parse_io_class(text: str) -> int:
    """Parse `IOSchedulingClass=` into the kernel's class number (0 is `none`)."""
    return _parse_name_or_number("IOSchedulingClass", text, IO_CLASSES, _MAX_IO_CLASS_NUMBER,
                                 "realtime, best-effort, idle, none or 0..3")


def parse_cpu_sched_policy(text: str) -> int:
    """Parse `CPUSchedulingPolicy=` into the sched_setscheduler policy number."""
    return _parse_name_or_number("CPUSchedulingPolicy", text, SCHED_POLICIES, INT_MAX,
                                 "other, batch, idle, fifo or rr")


# The directives checked at load time, each with the parser that raises UnitValueError.
PROCESS_PARSERS: dict[str, Callable[[str], object]] = {
    "IOSchedulingClass": parse_io_class,
    "IOSchedulingPriority": partial(parse_ranged_int, "IOSchedulingPriority", low=0, high=7),
    "OOMScoreAdjust": partial(parse_ranged_int, "OOMScoreAdjust", low=-1000, high=1000),
    "CPUSchedulingPolicy": parse_cpu_sched_policy,
    # fifo and rr take 1..99 and the others 0, but systemd checks only the outer bounds at load.
    "CPUSchedulingPriority": partial(parse_ranged_int, "CPUSchedulingPriority", low=0, high=99),
    "CPUAffinity": partial(parse_cpu_set, "CPUAffinity", allow_numa=True),
}
