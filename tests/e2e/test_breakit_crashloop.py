"""Adversarial crash-loop damping on a real manager: commands while a restart is damped."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import ManagerProcess, wait_for, write_unit

CRASHER = """\
[Unit]
StartLimitBurst=1000
[Service]
ExecStart=/bin/false
Restart=always
RestartSec=0
"""


def damped_manager(make_manager, tmp_path: Path) -> ManagerProcess:
    units = tmp_path / "units"
    write_unit(units, "crash.service", CRASHER)
    manager = make_manager(units, start=False)
    manager.write_config("[Manager]\nCrashLoopBurst=2\nCrashLoopMaxDelaySec=60s\n")
    manager.start()
    manager.request("start", {"units": ["crash"], "no_block": True})
    wait_for(lambda: (manager.status("crash").get("crash_loop") or {}).get("delay", 0) >= 1.6, timeout=30,
             message="a damped restart of 1.6 s or more")
    return manager


def test_stop_while_damped(make_manager, tmp_path: Path) -> None:
    manager = damped_manager(make_manager, tmp_path)
    manager.request("stop", {"units": ["crash"]})
    status = manager.status("crash")
    assert status["active_state"] in ("inactive", "failed")
    assert status.get("crash_loop") is None
    # A manual start sets the count back to 0: damping begins again at its first delay.
    manager.request("start", {"units": ["crash"], "no_block": True})
    damping = wait_for(lambda: manager.status("crash").get("crash_loop"), timeout=10,
                       message="damping after a manual start")
    assert damping["quick_exits"] == 3
    assert damping["delay"] == pytest.approx(0.1)


def test_reset_failed_while_damped(make_manager, tmp_path: Path) -> None:
    # reset-failed clears the quick exits, so the pending restart no longer waits the damped delay.
    manager = damped_manager(make_manager, tmp_path)
    before = manager.status("crash")["n_restarts"]
    manager.request("reset-failed", {"units": ["crash"]})
    # The loop may already have run CrashLoopBurst= quick exits again, but damping starts over at 0.1 s.
    damping = manager.status("crash").get("crash_loop")
    assert damping is None or damping["delay"] == pytest.approx(0.1), damping
    wait_for(lambda: manager.status("crash")["n_restarts"] > before, timeout=5,
             message="the restart after RestartSec= alone")
