"""The two Linux calls of manager/_linuxcalls.c, and the manager's start without ctypes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from unitmgr.manager import memtrim

try:
    from unitmgr.manager import _linuxcalls
except ImportError:  # built without a C compiler
    _linuxcalls = None

needs_extension = pytest.mark.skipif(_linuxcalls is None, reason="manager/_linuxcalls.c was not built")

# Runs in a child Python: becoming a subreaper changes the process for good.
SUBREAPER_SCRIPT = """
import json, os, sys, time
from unitmgr.manager import reaper

became = reaper.set_subreaper()
middle = os.fork()
if middle == 0:
    # The grandchild outlives its parent, so it is re-parented to the nearest subreaper.
    if os.fork() == 0:
        time.sleep(0.2)
        os._exit(0)
    os._exit(0)
os.waitpid(middle, 0)
orphan_pid, _status = os.wait()
print(json.dumps({"became": became, "reaped": orphan_pid > 0, "ctypes": "ctypes" in sys.modules}))
"""


@needs_extension
def test_subreaper_adopts_orphans() -> None:
    result = subprocess.run([sys.executable, "-c", SUBREAPER_SCRIPT], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["became"] is True
    assert report["reaped"] is True
    assert report["ctypes"] is False, "the extension must make ctypes unnecessary"


@needs_extension
def test_malloc_trim_returns_a_bool() -> None:
    assert _linuxcalls.malloc_trim() in (True, False)
    memtrim.release_free_memory()


def test_subreaper_without_extension() -> None:
    # Stands in for a build without a C compiler: the ctypes path must still work. Run in a child,
    # as above, so this process does not become a subreaper.
    script = ("import sys; sys.modules['unitmgr.manager._linuxcalls'] = None\n"
              "from unitmgr.manager import reaper, memtrim\n"
              "memtrim.release_free_memory()\n"
              "print(reaper.set_subreaper(), 'ctypes' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]
