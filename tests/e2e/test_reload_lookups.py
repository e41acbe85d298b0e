"""What the manager caches between daemon-reloads: the unit list and who depends on whom."""

from __future__ import annotations

from pathlib import Path

from support import write_unit
from unitwait import wait_state

SLEEPER = "[Service]\nExecStart=/bin/sleep 1000\nTimeoutStopSec=2\n"


def listed(manager, show_all: bool = True) -> list[str]:
    return [row["name"] for row in manager.request("list", {"all": show_all})["units"]]


def test_new_unit_file_listed_after_reload(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "first.service", SLEEPER)
    manager = make_manager(units)
    assert "first.service" in listed(manager)

    # The unit directories are read once per daemon-reload, so a new file waits for the next one.
    write_unit(units, "second.service", SLEEPER)
    assert "second.service" not in listed(manager)
    assert manager.status("second")["load_state"] == "not-found"

    manager.request("daemon-reload")
    assert "second.service" in listed(manager)
    assert manager.status("second")["load_state"] == "loaded"

    (units / "first.service").unlink()
    manager.request("daemon-reload")
    names = listed(manager)
    assert "first.service" not in names
    assert "second.service" in names


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
