"""CPU lists of `CPUAffinity=`, `AllowedCPUs=` and `StartupAllowedCPUs=`, as systemd 252 reads them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from unitmgr.units.cinteger import parse_c_integer
from unitmgr.units.values import UnitValueError

# systemd 252 refuses CPU numbers from 8192 up ("Cannot add CPU ... to set").
MAX_CPUS = 8192
_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class CpuSet:
    """A parsed CPU list; `numa` is `CPUAffinity=numa` (the CPUs of the NUMA policy's nodes)."""

    cpus: tuple[int, ...] = ()
    warnings: tuple[str, ...] = ()
    numa: bool = False


def parse_cpu_set(name: str, text: str, allow_numa: bool = False) -> CpuSet:
    """Parse CPU numbers and ranges such as `0-1,3 5`, separated by spaces or commas.

    An invalid word rejects the whole assignment (UnitValueError). A backwards range
    such as `3-1` is skipped with a warning in `CpuSet.warnings`, and the rest is kept,
    as systemd does.
    """
    stripped = text.strip()
    if allow_numa and stripped == "numa":
        return CpuSet(numa=True)
    cpus: set[int] = set()
    warnings: list[str] = []
    for word in _SEPARATORS.split(stripped):
        if not word:
            continue
        low, high = _parse_range(name, text, word)
        if low > high:
            warnings.append(f"Range '{word}' of {name}= is invalid because {low} > {high}, ignoring "
                            "that range; write the lower CPU first")
            continue
        if high >= MAX_CPUS:
            raise UnitValueError(f"Invalid {name}= value '{text}': CPU {high} is above the maximum "
                                 f"{MAX_CPUS - 1}, ignoring")
        cpus.update(range(low, high + 1))
    return CpuSet(tuple(sorted(cpus)), tuple(warnings))


def _parse_range(name: str, text: str, word: str) -> tuple[int, int]:
    first, dash, last = word.partition("-")
    low = parse_c_integer(first, signed=False) if first else None
    high = low if not dash else (parse_c_integer(last, signed=False) if last else None)
    if low is None or high is None:
        raise UnitValueError(f"Failed to parse {name}= value '{text}' at '{word}', ignoring; write "
                             "CPU numbers or ranges such as 0-1,3")
    return low, high
