"""A unit's settings as `systemctl show` prints them: property names and value text.

`unit_properties(unit)` returns `(name, text)` pairs for every implemented
directive of the unit's sections (set or not: the effective value, defaults
included) and for every not-implemented directive the unit sets. Naming and
formatting follow systemd 252's bus properties:

- time spans: `RestartSec=` becomes `RestartUSec=`, value as systemd's
  format_timespan prints it (`1min 30s`, `100ms`, `1.500000s`, `infinity`)
- booleans `yes`/`no`; signals, integers and sizes as numbers; modes as `0022`
- lists space-separated; words with spaces or quotes double-quoted
- `Limit*=`: `LimitNOFILE=` the hard limit and `LimitNOFILESoft=` the soft one
- `Exec*=`: one `{ path=... ; argv[]=... ; ignore_errors=no ; ... }` per command
- `EnvironmentFile=`: one `EnvironmentFiles=PATH (ignore_errors=no)` per file

`[Install]` is left out: systemd shows reverse dependencies under those
names, and the enablement state is the `UnitFileState` property instead.
Pure: no processes, no files.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from unitmgr.units.directives import Directive, directives_in
from unitmgr.units.model import ExecCommand, ExitStatusSet, RLimit, Unit
from unitmgr.units.quoting import quote_word
from unitmgr.units.values import signal_name

USEC_PER_SEC = 1_000_000
# systemd's format_timespan() table: suffix and length in microseconds.
_TIMESPAN_UNITS = (
    ("y", 31_557_600 * USEC_PER_SEC), ("month", 2_629_800 * USEC_PER_SEC),
    ("w", 604_800 * USEC_PER_SEC), ("d", 86_400 * USEC_PER_SEC), ("h", 3600 * USEC_PER_SEC),
    ("min", 60 * USEC_PER_SEC), ("s", USEC_PER_SEC), ("ms", 1000), ("us", 1),
)  # fmt: skip

# Directives that only set other properties, or old spellings of one.
_NOT_PROPERTIES = frozenset({
    ("Service", "TimeoutSec"), ("Service", "StartLimitInterval"), ("Service", "StartLimitBurst"),
    ("Service", "StartLimitAction"), ("Unit", "StartLimitInterval"),
})  # fmt: skip

# The properties systemd names differently from the directive.
_RENAMED = {"EnvironmentFile": "EnvironmentFiles"}

# Rendering of an unset Limit*=: the limit the manager's processes inherit.
InheritedLimit = Callable[[str], RLimit | None]


def format_timespan(seconds: float | None) -> str:
    """Format a time span like systemd's format_timespan() with microsecond accuracy."""
    if seconds is None or math.isinf(seconds):
        return "infinity"
    usec = round(seconds * USEC_PER_SEC)
    if usec <= 0:
        return "0"
    parts = []
    for suffix, length in _TIMESPAN_UNITS:
        if usec <= 0:
            break
        if usec < length:
            continue
        whole, rest = divmod(usec, length)
        if usec < 60 * USEC_PER_SEC and rest > 0 and length > 1:
            digits = len(str(length)) - 1
            parts.append(f"{whole}.{rest:0{digits}d}{suffix}")
            break
        parts.append(f"{whole}{suffix}")
        usec = rest
    return " ".join(parts)


def property_name(directive: Directive) -> str:
    """Return the `systemctl show` name of a directive's property."""
    name = _RENAMED.get(directive.name, directive.name)
    if directive.kind in ("sec", "timeout", "seclist") and name.endswith("Sec"):
        return name[: -len("Sec")] + "USec"
    return name


def _quote_list(words: list[str]) -> str:
    return " ".join(quote_word(str(w)) for w in words)


def exec_property(command: ExecCommand) -> str:
    """Format one command of an `Exec*=` property in systemd's `{ path=... ; argv[]=... }` form."""
    argv = command.words[1:] if command.argv0_given else command.words
    ignore = "yes" if command.ignore_failure else "no"
    return (f"{{ path={command.executable} ; argv[]={_quote_list(list(argv))} ; "
            f"ignore_errors={ignore} ; start_time=[n/a] ; stop_time=[n/a] ; pid=0 ; "
            "code=(null) ; status=0/0 }")


def _exit_status_text(value: ExitStatusSet) -> str:
    codes = [str(c) for c in sorted(value.codes)]
    return " ".join(codes + [signal_name(s) for s in sorted(value.signals)])


def _limit_text(value: int | None) -> str:
    return "infinity" if value is None else str(value)


def format_value(directive: Directive, value: Any) -> str:
    """Return the show text of one scalar or list value of `directive`."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value  # strings, and raw values of directives that are not implemented
    kind = directive.kind
    if kind in ("sec", "timeout"):
        return format_timespan(value)
    if kind == "seclist":
        return " ".join(format_timespan(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if kind == "mode":
        return f"{value:04o}"
    if kind == "environment":
        return _quote_list([f"{k}={v}" for k, v in value.items()])
    if kind == "exitstatus":
        return _exit_status_text(value)
    if kind == "condition":
        return " ".join(str(c).split("=", 1)[1] for c in value)
    if isinstance(value, list):
        return " ".join(value) if kind == "units" else _quote_list(value)
    return str(value)


def _directive_properties(unit: Unit, directive: Directive,
                          inherited: InheritedLimit | None) -> list[tuple[str, str]]:
    name = property_name(directive)
    value = unit.get(directive.section, directive.name)
    if directive.kind == "exec":
        return [(name, exec_property(c)) for c in value] or [(name, "")]
    if directive.kind == "envfile":
        return [(name, f"{p.lstrip('-')} (ignore_errors={'yes' if p.startswith('-') else 'no'})")
                for p in value] or [(name, "")]
    if directive.kind == "rlimit":
        limit = value
        if limit is None and inherited is not None:
            limit = inherited(directive.name)
        if limit is None:
            return [(name, ""), (name + "Soft", "")]
        return [(name, _limit_text(limit.hard)), (name + "Soft", _limit_text(limit.soft))]
    return [(name, format_value(directive, value))]


def unit_properties(unit: Unit, inherited: InheritedLimit | None = None) -> list[tuple[str, str]]:
    """Return the `(property, text)` pairs of `unit`'s directives, in declaration order.

    `inherited(name)` gives the limit an unset `Limit*=` directive leaves in
    place (the manager's own); without it such limits show empty.
    """
    result: list[tuple[str, str]] = []
    seen: set[str] = set()
    sections = [s for s in ("Unit", unit.kind.capitalize()) if s != "Target"]
    for section in sections:
        for directive in directives_in(section):
            if (section, directive.name) in _NOT_PROPERTIES:
                continue
            if not directive.implemented and not unit.is_set(section, directive.name):
                continue
            if directive.kind == "condition" and not unit.is_set(section, directive.name):
                continue
            for pair in _directive_properties(unit, directive, inherited):
                if pair[0] not in seen or directive.kind in ("exec", "envfile"):
                    seen.add(pair[0])
                    result.append(pair)
    return result
