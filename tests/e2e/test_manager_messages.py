"""The manager's messages about a unit (systemd's wording) in the unit's log, `status` and `logs`."""

from __future__ import annotations

import base64
import sys
from pathlib import Path

from support import wait_for, write_unit

PYTHON = sys.executable


def manager_lines(manager, unit: str, **args) -> list[dict]:
    records = manager.request("logs", {"units": [unit], "lines": 0, **args})["records"]
    return [record for record in records if record["stream"] == "manager"]


def texts(records: list[dict]) -> list[str]:
    return [record["text"] for record in records]


def test_failing_unit_restart_messages(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "flaky.service", """\
[Unit]
Description=Flaky worker
StartLimitIntervalSec=60
StartLimitBurst=3
[Service]
Restart=on-failure
RestartSec=0.1
ExecStart=/bin/sh -c 'echo boom; exit 1'
""", enable=True)
    manager = make_manager(units)
    wait_for(lambda: manager.status("flaky")["active_state"] == "failed", timeout=30, message="flaky to fail")

    lines = texts(manager_lines(manager, "flaky"))
    assert "Starting Flaky worker..." in lines
    assert "flaky.service: Main process exited, code=exited, status=1/FAILURE" in lines
    assert "flaky.service: Failed with result 'exit-code'." in lines
    assert "flaky.service: Scheduled restart job, restart counter is at 1." in lines
    assert "flaky.service: Scheduled restart job, restart counter is at 2." in lines
    assert lines[-3:] == ["flaky.service: Start request repeated too quickly.",
                          "flaky.service: Failed with result 'start-limit-hit'.",
                          "Failed to start Flaky worker."]
    # The manager's lines carry its pid and identifier, as journald shows systemd[1].
    for record in manager_lines(manager, "flaky"):
        assert record["pid"] == manager.proc.pid
        assert record["identifier"] == "unitmgr"

    tail = manager.request("status", {"units": ["flaky"], "lines": 3})["units"][0]["log"]
    assert texts(tail)[-1] == "Failed to start Flaky worker."
    shown = manager.unitsh("-c", "status flaky").stdout
    assert f"unitmgr[{manager.proc.pid}]: flaky.service: Start request repeated too quickly." in shown


def test_raw_output_keeps_unit_bytes(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "once.service", """\
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'printf "out\\n"; printf "err\\n" >&2; printf "tail"'
""", enable=True)
    manager = make_manager(units)
    wait_for(lambda: "Finished once.service." in texts(manager_lines(manager, "once")),
             message="the oneshot to finish")

    raw = manager.request("logs", {"units": ["once"], "lines": 0, "raw": True})["records"]
    assert sorted(base64.b64decode(r["raw"]) for r in raw) == [b"err", b"out", b"tail"]
    assert all(r["stream"] != "manager" for r in raw)
    shown = manager.unitsh("-c", "logs once -o raw --stream stdout")
    assert shown.stdout == "out\ntail"
    # The log file itself contains the unit's bytes and the manager's lines, one record each.
    data = (manager.home / "state" / "logs" / "once.service.log").read_bytes()
    assert b"out\n" in data
    assert b"Finished once.service.\n" in data
    # With --stream manager, the raw output is the manager's lines.
    asked = manager.request("logs", {"units": ["once"], "lines": 0, "raw": True, "stream": "manager"})
    assert [base64.b64decode(r["raw"]) for r in asked["records"]][-1] == b"Finished once.service."


