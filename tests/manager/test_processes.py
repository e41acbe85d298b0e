"""Finding a unit's processes among the manager's descendants, with this test process as the manager."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_for
from unitmgr.manager import processes

PR_SET_CHILD_SUBREAPER = 36
INVOCATION = "0123456789abcdef"


@pytest.fixture
def subreaper() -> Iterator[list[int]]:
    """Make this process a child subreaper; yield a list for the orphans the test makes, killed at the end."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("the kernel refused PR_SET_CHILD_SUBREAPER")
    orphans: list[int] = []
    try:
        yield orphans
    finally:
        libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
        for pid in orphans:
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def start(script: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(["/bin/sh", "-c", script], env=env or {}, start_new_session=True)


def orphans_of_this_process() -> list[int]:
    return [pid for pid in processes.children_of(os.getpid()) if processes.is_running(pid)]


def test_children_files_exist() -> None:
    if not processes.children_files_available():
        pytest.skip("this kernel has no /proc/PID/task/TID/children (CONFIG_PROC_CHILDREN)")
    proc = start("sleep 60")
    try:
        assert proc.pid in processes.children_of(os.getpid())
    finally:
        proc.kill()
        proc.wait()


def test_descendants_of_root_found() -> None:
    proc = start("sleep 60 & sleep 60 & wait")
    try:
        sleepers = wait_for(lambda: len(processes.children_of(proc.pid)) == 2 and processes.children_of(proc.pid),
                            message="the two sleeps")
        members = processes.tree_members({proc.pid}, "", os.getpid(), lambda pid: False)
        assert members == {proc.pid, *sleepers}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_orphans_found_by_session_and_invocation(subreaper: list[int]) -> None:
    # Left in the root's session, and re-parented to this process when the root exits.
    in_session = start("sleep 60 & exit 0")
    # A new session: found only by INVOCATION_ID in its environment.
    detached = start("setsid sleep 60 & exit 0", {"INVOCATION_ID": INVOCATION})
    in_session.wait()
    detached.wait()
    found = wait_for(lambda: len(orphans_of_this_process()) == 2 and orphans_of_this_process(),
                     message="two orphans re-parented to the test")
    subreaper.extend(found)
    # Wait until both run sleep, so tree_members does not read an environment during setsid's exec.
    wait_for(lambda: all(Path(f"/proc/{pid}/comm").read_text().strip() == "sleep" for pid in found),
             message="both orphans to run sleep")

    members = processes.tree_members({in_session.pid, detached.pid}, INVOCATION, os.getpid(), lambda pid: False)
    assert members == set(found)
    # Another unit's invocation finds only the one in its session.
    other = processes.tree_members({in_session.pid}, "another", os.getpid(), lambda pid: False)
    assert len(other) == 1
    # A pid the manager spawned itself belongs to the unit whose root it is, never to this one.
    assert processes.tree_members({detached.pid}, INVOCATION, os.getpid(), lambda pid: True) == set()
