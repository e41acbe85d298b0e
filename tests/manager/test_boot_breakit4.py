"""A boot of many units on a real manager: held manager lines, the descriptor table and the unit-file commands."""

from __future__ import annotations

import collections
import os
import resource
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from support import ManagerProcess, wait_for, write_unit
from unitmgr.manager import paths as paths_module
from unitmgr.manager.jobs import BULK_START_UNITS
from unitmgr.manager.logstore import LogStore

# Runs the manager as `python -m unitmgr.manager.cli` does, and prints LogStore's hold count
# to stderr (the manager's log) after every hold_messages() and release_messages().
HOLD_REPORTING_MANAGER = r"""
import runpy, sys
import unitmgr.manager.logstore as logstore

hold, release = logstore.LogStore.hold_messages, logstore.LogStore.release_messages

def reporting(method):
    def run(self):
        method(self)
        print(f"hold count: {self._hold_count}", file=sys.stderr, flush=True)
    return run

logstore.LogStore.hold_messages = reporting(hold)
logstore.LogStore.release_messages = reporting(release)
sys.argv = ["unitmgr", *sys.argv[1:]]
runpy.run_module("unitmgr.manager.cli", run_name="__main__", alter_sys=True)
"""

# Runs the manager and prints a line to stderr whenever the manager enables the cyclic collector.
GC_REPORTING_MANAGER = r"""
import gc, runpy, sys

enable = gc.enable

def reporting_enable():
    enable()
    print("collector enabled", file=sys.stderr, flush=True)

gc.enable = reporting_enable
sys.argv = ["unitmgr", *sys.argv[1:]]
runpy.run_module("unitmgr.manager.cli", run_name="__main__", alter_sys=True)
"""

SLEEPER = "[Service]\nExecStart=/bin/sleep 1000\n"
NEVER_READY = "[Service]\nType=notify\nExecStart=/bin/sleep 1000\nTimeoutStartSec=infinity\n"


def start_wrapped(manager: ManagerProcess, code: str, preexec=None, pass_fds: tuple[int, ...] = ()) -> None:
    """Start `manager` with `code` as its program, as ManagerProcess.start() starts the real one."""
    manager.home.mkdir(parents=True, exist_ok=True)
    with open(manager.log_path, "ab") as log:
        manager.proc = subprocess.Popen(
            [sys.executable, "-c", code, "--user", "--units", str(manager.unit_dir), "--log-level", "debug"],
            env=manager.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            preexec_fn=preexec, pass_fds=pass_fds,
        )
    manager.wait_ready()


def stored_lines(manager: ManagerProcess, unit: str) -> list:
    """Return the lines of `unit` as the files hold them, read without the manager (which must have exited)."""
    store = LogStore(paths_module.resolve(manager.env).log_dir)
    try:
        return store.tail(unit, 0)
    finally:
        store.close()


def test_hold_ends_when_start_never_finishes(tmp_path: Path, make_manager) -> None:
    units = tmp_path / "units"
    for number in range(BULK_START_UNITS + 8):
        write_unit(units, f"s{number}.service", SLEEPER, enable=True)
    # Never sends READY=1 and never times out: the boot transaction never finishes.
    write_unit(units, "never.service", NEVER_READY, enable=True)
    manager = make_manager(units, start=False)

    start_wrapped(manager, HOLD_REPORTING_MANAGER)

    wait_for(lambda: "hold count: 1" in manager.log(), message="the boot's hold")
    # The hold ends after HOLD_SECONDS although never.service is still activating.
    wait_for(lambda: "hold count: 0" in manager.log(), timeout=10, message="the end of the boot's hold")
    assert manager.status("never.service")["active_state"] == "activating"


def test_collector_enabled_when_boot_never_ends(tmp_path: Path, make_manager) -> None:
    units = tmp_path / "units"
    write_unit(units, "never.service", NEVER_READY, enable=True)
    manager = make_manager(units, start=False)

    start_wrapped(manager, GC_REPORTING_MANAGER)

    # GC_PAUSE_SECONDS after the start, although the boot is still waiting for never.service.
    wait_for(lambda: "collector enabled" in manager.log(), timeout=15, message="the collector's timer")
    assert manager.status("never.service")["active_state"] == "activating"
    assert "boot finished" not in manager.log()


