"""KillMode=, the kill signals, stop timeouts and the `kill` command, with processes that log
every signal they get."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from support import wait_for, write_unit
from unitwait import alive, job_result, log_lines, wait_log, wait_state

# `sigtrap.py ROLE EXIT_ON [child EXIT_ON]`: logs "ROLE got SIGNAME" for every catchable
# signal, exits on the signals named in EXIT_ON (comma-separated) and ignores the others.
SIGTRAP = """\
import os, signal, subprocess, sys, time

role, exit_on = sys.argv[1], set(filter(None, sys.argv[2].split(",")))

def say(text):
    # One write per line: two processes share the pipe.
    os.write(1, (text + "\\n").encode())

def handle(signum, frame):
    name = signal.Signals(signum).name.removeprefix("SIG")
    say(f"{role} got {name}")
    if name in exit_on:
        os._exit(0)

for name in ("TERM", "INT", "HUP", "USR1", "USR2", "QUIT", "CONT"):
    signal.signal(getattr(signal, "SIG" + name), handle)
if len(sys.argv) > 4:
    child = subprocess.Popen([sys.executable, sys.argv[0], sys.argv[3], sys.argv[4]])
    say(f"{role} started child {child.pid}")
say(f"{role} ready {os.getpid()}")
while True:
    time.sleep(1)
"""

# With a cgroup per unit, KillMode=process/none and SendSIGKILL=no keep what they leave in the
# cgroup, so these tests use the manager's default resource mode.
LEFTOVERS_KEPT: tuple[str, ...] = ()


def sigtrap_unit(units: Path, tmp_path: Path, name: str, main_exit: str, child_exit: str | None,
                 extra: str = "") -> None:
    script = tmp_path / "sigtrap.py"
    script.write_text(SIGTRAP)
    child = f" child {child_exit or ','}" if child_exit is not None else ""
    write_unit(units, f"{name}.service", f"""\
