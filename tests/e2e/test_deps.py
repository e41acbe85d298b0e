"""Dependencies, ordering, cycles and job merging against a real manager."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import write_unit
from test_types import open_gate
from unitmgr.shell.client import RemoteError
from unitwait import job_result, log_lines, wait_state

SLEEPER = "[Service]\nExecStart=/bin/sleep 1000\nTimeoutStopSec=2\n"


def gated_oneshot(gate: Path) -> str:
    return f"[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c 'read line < {gate}'\n"


def start_in_background(manager, unit: str) -> Callable[[], dict]:
    """Send a start request for `unit` from a new thread. Return a function that joins it and returns the reply."""
    replies: list[dict] = []
    thread = threading.Thread(target=lambda: replies.append(manager.request("start", {"units": [unit]})))
    thread.start()

    def reply() -> dict:
        thread.join(10)
        return replies[0]

    return reply


def test_cycle_reported_others_start(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "a.service", "[Unit]\nWants=b.service\nAfter=b.service\n" + SLEEPER)
    write_unit(units, "b.service", "[Unit]\nWants=c.service\nAfter=c.service\n" + SLEEPER)
    write_unit(units, "c.service", "[Unit]\nWants=a.service\nAfter=a.service\n" + SLEEPER)
    write_unit(units, "unrelated.service", SLEEPER)
    manager = make_manager(units)

    reply = manager.request("start", {"units": ["a"]})
    assert reply["cycles"] == [["a.service", "b.service", "c.service"]]
    assert "found an ordering cycle between a.service, b.service, c.service" in manager.log()
    for unit in ("a", "b", "c"):
        assert manager.status(unit)["active_state"] == "active", unit
    reply = manager.request("start", {"units": ["unrelated"]})
    assert job_result(reply, "unrelated.service") == "done"
    assert "cycles" not in reply
    assert manager.status("unrelated")["active_state"] == "active"


def test_requires_after_failed_dependency(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "broken.service", "[Service]\nType=oneshot\nExecStart=/bin/false\n")
    write_unit(units, "needs.service", "[Unit]\nRequires=broken.service\nAfter=broken.service\n" + SLEEPER)
    write_unit(units, "wants.service", "[Unit]\nWants=broken.service\nAfter=broken.service\n" + SLEEPER)
    manager = make_manager(units)
    reply = manager.request("start", {"units": ["needs"]})
    assert job_result(reply, "needs.service") == "dependency"
    assert manager.status("needs")["start_times"] == []
    reply = manager.request("start", {"units": ["wants"]})
    assert job_result(reply, "wants.service") == "done"


def test_requisite(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "base.service", SLEEPER)
    write_unit(units, "picky.service", "[Unit]\nRequisite=base.service\nAfter=base.service\n" + SLEEPER)
    manager = make_manager(units)
    assert job_result(manager.request("start", {"units": ["picky"]}), "picky.service") == "dependency"
    assert manager.status("base")["active_state"] == "inactive", "Requisite= must not start it"
    manager.request("start", {"units": ["base"]})
    assert job_result(manager.request("start", {"units": ["picky"]}), "picky.service") == "done"


def test_binds_to_and_part_of(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "anchor.service", SLEEPER)
    write_unit(units, "bound.service", "[Unit]\nBindsTo=anchor.service\nAfter=anchor.service\n" + SLEEPER)
    write_unit(units, "part.service", "[Unit]\nPartOf=anchor.service\n" + SLEEPER)
    manager = make_manager(units)
    manager.request("start", {"units": ["bound", "part"]})
    assert manager.status("anchor")["active_state"] == "active"

    # PartOf=: a restart of anchor restarts part.
    before = manager.status("part")["invocation_id"]
    manager.request("restart", {"units": ["anchor"]})
    assert manager.status("part")["invocation_id"] != before
    assert manager.status("part")["active_state"] == "active"

    # BindsTo=: anchor ending on its own stops bound; part (PartOf= only) keeps running.
    os.kill(manager.status("anchor")["main_pid"], 9)
    wait_state(manager, "anchor", "failed")
    wait_state(manager, "bound", "inactive")
    assert manager.status("part")["active_state"] == "active"

    # PartOf=: an explicit stop of anchor stops part.
    manager.request("start", {"units": ["anchor"]})
    manager.request("stop", {"units": ["anchor"]})
    assert manager.status("part")["active_state"] == "inactive"


def test_conflicts(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "day.service", SLEEPER)
    write_unit(units, "night.service", "[Unit]\nConflicts=day.service\n" + SLEEPER)
    manager = make_manager(units)
    manager.request("start", {"units": ["day"]})
    manager.request("start", {"units": ["night"]})
    assert manager.status("day")["active_state"] == "inactive"
    manager.request("start", {"units": ["day"]})
    assert manager.status("night")["active_state"] == "inactive", "Conflicts= works in both directions"


def test_upholds(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "upheld.service", SLEEPER)
    write_unit(units, "keeper.service", "[Unit]\nUpholds=upheld.service\n" + SLEEPER)
    manager = make_manager(units)
    manager.request("start", {"units": ["keeper"]})
    first = wait_state(manager, "upheld", "active")
    os.kill(first["main_pid"], 9)

    def restarted() -> bool:
        status = manager.status("upheld")
        return status["active_state"] == "active" and status["main_pid"] not in (0, first["main_pid"])

    from support import wait_for

    wait_for(restarted, message="upheld.service started again")


def test_on_failure_and_on_success(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "alarm.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
               "ExecStart=/bin/sh -c 'echo $$MONITOR_UNIT $$MONITOR_SERVICE_RESULT $$MONITOR_EXIT_STATUS'\n")
    write_unit(units, "cheer.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
    write_unit(units, "flaky.service",
               "[Unit]\nOnFailure=alarm.service\n[Service]\nType=oneshot\nExecStart=/bin/false\n")
    write_unit(units, "fine.service",
               "[Unit]\nOnSuccess=cheer.service\n[Service]\nType=oneshot\nExecStart=/bin/true\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["fine"]})
    wait_state(manager, "cheer", "active")
    assert manager.status("alarm")["active_state"] == "inactive"
    manager.request("start", {"units": ["flaky"]})
    wait_state(manager, "alarm", "active")
    assert log_lines(manager, "alarm") == ["flaky.service exit-code 1"]


def test_stop_when_unneeded(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "helper.service", "[Unit]\nStopWhenUnneeded=yes\n" + SLEEPER)
    write_unit(units, "user.service", "[Unit]\nWants=helper.service\n" + SLEEPER)
    manager = make_manager(units)
    manager.request("start", {"units": ["user"]})
    assert manager.status("helper")["active_state"] == "active"
    manager.request("stop", {"units": ["user"]})
    wait_state(manager, "helper", "inactive")


def test_refuse_manual(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "internal.service", "[Unit]\nRefuseManualStart=yes\nRefuseManualStop=yes\n" + SLEEPER)
    write_unit(units, "front.service", "[Unit]\nRequires=internal.service\n" + SLEEPER)
    manager = make_manager(units)
    for command in ("start", "stop"):
        with pytest.raises(RemoteError) as caught:
            manager.request(command, {"units": ["internal"]})
        assert caught.value.code == "refused"
        assert f"refuse manual {command}" in caught.value.message
    manager.request("start", {"units": ["front"]})
    assert manager.status("internal")["active_state"] == "active", "a dependency may start it"
    shell = manager.unitsh("-c", "start graphical-session.target")
    assert shell.returncode != 0
    assert "refuse manual start" in shell.stderr


def test_target_waits_for_members(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    write_unit(units, "slow.service", gated_oneshot(gate))
    write_unit(units, "group.target", "[Unit]\nWants=slow.service\n")
    write_unit(units, "loose.target", "[Unit]\nWants=slow.service\nDefaultDependencies=no\n")
    manager = make_manager(units)
    # DefaultDependencies=no: no implicit After=, so the target does not wait.
    assert job_result(manager.request("start", {"units": ["loose.target"]}), "loose.target") == "done"
    assert manager.status("slow")["active_state"] == "activating"
    manager.request("start", {"units": ["group.target"], "no_block": True})
    wait_state(manager, "slow", "activating")
    assert manager.status("group.target")["active_state"] == "inactive"
    open_gate(gate)
    wait_state(manager, "group.target", "active")
    assert manager.status("group.target")["active_enter_time"] >= manager.status("slow")["active_enter_time"]


def test_builtin_targets_exist(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "idle.service", SLEEPER)
    manager = make_manager(units)
    for target in ("default.target", "basic.target", "graphical-session.target", "exit.target",
                   "shutdown.target", "sockets.target", "timers.target", "paths.target"):
        assert manager.status(target)["load_state"] == "loaded", target
    assert manager.status("basic.target")["active_state"] == "active"


def test_jobs_merge_without_global_lock(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    write_unit(units, "slow.service", gated_oneshot(gate))
    write_unit(units, "quick.service", SLEEPER)
    manager = make_manager(units)

    replies: list[dict] = []
    threads = [threading.Thread(target=lambda: replies.append(manager.request("start", {"units": ["slow"]})))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    wait_state(manager, "slow", "activating")
    # Another unit's jobs run while slow's start waits.
    started = time.monotonic()
    assert job_result(manager.request("start", {"units": ["quick"]}), "quick.service") == "done"
    assert job_result(manager.request("stop", {"units": ["quick"]}), "quick.service") == "done"
    assert time.monotonic() - started < 4
    open_gate(gate)
    for thread in threads:
        thread.join(10)
    assert [job_result(reply, "slow.service") for reply in replies] == ["done", "done"]
    assert len(manager.status("slow")["start_times"]) == 1, "the two starts must merge into one job"


def test_stop_cancels_running_start(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    write_unit(units, "slow.service", gated_oneshot(gate))
    manager = make_manager(units)
    start_reply = start_in_background(manager, "slow")
    wait_state(manager, "slow", "activating")
    assert job_result(manager.request("stop", {"units": ["slow"]}), "slow.service") == "done"
    assert job_result(start_reply(), "slow.service") == "canceled"
    assert manager.status("slow")["active_state"] == "inactive"


def test_stop_cancels_waiting_start(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    write_unit(units, "first.service", gated_oneshot(gate))
    write_unit(units, "second.service", "[Unit]\nWants=first.service\nAfter=first.service\n" + SLEEPER)
    manager = make_manager(units)
    start_reply = start_in_background(manager, "second")
    wait_state(manager, "first", "activating")
    # The start job of second waits for first, so a stop of second replaces it.
    assert job_result(manager.request("stop", {"units": ["second"]}), "second.service") == "done"
    open_gate(gate)
    assert job_result(start_reply(), "second.service") == "canceled"
    assert manager.status("first")["active_state"] == "active"
    assert manager.status("second")["start_times"] == []


def test_requires_propagates_stop_and_restart(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "db.service", SLEEPER)
    write_unit(units, "app.service", "[Unit]\nRequires=db.service\nAfter=db.service\n" + SLEEPER)
    manager = make_manager(units)
    manager.request("start", {"units": ["app"]})
    assert manager.status("db")["active_state"] == "active"

    before = manager.status("app")["invocation_id"]
    manager.request("restart", {"units": ["db"]})
    app = manager.status("app")
    assert app["active_state"] == "active"
    assert app["invocation_id"] != before

    manager.request("stop", {"units": ["db"]})
    assert manager.status("app")["active_state"] == "inactive"

    # db ending on its own does not stop app (only BindsTo= does).
    manager.request("start", {"units": ["app"]})
    os.kill(manager.status("db")["main_pid"], signal.SIGTERM)
    wait_state(manager, "db", "inactive")
    assert manager.status("app")["active_state"] == "active"


def test_stop_and_reload_propagation(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    reloadable = "[Service]\nExecStart=/bin/sleep 1000\nExecReload=/bin/echo reloaded\n"
    write_unit(units, "hub.service",
               "[Unit]\nPropagatesStopTo=spoke.service\nPropagatesReloadTo=spoke.service\n" + reloadable)
    write_unit(units, "spoke.service", reloadable)
    write_unit(units, "listener.service", "[Unit]\nReloadPropagatedFrom=hub.service\n"
               "StopPropagatedFrom=hub.service\n" + reloadable)
    manager = make_manager(units)
    manager.request("start", {"units": ["hub", "spoke", "listener"]})
    manager.request("reload", {"units": ["hub"]})
    for unit in ("hub", "spoke", "listener"):
        assert log_lines(manager, unit) == ["reloaded"], unit
    manager.request("stop", {"units": ["hub"]})
    for unit in ("spoke", "listener"):
        assert manager.status(unit)["active_state"] == "inactive", unit
