"""Declarations of every unit-file directive, and the defaults `Unit.get()` falls back to.

The declarations come from the table in `units.directive_table`; this module
turns it into `Directive` objects once at import. Everything else (the
parser, `verify`, the generated docs/units.md, the shell's completion) reads
them through `lookup()`, `directives_in()` and `all_directives()`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unitmgr.units import directive_table
from unitmgr.units.defaults import BUILTIN_DEFAULTS, DEFAULTED_DIRECTIVES
from unitmgr.units.model import ExitStatusSet
from unitmgr.units.values import parse_scalar

if TYPE_CHECKING:
    from unitmgr.units.model import Unit

# Kinds whose value is a list that starts empty.
LIST_KINDS = frozenset({"units", "words", "strings", "exec", "envfile", "condition", "seclist"})

# The sections a unit of each type may contain, besides X- sections.
SECTIONS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "service": ("Unit", "Service", "Install"),
    "socket": ("Unit", "Socket", "Install"),
    "timer": ("Unit", "Timer", "Install"),
    "path": ("Unit", "Path", "Install"),
    "slice": ("Unit", "Slice", "Install"),
    "target": ("Unit", "Install"),
    "scope": ("Unit", "Scope", "Install"),
}


@dataclass(frozen=True)
class Directive:
    """One directive: where it lives, how its value is read, and whether unitmgr honours it."""

    section: str
    name: str
    kind: str  # value parser, see units.assign
    choices: tuple[str, ...]  # allowed words for kind "enum"
    default: Any
    help: str
    implemented: bool
    reason: str  # why it is not implemented; empty when it is

    @property
    def is_list(self) -> bool:
        return self.kind in LIST_KINDS


_TABLE: dict[str, dict[str, Directive]] = {}


def _parse_default(kind: str, choices: tuple[str, ...], name: str, text: str) -> Any:
    if text == "-":
        if kind == "environment":
            return {}
        if kind == "exitstatus":
            return ExitStatusSet()
        return [] if kind in LIST_KINDS else None
    if kind in ("string", "strings", "words"):
        return text
    return parse_scalar(kind, name, text, choices)


def _declare(section: str, line: str) -> None:
    name, kind_spec, default_text, owner, help_text = line.split(" ", 4)
    kind, _, choice_text = kind_spec.partition(":")
    choices = tuple(choice_text.split("|")) if choice_text else ()
    implemented = owner == "yes"
    reason = "" if implemented else directive_table.OWNER_REASONS[owner]
    default = _parse_default(kind, choices, name, default_text)
    _TABLE.setdefault(section, {})[name] = Directive(
        section, name, kind, choices, default, help_text, implemented, reason
    )


def _condition_lines() -> list[str]:
    lines = []
    for row in directive_table.CONDITIONS.strip().splitlines():
        suffix, help_text = row.split(" ", 1)
        lines.append(f"Condition{suffix} condition - yes Start only if: {help_text[0].lower()}"
                     f"{help_text[1:]}")
        # systemd 252 has no AssertFirmware=.
        if suffix != "Firmware":
            lines.append(f"Assert{suffix} condition - yes Fail the start unless: "
                         f"{help_text[0].lower()}{help_text[1:]}")
    return lines


def _load_table() -> None:
    groups: dict[str, list[str]] = {"@conditions": _condition_lines()}
    current = ""
    for line in directive_table.SHARED_GROUPS.strip().splitlines():
        if line.startswith("@"):
            current = line
            groups[current] = []
        else:
            groups[current].append(line)

    section = ""
    for line in directive_table.SECTIONS.strip().splitlines():
        if line.startswith("["):
            section = line[1:-1]
            _TABLE.setdefault(section, {})
        elif line.startswith("@"):
            for member in groups[line]:
                name = member.split(" ", 1)[0]
                # A section's own declaration wins over the shared group's.
                if name not in _TABLE[section]:
                    _declare(section, member)
        else:
            _declare(section, line)


_load_table()


def lookup(section: str, key: str) -> Directive | None:
    """Return the declaration of `[section] key=`, or None if systemd 252 does not know it."""
    return _TABLE.get(section, {}).get(key)


def directives_in(section: str) -> list[Directive]:
    return list(_TABLE.get(section, {}).values())


def all_directives() -> list[Directive]:
    return [d for section in _TABLE.values() for d in section.values()]


def known_sections() -> list[str]:
    return list(_TABLE)


# Defaults of the user manager (systemd's DefaultTimeoutStartSec= and friends).
DEFAULT_TIMEOUT_START = BUILTIN_DEFAULTS.timeout_start_sec


def _has_commands(unit: Unit, key: str) -> bool:
    return bool(unit.settings.get("Service", {}).get(key))


def _computed_default(unit: Unit, section: str, key: str) -> tuple[bool, Any]:
    """Return (True, value) for defaults that depend on other settings."""
    if section != "Service":
        return False, None
    service = unit.settings.get("Service", {})
    if key == "Type":
        if _has_commands(unit, "ExecStart"):
            return True, "dbus" if service.get("BusName") else "simple"
        return True, "oneshot"
    if key == "TimeoutStartSec":
        if "TimeoutSec" in service:
            return True, service["TimeoutSec"]
        if unit.get("Service", "Type") == "oneshot":
            return True, math.inf
        return True, (unit.defaults or BUILTIN_DEFAULTS).timeout_start_sec
    return False, None


# The Service keys whose default _computed_default() derives from other settings.
_COMPUTED_KEYS = frozenset({"Type", "TimeoutStartSec"})


def _fixed_defaults() -> dict[str, dict[str, Any]]:
    """Return the declared defaults that depend on neither the unit nor the manager, by section and key."""
    fixed: dict[str, dict[str, Any]] = {}
    for section, declared in _TABLE.items():
        fixed[section] = {}
        for name, directive in declared.items():
            if (section, name) in DEFAULTED_DIRECTIVES or (section == "Service" and name in _COMPUTED_KEYS):
                continue
            fixed[section][name] = directive.default
    return fixed


# Looked up first by default_value(), because the manager reads defaults many times per start.
_FIXED_DEFAULTS = _fixed_defaults()


def default_value(unit: Unit, section: str, key: str) -> Any:
    """Return the default of `[section] key=` for `unit`, computing the dependent ones."""
    fixed = _FIXED_DEFAULTS.get(section)
    if fixed is not None and key in fixed:
        default = fixed[key]
        # A caller may change the list or dict it gets, so each lookup gets its own copy.
        if isinstance(default, (list, dict)):
            return copy.copy(default)
        return default
    computed, value = _computed_default(unit, section, key)
    if computed:
        return value
    field_name = DEFAULTED_DIRECTIVES.get((section, key))
    if field_name is not None:
        return getattr(unit.defaults or BUILTIN_DEFAULTS, field_name)
    directive = lookup(section, key)
    if directive is None:
        return None
    default = directive.default
    if isinstance(default, (list, dict)):
        return copy.copy(default)
    return default
