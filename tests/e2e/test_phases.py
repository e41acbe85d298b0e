"""Exec phases: ExecCondition=, the stop commands' variables, command prefixes, TimeoutStopSec=."""

from __future__ import annotations

import os
import time
from pathlib import Path

from support import write_unit
from test_types import open_gate
from unitwait import job_result, log_lines, wait_state


def test_exec_condition(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    for name, code in (("skip", 1), ("broken", 255), ("pass", 0)):
        write_unit(units, f"{name}.service", f"""\
[Service]
ExecCondition=/bin/sh -c 'exit {code}'
ExecStartPre=/bin/echo pre
ExecStart=/bin/sleep 1000
ExecStopPost=/bin/echo post $SERVICE_RESULT
""")
    manager = make_manager(units)

    assert job_result(manager.request("start", {"units": ["skip"]}), "skip.service") == "skipped"
    status = manager.status("skip")
    assert (status["active_state"], status["result"]) == ("inactive", "exec-condition")
    lines = log_lines(manager, "skip")
    assert "pre" not in lines
    assert "post exec-condition" in lines

    assert job_result(manager.request("start", {"units": ["broken"]}), "broken.service") == "failed"
    assert manager.status("broken")["active_state"] == "failed"

    assert job_result(manager.request("start", {"units": ["pass"]}), "pass.service") == "done"
    assert manager.status("pass")["active_state"] == "active"
    assert log_lines(manager, "pass") == ["pre"]


REPORTER = "/bin/sh -c 'echo \"$0 result=$$SERVICE_RESULT code=$$EXIT_CODE status=$$EXIT_STATUS main=$$MAINPID\"'"


def test_stop_commands_get_exit_variables(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "exits.service", f"""\
[Service]
ExecStart=/bin/sh -c 'exit 3'
ExecStopPost={REPORTER.replace("$0", "post")}
""")
    write_unit(units, "killed.service", f"""\
[Service]
ExecStart=/bin/sleep 1000
ExecStop={REPORTER.replace("$0", "stop")}
ExecStopPost={REPORTER.replace("$0", "post")}
""")
    manager = make_manager(units)
    manager.request("start", {"units": ["exits", "killed"]})
    wait_state(manager, "exits", "failed")
    assert "post result=exit-code code=exited status=3 main=" in log_lines(manager, "exits")

    main = manager.status("killed")["main_pid"]
    manager.request("kill", {"units": ["killed"], "signal": "KILL", "whom": "main"})
    wait_state(manager, "killed", "failed")
    lines = log_lines(manager, "killed")
    assert "stop result=signal code=killed status=KILL main=" in lines
    assert "post result=signal code=killed status=KILL main=" in lines

    manager.request("start", {"units": ["killed"]})
    main = manager.status("killed")["main_pid"]
    manager.request("stop", {"units": ["killed"]})
    lines = log_lines(manager, "killed")
    assert f"stop result=success code= status= main={main}" in lines
    assert lines[-1] == "post result=success code=killed status=TERM main=", lines


def test_command_prefixes(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "prefixes.service", """\
[Service]
Type=oneshot
Environment=WORD=expanded
ExecStart=-/bin/false
ExecStart=@/bin/sh custom-argv0 -c 'echo "argv0=$0"'
ExecStart=:/bin/echo literal $WORD
ExecStart=/bin/echo plain $WORD
ExecStart=+/bin/echo plus
ExecStart=!/bin/echo bang
ExecStart=!!/bin/echo double-bang
ExecStart=-@:/bin/sh ignored -c 'exit 7'
""")
    manager = make_manager(units)
    reply = manager.request("start", {"units": ["prefixes"]})
    assert job_result(reply, "prefixes.service") == "done"
    assert log_lines(manager, "prefixes") == [
        "argv0=custom-argv0", "literal $WORD", "plain expanded", "plus", "bang", "double-bang",
    ]
    assert manager.status("prefixes")["result"] == "success"


def test_exec_stop_timeout(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "hang.service", """\
[Service]
ExecStart=/bin/sleep 1000
ExecStop=/bin/sleep 1000
TimeoutStopSec=1
""")
    manager = make_manager(units)
    manager.request("start", {"units": ["hang"]})
    started = time.monotonic()
    assert job_result(manager.request("stop", {"units": ["hang"]}), "hang.service") == "done"
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 4.5, elapsed
    assert manager.status("hang")["processes"] == []


def test_runtime_max_sec(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "brief.service", """\
[Service]
RuntimeMaxSec=0.5
ExecStart=/bin/sleep 1000
ExecStop=/bin/sh -c 'echo stop $$SERVICE_RESULT'
""")
    manager = make_manager(units)
    assert job_result(manager.request("start", {"units": ["brief"]}), "brief.service") == "done"
    status = wait_state(manager, "brief", "failed")
    assert status["result"] == "timeout"
    assert log_lines(manager, "brief") == ["stop timeout"]
    assert "RuntimeMaxSec=0.5s exceeded" in manager.log()


def test_timeout_start_failure_modes(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    body = """\
[Service]
Type=notify
TimeoutStartSec=0.5
TimeoutAbortSec=5
WatchdogSignal=SIGUSR1
ExecStart=/bin/sh -c 'trap "echo got TERM; exit 0" TERM; trap "echo got USR1; exit 0" USR1; \\
    echo ready; while :; do sleep 0.1; done'
"""
    write_unit(units, "terminate.service", body)
    write_unit(units, "abort.service", body + "TimeoutStartFailureMode=abort\n")
    write_unit(units, "kill.service", body + "TimeoutStartFailureMode=kill\n")
    manager = make_manager(units)
    for unit, expected in (("terminate", "got TERM"), ("abort", "got USR1"), ("kill", None)):
        reply = manager.request("start", {"units": [unit]})
        assert job_result(reply, f"{unit}.service") == "failed", unit
        status = manager.status(unit)
        assert status["result"] == "timeout", unit
        lines = log_lines(manager, unit)
        if expected:
            assert expected in lines, (unit, lines)
        else:
            assert not [line for line in lines if line.startswith("got ")], lines
            assert status["exec_main"]["status_name"] == "KILL"


def test_exit_type_cgroup(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    for name, exit_type in (("main-only", "main"), ("whole", "cgroup")):
        write_unit(units, f"{name}.service", f"""\
[Service]
ExitType={exit_type}
ExecStart=/bin/sh -c '(read line < {gate}; echo child done) & exit 0'
""")
    manager = make_manager(units)
    manager.request("start", {"units": ["main-only", "whole"]})
    wait_state(manager, "main-only", "inactive")
    # The main process of whole.service is gone too, but its child keeps it running.
    assert manager.status("whole")["active_state"] == "active"
    open_gate(gate)
    status = wait_state(manager, "whole", "inactive")
    assert status["result"] == "success"
    assert "child done" in log_lines(manager, "whole")