def test_stream_filter_separates_manager_lines(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "web.service", """\
[Unit]
Description=Web server
[Service]
ExecStart=/bin/sh -c 'echo listening; exec sleep 1000'
""", enable=True)
    manager = make_manager(units)
    wait_for(lambda: "listening" in texts(manager.request("logs", {"units": ["web"], "lines": 0})["records"]),
             message="web to write")

    stdout = manager.request("logs", {"units": ["web"], "lines": 0, "stream": "stdout"})["records"]
    assert texts(stdout) == ["listening"]
    only_manager = manager.request("logs", {"units": ["web"], "lines": 0, "stream": "manager"})["records"]
    assert texts(only_manager) == ["Starting Web server...", "Started Web server."]

    stopped = manager.unitsh("-c", "stop web")
    assert stopped.returncode == 0, stopped.stderr
    lines = texts(manager_lines(manager, "web"))
    assert lines[-2:] == ["web.service: Deactivated successfully.", "Stopped Web server."]
    shown = manager.unitsh("-c", "logs web").stdout
    assert f"unitmgr[{manager.proc.pid}]: Started Web server." in shown
    only = manager.unitsh("-c", "logs web --stream manager -o cat")
    assert only.returncode == 0, only.stderr
    assert only.stdout.splitlines()[:2] == ["Starting Web server...", "Started Web server."]
    assert "listening" not in only.stdout


def test_memory_max_kill_message(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "hog.service", f"""\
[Service]
MemoryMax=32M
ExecStart={PYTHON} -c "import time; data = b'x' * (100 << 20); time.sleep(1000)"
""", enable=True)
    manager = make_manager(units, "--no-cgroups")
    wait_for(lambda: manager.status("hog")["active_state"] == "failed", timeout=30, message="hog to fail")

    lines = texts(manager_lines(manager, "hog"))
    assert "hog.service: A process of this unit has been killed by the OOM killer." in lines
    assert "hog.service: Failed with result 'oom-kill'." in lines
    assert any(line.startswith("hog.service: Main process exited, code=killed, status=9/KILL") for line in lines)


def test_start_failure_names_directory(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "nodir.service", "[Service]\nWorkingDirectory=/nonexistent\nExecStart=/bin/sleep 1000\n",
               enable=True)
    manager = make_manager(units)
    wait_for(lambda: manager.status("nodir")["active_state"] == "failed", timeout=30, message="nodir to fail")

    lines = texts(manager_lines(manager, "nodir"))
    assert any("Changing to the requested working directory failed: /nonexistent: No such file or directory "
               "(status=200/CHDIR)" in line for line in lines)
    shown = manager.unitsh("-c", "status nodir").stdout
    assert "Changing to the requested working directory failed: /nonexistent" in shown


def test_bulk_boot_stores_every_units_lines(make_manager, tmp_path: Path) -> None:
    """A boot of 40 units keeps the manager's lines queued while it spawns (logstore.py), then stores them all."""
    units = tmp_path / "units"
    count = 40
    for number in range(count):
        write_unit(units, f"bulk{number}.service", f"""\
[Unit]
Description=Bulk worker {number}
[Service]
ExecStart=/bin/sh -c 'echo ready {number}; exec sleep 600'
""", enable=True)
    manager = make_manager(units)
    log_dir = manager.home / "state" / "logs"

    def all_stored() -> bool:
        return all((log_dir / f"bulk{number}.service.idx").exists() for number in range(count))

    wait_for(all_stored, timeout=30, message="every unit's log files")
    for number in range(count):
        def shown(number: int = number) -> list[tuple[str, str]]:
            records = manager.request("logs", {"units": [f"bulk{number}"], "lines": 0})["records"]
            return [(record["stream"], record["text"]) for record in records]

        wait_for(lambda number=number: ("stdout", f"ready {number}") in shown(), timeout=30,
                 message=f"output of bulk{number}")
        # The held lines come before the unit's own output, as if stored at once.
        assert shown()[:3] == [("manager", f"Starting Bulk worker {number}..."),
                             ("manager", f"Started Bulk worker {number}."),
                             ("stdout", f"ready {number}")]


def test_manager_descriptor_table_reserved(make_manager, tmp_path: Path) -> None:
    """The manager sizes its descriptor table for its units before any thread starts (descriptors.py)."""
    from unitmgr.manager.descriptors import descriptors_for

    units = tmp_path / "units"
    for number in range(100):
        write_unit(units, f"idle{number}.service", "[Service]\nExecStart=/bin/sleep 600\n")
    manager = make_manager(units)

    with open(f"/proc/{manager.proc.pid}/status") as status:
        size = int(next(line for line in status if line.startswith("FDSize:")).split()[1])
    assert size >= descriptors_for(100)
