"""Load-time checks of the resource-control settings: `MemoryMax=`, `CPUQuota=`, the weights and their relatives.

The loader stores these values as the text written in the file because a
percentage only becomes a number on the machine that starts the unit
(manager/resourcesettings.py, which calls the same parsers). Checking the
syntax at load time lets `unitmgr verify` and the unit's load warnings report
a bad value with its file and line. The value is then dropped, as systemd 252
drops an assignment it cannot parse. systemd does not expand specifiers in
these values, so the checks and the stored text use the value as written.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from unitmgr.units.cinteger import INT_MAX, parse_c_integer
from unitmgr.units.cpuset import CpuSet, parse_cpu_set
from unitmgr.units.schedvalues import PROCESS_PARSERS
from unitmgr.units.values import UnitValueError, parse_size_or_percent


def parse_tasks_max(text: str) -> int | float | None:
    """Parse `TasksMax=`: a count (int), `N%` of the system's limit (float 0..1) or infinity (None)."""
    stripped = text.strip()
    if stripped == "infinity":
        return None
    if stripped.endswith("%"):
        try:
            percent = float(stripped[:-1])
        except ValueError:
            percent = -1.0
        if not 0 < percent <= 100:
            raise UnitValueError(f"Invalid TasksMax= percentage '{text}', ignoring; use a value above 0% up to 100%")
        return percent / 100
    if not stripped.isdigit() or int(stripped) < 1:
        raise UnitValueError(f"Invalid TasksMax= value '{text}', ignoring; use a number of tasks, N% or 'infinity'")
    return int(stripped)


# Symbol, digits allowed after the decimal point, and permyriads (1/10000) per unit.
_QUOTA_SYMBOLS = (("‱", 0, 1), ("%", 2, 100), ("‰", 1, 10))


def _parse_permyriad(text: str) -> int | None:
    """Return `20%`, `5.5‰` or `5‱` in permyriads as systemd 252's parse_permyriad_unbounded() does, or None."""
    for symbol, decimals, scale in _QUOTA_SYMBOLS:
        if not text.endswith(symbol):
            continue
        number = text[: -len(symbol)]
        whole, dot, fraction = number.partition(".")
        if dot and not (fraction.isascii() and fraction.isdigit() and 1 <= len(fraction) <= decimals):
            return None
        value = parse_c_integer(whole)
        if value is None or value < 0:
            return None
        extra = int(fraction.ljust(decimals, "0")) if dot else 0
        if value > (INT_MAX - extra) // scale:
            return None
        return value * scale + extra
    return None


def parse_cpu_quota(text: str) -> float:
    """Parse `CPUQuota=` into a fraction of one CPU: 0.2 for `20%`."""
    permyriad = _parse_permyriad(text.strip())
    if permyriad is None or permyriad <= 0:
        raise UnitValueError(f"Invalid CPUQuota= value '{text}', ignoring; write a percentage above 0% "
                             "such as 20% or 150% (at most two decimals)")
    return permyriad / 10000


def parse_weight(name: str, text: str, allow_idle: bool = False) -> int:
    """Parse `CPUWeight=`/`IOWeight=` and their start-up variants: 1..10000, or 0 for `idle`."""
    stripped = text.strip()
    if allow_idle and stripped == "idle":
        return 0
    value = parse_c_integer(stripped, signed=False)
    if value is None or not 1 <= value <= 10000:
        idle = " or 'idle'" if allow_idle else ""
        raise UnitValueError(f"Invalid {name}= value '{text}', ignoring; use a weight from 1 to 10000{idle}")
    return value


def parse_cpu_shares(name: str, text: str) -> int:
    """Parse the cgroup v1 `CPUShares=`/`StartupCPUShares=`: 2..262144."""
    value = parse_c_integer(text, signed=False)
    if value is None or not 2 <= value <= 262144:
        raise UnitValueError(f"Invalid {name}= value '{text}', ignoring; use 2 to 262144, or "
                             "better CPUWeight= (1 to 10000)")
    return value


# The directives checked at load time, each with the parser that raises UnitValueError.
LIMIT_PARSERS: dict[str, Callable[[str], object]] = {
    "MemoryMax": parse_size_or_percent,
    "MemoryHigh": parse_size_or_percent,
    "MemorySwapMax": parse_size_or_percent,
    "MemoryLimit": parse_size_or_percent,
    "TasksMax": parse_tasks_max,
    "CPUQuota": parse_cpu_quota,
    "CPUWeight": partial(parse_weight, "CPUWeight", allow_idle=True),
    "StartupCPUWeight": partial(parse_weight, "StartupCPUWeight", allow_idle=True),
    "IOWeight": partial(parse_weight, "IOWeight"),
    "StartupIOWeight": partial(parse_weight, "StartupIOWeight"),
    "CPUShares": partial(parse_cpu_shares, "CPUShares"),
    "StartupCPUShares": partial(parse_cpu_shares, "StartupCPUShares"),
    "AllowedCPUs": partial(parse_cpu_set, "AllowedCPUs"),
    "StartupAllowedCPUs": partial(parse_cpu_set, "StartupAllowedCPUs"),
    **PROCESS_PARSERS,
}


def check_limit(key: str, text: str) -> list[str]:
    """Raise UnitValueError when `text` is not a valid value of directive `key`.

    Return the warnings about parts of a valid value that systemd skips (backwards CPU ranges).
    """
    parser = LIMIT_PARSERS.get(key)
    if parser is None:
        return []
    value = parser(text)
    return list(value.warnings) if isinstance(value, CpuSet) else []
