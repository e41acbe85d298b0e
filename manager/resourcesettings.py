"""A unit's resource-control and scheduling settings, parsed from their text values.

The unit loader stores `MemoryMax=`, `CPUAffinity=`, `IOSchedulingClass=`
and their relatives as the text written in the file. This module turns them
into numbers, which the manager does once per unit definition (again after
daemon-reload). An invalid value is ignored with a warning that names the
value and the accepted forms, as systemd does at load.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from unitmgr.units.cpuset import parse_cpu_set
from unitmgr.units.limitvalues import LIMIT_PARSERS, parse_cpu_quota, parse_tasks_max
from unitmgr.units.schedvalues import IO_CLASSES
from unitmgr.units.schedvalues import parse_io_class as parse_shared_io_class
from unitmgr.units.values import UnitValueError, parse_size_or_percent

# cpu.max period when CPUQuotaPeriodSec= is not set (systemd's default: 100 ms).
DEFAULT_QUOTA_PERIOD = 0.1


@dataclass(slots=True)
class ResourceSettings:
    """Parsed limits; None means unset (or infinity for the limits)."""

    memory_max: int | None = None
    memory_high: int | None = None
    memory_swap_max: int | None = None
    # CPUQuota= as a fraction of one CPU: 0.2 for 20%.
    cpu_quota: float | None = None
    cpu_quota_period: float = DEFAULT_QUOTA_PERIOD
    # CPUWeight=: 1..10000, 0 for `idle`.
    cpu_weight: int | None = None
    tasks_max: int | None = None
    io_weight: int | None = None
    cpu_affinity: list[int] = field(default_factory=list)
    io_class: int | None = None
    io_priority: int | None = None
    oom_score_adjust: int | None = None
    warnings: list[str] = field(default_factory=list)

    def limits(self) -> dict[str, Any]:
        """Return the set resource-control limits by directive name (exec attributes excluded)."""
        values = {
            "MemoryMax": self.memory_max, "MemoryHigh": self.memory_high,
            "MemorySwapMax": self.memory_swap_max, "CPUQuota": self.cpu_quota,
            "CPUWeight": self.cpu_weight, "TasksMax": self.tasks_max, "IOWeight": self.io_weight,
        }
        return {name: value for name, value in values.items() if value is not None}


def physical_memory() -> int:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def system_tasks_limit() -> int:
    """Return the kernel's task limit that `TasksMax=N%` is a share of (the lower of pid_max and threads-max)."""
    values = []
    for name in ("/proc/sys/kernel/pid_max", "/proc/sys/kernel/threads-max"):
        try:
            with open(name) as f:
                values.append(int(f.read()))
        except (OSError, ValueError):
            continue
    return min(values) if values else 4194304


def parse_memory(text: str) -> int | None:
    """Parse a memory limit: bytes with K/M/G/T suffixes, N% of physical memory, or infinity (None)."""
    value = parse_size_or_percent(text)
    if isinstance(value, float):
        return int(value * physical_memory())
    return value


def parse_tasks(text: str) -> int | None:
    """Parse `TasksMax=` into a number of tasks, or None for infinity."""
    value = parse_tasks_max(text)
    if isinstance(value, float):
        return max(1, int(system_tasks_limit() * value))
    return value


def parse_cpu_list(words: list[str]) -> list[int]:
    """Parse `CPUAffinity=` words into sorted CPU numbers, skipping backwards ranges as systemd does."""
    return list(parse_cpu_set("CPUAffinity", " ".join(words)).cpus)


def parse_io_class(text: str) -> int:
    """Parse `IOSchedulingClass=`, mapping class 0 (`none`) to best-effort as the kernel does."""
    return parse_shared_io_class(text) or IO_CLASSES["best-effort"]


def _parse_into(settings: ResourceSettings, get: Any) -> None:
    memory_max = get("MemoryMax") or get("MemoryLimit")
    parsers: list[tuple[str, str | None, Any]] = [
        ("memory_max", memory_max, parse_memory),
        ("memory_high", get("MemoryHigh"), parse_memory),
        ("memory_swap_max", get("MemorySwapMax"), parse_memory),
        ("cpu_quota", get("CPUQuota"), parse_cpu_quota),
        ("cpu_weight", get("CPUWeight"), LIMIT_PARSERS["CPUWeight"]),
        ("tasks_max", get("TasksMax"), parse_tasks),
        ("io_weight", get("IOWeight"), LIMIT_PARSERS["IOWeight"]),
        ("io_class", get("IOSchedulingClass"), parse_io_class),
        ("io_priority", get("IOSchedulingPriority"), LIMIT_PARSERS["IOSchedulingPriority"]),
        ("oom_score_adjust", get("OOMScoreAdjust"), LIMIT_PARSERS["OOMScoreAdjust"]),
    ]
    for attribute, text, parser in parsers:
        if not text:
            continue
        try:
            setattr(settings, attribute, parser(text))
        except UnitValueError as error:
            settings.warnings.append(str(error))
    try:
        affinity = parse_cpu_set("CPUAffinity", " ".join(get("CPUAffinity") or []), allow_numa=True)
    except UnitValueError as error:
        settings.warnings.append(str(error))
    else:
        settings.cpu_affinity = list(affinity.cpus)
        settings.warnings.extend(affinity.warnings)
        if affinity.numa:
            # TODO: CPUAffinity=numa needs NUMAPolicy=, which unitmgr does not implement yet.
            settings.warnings.append("CPUAffinity=numa needs NUMAPolicy=, which unitmgr does not "
                                     "implement, ignoring; list the CPUs instead")
    period = get("CPUQuotaPeriodSec")
    if period:
        # The loader parses it as a time span; systemd clamps it to 1 ms..1 s.
        settings.cpu_quota_period = min(max(float(period), 0.001), 1.0)


def resource_settings(get: Any) -> ResourceSettings:
    """Parse the settings of one unit; `get(key)` returns the [Service] value of `key` or None."""
    settings = ResourceSettings()
    _parse_into(settings, get)
    if settings.io_priority is not None and settings.io_class is None:
        settings.io_class = IO_CLASSES["best-effort"]
    if settings.io_class is not None and settings.io_priority is None:
        # systemd's default level is 4; the idle class has no levels.
        settings.io_priority = 0 if settings.io_class == IO_CLASSES["idle"] else 4
    return settings
