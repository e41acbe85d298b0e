"""Removing cgroups of managers that were killed: which ones go, which stay, and what is logged.

Most cases run on plain directories under tmp_path, where rmdir behaves as in
cgroupfs for the part that matters: only an empty directory goes, and a file
takes the place of a process. The last test uses the real delegated subtree.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest
from support import wait_for, write_unit
from unitmgr.manager import cgroups, stalecgroups

SUPPORT = cgroups.detect()
needs_cgroups = pytest.mark.skipif(not SUPPORT.usable, reason=f"no writable cgroup v2 hierarchy: {SUPPORT.reason}")
NAMESPACE = cgroups.pid_namespace()


def dead_pid() -> int:
    """Return the pid of a process that has exited and been reaped."""
    proc = subprocess.Popen(["/bin/true"])
    proc.wait()
    return proc.pid


def make(parent: Path, name: str, *children: str) -> Path:
    base = parent / name
    base.mkdir()
    for child in children:
        (base / child).mkdir()
    return base


def test_gone_manager_removed_children_first(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pid = dead_pid()
    base = make(tmp_path, f"unitmgr-{pid}-abcdef-{NAMESPACE}", "a.service", "b.service")
    own = make(tmp_path, f"unitmgr-{os.getpid()}-123456-{NAMESPACE}")

    with caplog.at_level(logging.INFO, logger="unitmgr.manager.stalecgroups"):
        removed = stalecgroups.remove_stale(tmp_path, own, NAMESPACE)

    assert removed == [base]
    assert not base.exists()
    assert own.exists()
    assert f"removed {base} of unitmgr pid {pid}, which is gone, and its 2 unit cgroup(s)" in caplog.text


def test_non_empty_cgroup_kept(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    pid = dead_pid()
    base = make(tmp_path, f"unitmgr-{pid}-abcdef-{NAMESPACE}", "busy.service", "idle.service")
    (base / "busy.service" / "cgroup.procs").write_text("4242\n")

    with caplog.at_level(logging.INFO, logger="unitmgr.manager.stalecgroups"):
        removed = stalecgroups.remove_stale(tmp_path, tmp_path / "own", NAMESPACE)

    assert removed == []
    assert (base / "busy.service" / "cgroup.procs").exists()
    assert not (base / "idle.service").exists()
    assert f"kept {base} of unitmgr pid {pid}" in caplog.text


def test_running_creator_and_other_names_kept(tmp_path: Path) -> None:
    pid = dead_pid()
    kept = [
        # This test runs in a Python interpreter that started before the directory existed.
        make(tmp_path, f"unitmgr-{os.getpid()}-abcdef-{NAMESPACE}"),
        # A pid of another PID namespace cannot be looked up here.
        make(tmp_path, f"unitmgr-{pid}-abcdef-{NAMESPACE + 1}"),
        make(tmp_path, f"other-{pid}-abcdef"),
        make(tmp_path, "manager"),
    ]
    (tmp_path / f"unitmgr-{pid}-fedcba-{NAMESPACE}").write_text("")

    assert stalecgroups.remove_stale(tmp_path, tmp_path / "own", NAMESPACE) == []
    for directory in kept:
        assert directory.exists(), directory.name


def test_reused_pid_counts_as_gone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = make(tmp_path, f"unitmgr-{os.getpid()}-abcdef-{NAMESPACE}")
    # As if this process had started long after the directory was made.
    monkeypatch.setattr(stalecgroups, "_boot_time", lambda: os.stat(base).st_ctime + 60)
    assert stalecgroups.remove_stale(tmp_path, tmp_path / "own", NAMESPACE) == [base]


def test_old_name_judged_in_initial_namespace_only(tmp_path: Path) -> None:
    base = make(tmp_path, f"unitmgr-{dead_pid()}-abcdef")
    assert stalecgroups.remove_stale(tmp_path, tmp_path / "own", NAMESPACE + 1) == []
    assert base.exists()
    removed = stalecgroups.remove_stale(tmp_path, tmp_path / "own", stalecgroups.INITIAL_PID_NAMESPACE)
    assert removed == [base]


@needs_cgroups
def test_real_leftover_removed_at_start(make_manager, tmp_path: Path) -> None:
    parent = SUPPORT.own_dir
    pid = dead_pid()
    leftover = make(parent, f"unitmgr-{pid}-0f0f0f-{NAMESPACE}", "gone.service")
    busy = make(parent, f"unitmgr-{pid}-1e1e1e-{NAMESPACE}", "busy.service")
    sleeper = subprocess.Popen(["sleep", "1000"])
    try:
        (busy / "busy.service" / "cgroup.procs").write_text(str(sleeper.pid))
        units = tmp_path / "units"
        write_unit(units, "idle.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
        make_manager(units)

        wait_for(lambda: not leftover.exists(), message="the leftover cgroup to be removed")
        assert (busy / "busy.service").exists(), "a cgroup with a process in it must stay"
    finally:
        sleeper.kill()
        sleeper.wait()
        wait_for(lambda: not (busy / "busy.service" / "cgroup.procs").read_text().strip(),
                 message="the sleeper to leave its cgroup")
        for directory in (busy / "busy.service", busy, leftover / "gone.service", leftover):
            if directory.exists():
                directory.rmdir()
