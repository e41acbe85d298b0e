"""What the manager caches between daemon-reloads: the unit list and who depends on whom."""

from __future__ import annotations

import os
import time
from pathlib import Path

from support import write_unit
from unitmgr.manager import protocol
from unitwait import job_result, wait_state

SLEEPER = "[Service]\nExecStart=/bin/sleep 1000\nTimeoutStopSec=2\n"


def listed(manager, show_all: bool = True) -> list[str]:
    return [row["name"] for row in protocol.expand_table(manager.request("list", {"all": show_all}), "units")]


def test_new_unit_file_loaded_without_reload(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    first = write_unit(units, "first.service", "[Unit]\nDescription=first v1\n" + SLEEPER)
    manager = make_manager(units)
    assert "first.service" in listed(manager)
    assert manager.status("first")["description"] == "first v1"

    # As systemd 246+: a lookup that misses lists the changed unit directory again.
    write_unit(units, "second.service", SLEEPER)
    assert job_result(manager.request("start", {"units": ["second"]}), "second.service") == "done"
    status = manager.status("second")
    assert status["load_state"] == "loaded"
    assert status["active_state"] == "active"
    assert "second.service" in listed(manager)

    # A loaded unit is not read again by that lookup: it waits for daemon-reload.
    first.write_text("[Unit]\nDescription=first v2\n" + SLEEPER)
    stamp = time.time() + 2
    os.utime(first, (stamp, stamp))
    write_unit(units, "third.service", SLEEPER)
    assert manager.status("third")["load_state"] == "loaded"
    status = manager.status("first")
    assert status["description"] == "first v1"
    assert status["changed_on_disk"] is True

    manager.request("daemon-reload")
    status = manager.status("first")
    assert status["description"] == "first v2"
    assert status["changed_on_disk"] is False

    (units / "first.service").unlink()
    manager.request("daemon-reload")
    names = listed(manager)
    assert "first.service" not in names
    assert "second.service" in names


def test_new_unit_file_in_cat(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "first.service", SLEEPER)
    manager = make_manager(units)
    assert manager.status("first")["load_state"] == "loaded"

    path = write_unit(units, "late.service", SLEEPER)
    files = manager.request("cat", {"units": ["late"]})["units"][0]["files"]
    assert [f["path"] for f in files] == [str(path)]


def test_list_unit_files_shows_new_file(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "first.service", SLEEPER)
    write_unit(units, "worker@.service", SLEEPER)
    manager = make_manager(units)
    assert "first.service" in listed(manager)

    # No command has named it, and list-unit-files shows it all the same.
    write_unit(units, "late.service", SLEEPER + "[Install]\nWantedBy=default.target\n")
    rows = manager.request("list-unit-files")["units"]
    states = {row["name"]: row["state"] for row in rows}
    assert states["late.service"] == "disabled"
    assert states["first.service"] == "static"
    assert states["worker@.service"] == "static"
    assert [row["name"] for row in rows] == sorted(states)

    only = manager.request("list-unit-files", {"states": ["disabled"]})["units"]
    assert [row["name"] for row in only] == ["late.service"]


def test_list_shows_units_started_later(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "idle.service", SLEEPER)
    manager = make_manager(units)
    assert "idle.service" not in listed(manager, show_all=False)

    manager.request("start", {"units": ["idle"]})
    wait_state(manager, "idle", "active")
    assert "idle.service" in listed(manager, show_all=False)

    manager.request("stop", {"units": ["idle"]})
    assert "idle.service" not in listed(manager, show_all=False)


def test_binds_to_added_by_reload(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "anchor.service", SLEEPER)
    follower = write_unit(units, "follower.service", SLEEPER)
    manager = make_manager(units)
    manager.request("start", {"units": ["anchor", "follower"]})
    wait_state(manager, "follower", "active")

    # Without BindsTo=, a stop of anchor leaves follower running.
    manager.request("stop", {"units": ["anchor"]})
    assert manager.status("follower")["active_state"] == "active"

    # The new definition takes effect at daemon-reload, while follower keeps running.
    follower.write_text("[Unit]\nBindsTo=anchor.service\nAfter=anchor.service\n" + SLEEPER)
    manager.request("daemon-reload")
    manager.request("start", {"units": ["anchor"]})
    manager.request("stop", {"units": ["anchor"]})
    assert manager.status("follower")["active_state"] == "inactive"


def test_binds_to_removed_by_reload(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "anchor.service", SLEEPER)
    follower = write_unit(units, "follower.service",
                          "[Unit]\nBindsTo=anchor.service\nAfter=anchor.service\n" + SLEEPER)
    manager = make_manager(units)
    manager.request("start", {"units": ["follower"]})
    wait_state(manager, "follower", "active")

    follower.write_text(SLEEPER)
    manager.request("daemon-reload")
    manager.request("stop", {"units": ["anchor"]})
    assert manager.status("anchor")["active_state"] == "inactive"
    assert manager.status("follower")["active_state"] == "active"
