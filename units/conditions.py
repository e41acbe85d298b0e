"""`Condition*=` and `Assert*=`: parsing, and evaluation against a probe of the host.

A condition value may start with `|` (triggering: at least one triggering
condition must hold) and then `!` (negation). All non-triggering conditions
must hold. `evaluate()` gets every fact about the host from a
`ConditionProbe`, so this module stays pure. `HostProbe` is the probe that
inspects the real machine, and the one the manager passes in.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from unitmgr.units.values import UnitValueError, parse_bool

if TYPE_CHECKING:
    from unitmgr.units.model import Unit

# Checks whose value is an absolute path (which is not unquoted).
PATH_CHECKS = frozenset({
    "PathExists", "PathExistsGlob", "PathIsDirectory", "PathIsSymbolicLink",
    "PathIsMountPoint", "PathIsReadWrite", "PathIsEncrypted", "DirectoryNotEmpty",
    "FileNotEmpty", "FileIsExecutable", "NeedsUpdate",
})  # fmt: skip


@dataclass(frozen=True)
class Condition:
    """One parsed `Condition*=` or `Assert*=` assignment."""

    check: str  # the name without Condition/Assert, e.g. "PathExists"
    value: str  # without the | and ! markers
    trigger: bool = False
    negate: bool = False
    is_assert: bool = False

    @property
    def key(self) -> str:
        return ("Assert" if self.is_assert else "Condition") + self.check

    def __str__(self) -> str:
        marks = ("|" if self.trigger else "") + ("!" if self.negate else "")
        return f"{self.key}={marks}{self.value}"


def split_key(key: str) -> tuple[str, bool]:
    """Return (check name, is_assert) for `ConditionPathExists` or `AssertUser`."""
    if key.startswith("Assert"):
        return key[len("Assert"):], True
    return key[len("Condition"):], False


def parse_condition(key: str, value: str) -> Condition:
    """Parse the value of `key=` (specifiers already expanded)."""
    check, is_assert = split_key(key)
    text = value.strip()
    trigger = text.startswith("|")
    if trigger:
        text = text[1:].lstrip()
    negate = text.startswith("!")
    if negate:
        text = text[1:].lstrip()
    if check in PATH_CHECKS and not text.startswith("/"):
        raise UnitValueError(f"path '{text}' is not absolute, ignoring; write an absolute path")
    if check in ("ACPower", "FirstBoot"):
        parse_bool(text)
    return Condition(check, text, trigger, negate, is_assert)


def unit_conditions(unit: Unit) -> tuple[list[Condition], list[Condition]]:
    """Return (conditions, asserts) of `unit` in declaration order of their keys."""
    conditions: list[Condition] = []
    asserts: list[Condition] = []
    for key, value in unit.settings.get("Unit", {}).items():
        if key.startswith("Condition"):
            conditions.extend(value)
        elif key.startswith("Assert"):
            asserts.extend(value)
    return conditions, asserts


class ConditionProbe(Protocol):
    """The source of host facts for `evaluate()`."""

    def check(self, condition: Condition) -> bool | None:
        """Return whether `condition` is true (before negation), or None if it cannot tell."""
        ...


def evaluate(conditions: list[Condition], probe: ConditionProbe) -> tuple[bool, list[str]]:
    """Evaluate `conditions`; return (whether the unit may start, failed ones as `Key=value`).

    A check the probe cannot decide (None) counts as true.
    """
    failed: list[str] = []
    normal_held = True
    any_trigger = False
    trigger_held = False
    for condition in conditions:
        answer = probe.check(condition)
        holds = True if answer is None else (answer != condition.negate)
        if not holds:
            failed.append(str(condition))
        if condition.trigger:
            any_trigger = True
            trigger_held = trigger_held or holds
        elif not holds:
            normal_held = False
    if normal_held and (trigger_held or not any_trigger):
        return True, []
    return False, failed


_COMPARISON = re.compile(r"\s*(<=|>=|!=|=|<|>)?\s*(.*)")


def compare_versions(left: str, operator: str, right: str) -> bool:
    """Compare like systemd's `strverscmp_improved()` for the usual dotted versions."""
    def key(text: str) -> list[tuple[int, object]]:
        return [(0, int(p)) if p.isdigit() else (1, p) for p in re.findall(r"\d+|[A-Za-z]+", text)]

    a, b = key(left), key(right)
    result = (a > b) - (a < b)
    return {"<": result < 0, "<=": result <= 0, ">": result > 0, ">=": result >= 0,
            "=": result == 0, "!=": result != 0}[operator]


