"""enable, disable and is-enabled through a real manager: the links, the words, the next boot."""

from __future__ import annotations

import json
import os
from pathlib import Path

from support import wait_for, write_unit

SLEEPER = "[Service]\nExecStart=/bin/sleep 300\nTimeoutStopSec=2\n"


def _units(directory: Path) -> Path:
    write_unit(directory, "web.service", SLEEPER + "[Install]\nWantedBy=default.target\n"
               "Alias=www.service\nAlso=db.service\n")
    write_unit(directory, "db.service", SLEEPER + "[Install]\nWantedBy=default.target\n")
    write_unit(directory, "worker@.service", SLEEPER + "[Install]\nWantedBy=default.target\n"
               "DefaultInstance=def\n")
    write_unit(directory, "helper.service", SLEEPER)
    return directory


def _links(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): os.readlink(p)
            for p in directory.rglob("*") if p.is_symlink()}


def _states(manager, *units: str) -> list[str]:
    reply = manager.request("is-enabled", {"units": list(units)})
    return [unit["state"] for unit in reply["units"]]


def test_enable_writes_links_that_the_next_boot_follows(make_manager, tmp_path: Path) -> None:
    units = _units(tmp_path / "units")
    manager = make_manager(units)
    assert _states(manager, "web", "db", "www", "helper", "nothing") == [
        "disabled", "disabled", "not-found", "static", "not-found"]

    reply = manager.request("enable", {"units": ["web"]})
    web, db = units / "web.service", units / "db.service"
    assert reply["ok"] is True
    assert reply["lines"] == [
        f"Created symlink {units}/www.service \u2192 {web}.",
        f"Created symlink {units}/default.target.wants/web.service \u2192 {web}.",
        f"Created symlink {units}/default.target.wants/db.service \u2192 {db}.",
    ]
    assert _links(units) == {"www.service": str(web), "default.target.wants/web.service": str(web),
                             "default.target.wants/db.service": str(db)}
    assert _states(manager, "web", "db", "www") == ["enabled", "enabled", "alias"]
    assert manager.status("web")["enablement"] == "enabled"

    manager.request("enable", {"units": ["worker@3"]})
    assert _states(manager, "worker@3", "worker@4", "worker@") == ["enabled", "disabled", "enabled"]

    # A new manager on the same unit files starts what enable linked.
    manager.stop()
    second = make_manager(units)
    for unit in ("web", "db", "worker@3"):
        wait_for(lambda u=unit: second.status(u)["active_state"] == "active", timeout=20,
                 message=f"{unit} started at boot")
    assert second.status("helper")["active_state"] == "inactive"


def test_disable_removes_links_and_reports_them(make_manager, tmp_path: Path) -> None:
    units = _units(tmp_path / "units")
    manager = make_manager(units)
    manager.request("enable", {"units": ["web", "worker@.service"]})
    assert "default.target.wants/worker@def.service" in _links(units)

    reply = manager.request("disable", {"units": ["web"]})
    assert sorted(reply["lines"]) == sorted([
        f'Removed "{units}/www.service".',
        f'Removed "{units}/default.target.wants/web.service".',
        f'Removed "{units}/default.target.wants/db.service".',
    ])
    assert _states(manager, "web", "db") == ["disabled", "disabled"]
    assert list(_links(units)) == ["default.target.wants/worker@def.service"]


def test_enable_errors_are_reported(make_manager, tmp_path: Path) -> None:
    units = _units(tmp_path / "units")
    os.symlink("/dev/null", units / "gone.service")
    manager = make_manager(units)
    missing = manager.request("enable", {"units": ["nothing"]})
    assert missing["ok"] is False
    assert missing["lines"] == ["Failed to enable unit, unit nothing.service does not exist."]
    masked = manager.request("enable", {"units": ["gone"]})
    assert masked["ok"] is False
    assert "is masked" in masked["lines"][0]
    assert _states(manager, "gone") == ["masked"]
    static = manager.request("enable", {"units": ["helper"]})
    assert static["ok"] is True
    assert "no installation config" in static["lines"][0]
    assert _links(units) == {"gone.service": "/dev/null"}