[Service]
ExecStart={sys.executable} -u {script} main {main_exit or ','}{child}
TimeoutStopSec=2
{extra}""")


def ready_pids(manager, unit: str, with_child: bool) -> tuple[int, int | None]:
    wait_log(manager, unit, "main ready")
    if with_child:
        wait_log(manager, unit, "child ready")
    lines = log_lines(manager, unit)
    main = int(next(line for line in lines if line.startswith("main ready")).split()[-1])
    child = next((int(line.split()[-1]) for line in lines if line.startswith("child ready")), None)
    return main, child


def stop_timed(manager, unit: str) -> float:
    started = time.monotonic()
    reply = manager.request("stop", {"units": [unit]})
    assert job_result(reply, f"{unit}.service") == "done"
    return time.monotonic() - started


def test_child_ignoring_sigterm_killed_after_timeout(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    sigtrap_unit(units, tmp_path, "stubborn", "TERM", "")
    manager = make_manager(units)
    manager.request("start", {"units": ["stubborn"]})
    main, child = ready_pids(manager, "stubborn", with_child=True)

    elapsed = stop_timed(manager, "stubborn")
    assert 1.9 <= elapsed < 10, elapsed
    assert not alive(main)
    assert child is not None and not alive(child)
    lines = log_lines(manager, "stubborn")
    assert "main got TERM" in lines
    assert "child got TERM" in lines
    assert manager.status("stubborn")["processes"] == []


def test_leftover_killed_after_main_exited(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "orphaner.service", """\
[Service]
ExecStart=/bin/sh -c '(trap "" TERM; exec sleep 1000) & echo "child $$!"; sleep 0.5; exit 0'
TimeoutStopSec=1
""")
    manager = make_manager(units)
    manager.request("start", {"units": ["orphaner"]})
    [line] = wait_log(manager, "orphaner", "child ")
    child = int(line.split()[1])
    status = wait_state(manager, "orphaner", "failed")
    assert status["result"] == "timeout"
    assert status["exec_main"]["status"] == 0
    assert not alive(child)


def test_kill_mode_mixed(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    sigtrap_unit(units, tmp_path, "mixed", "TERM", "", "KillMode=mixed\nTimeoutStopSec=20\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["mixed"]})
    main, child = ready_pids(manager, "mixed", with_child=True)

    elapsed = stop_timed(manager, "mixed")
    # The child got SIGKILL as soon as the main process had gone, not after TimeoutStopSec=.
    assert elapsed < 10, elapsed
    lines = log_lines(manager, "mixed")
    assert "main got TERM" in lines
    assert "child got TERM" not in lines
    assert child is not None and not alive(child)


def test_kill_mode_process_leaves_children(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    sigtrap_unit(units, tmp_path, "solo", "TERM", "TERM", "KillMode=process\n")
    manager = make_manager(units, *LEFTOVERS_KEPT)
    manager.request("start", {"units": ["solo"]})
    main, child = ready_pids(manager, "solo", with_child=True)
    assert child is not None
    try:
        stop_timed(manager, "solo")
        assert not alive(main)
        assert alive(child), "KillMode=process must leave the other processes running"
        assert "child got TERM" not in log_lines(manager, "solo")
    finally:
        os.kill(child, signal.SIGKILL)


def test_kill_mode_none_runs_exec_stop_only(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    sigtrap_unit(units, tmp_path, "untouched", "TERM", None,
                 "KillMode=none\nExecStop=/bin/sh -c 'echo stopping $$MAINPID'\n")
    manager = make_manager(units, *LEFTOVERS_KEPT)
    manager.request("start", {"units": ["untouched"]})
    main, _ = ready_pids(manager, "untouched", with_child=False)
    try:
        stop_timed(manager, "untouched")
        assert alive(main)
        lines = log_lines(manager, "untouched")
        assert f"stopping {main}" in lines
        assert "main got TERM" not in lines
    finally:
        os.kill(main, signal.SIGKILL)


def test_signals_configured(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    sigtrap_unit(units, tmp_path, "signals", "INT,USR1", None,
                 "KillSignal=SIGINT\nRestartKillSignal=SIGUSR1\nSendSIGHUP=yes\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["signals"]})
    ready_pids(manager, "signals", with_child=False)

    assert job_result(manager.request("restart", {"units": ["signals"]}), "signals.service") == "done"
    wait_log(manager, "signals", "main got USR1")
    wait_for(lambda: len([line for line in log_lines(manager, "signals") if "main ready" in line]) == 2,
             message="the second main process")
    stop_timed(manager, "signals")
    lines = log_lines(manager, "signals")
    assert lines.count("main got INT") == 1
    assert lines.count("main got USR1") == 1
    assert "main got TERM" not in lines
    # SendSIGHUP=yes follows the first signal; the process has exited by then or logs it.
    assert manager.status("signals")["active_state"] == "inactive"


def test_send_sigkill_no_and_final_signal(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    sigtrap_unit(units, tmp_path, "nokill", "", None, "SendSIGKILL=no\nTimeoutStopSec=1\n")
    sigtrap_unit(units, tmp_path, "quit", "QUIT", None, "FinalKillSignal=SIGQUIT\nTimeoutStopSec=1\n")
    manager = make_manager(units, *LEFTOVERS_KEPT)
    manager.request("start", {"units": ["nokill", "quit"]})
    nokill, _ = ready_pids(manager, "nokill", with_child=False)
    quit_pid, _ = ready_pids(manager, "quit", with_child=False)
    try:
        stop_timed(manager, "nokill")
        assert alive(nokill), "SendSIGKILL=no must not escalate"
        assert manager.status("nokill")["active_state"] in ("inactive", "failed")
        assert alive(nokill), "the cgroup's release must not kill what SendSIGKILL=no left"
    finally:
        os.kill(nokill, signal.SIGKILL)
    stop_timed(manager, "quit")
    assert "main got QUIT" in log_lines(manager, "quit")
    assert not alive(quit_pid)


def test_kill_command_main_and_all(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    sigtrap_unit(units, tmp_path, "target", "", "")
    manager = make_manager(units)
    manager.request("start", {"units": ["target"]})
    main, child = ready_pids(manager, "target", with_child=True)

    reply = manager.request("kill", {"units": ["target"], "signal": "USR1", "whom": "main"})
    assert reply["units"][0]["pids"] == [main]
    wait_log(manager, "target", "main got USR1")
    assert "child got USR1" not in log_lines(manager, "target")

    reply = manager.request("kill", {"units": ["target"], "signal": "SIGUSR2", "whom": "all"})
    assert set(reply["units"][0]["pids"]) == {main, child}
    wait_log(manager, "target", "main got USR2")
    wait_log(manager, "target", "child got USR2")

    from unitmgr.shell.client import RemoteError

    for bad in ({"signal": "NOPE"}, {"whom": "children"}):
        try:
            manager.request("kill", {"units": ["target"], **bad})
        except RemoteError as exc:
            assert exc.code == "bad-request"
            assert "NOPE" in exc.message or "children" in exc.message
        else:
            raise AssertionError(f"kill accepted {bad}")
