"""Runs systemd 252's `systemd-analyze verify` on a unit file and classifies its verdict."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")

# Lines that mean systemd refused to load the unit itself.
_LOAD_FAILURES = ("has a bad unit file setting", "Unit configuration has fatal error",
                  "is masked", "Failed to load", "failed to load properly",
                  "Refusing")  # fmt: skip


def systemd_verify(path: Path, runtime_dir: Path) -> tuple[bool, str]:
    """Return (systemd refused to load the unit, its full output)."""
    env = dict(os.environ, XDG_RUNTIME_DIR=str(runtime_dir), SYSTEMD_LOG_COLOR="0")
    completed = subprocess.run(
        [SYSTEMD_ANALYZE, "--user", "--man=no", "verify", str(path)],
        capture_output=True, text=True, env=env, timeout=60, cwd=runtime_dir,
    )
    output = completed.stdout + completed.stderr
    refused = any(marker in output for marker in _LOAD_FAILURES)
    return refused, output


SYSTEMD = next((p for p in ("/usr/lib/systemd/systemd", "/lib/systemd/systemd") if os.access(p, os.X_OK)),
               None)
SETPRIV = shutil.which("setpriv")
NOBODY = 65534


# The C escapes systemd's shell quoting writes for control characters.
_C_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


def _unquote_command_line(text: str) -> list[str]:
    """Split a `Command Line:` of `systemd --test`: words, some in "..." with \\-escapes."""
    words: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    started = False
    for char in text:
        if escaped:
            current.append(_C_ESCAPES.get(char, char))
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted, started = not quoted, True
        elif char == " " and not quoted:
            if started or current:
                words.append("".join(current))
            current, started = [], False
        else:
            current.append(char)
    if started or current:
        words.append("".join(current))
    return words


def systemd_test_dump(unit_dir: Path, runtime_dir: Path, home: Path) -> dict[str, dict[str, list]]:
    """Run `systemd --user --test` on the units `default.target` in `unit_dir` pulls in.

    Return {unit: {"load": [load state], "ExecStart": [argv, ...], ...,
    "properties": {"RestartSec": ["100ms"], "DropIn Path": [...], ...}}}. systemd
    refuses test mode as root, so as root it runs as the user nobody (via setpriv);
    `unit_dir` must then be readable and `runtime_dir` owned by nobody.
    """
    env = dict(os.environ, SYSTEMD_LOG_TARGET="console", XDG_RUNTIME_DIR=str(runtime_dir),
               SYSTEMD_UNIT_PATH=str(unit_dir), HOME=str(home), SYSTEMD_LOG_COLOR="0")
    command = [SYSTEMD, "--user", "--test", "--no-pager"]
    if os.getuid() == 0:
        command = [SETPRIV, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *command]
    output = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120).stdout
    units: dict[str, dict[str, list]] = {}
    current: dict[str, list] = {}
    setting = ""
    for line in output.splitlines():
        stripped = line.strip()
        if stripped.startswith("-> Unit "):
            current = units.setdefault(stripped[len("-> Unit "):].rstrip(":"), {})
        elif stripped.startswith("Unit Load State: "):
            current["load"] = [stripped.split(": ", 1)[1]]
        elif stripped.startswith("-> Exec"):
            setting = stripped[len("-> "):].rstrip(":")
        elif stripped.startswith("Command Line: ") and setting:
            current.setdefault(setting, []).append(_unquote_command_line(stripped[len("Command Line: "):]))
        elif line.startswith("\t\t") and not line.startswith("\t\t\t") and ": " in stripped:
            setting = ""
            key, value = stripped.split(": ", 1)
            current.setdefault("properties", {}).setdefault(key, []).append(value)
    return units
