"""The manager's configuration file: `[Manager]` in `$XDG_CONFIG_HOME/unitmgr/unitmgr.conf`.

The file uses unit-file syntax (comments, continuation lines, quoting) and is
read with the same lexer and value parsers. Every problem becomes a
`Diagnostic` in the `file:line: [Manager] Key=: problem` form, and the key
keeps its default. One declaration per key lives in `DECLARATIONS`; the
generated part of docs/configuration.md comes from it too. Read once when the
manager starts (`Manager.config`); `logconfig.read_manager_config()` reads
the log keys through `load_manager_config()` as well.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from unitmgr.manager.crashloop import CrashLoopPolicy
from unitmgr.manager.logconfig import LogConfigError, parse_keep_files, parse_max_bytes
from unitmgr.units.defaults import ManagerDefaults
from unitmgr.units.model import Diagnostic
from unitmgr.units.quoting import split_words
from unitmgr.units.syntax import Assignment, lex
from unitmgr.units.values import UnitValueError, parse_scalar

log = logging.getLogger(__name__)

SECTION = "Manager"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# `Name kind default help`: kind selects the parser below; "-" is an empty default.
DECLARATIONS_TABLE = """
DefaultRestartSec sec 100ms RestartSec= of services that do not set it
DefaultTimeoutStartSec timeout 90s TimeoutStartSec= of services that do not set it (0 or infinity: no limit)
DefaultTimeoutStopSec timeout 90s TimeoutStopSec= of services that do not set it (0 or infinity: no limit)
DefaultStartLimitBurst int 5 StartLimitBurst= of units that do not set it
DefaultStartLimitIntervalSec sec 10s StartLimitIntervalSec= of units that do not set it (0 disables the limit)
CrashLoopQuickExitSec sec 1s A run shorter than this counts as a quick exit for crash-loop damping (0 turns damping off)
CrashLoopBurst int 5 Quick exits in a row that restart on RestartSec= alone, before crash-loop damping starts
CrashLoopMaxDelaySec sec 2s Maximum crash-loop delay, which starts at 100ms and doubles per quick exit (0: off)
DefaultEnvironment environment - Variables every unit's processes get, as NAME=value words (a unit's Environment= wins)
LogMaxBytes logsize 16M Size at which a unit's log file is rotated (at least 4K)
LogKeepFiles logfiles 4 Log files kept per unit, the current one included (1 to 1000)
Listen endpoints - Extra control endpoints, as --listen gives them (tcp://127.0.0.1:PORT, ipc:///PATH)
"""


@dataclass(frozen=True)
class Declaration:
    name: str
    kind: str
    default_text: str
    help: str


def _declarations() -> dict[str, Declaration]:
    table = {}
    for line in DECLARATIONS_TABLE.strip().splitlines():
        name, kind, default, help_text = line.split(" ", 3)
        table[name] = Declaration(name, kind, default, help_text)
    return table


DECLARATIONS: dict[str, Declaration] = _declarations()

# Declaration name -> ManagerDefaults field.
_DEFAULT_FIELDS = {
    "DefaultRestartSec": "restart_sec", "DefaultTimeoutStartSec": "timeout_start_sec",
    "DefaultTimeoutStopSec": "timeout_stop_sec", "DefaultStartLimitBurst": "start_limit_burst",
    "DefaultStartLimitIntervalSec": "start_limit_interval_sec",
}  # fmt: skip


class ConfigValueError(ValueError):
    """A value a key cannot take; the message names the value and the fix."""


def _parse_environment(text: str) -> dict[str, str]:
    result = {}
    for word in split_words(text):
        name, equals, value = word.text.partition("=")
        if not equals or not _ENV_NAME.fullmatch(name):
            raise ConfigValueError(f"Invalid environment assignment '{word.text}'; write "
                                   "NAME=value with NAME made of letters, digits and _")
        result[name] = value
    return result


def _parse_endpoints(text: str) -> list[str]:
    # Imported here: the server module imports pyzmq, which the unit preload (preload.py) does not need.
    from unitmgr.manager.server import ControlServerError, check_listen_endpoint

    endpoints = text.split()
    for endpoint in endpoints:
        try:
            check_listen_endpoint(endpoint)
        except ControlServerError as error:
            raise ConfigValueError(str(error)) from None
    return endpoints


def parse_value(declaration: Declaration, text: str) -> Any:
    """Parse one value of `declaration`; raise ConfigValueError or UnitValueError."""
    kind, name = declaration.kind, declaration.name
    try:
        if kind == "environment":
            return _parse_environment(text)
        if kind == "endpoints":
            return _parse_endpoints(text)
        if kind == "logsize":
            return parse_max_bytes(text, name)
        if kind == "logfiles":
            return parse_keep_files(text, name)
    except LogConfigError as error:
        raise ConfigValueError(str(error)) from None
    return parse_scalar(kind, name, text)


def _default(declaration: Declaration) -> Any:
    if declaration.default_text == "-":
        return {} if declaration.kind == "environment" else []
    return parse_value(declaration, declaration.default_text)


@dataclass
class ManagerConfig:
    """The values of unitmgr.conf, defaults filled in, and the problems found reading it."""

    values: dict[str, Any] = field(default_factory=lambda: {
        name: _default(d) for name, d in DECLARATIONS.items()})
    diagnostics: list[Diagnostic] = field(default_factory=list)
    # The text of the last valid assignment of each scalar key, named by the warning for a later invalid one.
    texts: dict[str, str] = field(default_factory=dict)

    @property
    def defaults(self) -> ManagerDefaults:
        return ManagerDefaults(**{f: self.values[k] for k, f in _DEFAULT_FIELDS.items()})

    @property
    def crash_loop(self) -> CrashLoopPolicy:
        return CrashLoopPolicy(self.values["CrashLoopQuickExitSec"], self.values["CrashLoopBurst"],
                               self.values["CrashLoopMaxDelaySec"])

    @property
    def environment(self) -> dict[str, str]:
        return dict(self.values["DefaultEnvironment"])

    @property
    def listen(self) -> list[str]:
        return list(self.values["Listen"])

    @property
    def log_max_bytes(self) -> int:
        return self.values["LogMaxBytes"]

    @property
    def log_keep_files(self) -> int:
        return self.values["LogKeepFiles"]

    def apply(self, item: Assignment) -> None:
        """Apply one `Key=value` line: lists and the environment add up, "" resets them."""
        declaration = DECLARATIONS.get(item.key)
        if declaration is None:
            known = ", ".join(f"{name}=" for name in DECLARATIONS)
            self._warn(item, f"Unknown key '{item.key}' in section [{SECTION}], ignoring; "
                             f"the keys are {known}")
            return
        if item.value == "" and declaration.kind in ("environment", "endpoints"):
            self.values[item.key] = _default(declaration)
            return
        try:
            value = parse_value(declaration, item.value)
        except (ConfigValueError, UnitValueError) as error:
            kept_text = self.texts.get(item.key, declaration.default_text)
            self._warn(item, f"{error}; keeping {item.key}={kept_text}" if kept_text != "-" else str(error))
            return
        if declaration.kind == "environment":
            self.values[item.key] = {**self.values[item.key], **value}
        elif declaration.kind == "endpoints":
            self.values[item.key] = self.values[item.key] + value
        else:
            self.values[item.key] = value
            self.texts[item.key] = item.value

    def _warn(self, item: Assignment, message: str) -> None:
        self.diagnostics.append(Diagnostic(item.path, item.line, item.section, item.key, message))


def parse_manager_config(text: str, path: str) -> ManagerConfig:
    """Parse the text of a configuration file; problems go to `diagnostics` instead of raising."""
    config = ManagerConfig()
    result = lex(text, path, (SECTION,))
    config.diagnostics.extend(result.diagnostics)
    if result.fatal:
        config.diagnostics.append(result.fatal)
        return config
    for item in result.assignments:
        config.apply(item)
    config.diagnostics.sort(key=lambda d: d.line)
    return config


def load_manager_config(path: Path) -> ManagerConfig:
    """Read `path`; a missing file gives the defaults, an unreadable one a diagnostic."""
    try:
        text = path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return ManagerConfig()
    except OSError as error:
        config = ManagerConfig()
        config.diagnostics.append(Diagnostic(str(path), 0, "", "",
                                             f"cannot read it ({error.strerror}); using defaults",
                                             "error"))
        return config
    return parse_manager_config(text, str(path))


def log_diagnostics(config: ManagerConfig) -> None:
    """Log the problems found in the file, except those of the Log* keys (logconfig.py logs them)."""
    for diagnostic in config.diagnostics:
        if not diagnostic.key.startswith("Log"):
            log.warning("%s", diagnostic)


def reference_table() -> list[str]:
    """Return the Markdown table of the keys, for docs/configuration.md."""
    lines = ["| Key | Default | Meaning |", "| --- | --- | --- |"]
    for d in DECLARATIONS.values():
        default = "" if d.default_text == "-" else d.default_text
        lines.append(f"| `{d.name}=` | {default} | {d.help} |")
    return lines
