"""show and cat through a real manager: effective properties and the files behind a unit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support import free_port, wait_for, write_unit
from unitmgr.shell.client import RemoteError

WEB = """\
[Unit]
Description=Web for show
Wants=helper.service

[Service]
ExecStart=/bin/sleep 300
Environment=A=1 "B=x y"
TimeoutStopSec=2
"""


def _units(directory: Path) -> Path:
    write_unit(directory, "web.service", WEB, enable=True)
    dropins = directory / "web.service.d"
    dropins.mkdir()
    (dropins / "10-restart.conf").write_text("[Service]\nRestart=on-failure\nRestartSec=1.5\n")
    write_unit(directory, "helper.service", "[Service]\nExecStart=/bin/sleep 300\n"
               "TimeoutStopSec=2\n")
    os.symlink("web.service", directory / "www.service")
    return directory


def _properties(manager, unit: str, **args) -> dict[str, str]:
    reply = manager.request("show", {"units": [unit], **args})
    pairs = reply["units"][0]["properties"]
    return {key: value for key, value in pairs}


def test_show_gives_runtime_and_effective_settings(make_manager, tmp_path: Path) -> None:
    units = _units(tmp_path / "units")
    manager = make_manager(units)
    wait_for(lambda: manager.status("web")["sub_state"] == "running", message="web running")
    props = _properties(manager, "web")
    status = manager.status("web")
    assert props["Id"] == "web.service"
    assert props["Names"] == "web.service www.service"
    assert props["Description"] == "Web for show"
    assert (props["LoadState"], props["ActiveState"], props["SubState"]) == (
        "loaded", "active", "running")
    assert props["MainPID"] == str(status["main_pid"]) != "0"
    assert props["FragmentPath"] == str(units / "web.service")
    assert props["DropInPaths"] == str(units / "web.service.d" / "10-restart.conf")
    assert props["UnitFileState"] == "enabled"
    assert props["NRestarts"] == "0"
    assert props["Wants"] == "helper.service"
    # Effective values, defaults included, in systemd's show format.
    assert props["TimeoutStopUSec"] == "2s"
    assert props["TimeoutStartUSec"] == "1min 30s"
    assert props["RestartUSec"] == "1.500000s"
    assert props["Restart"] == "on-failure"
    assert props["Type"] == "simple"
    assert props["Environment"] == 'A=1 "B=x y"'
    assert props["ExecStart"].startswith("{ path=/bin/sleep ; argv[]=/bin/sleep 300 ; ")
    assert props["KillSignal"] == "15"
    assert "StandardInput" in props
    assert "ExecStop" not in props  # empty ones are hidden


def test_show_selected_properties_in_order(make_manager, tmp_path: Path) -> None:
    manager = make_manager(_units(tmp_path / "units"))
    reply = manager.request("show", {"units": ["helper"],
                                     "properties": ["SubState", "Id", "ExecStop", "NoSuchThing"]})
    # systemd's order, empty ones kept when asked for by name, unknown ones left out.
    assert reply["units"][0]["properties"] == [
        ["Id", "helper.service"], ["SubState", reply["units"][0]["properties"][1][1]],
        ["ExecStop", ""]]


def test_show_of_a_missing_unit_says_not_found(make_manager, tmp_path: Path) -> None:
    manager = make_manager(_units(tmp_path / "units"))
    props = _properties(manager, "nothing")
    assert props["LoadState"] == "not-found"
    assert props["ActiveState"] == "inactive"
    assert props["UnitFileState"] == "not-found"


def test_cat_returns_fragment_and_dropins(make_manager, tmp_path: Path) -> None:
    units = _units(tmp_path / "units")
    manager = make_manager(units)
    reply = manager.request("cat", {"units": ["web"]})
    files = reply["units"][0]["files"]
    assert [f["path"] for f in files] == [str(units / "web.service"),
                                          str(units / "web.service.d" / "10-restart.conf")]
    assert files[0]["text"] == WEB
    with pytest.raises(RemoteError) as missing:
        manager.request("cat", {"units": ["nothing"]})
    assert missing.value.code == "unit-not-found"
    assert missing.value.message == "No files found for nothing.service."


def test_manager_config_reaches_units(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    out = tmp_path / "greeting"
    write_unit(units, "greet.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
               f"ExecStart=/bin/sh -c 'echo \"$GREETING\" > {out}'\n", enable=True)
    own_out = tmp_path / "own-greeting"
    write_unit(units, "own.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\n"
               f"ExecStart=/bin/sh -c 'echo \"$GREETING\" > {own_out}'\nTimeoutStopSec=2\n"
               "Environment=GREETING=mine\n", enable=True)
    port = free_port()
    manager = make_manager(units, start=False)
    config = manager.home / "config" / "unitmgr.conf"
    config.parent.mkdir(parents=True)
    config.write_text("[Manager]\nDefaultTimeoutStopSec=7s\nDefaultRestartSec=250ms\n"
                      'DefaultEnvironment=GREETING="hello there"\n'
                      f"Listen=tcp://127.0.0.1:{port}\nBogus=1\n")
    manager.start()
    wait_for(lambda: out.exists() and out.read_text() == "hello there\n", message="greet ran")
    # The unit's own Environment= wins over DefaultEnvironment=.
    wait_for(lambda: own_out.exists() and own_out.read_text() == "mine\n", message="own ran")
    greet = _properties(manager, "greet")
    assert (greet["TimeoutStopUSec"], greet["RestartUSec"]) == ("7s", "250ms")
    assert _properties(manager, "own")["TimeoutStopUSec"] == "2s"
    endpoints = json.loads((manager.home / "runtime" / "endpoint.json").read_text())
    assert any(e.startswith("tcp://") and e.endswith(f":{port}") for e in endpoints["endpoints"])
    assert f"{config}:6: [Manager] Bogus=: Unknown key 'Bogus'" in manager.log()


def test_unitsh_show_and_cat(make_manager, tmp_path: Path) -> None:
    units = _units(tmp_path / "units")
    manager = make_manager(units)
    wait_for(lambda: manager.status("web")["sub_state"] == "running", message="web running")
    pid = manager.status("web")["main_pid"]

    picked = manager.unitsh("-c", "show web -p MainPID,SubState -p ActiveState")
    assert picked.returncode == 0, picked.stderr
    assert picked.stdout.splitlines() == ["ActiveState=active", "SubState=running",
                                          f"MainPID={pid}"]
    value = manager.unitsh("-c", "show web -p MainPID --value")
    assert value.stdout == f"{pid}\n"
    full = manager.unitsh("-c", "show web").stdout.splitlines()
    assert "Id=web.service" in full
    assert "TimeoutStopUSec=2s" in full
    assert "ExecStop=" not in full
    assert "ExecStop=" in manager.unitsh("-c", "show -a web").stdout

    cat = manager.unitsh("-c", "cat web")
    assert cat.returncode == 0, cat.stderr
    dropin = units / "web.service.d" / "10-restart.conf"
    assert cat.stdout == (f"# {units / 'web.service'}\n{WEB}\n# {dropin}\n"
                          "[Service]\nRestart=on-failure\nRestartSec=1.5\n")
    missing = manager.unitsh("-c", "cat nothing")
    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr.strip() == "No files found for nothing.service."


def test_status_names_the_failed_condition(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "cond.service", "[Unit]\nConditionPathExists=/nonexistent/flag\n"
               "[Service]\nExecStart=/bin/sleep 300\n")
    manager = make_manager(units)
    started = manager.unitsh("-c", "start cond")
    assert started.returncode == 0, started.stderr
    status = manager.unitsh("-c", "status cond")
    assert status.returncode == 3
    lines = status.stdout.splitlines()
    condition = next(i for i, line in enumerate(lines) if line.strip().startswith("Condition:"))
    assert "start condition failed at" in lines[condition]
    assert lines[condition + 1].strip() == "└─ ConditionPathExists=/nonexistent/flag was not met"
    assert "ConditionResult=no" in manager.unitsh("-c", "show cond").stdout
