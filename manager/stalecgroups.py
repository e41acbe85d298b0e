"""Removing the cgroups that managers which were killed left behind.

A manager removes its `unitmgr-PID-XXXXXX` cgroup when it shuts down, but a
manager killed with SIGKILL cannot, and the empty directories pile up in the
delegated subtree. At start-up `remove_stale()` looks at the directories of
that name next to the manager's own and removes those whose creator is no
longer running, unit cgroups first. It only calls rmdir, which the kernel
rejects for a cgroup that still contains processes or child cgroups, so a
cgroup with processes in it is kept, with everything above it.

The name contains the creator's PID and the inode of its PID namespace.
Only cgroups of this manager's PID namespace are judged, because a PID means
nothing in another one. The creator counts as running when a process with
that PID exists and started before the directory last changed. That process
must also be a Python interpreter (unitmgr, or a test that creates cgroups
in-process) or, when its executable cannot be read, name unitmgr in its
command line. A newer process with that PID reused the number after the
creator exited.

Names without the namespace (`unitmgr-<pid>-<random>`, from older versions)
are judged only by a manager in the initial PID namespace.
NOTE: such an old name may come from a manager in another PID namespace. When
its PID belongs to a non-Python process here, that manager's empty cgroups
are removed while it may still run.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from unitmgr.manager import processes
from unitmgr.manager.limitwatch import read_start_time

log = logging.getLogger(__name__)

BASE_NAME = re.compile(r"unitmgr-(?P<pid>\d+)-[0-9a-f]{6}(?:-(?P<namespace>\d+))?")
# The inode of the initial PID namespace (PROC_PID_INIT_INO in the kernel).
INITIAL_PID_NAMESPACE = 0xEFFFFFFC
# /proc/stat's btime has a resolution of one second.
START_TIME_SLACK = 1.0


def remove_stale(parent: Path, own: Path, namespace: int) -> list[Path]:
    """Remove the empty cgroups under `parent` of unitmgr processes that are gone; return those removed.

    `namespace` is the inode of this manager's PID namespace.
    """
    removed: list[Path] = []
    try:
        entries = sorted(parent.iterdir())
    except OSError as exc:
        log.warning("could not list %s to look for cgroups of managers that are gone: %s", parent, exc)
        return removed
    for directory in entries:
        match = BASE_NAME.fullmatch(directory.name)
        if match is None or directory == own or not directory.is_dir():
            continue
        created_in = int(match["namespace"] or INITIAL_PID_NAMESPACE)
        if created_in != namespace or not namespace:
            continue
        pid = int(match["pid"])
        if creator_may_run(pid, directory):
            continue
        units, failures = _remove_tree(directory)
        if failures:
            log.info("kept %s of unitmgr pid %d, which is gone: %d cgroup(s) in it could not be removed, "
                     "the first because of: %s", directory, pid, len(failures), failures[0])
            continue
        log.info("removed %s of unitmgr pid %d, which is gone, and its %d unit cgroup(s)", directory, pid, units)
        removed.append(directory)
    return removed


def creator_may_run(pid: int, directory: Path) -> bool:
    """Return whether the process that created `directory` may still be running as `pid`."""
    if not processes.is_running(pid):
        return False
    try:
        changed = directory.stat().st_ctime
    except OSError:
        return False
    # A process that exits meanwhile has start time 0, and _runs_python() then rejects it.
    started = _boot_time() + read_start_time(pid) / os.sysconf("SC_CLK_TCK")
    if started > changed + START_TIME_SLACK:
        return False
    return _runs_python(pid)


def _boot_time() -> float:
    with open("/proc/stat", "rb") as f:
        for line in f:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    return 0.0


def _runs_python(pid: int) -> bool:
    try:
        executable = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        # Not readable for processes of other users or namespaces: the command line is.
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read()
        except OSError:
            return False
        executable = command.split(b"\0", 1)[0].decode("utf-8", "replace")
        if b"unitmgr" in command:
            return True
    return os.path.basename(executable).startswith("python")


def _remove_tree(directory: Path) -> tuple[int, list[str]]:
    """Remove `directory` and its child cgroups, deepest first.

    Return the number of child cgroups removed and one message per cgroup
    that rmdir rejected (one with processes, and every cgroup above it).
    """
    removed = 0
    failures: list[str] = []
    for child in _child_dirs(directory):
        child_removed, child_failures = _remove_tree(child)
        removed += child_removed + (0 if child_failures else 1)
        failures += child_failures
    try:
        directory.rmdir()
    except FileNotFoundError:
        pass  # another manager starting at the same time removed it
    except OSError as exc:
        failures.append(f"{directory}: {exc.strerror}")
    return removed, failures


def _child_dirs(directory: Path) -> list[Path]:
    try:
        with os.scandir(directory) as entries:
            return [Path(entry.path) for entry in entries if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []
