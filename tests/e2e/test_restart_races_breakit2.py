"""Restart requests that meet each other, a plain stop, or a start that never finishes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from support import ManagerProcess, wait_for, write_unit
from unitwait import job_result, wait_state


def request(manager: ManagerProcess, cmd: str, units: list[str]) -> dict:
    """Send one job request with a timeout longer than any start in these tests."""
    from unitmgr.manager import paths as paths_module
    from unitmgr.shell.client import Client

    with Client.local(paths_module.resolve(manager.env)) as client:
        return client.request(cmd, {"units": units}, timeout=30)


def wait_received(manager: ManagerProcess, cmd: str, count: int) -> None:
    """Wait until the manager has logged receiving `count` requests of `cmd`."""
    wait_for(lambda: manager.log().count(f"commands: command {cmd} from") >= count, 10,
             message=f"{count} {cmd} request(s) in the manager's log")


def test_stop_beats_restart_waiting_on_start(make_manager, tmp_path: Path) -> None:
    # The start never gets READY=1, so the restart's stop waits for it. A plain stop then
    # cancels that start. As in systemd, the stop wins, so the unit ends inactive and the
    # restart is canceled instead of starting the unit again after the stop.
    units = tmp_path / "units"
    write_unit(units, "stuck.service", "[Service]\nType=notify\nTimeoutStartSec=8\nExecStart=/bin/sleep 1000\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["stuck"], "no_block": True})
    wait_state(manager, "stuck", "activating", "start")
    results: dict[str, str] = {}

    def restart() -> None:
        results["restart"] = job_result(request(manager, "restart", ["stuck"]), "stuck.service")

    restarter = threading.Thread(target=restart)
    restarter.start()
    try:
        wait_received(manager, "restart", 1)
        results["stop"] = job_result(request(manager, "stop", ["stuck"]), "stuck.service")
        state_after_stop = manager.status("stuck")["active_state"]
    finally:
        restarter.join(timeout=30)

    assert results["stop"] == "done"
    assert state_after_stop == "inactive"
    assert results["restart"] == "canceled"
    assert len(manager.status("stuck")["start_times"]) == 1


def test_stop_beats_restart_in_stop_phase(make_manager, tmp_path: Path) -> None:
    # The restart's stop takes a second (ExecStop=); a plain stop that arrives then merges
    # into it and must still leave the unit stopped.
    units = tmp_path / "units"
    write_unit(units, "slowstop.service", "[Service]\nExecStart=/bin/sleep 1000\nExecStop=/bin/sleep 1\n")
    manager = make_manager(units)
    assert job_result(manager.request("start", {"units": ["slowstop"]}), "slowstop.service") == "done"
    results: dict[str, str] = {}

    def restart() -> None:
        results["restart"] = job_result(request(manager, "restart", ["slowstop"]), "slowstop.service")

    restarter = threading.Thread(target=restart)
    restarter.start()
    try:
        wait_state(manager, "slowstop", "deactivating")
        results["stop"] = job_result(request(manager, "stop", ["slowstop"]), "slowstop.service")
    finally:
        restarter.join(timeout=30)

    assert results["stop"] == "done"
    assert results["restart"] == "canceled"
    assert manager.status("slowstop")["active_state"] == "inactive"


def test_ten_concurrent_restarts_all_done(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "slow.service", "[Service]\nExecStartPre=/bin/sleep 0.3\nExecStart=/bin/sleep 1000\n")
    manager = make_manager(units)
    assert job_result(manager.request("start", {"units": ["slow"]}), "slow.service") == "done"

    with ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda _n: request(manager, "restart", ["slow"]), range(10)))

    assert [job_result(reply, "slow.service") for reply in replies] == ["done"] * 10
    status = manager.status("slow")
    assert (status["active_state"], status["sub_state"]) == ("active", "running")


def test_restart_with_dependency_racing(make_manager, tmp_path: Path) -> None:
    # app Requires= and PartOf= db: a restart of db restarts app too. Restarts of both,
    # several at once, must all get a result and leave both running.
    units = tmp_path / "units"
    write_unit(units, "db.service", "[Service]\nExecStartPre=/bin/sleep 0.2\nExecStart=/bin/sleep 1000\n")
    write_unit(units, "app.service", """\
[Unit]
Requires=db.service
After=db.service
PartOf=db.service

[Service]
ExecStartPre=/bin/sleep 0.2
ExecStart=/bin/sleep 1000
""")
    manager = make_manager(units)
    assert job_result(manager.request("start", {"units": ["app"]}), "app.service") == "done"

    targets = ["db", "app", "db", "app", "app", "db"]
    with ThreadPoolExecutor(len(targets)) as pool:
        replies = list(pool.map(lambda name: request(manager, "restart", [name]), targets))

    for name, reply in zip(targets, replies, strict=True):
        assert job_result(reply, f"{name}.service") == "done", (name, reply)
    for name in ("db", "app"):
        status = manager.status(name)
        assert (status["active_state"], status["sub_state"]) == ("active", "running"), name
