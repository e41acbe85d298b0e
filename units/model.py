"""The loaded form of a unit: what the parser produces and the manager consumes.

A `Unit` keeps every assignment that survived parsing as a typed value in
`settings[section][key]`. `Unit.get()` returns that value or the directive's
declared default, so the manager never needs to know which keys were written.
Value types by directive family:

- time spans: `float` seconds, `math.inf` for `infinity`
- booleans: `bool`; integers: `int`; sizes: `int` bytes (`None` for infinity)
- word lists and dependency lists: `list[str]`
- command lines (`Exec*=`): `list[ExecCommand]`
- `Environment=`: `dict[str, str]` in assignment order
- `Limit*=`: `RLimit`
- signals: `int` signal numbers; exit status lists: `ExitStatusSet`
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from unitmgr.units.defaults import ManagerDefaults

INFINITY = math.inf


@dataclass(frozen=True)
class Diagnostic:
    """One problem found while loading a unit, in `file:line: [Section] Key=: problem` form."""

    path: str
    line: int
    section: str
    key: str
    message: str
    severity: str = "warning"  # "warning" or "error"

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        if self.key:
            return f"{where}: [{self.section}] {self.key}=: {self.message}"
        if self.section:
            return f"{where}: [{self.section}]: {self.message}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class ExecCommand:
    """One command line of an `Exec*=` setting, after unquoting and specifier expansion.

    `words` still contains `$NAME`, `${NAME}` and `$$` references: they are
    expanded against the process environment at spawn time by
    `units.execline.expand_command()`. With the `@` prefix, `words[0]` is the
    executable and `words[1]` is argv[0]; otherwise `words[0]` is both.
    """

    words: tuple[str, ...]
    ignore_failure: bool = False  # "-" prefix
    argv0_given: bool = False  # "@" prefix
    no_env_expand: bool = False  # ":" prefix
    privilege: str = ""  # "+", "!" or "!!"; a user manager has nothing to lift
    source: str = ""  # the assignment as written, for status and logs

    @property
    def executable(self) -> str:
        return self.words[0]


@dataclass(frozen=True)
class RLimit:
    """A `Limit*=` value; `None` on either side means RLIM_INFINITY."""

    soft: int | None
    hard: int | None


@dataclass(frozen=True)
class ExitStatusSet:
    """`SuccessExitStatus=` and friends: exit codes and signal numbers."""

    codes: frozenset[int] = frozenset()
    signals: frozenset[int] = frozenset()


@dataclass
class Unit:
    """A unit as loaded from its fragment and drop-ins."""

    name: str  # full name, e.g. "web.service" or "worker@1.service"
    kind: str  # suffix without the dot: "service", "socket", "target", ...
    fragment_path: str | None = None
    dropin_paths: list[str] = field(default_factory=list)
    load_state: str = "loaded"  # loaded | not-found | bad-setting | error | masked
    load_error: str = ""  # why load_state is not "loaded", in the user's words
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # Dependencies added by `.wants/` and `.requires/` folders, merged into
    # the Wants= and Requires= that get() returns.
    extra_wants: list[str] = field(default_factory=list)
    extra_requires: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    # The manager's DefaultRestartSec= and friends (units/defaults.py); None means systemd's.
    defaults: ManagerDefaults | None = None
    # Values derived from the settings by their readers, such as the manager's dependency
    # lists. Settings do not change once the loader returns the unit (daemon-reload builds
    # new units), so a derived value stays valid for the life of the object.
    derived: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def prefix(self) -> str:
        stem = self.name.rsplit(".", 1)[0]
        return stem.split("@", 1)[0]

    @property
    def instance(self) -> str | None:
        stem = self.name.rsplit(".", 1)[0]
        if "@" not in stem:
            return None
        return stem.split("@", 1)[1]

    @property
    def is_template(self) -> bool:
        return self.instance == ""

    def is_set(self, section: str, key: str) -> bool:
        return key in self.settings.get(section, {})

    def get(self, section: str, key: str) -> Any:
        """Return the value of `[section] key`, or the directive's declared default."""
        values = self.settings.get(section)
        if values is not None and key in values:
            value = values[key]
        else:
            value = (_default_value or _import_default_value())(self, section, key)
        if section == "Unit" and key == "Wants" and self.extra_wants:
            value = list(value) + [n for n in self.extra_wants if n not in value]
        if section == "Unit" and key == "Requires" and self.extra_requires:
            value = list(value) + [n for n in self.extra_requires if n not in value]
        return value

    @property
    def description(self) -> str:
        return self.get("Unit", "Description") or ""

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity == "error"]


# units.directives.default_value(), imported on the first lookup of a default because
# units.directives imports this module. The manager calls Unit.get() about 100 times per
# service start, so it keeps the function here instead of running an import statement
# (about 0.2 µs, CPython 3.11) in every call.
_default_value: Callable[[Unit, str, str], Any] | None = None


def _import_default_value() -> Callable[[Unit, str, str], Any]:
    global _default_value
    from unitmgr.units.directives import default_value

    _default_value = default_value
    return default_value
