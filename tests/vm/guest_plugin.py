"""pytest plugin for runs inside the test VM: keep every manager's log in the results share.

The guest's /tmp disappears with the VM, so ManagerProcess.cleanup copies
the log to /tmp/vm-results/manager-logs/ first, named after the test.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import support

LOG_DIR = Path("/tmp/vm-results/manager-logs")
_original_cleanup = support.ManagerProcess.cleanup


def _cleanup_keeping_log(self: support.ManagerProcess) -> list[int]:
    leftovers = _original_cleanup(self)
    test = os.environ.get("PYTEST_CURRENT_TEST", "unknown").split(" ")[0]
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", test.split("::")[-1])
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    if self.log_path.exists():
        shutil.copyfile(self.log_path, LOG_DIR / f"{name}-{self.home.name}.log")
    return leftovers


support.ManagerProcess.cleanup = _cleanup_keeping_log  # type: ignore[method-assign]
