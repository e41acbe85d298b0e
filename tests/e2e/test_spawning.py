"""What a spawned process sees, and the manager's start-up and shutdown order."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from support import wait_for, write_unit

PROBE = """\
[Service]
Type=oneshot
RemainAfterExit=yes
WorkingDirectory={cwd}
UMask=0027
LimitNOFILE=100:200
LimitCORE=0
Environment="GREETING=hello world" OTHER=two
ExecStart=/bin/sh -c 'echo "cwd=$$(pwd)"; echo "umask=$$(umask)"; echo "nofile=$$(ulimit -Sn):$$(ulimit -Hn)"; \\
    grep -E "^(SigBlk|SigIgn):" /proc/self/status; echo "greeting=$$GREETING"; echo "other=${{OTHER}}"; \\
    echo "session $$(cut -d" " -f6 /proc/$$$$/stat) $$$$"; ls -l /proc/self/fd/0'
"""


def log_text(manager, unit: str) -> str:
    return "\n".join(r["text"] for r in manager.request("logs", {"units": [unit], "lines": 0})["records"])


def test_process_attributes_before_exec(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    write_unit(units, "probe.service", PROBE.format(cwd=workdir), enable=True)
    manager = make_manager(units)

    wait_for(lambda: manager.status("probe")["sub_state"] == "exited", message="probe to finish")
    text = log_text(manager, "probe")
    assert f"cwd={workdir}" in text
    assert "umask=0027" in text
    assert "nofile=100:200" in text
    assert "SigBlk:\t0000000000000000" in text
    # IgnoreSIGPIPE=yes is systemd's default: SIGPIPE (bit 13) alone is ignored.
    [ignored] = [line for line in text.split("\n") if line.startswith("SigIgn:")]
    # glibc's posix_spawn leaves its two internal signals (32 and 33) ignored
    # in the child, and glibc programs install their handlers when they need them.
    glibc_internal = (1 << 31) | (1 << 32)
    assert int(ignored.split()[1], 16) & ~glibc_internal == 1 << 12
    assert "greeting=hello world" in text
    assert "other=two" in text
    [session_line] = [line for line in text.split("\n") if line.startswith("session ")]
    _, sid, pid = session_line.split()
    assert sid == pid, "the unit must run in a session of its own"
    assert "/dev/null" in text


def test_second_manager_exits_zero(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "idle.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    first = make_manager(units)
    second = make_manager(units, start=False)
    second.home = first.home
    second.env = first.env
    second.log_path = tmp_path / "second.log"
    second.start(wait=False)
    assert second.proc.wait(15) == 0
    assert "already running" in second.log()
    assert first.proc.poll() is None


ORDERED = """\
[Unit]
Description={name}
{deps}

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'echo start {name} >> {record}; sleep 0.3'
ExecStop=/bin/sh -c 'echo stop {name} >> {record}'
"""


def test_boot_and_shutdown_follow_dependencies(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    record = tmp_path / "order.txt"
    specs = {
        "db": "",
        "app": "Requires=db.service\nAfter=db.service",
        "proxy": "Wants=app.service\nAfter=app.service",
    }
    for name, deps in specs.items():
        text = ORDERED.format(name=name, deps=deps, record=record)
        write_unit(units, f"{name}.service", text, enable=(name == "proxy"))
    manager = make_manager(units)

    wait_for(lambda: manager.status("proxy")["active_state"] == "active", message="proxy active")
    assert record.read_text().split("\n")[:3] == ["start db", "start app", "start proxy"]

    manager.proc.send_signal(signal.SIGTERM)
    assert manager.proc.wait(30) == 0
    assert record.read_text().split("\n")[3:6] == ["stop proxy", "stop app", "stop db"]


def test_output_before_exit_is_kept(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "burst.service", """\
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'i=0; while [ $$i -lt 2000 ]; do echo "line $$i"; i=$$((i+1)); done; \\
    printf "no newline"; kill -9 $$$$'
""", enable=True)
    manager = make_manager(units)
    wait_for(lambda: manager.status("burst")["active_state"] == "failed", message="burst to fail")
    records = manager.request("logs", {"units": ["burst"], "lines": 0, "stream": "stdout"})["records"]
    texts = [r["text"] for r in records]
    assert texts[:2000] == [f"line {i}" for i in range(2000)]
    assert texts[-1] == "no newline"
    assert records[-1].get("partial") is True
    # status shows the same last lines, the unfinished one included, before the manager's lines.
    status_log = manager.request("status", {"units": ["burst"], "lines": 5})["units"][0]["log"]
    unit_lines = [r["text"] for r in status_log if r["stream"] != "manager"]
    assert unit_lines[-2:] == ["line 1999", "no newline"]
    assert status_log[-1]["text"] == "burst.service: Failed with result 'signal'."


# Each way a start can fail before the program runs, in both cgroup modes:
# the reason must reach the unit's own log, which `logs` and `status` show.
START_FAILURES = [
    ("missing", "ExecStart=/nonexistent/program\n",
     "could not execute /nonexistent/program: No such file or directory (status=203/EXEC)"),
    ("nodir", "WorkingDirectory=/nonexistent/dir\nExecStart=/bin/sleep 1000\n",
     "Changing to the requested working directory failed: /nonexistent/dir: No such file or directory "
     "(status=200/CHDIR)"),
]


@pytest.mark.parametrize("mode", [[], ["--no-cgroups"]], ids=["default", "no-cgroups"])
def test_start_failure_in_unit_log(make_manager, tmp_path: Path, mode: list[str]) -> None:
    units = tmp_path / "units"
    for name, body, _reason in START_FAILURES:
        write_unit(units, f"{name}.service", f"[Service]\n{body}", enable=True)
    manager = make_manager(units, *mode)

    for name, _body, reason in START_FAILURES:
        wait_for(lambda name=name: manager.status(name)["active_state"] == "failed", message=f"{name} to fail")
        assert reason in log_text(manager, name), name
        shown = manager.unitsh("-c", f"status {name}")
        assert reason in shown.stdout, name
        manager_lines = [line for line in manager.log().splitlines() if f"{name}.service: " in line]
        assert any(reason in line for line in manager_lines), name
    # A process that started and then failed is named by its pid.
    assert re.search(r"nodir\.service: process \d+ could not start: Changing to the requested working "
                     r"directory failed: /nonexistent/dir", manager.log())
