"""Restart= against real exits: one test per cell of systemd's table, exit-status lists, back-off,
the start limit, reset-failed, and a crash loop's cost to the manager."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from support import ManagerProcess, write_unit
from unitwait import job_result, wait_starts, wait_state

RESTART_VALUES = ("no", "always", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog")
# The ExecStart= (and extra settings) that end a service with each cause.
CAUSES = {
    "clean": "ExecStart=/bin/sh -c 'exit 0'\n",
    "unclean-code": "ExecStart=/bin/sh -c 'exit 3'\n",
    "unclean-signal": "ExecStart=/bin/sh -c 'kill -9 $$$$'\n",
    "timeout": "Type=notify\nTimeoutStartSec=0.5\nExecStart=/bin/sleep 1000\n",
    "watchdog": "Type=notify\nNotifyAccess=all\nWatchdogSec=0.5\nLimitCORE=0\n"
                "ExecStart=/bin/sh -c 'systemd-notify --ready; exec sleep 1000'\n",
}
# systemd's table: the causes each Restart= value restarts on.
TABLE = {
    "no": set(),
    "always": set(CAUSES),
    "on-success": {"clean"},
    "on-failure": {"unclean-code", "unclean-signal", "timeout", "watchdog"},
    "on-abnormal": {"unclean-signal", "timeout", "watchdog"},
    "on-abort": {"unclean-signal"},
    "on-watchdog": {"watchdog"},
}
EXPECTED_RESULT = {"clean": "success", "unclean-code": "exit-code", "unclean-signal": "signal",
                   "timeout": "timeout", "watchdog": "watchdog"}


def cell_unit(restart: str, cause: str) -> str:
    return f"cell-{restart}-{cause}.service"


@pytest.fixture(scope="module")
def table_manager() -> Iterator[ManagerProcess]:
    """One manager with a unit per cell of the table (starting 35 managers would be slow)."""
    if shutil.which("systemd-notify") is None:
        pytest.skip("systemd-notify not installed")
    base = Path(tempfile.mkdtemp(prefix="um-"))
    units = base / "units"
    for restart in RESTART_VALUES:
        for cause, body in CAUSES.items():
            write_unit(units, cell_unit(restart, cause),
                       f"[Unit]\nStartLimitIntervalSec=0\n\n[Service]\nRestart={restart}\n"
                       f"RestartSec=0.1\nTimeoutStopSec=2\n{body}")
    manager = ManagerProcess(base / "home", units)
    try:
        manager.start()
        yield manager
    finally:
        leftovers = manager.cleanup()
        shutil.rmtree(base, ignore_errors=True)
    assert not leftovers, f"processes survived the manager's shutdown: {leftovers}"


@pytest.mark.parametrize("cause", list(CAUSES))
@pytest.mark.parametrize("restart", RESTART_VALUES)
def test_restart_table_cell(table_manager: ManagerProcess, restart: str, cause: str) -> None:
    unit = cell_unit(restart, cause)
    table_manager.request("start", {"units": [unit], "no_block": True})
    try:
        if cause in TABLE[restart]:
            status = wait_starts(table_manager, unit, 2)
            assert status["n_restarts"] >= 1
        else:
            final = "inactive" if cause == "clean" else "failed"
            wait_starts(table_manager, unit, 1)
            status = wait_state(table_manager, unit, final)
            assert status["result"] == EXPECTED_RESULT[cause]
            assert len(status["start_times"]) == 1
            assert status["n_restarts"] == 0
    finally:
        table_manager.request("stop", {"units": [unit]})
    status = table_manager.status(unit)
    assert status["active_state"] in ("inactive", "failed")
    assert status["sub_state"] != "auto-restart", "stop must cancel a pending restart"


def test_exit_status_lists(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "prevent.service",
               "[Service]\nRestart=always\nRestartSec=0.1\nRestartPreventExitStatus=3 TEMPFAIL\n"
               "ExecStart=/bin/sh -c 'exit 75'\n")
    write_unit(units, "force.service",
               "[Service]\nRestart=no\nRestartSec=0.1\nRestartForceExitStatus=SIGKILL\n"
               "ExecStart=/bin/sh -c 'kill -KILL $$$$'\n")
    write_unit(units, "success-code.service",
               "[Service]\nRestart=on-failure\nRestartSec=0.1\nSuccessExitStatus=3 SIGUSR1\n"
               "ExecStart=/bin/sh -c 'exit 3'\n")
    write_unit(units, "success-signal.service",
               "[Service]\nRestart=on-failure\nRestartSec=0.1\nSuccessExitStatus=3 SIGUSR1\n"
               "ExecStart=/bin/sh -c 'kill -USR1 $$$$'\n")
    manager = make_manager(units)
    for unit in ("prevent", "force", "success-code", "success-signal"):
        manager.request("start", {"units": [unit]})

    prevent = wait_state(manager, "prevent", "failed")
    assert prevent["exec_main"]["status"] == 75
    assert prevent["n_restarts"] == 0
    force = wait_starts(manager, "force", 2)
    assert force["n_restarts"] >= 1
    assert "exited, code=killed, status=9/KILL" in manager.log()
    manager.request("stop", {"units": ["force"]})
    for unit in ("success-code", "success-signal"):
        status = wait_state(manager, unit, "inactive")
        assert status["result"] == "success", unit
        assert status["n_restarts"] == 0, unit


def test_backoff_grows_and_caps(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "backoff.service", """\
[Unit]
StartLimitIntervalSec=0