def test_enable_now_starts_and_disable_now_stops(make_manager, tmp_path: Path) -> None:
    units = _units(tmp_path / "units")
    manager = make_manager(units)
    reply = manager.request("enable", {"units": ["db"], "now": True})
    assert reply["jobs"] == [{"unit": "db.service", "job": "start", "result": "done"}]
    assert manager.status("db")["active_state"] == "active"
    reply = manager.request("disable", {"units": ["db"], "now": True})
    assert reply["jobs"] == [{"unit": "db.service", "job": "stop", "result": "done"}]
    assert manager.status("db")["active_state"] == "inactive"
    assert _links(units) == {}


def test_unitsh_enable_disable_and_words(make_manager, tmp_path: Path) -> None:
    units = _units(tmp_path / "units")
    manager = make_manager(units)
    web, db = units / "web.service", units / "db.service"

    enabled = manager.unitsh("-c", "enable web")
    assert (enabled.returncode, enabled.stdout) == (0, "")
    assert enabled.stderr.splitlines() == [
        f"Created symlink {units}/www.service \u2192 {web}.",
        f"Created symlink {units}/default.target.wants/web.service \u2192 {web}.",
        f"Created symlink {units}/default.target.wants/db.service \u2192 {db}.",
    ]
    words = manager.unitsh("-c", "is-enabled web helper www nothing")
    assert (words.returncode, words.stdout.split()) == (0, ["enabled", "static", "alias",
                                                            "not-found"])
    missing = manager.unitsh("-c", "is-enabled nothing")
    assert (missing.returncode, missing.stdout) == (4, "not-found\n")
    quiet = manager.unitsh("-c", "is-enabled -q db")
    assert (quiet.returncode, quiet.stdout) == (0, "")

    disabled = manager.unitsh("-c", "disable web")
    assert disabled.returncode == 0
    assert f'Removed "{units}/default.target.wants/web.service".' in disabled.stderr.splitlines()
    after = manager.unitsh("-c", "is-enabled web")
    assert (after.returncode, after.stdout) == (1, "disabled\n")

    failed = manager.unitsh("-c", "enable nothing")
    assert failed.returncode == 1
    assert failed.stderr.strip() == "Failed to enable unit, unit nothing.service does not exist."

    now = manager.unitsh("-c", "enable --now db")
    assert now.returncode == 0, now.stderr
    assert manager.status("db")["active_state"] == "active"
    as_json = manager.unitsh("--json", "-c", "is-enabled db")
    assert json.loads(as_json.stdout) == {"units": [{"name": "db.service", "state": "enabled"}]}


def test_list_unit_files_table_and_filters(make_manager, tmp_path: Path) -> None:
    units = _units(tmp_path / "units")
    manager = make_manager(units)
    assert manager.unitsh("-c", "enable web").returncode == 0

    table = manager.unitsh("-c", "list-unit-files '*.service'")
    assert table.returncode == 0
    rows = [line.split() for line in table.stdout.splitlines()]
    assert rows[0] == ["UNIT", "FILE", "STATE"]
    assert ["web.service", "enabled"] in rows
    assert ["db.service", "enabled"] in rows
    assert ["helper.service", "static"] in rows
    assert ["worker@.service", "disabled"] in rows
    assert table.stdout.endswith("\n\n5 unit files listed.\n")

    # A file written after start is listed at once, as systemctl lists it.
    write_unit(units, "late.service", SLEEPER)
    static = manager.unitsh("-c", "list-unit-files --state=static 'l*'")
    assert (static.returncode, static.stdout.splitlines()[1:]) == (0, ["late.service static", "",
                                                                        "1 unit files listed."])

    none = manager.unitsh("-c", "list-unit-files 'nothing*'")
    assert (none.returncode, none.stdout) == (1, "UNIT FILE STATE\n\n0 unit files listed.\n")
    bad = manager.unitsh("-c", "list-unit-files --state=on")
    assert bad.returncode == 2
    assert "invalid unit file state 'on'" in bad.stderr

    data = json.loads(manager.unitsh("-c", "list-unit-files --state=enabled", "--json").stdout)
    assert {"name": "web.service", "state": "enabled"} in data["units"]
    assert all(unit["state"] == "enabled" for unit in data["units"])
