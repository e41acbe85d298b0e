"""Log rotation settings: the manager's defaults and each unit's own.

The manager's configuration file (`unitmgr.conf` in the config directory)
may set the defaults for every unit:

    [Manager]
    LogMaxBytes=16M      # rotate a unit's log when its file reaches this size
    LogKeepFiles=4       # files kept per unit, the current one included

A unit may set its own values in `[Service]` with `X-Unitmgr-LogMaxBytes=`
and `X-Unitmgr-LogKeepFiles=`. systemd has no per-unit log size setting, and
it ignores keys that start with `X-`, so such a unit file still loads there.
A bad value, or an unknown `X-Unitmgr-Log...` key, is logged as a warning and
the default applies.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unitmgr.units.values import UnitValueError, parse_int, parse_size

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager

log = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_KEEP_FILES = 4


@dataclass(frozen=True)
class UnitLogOptions:
    """The log settings of one unit: rotation size, files kept, syslog identifier ("" for comm)."""

    max_bytes: int = DEFAULT_MAX_BYTES
    keep_files: int = DEFAULT_KEEP_FILES
    identifier: str = ""

MIN_MAX_BYTES = 4096
UNIT_MAX_BYTES = "X-Unitmgr-LogMaxBytes"
UNIT_KEEP_FILES = "X-Unitmgr-LogKeepFiles"
UNIT_KEYS = (UNIT_MAX_BYTES, UNIT_KEEP_FILES)


class LogConfigError(ValueError):
    """A log setting with a value that cannot be used; the message names the value and the fix."""


@dataclass(frozen=True)
class LogDefaults:
    max_bytes: int = DEFAULT_MAX_BYTES
    keep_files: int = DEFAULT_KEEP_FILES


def parse_max_bytes(text: str, key: str) -> int:
    try:
        value = parse_size(text, allow_infinity=False)
    except UnitValueError as exc:
        raise LogConfigError(f"{key}={text} is not a size ({exc}); write e.g. {key}=16M") from None
    if value is None or value < MIN_MAX_BYTES:
        raise LogConfigError(f"{key}={text} is below the minimum of {MIN_MAX_BYTES} bytes; write e.g. {key}=16M")
    return value


def parse_keep_files(text: str, key: str) -> int:
    try:
        return parse_int(text, minimum=1, maximum=1000)
    except UnitValueError:
        raise LogConfigError(f"{key}={text} is not a number of files from 1 to 1000; write e.g. {key}=4") from None


def read_manager_config(path: Path) -> LogDefaults:
    """Read `[Manager] LogMaxBytes=/LogKeepFiles=` from `path`; a missing file gives the defaults."""
    # The whole file is read by manager/config.py (one loader for every [Manager] key);
    # this logs the problems with the log keys, Manager logs the others.
    from unitmgr.manager.config import load_manager_config

    config = load_manager_config(path)
    for diagnostic in config.diagnostics:
        if diagnostic.key.startswith("Log"):
            log.warning("%s", diagnostic)
    return LogDefaults(config.log_max_bytes, config.log_keep_files)


def _manager_section(text: str) -> dict[str, str]:
    """Return the key=value pairs of the [Manager] section (the last assignment wins)."""
    section = ""
    values: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, equals, value = line.partition("=")
        if equals and section == "Manager":
            values[key.strip()] = value.strip()
    return values


def unit_options(name: str, service: dict[str, Any], defaults: LogDefaults) -> UnitLogOptions:
    """Return the log options of one unit from its [Service] settings."""
    max_bytes, keep_files = defaults.max_bytes, defaults.keep_files
    for key in service:
        if key.startswith("X-Unitmgr-Log") and key not in UNIT_KEYS:
            _warn_once(f"{name}: unknown key {key}= ignored; the log keys are "
                       + ", ".join(f"{k}=" for k in UNIT_KEYS))
    try:
        if service.get(UNIT_MAX_BYTES):
            max_bytes = parse_max_bytes(service[UNIT_MAX_BYTES][-1], UNIT_MAX_BYTES)
        if service.get(UNIT_KEEP_FILES):
            keep_files = parse_keep_files(service[UNIT_KEEP_FILES][-1], UNIT_KEEP_FILES)
    except LogConfigError as exc:
        _warn_once(f"{name}: {exc}")
    identifier = service.get("SyslogIdentifier") or ""
    return UnitLogOptions(max_bytes, keep_files, str(identifier))


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    """Log a warning about a unit once, not at every start of the unit."""
    if message in _warned:
        return
    if len(_warned) > 1000:
        _warned.clear()
    _warned.add(message)
    log.warning("%s", message)


def configure_logs(manager: Manager) -> LogDefaults:
    """Apply the manager's configuration file and each unit's settings to the log store."""
    defaults = read_manager_config(manager.paths.config_file)
    store = manager.logs
    store.max_bytes, store.keep_files = defaults.max_bytes, defaults.keep_files

    def options(unit: str) -> UnitLogOptions:
        runtime = manager.runtimes.get(unit)
        service = runtime.unit.settings.get("Service", {}) if runtime is not None else {}
        return unit_options(unit, service, defaults)

    store.unit_options = options
    log.debug("logs rotate at %d bytes, %d files kept per unit", defaults.max_bytes, defaults.keep_files)
    return defaults