[Service]
Restart=always
RestartSec=0.1
RestartSteps=3
RestartMaxDelaySec=0.8
ExecStart=/bin/false
""")
    manager = make_manager(units)
    manager.request("start", {"units": ["backoff"], "no_block": True})
    times = wait_starts(manager, "backoff", 7, timeout=30)["start_times"]
    manager.request("stop", {"units": ["backoff"]})
    gaps = [later - earlier for earlier, later in pairwise(times[:7])]
    # 0.1 * 8 ** (n / 3): 0.1, 0.2, 0.4, then capped at 0.8.
    expected = [0.1, 0.2, 0.4, 0.8, 0.8, 0.8]
    for gap, delay in zip(gaps, expected, strict=True):
        assert delay - 0.01 <= gap <= delay + 0.5, (gaps, expected)
    assert gaps[3] > gaps[1] * 2.5, gaps


def test_start_limit_counts_every_start(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "limited.service", """\
[Unit]
StartLimitIntervalSec=60
StartLimitBurst=3

[Service]
ExecStart=/bin/sleep 1000
""")
    manager = make_manager(units)
    # Three starts, each after the unit ran a while: all count.
    for _ in range(3):
        assert job_result(manager.request("restart", {"units": ["limited"]}), "limited.service") == "done"
    reply = manager.request("restart", {"units": ["limited"]})
    assert job_result(reply, "limited.service") == "failed"
    status = manager.status("limited")
    assert status["active_state"] == "failed"
    assert status["result"] == "start-limit-hit"

    manager.request("reset-failed", {"units": ["limited"]})
    assert manager.status("limited")["active_state"] == "inactive"
    assert job_result(manager.request("start", {"units": ["limited"]}), "limited.service") == "done"


def test_crash_loop_hits_limit(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "crashy.service", "[Service]\nRestart=always\nRestartSec=0\nExecStart=/bin/false\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["crashy"], "no_block": True})
    status = wait_state(manager, "crashy", "failed")
    assert status["result"] == "start-limit-hit"
    assert len(status["start_times"]) == 5  # StartLimitBurst= defaults to 5 in 10 s


def cpu_seconds(pid: int) -> float:
    import os

    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(") ", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_crash_loop_costs_manager_little_cpu(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "loop.service", """\
[Unit]
StartLimitIntervalSec=0

[Service]
Restart=always
ExecStart=/bin/false
""")
    manager = make_manager(units)
    before = cpu_seconds(manager.proc.pid)
    manager.request("start", {"units": ["loop"], "no_block": True})
    # The default RestartSec=100ms: about 20 crashes. Polling slowly keeps status requests
    # from adding to the manager's CPU time.
    status = wait_starts(manager, "loop", 20, timeout=30, interval=0.5)
    used = cpu_seconds(manager.proc.pid) - before
    span = status["start_times"][-1] - status["start_times"][0]
    manager.request("stop", {"units": ["loop"]})
    print(f"crash loop: the manager used {used:.2f}s of CPU in {span:.2f}s ({len(status['start_times'])} starts)")
    assert used / span < 0.3, f"the manager used {used:.2f}s of CPU in {span:.2f}s of crash loop"


def test_stop_cancels_pending_restart(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "later.service", "[Service]\nRestart=always\nRestartSec=3\nExecStart=/bin/false\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["later"]})
    waiting = wait_state(manager, "later", "activating", "auto-restart")
    assert waiting["result"] == "exit-code"
    assert job_result(manager.request("stop", {"units": ["later"]}), "later.service") == "done"
    assert manager.status("later")["active_state"] == "inactive"
    assert "scheduled restart job in 3s" in manager.log()
    # Watch past the RestartSec= the canceled restart would have waited: still one start.
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        status = manager.status("later")
        assert len(status["start_times"]) == 1, "stop must cancel the pending restart"
        time.sleep(0.25)


def test_two_restarts_that_meet_both_succeed(make_manager, tmp_path: Path) -> None:
    # The start takes a second (ExecStartPre=), so the second restart arrives while the first one's
    # start runs; systemd merges the two jobs, and neither caller sees "canceled".
    units = tmp_path / "units"
    write_unit(units, "slow.service", "[Service]\nExecStartPre=/bin/sleep 1\nExecStart=/bin/sleep 1000\n")
    manager = make_manager(units)
    assert job_result(manager.request("start", {"units": ["slow"]}), "slow.service") == "done"
    results: dict[str, str] = {}

    def restart(caller: str) -> None:
        results[caller] = job_result(manager.request("restart", {"units": ["slow"]}), "slow.service")

    first = threading.Thread(target=restart, args=("first",))
    first.start()
    try:
        wait_state(manager, "slow", "activating", "start-pre")
        restart("second")
    finally:
        first.join(timeout=30)
    assert results == {"first": "done", "second": "done"}
    status = manager.status("slow")
    assert (status["active_state"], status["sub_state"]) == ("active", "running")
