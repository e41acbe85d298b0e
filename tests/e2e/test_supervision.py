"""Stopping, bad units and a hostile control socket, against a real manager."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import zmq
from support import kill_and_reap, processes_with_env, wait_for, write_unit
from unitmgr.manager import paths as paths_module
from unitmgr.shell.client import Client

STUBBORN = """\
[Unit]
Description=Main process with a setsid grandchild and a child that ignores SIGTERM

[Service]
ExecStart=/bin/sh -c 'setsid sh -c "sleep 1000" & (trap "" TERM; exec sleep 1001) & \\
    trap "exit 0" TERM; while :; do sleep 1; done'
TimeoutStopSec=2
"""


def sessions_of(pids: list[int]) -> set[int]:
    sessions = set()
    for pid in pids:
        try:
            sessions.add(os.getsid(pid))
        except ProcessLookupError:
            pass
    return sessions


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def test_stop_leaves_no_process(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "stubborn.service", STUBBORN, enable=True)
    manager = make_manager(units)

    def three_processes() -> list[int]:
        status = manager.status("stubborn")
        pids = [p["pid"] for p in status.get("processes", [])]
        commands = " ".join(p["cmdline"] for p in status.get("processes", []))
        if "sleep 1000" not in commands or "sleep 1001" not in commands:
            return []
        # The grandchild shows its command line before setsid() has run: wait for both.
        return pids if len(sessions_of(pids)) >= 2 else []

    pids = wait_for(three_processes, message="the service and its children, one in its own session")

    started = time.monotonic()
    stopped = manager.unitsh("-c", "stop stubborn")
    assert stopped.returncode == 0, stopped.stderr
    assert time.monotonic() - started < 15
    assert [pid for pid in pids if alive(pid)] == []
    # The child ignoring SIGTERM needed SIGKILL after TimeoutStopSec=, so systemd's
    # verdict applies: the stop job is done, the unit failed with Result: timeout.
    status = manager.status("stubborn")
    assert status["active_state"] == "failed"
    assert status["result"] == "timeout"


def test_bad_unit_reported_others_run(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "good.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    bad = write_unit(units, "bad.service", "[Service]\nExecStart=/bin/sleep 'unterminated\n", enable=True)
    manager = make_manager(units)

    wait_for(lambda: manager.status("good")["active_state"] == "active", message="good running")
    status = manager.status("bad")
    assert status["load_state"] in ("bad-setting", "error")
    assert f"{bad}:2" in " ".join(status["warnings"]) + status["load_error"]

    started = manager.unitsh("-c", "start bad")
    assert started.returncode != 0
    assert "bad.service" in started.stderr
    assert manager.status("good")["active_state"] == "active"


def test_unauthorized_client_refused_fast(make_manager, tmp_path: Path) -> None:
    from unitmgr.manager import paths as paths_module
    from unitmgr.manager.keys import load_server_public
    from unitmgr.shell.client import Client, ClientError

    units = tmp_path / "units"
    write_unit(units, "idle.service", "[Service]\nExecStart=/bin/sleep 1000\n")
    manager = make_manager(units)
    paths = paths_module.resolve(manager.env)
    public, secret = zmq.curve_keypair()
    client = Client(paths.control_endpoint, load_server_public(paths), public, secret, timeout=5)
    started = time.monotonic()
    try:
        client.request("hello")
    except ClientError as exc:
        assert exc.kind == "unauthorized"
        assert "authorize-key" in str(exc)
    else:
        raise AssertionError("a client with an unknown key was served")
    finally:
        client.close()
    assert time.monotonic() - started < 2


def test_garbage_gets_error_and_manager_serves(make_manager, tmp_path: Path) -> None:
    from unitmgr.manager import paths as paths_module
    from unitmgr.manager.keys import load_client_keys, load_server_public

    units = tmp_path / "units"
    write_unit(units, "idle.service", "[Service]\nExecStart=/bin/sleep 1000\n")
    manager = make_manager(units)
    paths = paths_module.resolve(manager.env)
    keys = load_client_keys(paths)
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    sock.curve_serverkey = load_server_public(paths)
    sock.curve_publickey = keys.public
    sock.curve_secretkey = keys.secret
    sock.connect(paths.control_endpoint)
    try:
        for garbage in (b"\xff\xfe not json", b"[1, 2]", b'{"id": 1}', b'{"id": 2, "cmd": "nope"}',
                        b'{"id": 3, "cmd": "status", "args": {"units": 5}}'):
            sock.send(garbage)
            assert sock.poll(5000), f"no reply to {garbage!r}"
            reply = json.loads(sock.recv())
            assert reply["ok"] is False
            assert reply["error"]["code"] in ("bad-request", "unknown-command")
        sock.send(b'{"id": 9, "cmd": "hello"}')
        assert sock.poll(5000)
        reply = json.loads(sock.recv())
        assert reply["ok"] is True and reply["id"] == 9
        assert reply["result"]["pid"] == manager.proc.pid
    finally:
        sock.close()
        context.term()


def test_shutdown_cancels_waiting_starts(make_manager, tmp_path: Path) -> None:
    # late.service waits for slow.service's start when the manager receives SIGTERM. Its start
    # job must be canceled: starting it then would leave a process behind the exiting manager.
    units = tmp_path / "units"
    write_unit(units, "slow.service", "[Service]\nType=oneshot\nExecStart=/bin/sleep 1000\n", enable=True)
    write_unit(units, "late.service", "[Unit]\nAfter=slow.service\n[Service]\nExecStart=/bin/sleep 1001\n",
               enable=True)
    manager = make_manager(units)
    wait_for(lambda: manager.status("slow")["active_state"] == "activating", message="slow.service starting")

    assert manager.stop() is not None
    leftovers = processes_with_env(manager.marker)
    kill_and_reap(leftovers)
    assert leftovers == [], "no unit process may outlive the manager"
    log = manager.log_path.read_text()
    assert "late.service: start canceled: the manager is shutting down" in log


@pytest.mark.parametrize(("extra", "expected"), [
    ("", ["start", "running"]),
    ("ExecStartPre=/bin/true\nExecStartPost=/bin/true\n", ["start-pre", "start", "start-post", "running"]),
], ids=["plain", "pre-and-post"])
def test_start_phases_without_commands_skipped(make_manager, tmp_path: Path, extra: str,
                                               expected: list[str]) -> None:
    # As in systemd, a start phase with no commands is never entered, so its sub-state never shows.
    units = tmp_path / "units"
    write_unit(units, "phases.service", f"[Service]\n{extra}ExecStart=/bin/sleep 1000\n")
    manager = make_manager(units)
    with Client.local(paths_module.resolve(manager.env)) as client:
        client.subscribe(["state"], ["phases"])
        client.request("start", {"units": ["phases"], "no_block": True})
        seen: list[str] = []
        for event in client.iter_events(timeout=10):
            if event.get("event") == "state" and event.get("unit") == "phases.service":
                seen.append(event["sub_state"])
                if event["sub_state"] == "running":
                    break
    assert seen == expected