def test_bulk_boot_lines_in_order(tmp_path: Path, make_manager) -> None:
    units = tmp_path / "units"
    names = []
    for number in range(BULK_START_UNITS + 8):
        kind = number % 4
        if kind == 0:
            # Crashes at once and is restarted while the boot's lines are held.
            text = ("[Service]\nExecStart=/bin/sh -c 'echo crash; exit 3'\nRestart=on-failure\n"
                    "RestartSec=0.01\nStartLimitBurst=1000\n")
        elif kind == 1:
            # Six processes that write output: more pids than the announced tuple keeps.
            text = ("[Service]\nType=forking\nExecStart=/bin/sh -c "
                    "'for n in 1 2 3 4 5 6; do (echo child $$n; exec sleep 1000) & done; echo parent'\n")
        else:
            text = ("[Service]\nExecStartPre=/bin/echo pre\nExecStart=/bin/sh -c 'echo out; exec sleep 1000'\n"
                    "ExecReload=/bin/echo reload\n")
        name = f"u{number}.service"
        write_unit(units, name, text, enable=True)
        names.append(name)
    manager = make_manager(units)

    # Jobs and a reload while the boot may still hold the manager's lines.
    assert manager.unitsh("-c", "restart u2.service").returncode == 0
    assert manager.unitsh("-c", "stop u3.service").returncode == 0
    assert manager.unitsh("-c", "daemon-reload").returncode == 0
    for _ in range(5):
        assert manager.unitsh("-c", "reload u6.service").returncode == 0
    wait_for(lambda: manager.status("u0.service")["n_restarts"] >= 3, message="three restarts of u0.service")
    returned = {}
    for name in names:
        records = manager.request("logs", {"units": [name], "lines": 0})["records"]
        returned[name] = [(record["stream"], record["text"]) for record in records]
    assert manager.unitsh("-c", "exit").returncode == 0
    wait_for(lambda: manager.proc.poll() is not None, timeout=20, message="the manager's exit")

    for name in names:
        lines = stored_lines(manager, name)
        stored = [(line.stream, line.data.decode()) for line in lines]
        assert stored[0] == ("manager", f"Starting {name}..."), (name, stored[:3])
        # Everything `logs` returned is in the files, in the same order: nothing lost or moved.
        assert stored[:len(returned[name])] == returned[name], name
        times = [line.time for line in lines]
        assert times == sorted(times), name
        counts = collections.Counter((line.time, line.pid, line.data) for line in lines)
        repeated = [key for key, count in counts.items() if count > 1]
        assert not repeated, (name, repeated)
    forking = [line.data for line in stored_lines(manager, "u1.service") if line.stream == "stdout"]
    assert sorted(forking) == sorted([b"parent"] + [f"child {n}".encode() for n in range(1, 7)])
    reloads = [line.data for line in stored_lines(manager, "u6.service") if line.stream == "manager"]
    assert reloads.count(b"Reloaded u6.service.") == 5


def test_boot_under_low_nofile_limit_with_inherited_fd(tmp_path: Path, make_manager) -> None:
    soft = 256
    units = tmp_path / "units"
    # descriptors_for() requests far more descriptors than the soft limit allows.
    for number in range(BULK_START_UNITS + 8):
        write_unit(units, f"s{number}.service", "[Service]\nExecStart=/bin/sh -c 'echo up; exec sleep 1000'\n",
                   enable=True)
    for number in range(2000):
        write_unit(units, f"idle{number}.service", SLEEPER)
    manager = make_manager(units, start=False)
    # An inherited descriptor on the number reserve_table() would take (the soft limit minus one).
    inherited = os.open(os.devnull, os.O_RDONLY)
    high = soft - 1
    os.dup2(inherited, high, inheritable=True)
    os.close(inherited)

    def lower_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

    try:
        start_wrapped(manager, "import runpy, sys; sys.argv[0] = 'unitmgr'; "
                               "runpy.run_module('unitmgr.manager.cli', run_name='__main__', alter_sys=True)",
                      preexec=lower_limit, pass_fds=(high,))
    finally:
        os.close(high)

    for number in range(BULK_START_UNITS + 8):
        name = f"s{number}.service"
        wait_for(lambda name=name: manager.status(name)["active_state"] == "active", message=f"{name} active")
        records = manager.request("logs", {"units": [name], "lines": 0})["records"]
        wait_for(lambda name=name: any(r["text"] == "up" for r in manager.request(
            "logs", {"units": [name], "lines": 0})["records"]), message=f"the output of {name}")
        assert records[0]["text"] == f"Starting {name}..."


def test_unit_file_commands_first_requests_concurrent(tmp_path: Path, make_manager) -> None:
    units = tmp_path / "units"
    write_unit(units, "a.service",
               "[Unit]\nDescription=A\n[Service]\nExecStart=/bin/sleep 1000\n[Install]\nWantedBy=default.target\n")
    manager = make_manager(units)
    requests = [("show", {"units": ["a.service"]}), ("cat", {"units": ["a.service"]}),
                ("is-enabled", {"units": ["a.service"]}), ("list-unit-files", {}),
                ("verify", {"files": [str(units / "a.service")]})] * 3

    # Each request opens its own client, so the first ones reach the manager together.
    with ThreadPoolExecutor(len(requests)) as pool:
        replies = list(pool.map(lambda request: manager.request(*request), requests))

    for (command, _args), reply in zip(requests, replies, strict=True):
        if command == "show":
            assert ["Description", "A"] in reply["units"][0]["properties"]
        elif command == "cat":
            assert "Description=A" in reply["units"][0]["files"][0]["text"]
        elif command == "is-enabled":
            assert reply["units"][0]["state"] == "disabled"
        elif command == "list-unit-files":
            assert {"name": "a.service", "state": "disabled"} in reply["units"]
        else:
            assert reply["errors"] is False


def test_unit_file_commands_failing_import(tmp_path: Path, make_manager) -> None:
    units = tmp_path / "units"
    write_unit(units, "a.service", SLEEPER, enable=True)
    manager = make_manager(units, start=False)
    # None in sys.modules makes every import of unitinfo.py raise ImportError, as a broken install would.
    start_wrapped(manager, "import runpy, sys; sys.modules['unitmgr.manager.unitinfo'] = None; "
                           "sys.argv[0] = 'unitmgr'; "
                           "runpy.run_module('unitmgr.manager.cli', run_name='__main__', alter_sys=True)")

    for _ in range(2):
        result = manager.unitsh("-c", "show a.service")
        assert result.returncode != 0
        assert "internal error" in result.stderr

    # The failure stays with these commands: the manager and its units go on.
    assert manager.proc.poll() is None
    wait_for(lambda: manager.status("a.service")["active_state"] == "active", message="a.service active")
    assert "import of unitmgr.manager.unitinfo halted" in manager.log()
