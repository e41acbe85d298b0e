"""A real manager under hostile requests: floods, wrong argument types, bad unit names."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import zmq
from support import wait_for, write_unit
from unitmgr.manager import protocol
from unitmgr.manager.keys import ensure_keys
from unitmgr.manager.paths import resolve
from unitmgr.manager.requestargs import COMMAND_ARGUMENTS
from unitmgr.manager.server import MAX_REQUESTS_PER_CLIENT
from unitmgr.shell.client import RemoteError

TICKER = "[Service]\nExecStart=/bin/sh -c 'while true; do echo tick; sleep 0.1; done'\n"
SLOW_ONESHOT = "[Service]\nType=oneshot\nExecStart=/bin/sleep 60\n"

# Values of every JSON type; each command argument gets every one its declared type rejects.
FUZZ_VALUES = [True, 0, -1, 2**70, 1.5, "x", "", "a\0b", "../../etc/passwd", [], [1], ["a", 2],
               [None], {}, {"a": 1}, [[["deep"]]]]


class RawClient:
    """A CURVE DEALER that sends requests without waiting for their replies."""

    def __init__(self, manager) -> None:
        paths = resolve(manager.env)
        keys = ensure_keys(paths)
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.linger = 0
        self.socket.sndhwm = 0
        self.socket.rcvhwm = 0
        self.socket.curve_serverkey = keys.server.public
        self.socket.curve_publickey = keys.client.public
        self.socket.curve_secretkey = keys.client.secret
        self.socket.connect(paths.control_endpoint)

    def send(self, request: dict | bytes) -> None:
        self.socket.send(request if isinstance(request, bytes) else json.dumps(request).encode())

    def recv(self, timeout: float = 10.0) -> dict:
        if not self.socket.poll(int(timeout * 1000)):
            raise AssertionError(f"no reply within {timeout}s")
        return json.loads(self.socket.recv())

    def request(self, request: dict | bytes, timeout: float = 10.0) -> dict:
        self.send(request)
        return self.recv(timeout)

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


@pytest.fixture
def raw_client():
    clients: list[RawClient] = []

    def factory(manager) -> RawClient:
        client = RawClient(manager)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


def last_log_time(manager, unit: str) -> float:
    records = manager.request("logs", {"units": [unit], "lines": 1})["records"]
    return records[-1]["time"] if records else 0.0


# -- floods -------------------------------------------------------------------------


def test_flood_leaves_others_served(make_manager, raw_client, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "ticker.service", TICKER)
    manager = make_manager(units)
    manager.request("start", {"units": ["ticker"]})
    wait_for(lambda: last_log_time(manager, "ticker"), message="the ticker's first line")

    flood = raw_client(manager)
    assert flood.request({"id": 0, "cmd": "hello"})["ok"] is True
    started = time.time()
    request = json.dumps({"id": 1, "cmd": "status", "args": {"units": ["ticker"], "lines": 100}})
    for _ in range(5000):
        flood.send(request.encode())

    # A receive loop that drains the queue without yielding makes this client's CURVE
    # handshake time out, and no unit output is read meanwhile.
    listed = manager.request("list", {"all": True})
    assert "ticker.service" in [unit["name"] for unit in protocol.expand_table(listed, "units")]
    wait_for(lambda: last_log_time(manager, "ticker") > started, timeout=5,
             message="a ticker line logged after the flood started")
    # The flooding client gets its replies too (results, or busy errors past its limit).
    first = flood.recv()
    assert first["id"] == 1


def test_requests_over_limit_get_busy(make_manager, raw_client, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "slow.service", SLOW_ONESHOT)
    write_unit(units, "quiet.service", SLOW_ONESHOT)
    manager = make_manager(units)
    flood = raw_client(manager)
    assert flood.request({"id": 0, "cmd": "hello"})["ok"] is True
    # The quiet unit never runs, so no event arrives on this connection.
    sub = flood.request({"id": "sub", "cmd": "subscribe", "args": {"streams": ["log"], "units": ["quiet"]}})
    assert sub["ok"] is True

    total = MAX_REQUESTS_PER_CLIENT + 200
    for number in range(1, total + 1):
        flood.send({"id": number, "cmd": "start", "args": {"units": ["slow"]}})
    busy = [flood.recv() for _ in range(total - MAX_REQUESTS_PER_CLIENT)]
    assert {reply["error"]["code"] for reply in busy} == {"busy"}
    assert str(MAX_REQUESTS_PER_CLIENT) in busy[0]["error"]["message"]
    assert min(reply["id"] for reply in busy) == MAX_REQUESTS_PER_CLIENT + 1
    # An ack still runs at the limit, or the client's subscription would stall.
    ack = flood.request({"id": "ack", "cmd": "ack", "args": {"sub": sub["result"]["sub"], "seq": 0}})
    assert ack["ok"] is True, ack

    # Other clients are still served while this one is at its limit.
    assert manager.status("slow")["active_state"] == "activating"
    manager.request("stop", {"units": ["slow"]})
    finished = Counter(flood.recv()["ok"] for _ in range(MAX_REQUESTS_PER_CLIENT))
    assert sum(finished.values()) == MAX_REQUESTS_PER_CLIENT
    # Below the limit again, the same connection gets its requests run.
    assert flood.request({"id": "again", "cmd": "hello"})["ok"] is True
    assert "busy" in manager.log()


# -- malformed requests -----------------------------------------------------------------


def expect_bad_request(manager, cmd: str, args: dict) -> str:
    with pytest.raises(RemoteError) as error:
        manager.request(cmd, args)
    assert error.value.code == "bad-request", error.value
    return str(error.value)


def test_malformed_requests_are_bad_requests(make_manager, raw_client, tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    manager = make_manager(units)

    message = expect_bad_request(manager, "start", {"units": ["a\0b"]})
    assert "'units'" in message
    assert "NUL" in message
    message = expect_bad_request(manager, "status", {"units": ["a\0b"]})
    assert "NUL" in message
    message = expect_bad_request(manager, "list", {"states": "x"})
    assert "argument 'states' of list must be a list of strings" in message

    client = raw_client(manager)
    nested = client.request(b'{"id": 5, "cmd": "list", "args": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}")
    assert nested["error"]["code"] == "bad-request"
    assert "nested too deeply" in nested["error"]["message"]
    huge_number = client.request(b'{"id": 6, "cmd": "hello", "args": {"a": ' + b"9" * 5000 + b"}}")
    assert huge_number["error"]["code"] == "bad-request"
    assert manager.request("hello")["pid"] == manager.proc.pid


@pytest.mark.parametrize("cmd", ["start", "status", "stop", "kill", "cat", "is-active"])
def test_invalid_unit_name_named(make_manager, tmp_path: Path, cmd: str) -> None:
    units = tmp_path / "units"
    units.mkdir()
    manager = make_manager(units)
    message = expect_bad_request(manager, cmd, {"units": ["../../etc/passwd"]})
    assert message.startswith("Unit name ../../etc/passwd is not valid")
    assert "web.service" in message
    assert "bad unit file setting" not in message


def test_unitsh_start_invalid_name(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    manager = make_manager(units)
    result = manager.unitsh("-c", "start ../../etc/passwd")
    assert result.returncode == 1
    assert "Unit name ../../etc/passwd is not valid" in result.stderr


def test_fuzzed_argument_types(make_manager, raw_client, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "ticker.service", TICKER)
    manager = make_manager(units)
    client = raw_client(manager)

    unknown = client.request({"id": 0, "cmd": "no-such-command"})
    served = set(unknown["error"]["message"].split("known commands: ")[1].split(", "))
    assert served <= set(COMMAND_ARGUMENTS), "commands without declared arguments"

    number = 0
    for cmd in sorted(served - {"exit"}):
        for name, expected in COMMAND_ARGUMENTS[cmd].items():
            for value in FUZZ_VALUES:
                if expected.accepts(value) and cmd == "subscribe":
                    continue  # a valid subscription would send events on this socket
                number += 1
                reply = client.request({"id": number, "cmd": cmd, "args": {name: value}})
                assert reply["id"] == number
                error = reply.get("error") or {}
                assert error.get("code") != "internal", (cmd, name, value, error)
                if not expected.accepts(value):
                    assert error.get("code") == "bad-request", (cmd, name, value, reply)
                    assert f"'{name}'" in error["message"]
    assert number > 200
    assert client.request({"id": "last", "cmd": "hello"})["ok"] is True
    assert "Traceback" not in manager.log()


# -- a second manager on the same home ------------------------------------------------


def test_second_manager_other_units_fails(make_manager, tmp_path: Path) -> None:
    first_units = tmp_path / "first"
    write_unit(first_units, "idle.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    other_units = tmp_path / "other"
    other_units.mkdir()
    first = make_manager(first_units)
    second = make_manager(other_units, start=False)
    second.home = first.home
    second.env = first.env
    second.log_path = tmp_path / "second.log"
    second.start(wait=False)

    assert second.proc.wait(15) == 1
    message = second.log()
    assert f"another manager is already running for this home (pid {first.proc.pid}" in message
    assert str(first.home / "runtime") in message
    assert str(first_units) in message
    assert "unitsh -c exit" in message
    assert f"UNITMGR_HOME=/path/to/other/home unitmgr --user --units {other_units}" in message
    assert first.proc.poll() is None
    assert first.request("hello")["pid"] == first.proc.pid


# -- the notify socket's address ------------------------------------------------------


def test_long_runtime_dir_fails_cleanly(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    manager = make_manager(units, start=False)
    runtime = Path(tempfile.mkdtemp(prefix="um-")) / ("r" * 110)
    try:
        manager.env["UNITMGR_RUNTIME_DIR"] = str(runtime)
        manager.start(wait=False)
        assert manager.proc.wait(15) == 1
        log = manager.log()
        assert f"the notify socket path {runtime}/notify.sock is" in log
        assert "XDG_RUNTIME_DIR or UNITMGR_RUNTIME_DIR to a shorter directory" in log
        assert "Traceback" not in log
    finally:
        shutil.rmtree(runtime.parent, ignore_errors=True)


@pytest.mark.skipif(shutil.which("systemd-notify") is None, reason="systemd-notify not installed")
def test_abstract_notify_socket_with_systemd_notify(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "ready.service", "[Service]\nType=notify\nNotifyAccess=all\n"
               "ExecStart=/bin/sh -c 'systemd-notify --ready --status=up; exec sleep 60'\n")
    manager = make_manager(units, start=False)
    address = f"@unitmgr-test-{uuid.uuid4().hex}"
    manager.env["UNITMGR_NOTIFY_SOCKET"] = address
    manager.start()

    result = manager.request("start", {"units": ["ready"]})
    assert result["jobs"][0]["result"] == "done"
    status = manager.status("ready")
    assert status["active_state"] == "active"
    assert status["status_text"] == "up"


# -- huge unit files ------------------------------------------------------------------

HUGE = 100 * 1024 * 1024  # sparse, so it takes no disk space


def sparse_file(path: Path, head: str, size: int = HUGE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(head)
    os.truncate(path, size)
    return path


def test_huge_files_rejected(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "good.service", "[Service]\nExecStart=/bin/sleep 60\n", enable=True)
    huge_unit = sparse_file(units / "huge.service", "[Service]\nExecStart=/bin/sleep 60\n")
    huge_dropin = sparse_file(units / "good.service.d" / "huge.conf", "[Service]\nNice=5\n")
    huge_env = sparse_file(tmp_path / "huge.env", "A=1\n")
    write_unit(units, "env.service", f"[Service]\nExecStart=/bin/sleep 60\nEnvironmentFile=-{huge_env}\n")
    manager = make_manager(units)

    wait_for(lambda: manager.status("good")["active_state"] == "active", message="good running")
    huge = manager.status("huge")
    assert huge["load_state"] == "error"
    assert str(huge_unit) in huge["load_error"]
    assert f"{HUGE} bytes" in huge["load_error"]
    assert "limit of 4194304 bytes (4 MiB)" in huge["load_error"]
    with pytest.raises(RemoteError):
        manager.request("start", {"units": ["huge"]})
    assert f"{huge_dropin} (skipped drop-in: unit file is {HUGE} bytes" in manager.log()

    # "-" only forgives a missing file: a huge one fails the start, naming the file.
    result = manager.request("start", {"units": ["env"]})
    assert result["jobs"][0]["result"] == "failed"
    assert f"EnvironmentFile={huge_env}: environment file is {HUGE} bytes" in manager.log()
    assert manager.status("good")["active_state"] == "active"

    # cat shows a note in place of the huge file's bytes.
    assert huge["fragment_path"] == str(huge_unit)
    shown = manager.request("cat", {"units": ["huge"]})["units"][0]["files"][0]["text"]
    assert shown.startswith(f"# (could not read {huge_unit}: unit file is {HUGE} bytes")
    assert len(shown) < 1000
