"""Exec phases: ExecCondition=, the stop commands' variables, command prefixes, TimeoutStopSec=."""

from __future__ import annotations

import time
from pathlib import Path

from support import write_unit
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
