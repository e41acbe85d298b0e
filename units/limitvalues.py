"""Syntax checks for the resource limits `MemoryMax=` and `TasksMax=` and their relatives.

The loader stores these values as text because a percentage only becomes a
number on the machine that starts the unit (manager/resourcesettings.py).
Checking the syntax at load time lets `unitmgr verify` and the unit's load
warnings report a bad value with its file and line. The value is then dropped,
as systemd drops an assignment it cannot parse.
"""

from __future__ import annotations

from collections.abc import Callable

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


# The directives checked at load time, each with the parser that raises UnitValueError.
LIMIT_PARSERS: dict[str, Callable[[str], object]] = {
    "MemoryMax": parse_size_or_percent,
    "MemoryHigh": parse_size_or_percent,
    "MemorySwapMax": parse_size_or_percent,
    "MemoryLimit": parse_size_or_percent,
    "TasksMax": parse_tasks_max,
}
# TODO: check CPUQuota=, CPUWeight=, IOWeight= and the scheduling settings here too.


def check_limit(key: str, text: str) -> None:
    """Raise UnitValueError when `text` is not a valid value of the limit directive `key`."""
    parser = LIMIT_PARSERS.get(key)
    if parser is not None:
        parser(text)
