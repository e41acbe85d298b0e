"""`unitmgr verify`: check unit files and report in the shape of `systemd-analyze verify`."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from unitmgr.units.execline import resolve_executable
from unitmgr.units.loader import load_file
from unitmgr.units.model import Unit
from unitmgr.units.specifiers import SpecifierContext

EXEC_KEYS = ("ExecCondition", "ExecStartPre", "ExecStart", "ExecStartPost", "ExecReload",
             "ExecStop", "ExecStopPost", "ExecStopPre")  # fmt: skip


def _missing_executables(unit: Unit, search_path: str) -> list[str]:
    """Return a line for every command whose executable is not there (`-` commands excepted)."""
    section = "Service" if unit.kind == "service" else "Socket"
    problems = []
    for key in EXEC_KEYS:
        for command in unit.settings.get(section, {}).get(key, []):
            if command.ignore_failure:
                continue
            path = resolve_executable(command.executable, search_path)
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                problems.append(f"{unit.name}: Command {path} is not executable: "
                                "No such file or directory")
    return problems


def verify_unit(unit: Unit, search_path: str) -> tuple[list[str], bool]:
    """Return the report lines for one loaded unit and whether it has errors."""
    lines = [str(d) for d in unit.diagnostics]
    if unit.load_state == "masked":
        return lines + [f"Unit {unit.name} is masked."], True
    if unit.load_state != "loaded":
        if unit.load_state == "bad-setting":
            lines.append(f"Unit {unit.name} has a bad unit file setting.")
        else:
            lines.append(unit.load_error)
        return lines, True
    missing = _missing_executables(unit, search_path)
    return lines + missing, bool(missing)


def verify_files(
    paths: Iterable[Path | str], context: SpecifierContext, search_path: str | None = None
) -> tuple[list[str], bool]:
    """Verify unit files; return (report lines, whether any file has errors).

    `search_path` is the PATH used to find bare executable names (default: $PATH).
    """
    path_list = os.environ.get("PATH", "") if search_path is None else search_path
    report: list[str] = []
    has_errors = False
    for path in paths:
        unit = load_file(Path(path), context)
        lines, failed = verify_unit(unit, path_list)
        report.extend(lines)
        has_errors = has_errors or failed
    return report, has_errors
