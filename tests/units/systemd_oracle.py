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
