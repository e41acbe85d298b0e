"""`unitsh status` without a unit: the manager's summary, exit status 0 as with systemctl."""

from __future__ import annotations

import json
from pathlib import Path

from support import wait_for, write_unit


def test_status_without_unit_summarizes(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "ok.service", "[Service]\nExecStart=/bin/sleep 60\n", enable=True)
    write_unit(units, "broken.service", "[Service]\nExecStart=/bin/false\n", enable=True)
    manager = make_manager(units)
    wait_for(lambda: manager.status("broken")["active_state"] == "failed", message="broken failing")

    result = manager.unitsh("-c", "status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("● ") or lines[0].startswith("× ")
    assert "    State: degraded" in lines
    assert "   Failed: 1 unit" in lines
    assert any(line.startswith("    Units: ") for line in lines)
    assert any(line.startswith("    Since: ") for line in lines)
    assert "  unitmgr: " in result.stdout
    assert f"(pid {manager.proc.pid})" in result.stdout


def test_status_without_unit_json(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "ok.service", "[Service]\nExecStart=/bin/sleep 60\n", enable=True)
    manager = make_manager(units)
    wait_for(lambda: manager.status("ok")["active_state"] == "active", message="ok running")

    result = manager.unitsh("--json", "-c", "status")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["state"] == "running"
    assert summary["failed_units"] == []
    assert summary["pid"] == manager.proc.pid


def test_status_with_unit_unchanged(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "ok.service", "[Service]\nExecStart=/bin/sleep 60\n", enable=True)
    manager = make_manager(units)
    wait_for(lambda: manager.status("ok")["active_state"] == "active", message="ok running")

    assert manager.unitsh("-c", "status ok").stdout.startswith("● ok.service")
    assert manager.unitsh("-c", "status ok").returncode == 0
    missing = manager.unitsh("-c", "status nope")
    assert missing.returncode == 4
    assert "Unit nope.service could not be found." in missing.stderr
