"""Units whose program cannot be executed, started by a real manager through clone3 and its status pipe.

With clone3 the manager no longer waits for the exec: the reason reaches it
on the status pipe while the process exits with 203. Each case checks that
the reason still reaches the unit's log and `unitsh -c status`.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from support import log_text, wait_for, write_unit

NOT_EXECUTABLE = "not-executable"

# Each case: unit name, [Service] body ({dir} is the test's directory), expected reason.
CASES = [
    ("simple-missing", "ExecStart=/nonexistent/program\n",
     "could not execute /nonexistent/program: No such file or directory (status=203/EXEC)"),
    ("exec-missing", "Type=exec\nExecStart=/nonexistent/program\n",
     "could not execute /nonexistent/program: No such file or directory (status=203/EXEC)"),
    ("oneshot-missing", "Type=oneshot\nExecStart=/nonexistent/program\n",
     "could not execute /nonexistent/program: No such file or directory (status=203/EXEC)"),
    ("pre-missing", "ExecStartPre=/nonexistent/pre\nExecStart=/bin/sleep 1000\n",
     "could not execute /nonexistent/pre: No such file or directory (status=203/EXEC)"),
    ("exec-not-executable", f"Type=exec\nExecStart={{dir}}/{NOT_EXECUTABLE}\n",
     f"could not execute {{dir}}/{NOT_EXECUTABLE}: Permission denied (status=203/EXEC)"),
]


@pytest.mark.parametrize(("name", "body", "reason"), CASES, ids=[case[0] for case in CASES])
def test_exec_failure_reason_shown(make_manager, tmp_path: Path, name: str, body: str, reason: str) -> None:
    (tmp_path / NOT_EXECUTABLE).write_text("#!/bin/sh\nexit 0\n")
    units = tmp_path / "units"
    write_unit(units, f"{name}.service", "[Service]\n" + body.format(dir=tmp_path))
    manager = make_manager(units)
    reason = reason.format(dir=tmp_path)

    manager.request("start", {"units": [name], "no_block": True})
    wait_for(lambda: manager.status(name)["active_state"] == "failed", message=f"{name} to fail")
    wait_for(lambda: reason in log_text(manager, name), message=f"the reason in {name}'s log")
    status_output = manager.unitsh("-c", f"status {name}")
    assert reason in status_output.stdout
    assert "203/EXEC" in status_output.stdout


def test_crash_loop_reasons_logged(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "loop.service", "[Unit]\nStartLimitBurst=1000\n[Service]\nExecStart=/nonexistent/loop\n"
                                      "Restart=always\nRestartSec=0\n")
    manager = make_manager(units, start=False)
    manager.write_config("[Manager]\nCrashLoopMaxDelaySec=0\n")
    manager.start()

    manager.request("start", {"units": ["loop"], "no_block": True})
    wait_for(lambda: manager.status("loop")["n_restarts"] >= 100, timeout=15, message="100 restarts")
    manager.request("stop", {"units": ["loop"]})
    reason = "could not execute /nonexistent/loop: No such file or directory (status=203/EXEC)"
    count = log_text(manager, "loop").count(reason)
    assert count >= 100, "one reason per failed start"
    status_output = manager.unitsh("-c", "status loop")
    assert reason in status_output.stdout
