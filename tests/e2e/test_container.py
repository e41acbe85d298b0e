"""The manager as a container's init: PID 1 duties, exit policy, logs on stdout, health."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from support import kill_and_reap, processes_with_env, wait_for, write_unit

needs_unshare = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="a new PID namespace needs root and util-linux's unshare",
)

DOUBLE_FORK = """\
[Service]
ExecStart=/bin/sh -c 'sh -c "sleep 0.3 & exit 0"; echo "orphan made"; exec sleep 1000'
TimeoutStopSec=5
"""


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def process_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return ""


@needs_unshare
def test_pid1_reaps_orphans_and_stops_on_sigterm(tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "orphans.service", DOUBLE_FORK, enable=True)
    home = Path(tempfile.mkdtemp(prefix="um-"))
    marker = f"UNITMGR_HOME={home}".encode()
    env = dict(os.environ, UNITMGR_HOME=str(home))
    log = open(tmp_path / "pid1.log", "wb")
    namespace = subprocess.Popen(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-m", "unitmgr.manager.cli",
         "--user", "--units", str(units), "--log-level", "debug"],
        env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )
    try:
        [init] = wait_for(lambda: children(namespace.pid), message="PID 1 of the namespace")
        # The unit's own output line; the manager's log of the command line also contains "orphan made".
        wait_for(lambda: b"orphans: orphan made" in (tmp_path / "pid1.log").read_bytes(), timeout=20,
                 message="the unit to make its orphan")
        # The orphan sleeps 0.3 s, then only PID 1 can reap it. Left: unshare, the manager, `sleep 1000`.
        wait_for(lambda: not [p for p in processes_with_env(marker) if process_state(p) == "Z"]
                 and len(processes_with_env(marker)) == 3, timeout=10, message="the orphan to be reaped")
        zombies = [p for p in processes_with_env(marker) if process_state(p) == "Z"]
        assert zombies == []

        os.kill(init, signal.SIGTERM)
        assert namespace.wait(20) == 0
        text = (tmp_path / "pid1.log").read_text(errors="replace")
        assert "container mode" in text or "unitmgr started" in text
        assert "orphans.service: sending SIGTERM" in text
        assert "unitmgr stopped" in text
    finally:
        if namespace.poll() is None:
            namespace.kill()
            namespace.wait()
        log.close()
        kill_and_reap(processes_with_env(marker))
        shutil.rmtree(home, ignore_errors=True)


def test_failure_action_exit_status(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "main.service", """\
[Unit]
FailureAction=exit

[Service]
ExecStart=/bin/sh -c 'sleep 0.2; exit 3'
""", enable=True)
    write_unit(units, "side.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    manager = make_manager(units, "--container")
    assert manager.proc.wait(30) == 3
    assert "FailureAction=exit" in manager.log()


def test_success_action_uses_configured_status(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "job.service", """\
[Unit]
SuccessAction=exit
SuccessActionExitStatus=7

[Service]
Type=oneshot
ExecStart=/bin/true
""", enable=True)
    manager = make_manager(units, "--container")
    assert manager.proc.wait(30) == 7


def test_unit_output_on_manager_stdout(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    for name in ("alpha", "beta"):
        write_unit(units, f"{name}.service", f"""\
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'for i in 1 2 3 4 5; do echo "{name} line $$i"; done; echo "{name} oops" >&2'
""", enable=True)
    manager = make_manager(units, "--container")

    def copied() -> list[str]:
        return [line for line in manager.log().splitlines() if line.startswith(("alpha: ", "beta: "))]

    wait_for(lambda: len(copied()) == 12, message="both units' output on stdout")
    for name in ("alpha", "beta"):
        mine = [line for line in copied() if line.startswith(f"{name}: ")]
        assert mine[:5] == [f"{name}: {name} line {i}" for i in range(1, 6)]
        assert f"{name}: {name} oops" in mine


def test_is_system_running_follows_failures(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "broken.service", "[Service]\nExecStart=/bin/false\n", enable=True)
    write_unit(units, "fine.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    manager = make_manager(units)

    wait_for(lambda: manager.request("is-system-running")["state"] == "degraded", message="degraded")
    assert manager.request("is-system-running")["failed_units"] == ["broken.service"]
    degraded = manager.unitsh("-c", "is-system-running")
    assert (degraded.returncode, degraded.stdout) == (1, "degraded\n")
    manager.request("reset-failed", {"units": ["broken"]})
    running = manager.unitsh("-c", "is-system-running")
    assert (running.returncode, running.stdout) == (0, "running\n")


@needs_unshare
def test_read_only_home_falls_back(tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "idle.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    readonly = tmp_path / "ro"
    readonly.mkdir()
    log_path = tmp_path / "manager.log"
    script = (f"mount -t tmpfs -o ro,size=1m tmpfs {readonly} && "
              f"exec {sys.executable} -m unitmgr.manager.cli --user --container --units {units}")
    env = dict(os.environ, UNITMGR_HOME=str(readonly / "home"))
    fallback = Path("/run/unitmgr")
    created_fallback = not fallback.exists()
    with open(log_path, "wb") as log:
        namespace = subprocess.Popen(["unshare", "--pid", "--fork", "--mount", "sh", "-c", script],
                                     env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: b"boot finished" in log_path.read_bytes(), timeout=20, message="the manager to boot")
        text = log_path.read_text(errors="replace")
        assert "is not writable; using /run/unitmgr/state" in text or "using /tmp/unitmgr-" in text
        [init] = children(namespace.pid)
        os.kill(init, signal.SIGTERM)
        assert namespace.wait(20) == 0
    finally:
        if namespace.poll() is None:
            namespace.kill()
            namespace.wait()
        if created_fallback:
            shutil.rmtree(fallback, ignore_errors=True)


def test_exit_target_stops_everything(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "idle.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    manager = make_manager(units, "--exit-code", "5")
    wait_for(lambda: manager.status("idle")["active_state"] == "active", message="idle running")
    manager.unitsh("-c", "start --no-block exit.target")
    assert manager.proc.wait(30) == 5
    assert "exit.target reached" in manager.log()
