"""Starting at every login: --daemon, one manager per user, recovery after a crash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO, ManagerProcess, kill_and_reap, processes_with_env, wait_for, write_unit

MARKER_UNIT = "[Service]\nExecStart=/bin/sh -c 'exec sleep 1000{tag}'\n"


def manager_pids(home: Path) -> list[int]:
    """Manager processes (not units) running on `home`."""
    marker = f"UNITMGR_HOME={home}".encode()
    found = []
    for pid in processes_with_env(marker):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"unitmgr.manager.cli" in cmdline and b"--user" in cmdline or cmdline.startswith(b"unitmgr\0"):
            found.append(pid)
    return found


def unit_pids(home: Path, tag: str) -> list[int]:
    marker = f"UNITMGR_HOME={home}".encode()
    result = []
    for pid in processes_with_env(marker):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == f"sleep\x001000{tag}\x00".encode():
                result.append(pid)
        except OSError:
            continue
    return result


@pytest.fixture
def detached_home():
    """A short home dir whose managers (detached, so not our children) are stopped afterwards."""
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="um-"))
    yield home
    for pid in manager_pids(home):
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not manager_pids(home), timeout=30, message="detached managers to stop")
    leftovers = processes_with_env(f"UNITMGR_HOME={home}".encode())
    kill_and_reap(leftovers)
    assert not leftovers, f"processes survived: {leftovers}"


def run_unitmgr(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    env = dict(os.environ, UNITMGR_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "unitmgr.manager.cli", *args], env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def test_daemon_returns_when_ready(detached_home: Path, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "idle.service", MARKER_UNIT.format(tag="1"), enable=True)
    started = run_unitmgr(detached_home, "--user", "--daemon", "--units", str(units))
    assert started.returncode == 0, started.stderr
    [manager] = manager_pids(detached_home)
    assert os.getsid(manager) == manager, "the detached manager must lead its own session"

    helper = ManagerProcess(detached_home, units)
    assert helper.request("hello")["pid"] == manager

    again = run_unitmgr(detached_home, "--user", "--daemon", "--units", str(units))
    assert again.returncode == 0
    assert "already running" in again.stderr
    assert manager_pids(detached_home) == [manager]

    log = (detached_home / "state" / "unitmgr.log").read_text()
    assert "unitmgr started" in log

    stopped = helper.unitsh("-c", "exit")
    assert stopped.returncode == 0, stopped.stderr
    wait_for(lambda: not manager_pids(detached_home), timeout=30, message="the manager to exit")
    assert unit_pids(detached_home, "1") == []


def test_profile_snippet_starts_one_manager(detached_home: Path, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "idle.service", MARKER_UNIT.format(tag="2"), enable=True)
    home = tmp_path / "home"
    home.mkdir()
    bindir = home / ".local" / "bin"
    bindir.mkdir(parents=True)
    # A `unitmgr` in ~/.local/bin (where pipx puts it) that runs this checkout with these units.
    wrapper = bindir / "unitmgr"
    wrapper.write_text(f"#!/bin/sh\nexec {sys.executable} -m unitmgr.manager.cli \"$@\" --units {units}\n")
    wrapper.chmod(0o755)
    snippet = REPO / "packaging" / "profile" / "unitmgr.sh"
    # As Debian's default ~/.profile does; /etc/profile resets PATH for login shells.
    (home / ".profile").write_text(f'PATH="$HOME/.local/bin:$PATH"\n. {snippet}\n')
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin", "UNITMGR_HOME": str(detached_home),
           "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    logins = [subprocess.Popen(["bash", "-l", "-c", "true"], env=env, stdin=subprocess.DEVNULL)
              for _ in range(2)]
    for login in logins:
        assert login.wait(60) == 0
    assert len(manager_pids(detached_home)) == 1
    wait_for(lambda: unit_pids(detached_home, "2"), message="the unit to start")
    assert len(unit_pids(detached_home, "2")) == 1


def test_crashed_manager_units_not_doubled(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "idle.service", MARKER_UNIT.format(tag="3"), enable=True)
    manager = make_manager(units)
    [first] = wait_for(lambda: unit_pids(manager.home, "3"), message="the unit to start")
    socket_path = manager.home / "runtime" / "control.sock"
    assert socket_path.exists()

    manager.proc.send_signal(signal.SIGKILL)
    manager.proc.wait(10)
    assert socket_path.exists(), "a SIGKILLed manager cannot remove its socket"

    manager.start()

    def replaced() -> list[int]:
        pids = unit_pids(manager.home, "3")
        return pids if pids and first not in pids else []

    second = wait_for(replaced, timeout=20, message="the unit to run once under the new manager")
    assert len(second) == 1
    assert manager.request("hello")["pid"] == manager.proc.pid
    assert "left running by the previous manager" in manager.log()
