"""systemctl verbs and warnings through a real manager: try-restart, reload-or-restart,
try-reload-or-restart, the changed-on-disk warning, reset-failed of a missing unit,
the template hint and --json after a command."""

from __future__ import annotations

import json
import os
from pathlib import Path

from support import wait_for, write_unit

SLEEPER = "[Service]\nExecStart=/bin/sleep 300\nTimeoutStopSec=2\n"
# Reloading writes a marker file, so a test can tell a reload from a restart.
RELOADABLE = SLEEPER + "ExecReload=/bin/sh -c 'echo reloaded >> {marker}'\n"


def _units(directory: Path, marker: Path) -> Path:
    write_unit(directory, "plain.service", SLEEPER)
    write_unit(directory, "idle.service", SLEEPER)
    write_unit(directory, "reloadable.service", RELOADABLE.format(marker=marker))
    write_unit(directory, "worker@.service", SLEEPER)
    return directory


def _state(manager, unit: str) -> tuple[str, int]:
    status = manager.status(unit)
    return status["active_state"], status.get("main_pid") or 0


def _start(manager, unit: str) -> int:
    result = manager.unitsh("-c", f"start {unit}")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: _state(manager, unit)[0] == "active", timeout=20, message=f"{unit} active")
    return _state(manager, unit)[1]


def test_try_restart_only_restarts_running_units(make_manager, tmp_path: Path) -> None:
    manager = make_manager(_units(tmp_path / "units", tmp_path / "marker"))
    first_pid = _start(manager, "plain")

    result = manager.unitsh("-c", "try-restart plain idle")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    state, pid = _state(manager, "plain")
    assert state == "active"
    assert pid not in (0, first_pid)
    assert _state(manager, "idle")[0] == "inactive"

    reply = manager.request("try-restart", {"units": ["idle"]})
    assert reply["jobs"] == [{"unit": "idle.service", "job": "try-restart", "result": "skipped"}]


def test_reload_or_restart_picks_reload_when_supported(make_manager, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    manager = make_manager(_units(tmp_path / "units", marker))
    reloadable_pid = _start(manager, "reloadable")
    plain_pid = _start(manager, "plain")

    reply = manager.request("reload-or-restart", {"units": ["reloadable", "plain", "idle"]})
    assert [(job["unit"], job["job"], job["result"]) for job in reply["jobs"]] == [
        ("reloadable.service", "reload", "done"),
        ("plain.service", "restart", "done"),
        ("idle.service", "restart", "done"),
    ]
    assert marker.read_text() == "reloaded\n"
    assert _state(manager, "reloadable") == ("active", reloadable_pid)
    assert _state(manager, "plain")[1] not in (0, plain_pid)
    wait_for(lambda: _state(manager, "idle")[0] == "active", timeout=20, message="idle started")


def test_try_reload_or_restart_skips_stopped_units(make_manager, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    manager = make_manager(_units(tmp_path / "units", marker))
    pid = _start(manager, "reloadable")

    result = manager.unitsh("-c", "try-reload-or-restart reloadable idle")
    assert result.returncode == 0, result.stderr
    assert marker.read_text() == "reloaded\n"
    assert _state(manager, "reloadable") == ("active", pid)
    assert _state(manager, "idle")[0] == "inactive"


def test_restart_warns_when_file_changed(make_manager, tmp_path: Path) -> None:
    units = _units(tmp_path / "units", tmp_path / "marker")
    manager = make_manager(units)
    _start(manager, "plain")
    path = units / "plain.service"
    path.write_text(SLEEPER + "Environment=CHANGED=1\n")
    stamp = path.stat().st_mtime_ns + 5_000_000_000  # later than the loaded stamp on any filesystem
    os.utime(path, ns=(stamp, stamp))

    warning = ("Warning: The unit file, source configuration file or drop-ins of plain.service "
               "changed on disk. Run 'unitsh -c daemon-reload' to reload units.\n")
    for verb in ("restart", "stop", "start"):
        result = manager.unitsh("-c", f"{verb} plain")
        assert result.returncode == 0, result.stderr
        assert result.stderr == warning, verb

    assert manager.unitsh("-c", "daemon-reload").returncode == 0
    result = manager.unitsh("-c", "restart plain")
    assert result.returncode == 0
    assert result.stderr == ""


def test_reset_failed_missing_unit_fails(make_manager, tmp_path: Path) -> None:
    manager = make_manager(_units(tmp_path / "units", tmp_path / "marker"))
    result = manager.unitsh("-c", "reset-failed nosuch")
    assert result.returncode == 1
    assert result.stderr == ("Failed to reset failed state of unit nosuch.service: "
                             "Unit nosuch.service not loaded.\n")
    assert manager.unitsh("-c", "reset-failed plain").returncode == 0
    assert manager.unitsh("-c", "reset-failed").returncode == 0


def test_start_template_name_gives_hint(make_manager, tmp_path: Path) -> None:
    manager = make_manager(_units(tmp_path / "units", tmp_path / "marker"))
    result = manager.unitsh("-c", "start worker")
    assert result.returncode == 5
    assert result.stderr.splitlines() == [
        "Unit worker.service not found.",
        "worker@.service is a template: start an instance such as worker@1, "
        "or use 'scale worker N'",
    ]


def test_json_after_command_on_manager(make_manager, tmp_path: Path) -> None:
    manager = make_manager(_units(tmp_path / "units", tmp_path / "marker"))
    _start(manager, "plain")
    result = manager.unitsh("-c", "list --json; is-active plain -o json")
    assert result.returncode == 0, result.stderr
    listed, active = (json.loads(line) for line in result.stdout.splitlines())
    assert "plain.service" in [unit["name"] for unit in listed["units"]]
    assert active["units"][0]["active_state"] == "active"


def test_command_given_as_host_is_rejected(make_manager, tmp_path: Path) -> None:
    manager = make_manager(_units(tmp_path / "units", tmp_path / "marker"))
    result = manager.unitsh("is-active", "worker@2", input="")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        "unitsh: 'is-active' is a command, not a host; run it with: unitsh -c \"is-active worker@2\"")
