"""One manager per state directory.

A start with another runtime directory is rejected, and unitsh finds the running manager."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import wait_for, write_unit


def second_manager_env(manager, runtime: Path) -> dict[str, str]:
    """The first manager's environment with another runtime directory, as without XDG_RUNTIME_DIR."""
    return dict(manager.env, UNITMGR_RUNTIME_DIR=str(runtime))


def test_second_manager_other_runtime_rejected(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "sleeper.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    manager = make_manager(units)
    wait_for(lambda: manager.status("sleeper")["active_state"] == "active", message="sleeper to start")
    other_runtime = manager.home / "run2"

    second = subprocess.run(
        [sys.executable, "-m", "unitmgr.manager.cli", "--user", "--units", str(units)],
        env=second_manager_env(manager, other_runtime), capture_output=True, text=True, timeout=30,
    )

    assert second.returncode == 1, second.stderr
    assert "another manager is already running with this state directory" in second.stderr
    assert f"pid {manager.proc.pid}" in second.stderr
    assert str(manager.home / "runtime" / "control.sock") in second.stderr
    assert "UNITMGR_HOME=" in second.stderr
    assert not (other_runtime / "control.sock").exists()
    # The first manager and its unit are untouched.
    assert manager.proc.poll() is None
    assert manager.status("sleeper")["active_state"] == "active"


def test_unitsh_finds_manager_other_runtime(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "sleeper.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    manager = make_manager(units)
    wait_for(lambda: manager.status("sleeper")["active_state"] == "active", message="sleeper to start")
    socket = manager.home / "runtime" / "control.sock"

    shown = subprocess.run(
        [sys.executable, "-m", "unitmgr.shell.cli", "-c", "is-active sleeper"],
        env=second_manager_env(manager, manager.home / "run2"), capture_output=True, text=True, timeout=30,
    )

    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "active"
    assert f"using the running manager's socket {socket}" in shown.stderr


def test_unitsh_no_manager_after_stop(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    manager = make_manager(units)
    manager.stop()

    shown = subprocess.run(
        [sys.executable, "-m", "unitmgr.shell.cli", "-c", "list-units"],
        env=second_manager_env(manager, manager.home / "run2"), capture_output=True, text=True, timeout=30,
    )

    assert shown.returncode != 0
    assert "no unitmgr manager is running" in shown.stderr
    assert "using the running manager's socket" not in shown.stderr


def test_lock_records_control_socket(tmp_path: Path) -> None:
    from unitmgr.manager.lock import ManagerLock

    held = ManagerLock(tmp_path / "manager.lock")
    held.acquire(["/units"], "/run/unitmgr/control.sock")
    try:
        holder = ManagerLock(tmp_path / "manager.lock").holder()
        assert holder is not None
        assert holder.unit_dirs == ("/units",)
        assert holder.control_socket == "/run/unitmgr/control.sock"
    finally:
        held.release()
    assert ManagerLock(tmp_path / "manager.lock").holder() is None