@dataclass
class HostProbe:
    """Condition checks against the real host, for the manager's user."""

    environment: Mapping[str, str]
    user: str
    uid: int
    groups: tuple[str, ...] = ()
    hostname: str = ""
    machine_id: str = ""
    architecture: str = ""
    kernel_release: str = ""
    os_release: Mapping[str, str] | None = None

    def check(self, condition: Condition) -> bool | None:
        handler = getattr(self, f"_check_{condition.check}", None)
        return None if handler is None else handler(condition.value)

    # Paths
    def _check_PathExists(self, value: str) -> bool:  # noqa: N802
        return os.path.exists(value)

    def _check_PathExistsGlob(self, value: str) -> bool:  # noqa: N802
        return bool(glob.glob(value))

    def _check_PathIsDirectory(self, value: str) -> bool:  # noqa: N802
        return os.path.isdir(value)

    def _check_PathIsSymbolicLink(self, value: str) -> bool:  # noqa: N802
        return os.path.islink(value)

    def _check_PathIsMountPoint(self, value: str) -> bool:  # noqa: N802
        return os.path.ismount(value)

    def _check_PathIsReadWrite(self, value: str) -> bool:  # noqa: N802
        try:
            return not os.statvfs(value).f_flag & os.ST_RDONLY
        except OSError:
            return False

    def _check_DirectoryNotEmpty(self, value: str) -> bool:  # noqa: N802
        try:
            return any(not e.name.startswith(".") for e in os.scandir(value))
        except OSError:
            return False

    def _check_FileNotEmpty(self, value: str) -> bool:  # noqa: N802
        try:
            info = os.stat(value)
        except OSError:
            return False
        return stat.S_ISREG(info.st_mode) and info.st_size > 0

    def _check_FileIsExecutable(self, value: str) -> bool:  # noqa: N802
        return os.path.isfile(value) and os.access(value, os.X_OK)

    # Manager and host
    def _check_Environment(self, value: str) -> bool:  # noqa: N802
        name, equals, expected = value.partition("=")
        if not equals:
            return name in self.environment
        return self.environment.get(name) == expected

    def _check_User(self, value: str) -> bool:  # noqa: N802
        if value == "@system":
            return self.uid < 1000
        return value in (self.user, str(self.uid))

    def _check_Group(self, value: str) -> bool:  # noqa: N802
        return value in self.groups

    def _check_Host(self, value: str) -> bool:  # noqa: N802
        if re.fullmatch(r"[0-9a-fA-F-]{32,36}", value):
            return value.replace("-", "").lower() == self.machine_id.lower()
        return fnmatch.fnmatch(self.hostname, value)

    def _check_Architecture(self, value: str) -> bool:  # noqa: N802
        return value == "native" or value == self.architecture

    def _check_KernelVersion(self, value: str) -> bool:  # noqa: N802
        operator, right = _COMPARISON.fullmatch(value).groups()  # type: ignore[union-attr]
        if operator is None:
            return fnmatch.fnmatch(self.kernel_release, right)
        return compare_versions(self.kernel_release, operator, right)

    def _check_OSRelease(self, value: str) -> bool:  # noqa: N802
        match = re.fullmatch(r"\s*([A-Za-z_0-9]+)\s*(<=|>=|!=|=|<|>)\s*(.*)", value)
        if match is None:
            return False
        key, operator, expected = match.groups()
        actual = (self.os_release or {}).get(key, "")
        if operator in ("=", "!="):
            return fnmatch.fnmatch(actual, expected) == (operator == "=")
        return compare_versions(actual, operator, expected)

    def _check_ACPower(self, value: str) -> bool | None:  # noqa: N802
        # TODO: read /sys/class/power_supply; unknown counts as holding.
        return None
