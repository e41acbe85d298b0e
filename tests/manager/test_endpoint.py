"""The control endpoint end to end: a real ControlServer with CURVE and ZAP in the
test's event loop, and the blocking shell Client in a worker thread."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import zmq
import zmq.asyncio
import zmq.utils.z85
from unitmgr.manager import protocol
from unitmgr.manager.keys import authorize_key, ensure_keys, write_atomic
from unitmgr.manager.paths import resolve
from unitmgr.manager.server import ControlServer, ControlServerError, Peer
from unitmgr.manager.zap import MAX_TRACKED_REJECTIONS, ZapAuthenticator
from unitmgr.shell.client import Client, ClientError, RemoteError

MAX_BYTES = 64 * 1024  # the test server's request limit, small so tests stay fast


class StubHandler:
    """Commands for the tests: echo, wait (until `gate` is set), boom, big."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.waiting = asyncio.Event()

    async def __call__(self, request: protocol.Request, peer: Peer) -> dict:
        if request.cmd == "echo":
            return {"args": request.args, "key": peer.key}
        if request.cmd == "wait":
            self.waiting.set()
            await self.gate.wait()
            return {"waited": True}
        if request.cmd == "boom":
            raise RuntimeError("secret detail that must not reach the client")
        if request.cmd == "big":
            return {"data": "x" * (2 * MAX_BYTES)}
        raise protocol.ProtocolError(protocol.UNKNOWN_COMMAND, f"unknown command {request.cmd!r}")


@pytest.fixture
def home():
    # A short path: unix socket paths are limited to 107 bytes.
    path = Path(tempfile.mkdtemp(prefix="um-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def paths(home):
    return resolve({"UNITMGR_HOME": str(home), "HOME": str(home)})


@pytest.fixture
def material(paths):
    return ensure_keys(paths)


@pytest.fixture
def handler():
    return StubHandler()


@pytest.fixture
async def server(paths, material, handler):
    srv = ControlServer(
        paths, material, handler, listen=["tcp://127.0.0.1:0"], max_message_bytes=MAX_BYTES
    )
    await srv.start()
    yield srv
    handler.gate.set()
    await srv.stop()


def tcp_endpoint(srv: ControlServer) -> str:
    return next(e for e in srv.bound_endpoints if e.startswith("tcp://"))


def request_local(paths, cmd, args=None):
    with Client.local(paths) as client:
        return client.request(cmd, args)


def request_with(endpoint, server_public, pair, cmd="echo", args=None, **options):
    public, secret = pair
    with Client(endpoint, server_public, public, secret, **options) as client:
        return client.request(cmd, args)


async def expect_client_error(function, *args, **kwargs) -> tuple[ClientError, float]:
    started = time.monotonic()
    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(function, *args, **kwargs)
    return info.value, time.monotonic() - started


class RawDealer:
    """A CURVE DEALER in the test's loop, to send what the Client never would."""

    def __init__(self, endpoint: str, material) -> None:
        self.context = zmq.asyncio.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.linger = 0
        self.socket.curve_serverkey = material.server.public
        self.socket.curve_publickey = material.client.public
        self.socket.curve_secretkey = material.client.secret
        self.socket.connect(endpoint)

    async def send(self, *frames: bytes) -> None:
        await self.socket.send_multipart(list(frames))

    async def recv(self) -> dict:
        data = await asyncio.wait_for(self.socket.recv(), timeout=5)
        return json.loads(data)

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()


@pytest.fixture
async def raw(server, paths, material):
    dealer = RawDealer(paths.control_endpoint, material)
    yield dealer
    dealer.close()


# -- round trips ------------------------------------------------------------------


async def test_round_trip_over_ipc(server, paths, material):
    result = await asyncio.to_thread(request_local, paths, "echo", {"n": 1})

    assert result == {"args": {"n": 1}, "key": material.client.public.decode()}


async def test_round_trip_over_tcp(server, material):
    endpoint = tcp_endpoint(server)
    assert not endpoint.endswith(":0")
    pair = (material.client.public, material.client.secret)

    result = await asyncio.to_thread(request_with, endpoint, material.server.public, pair,
                                     "echo", {"over": "tcp"})

    assert result["args"] == {"over": "tcp"}


async def test_round_trip_over_ipv6_loopback(paths, material, handler):
    probe = socket.socket(socket.AF_INET6)
    try:
        probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    finally:
        probe.close()
    srv = ControlServer(paths, material, handler, listen=["tcp://[::1]:0"])
    await srv.start()
    try:
        endpoint = tcp_endpoint(srv)
        pair = (material.client.public, material.client.secret)
        result = await asyncio.to_thread(request_with, endpoint, material.server.public, pair)
        assert result["args"] == {}
    finally:
        await srv.stop()


async def test_endpoint_file_written_and_removed(paths, material, handler):
    srv = ControlServer(paths, material, handler, listen=["tcp://127.0.0.1:0"])
    await srv.start()
    info = json.loads(paths.endpoint_file.read_text())
    assert info["endpoints"] == srv.bound_endpoints
    assert info["endpoints"][0] == paths.control_endpoint
    assert info["server_key"] == material.server.public.decode()
    assert isinstance(info["pid"], int)
    assert paths.control_socket.exists()

    await srv.stop()

    assert not paths.endpoint_file.exists()
    assert not paths.control_socket.exists()


async def test_stale_socket_file_is_replaced(paths, material, handler):
    paths.runtime.mkdir(parents=True, mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(paths.control_socket))
    stale.close()
    srv = ControlServer(paths, material, handler)
    await srv.start()
    try:
        result = await asyncio.to_thread(request_local, paths, "echo")
        assert result["args"] == {}
    finally:
        await srv.stop()


async def test_second_server_refuses_live_socket(server, paths, material, handler):
    second = ControlServer(paths, material, handler)

    with pytest.raises(ControlServerError, match="another manager is listening"):
        await second.start()
    # The first server still serves.
    assert (await asyncio.to_thread(request_local, paths, "echo"))["args"] == {}


async def test_invalid_listen_endpoint_is_rejected(paths, material, handler):
    srv = ControlServer(paths, material, handler, listen=["udp://127.0.0.1:9"])

    with pytest.raises(ControlServerError, match="invalid listen endpoint 'udp://"):
        await srv.start()


# -- authorisation ------------------------------------------------------------------


async def test_unknown_key_is_refused_quickly(server, paths, material):
    intruder = zmq.curve_keypair()

    error, elapsed = await expect_client_error(
        request_with, paths.control_endpoint, material.server.public, intruder)

    assert error.kind == "unauthorized"
    assert "authorize-key" in error.message
    assert elapsed < 2.0


async def test_unknown_key_is_refused_over_tcp(server, material):
    intruder = zmq.curve_keypair()

    error, elapsed = await expect_client_error(
        request_with, tcp_endpoint(server), material.server.public, intruder)

    assert error.kind == "unauthorized"
    assert elapsed < 2.0


async def test_key_added_while_running_is_accepted(server, paths, material):
    newcomer = zmq.curve_keypair()
    error, _ = await expect_client_error(
        request_with, paths.control_endpoint, material.server.public, newcomer)
    assert error.kind == "unauthorized"

    assert authorize_key(paths, newcomer[0], "newcomer")
    result = await asyncio.to_thread(
        request_with, paths.control_endpoint, material.server.public, newcomer)

    assert result["key"] == newcomer[0].decode()


async def test_key_removed_while_running_is_refused(server, paths, material):
    visitor = zmq.curve_keypair()
    authorize_key(paths, visitor[0], "visitor")
    await asyncio.to_thread(request_with, paths.control_endpoint, material.server.public, visitor)

    kept = [line for line in paths.authorized_keys.read_text().splitlines()
            if visitor[0].decode() not in line]
    write_atomic(paths.authorized_keys, "\n".join(kept) + "\n", 0o600)
    error, elapsed = await expect_client_error(
        request_with, paths.control_endpoint, material.server.public, visitor)

    assert error.kind == "unauthorized"
    assert elapsed < 2.0
    # The local client, still listed, is unaffected.
    assert (await asyncio.to_thread(request_local, paths, "echo"))["args"] == {}


async def test_wrong_server_key_is_reported(server, paths, material):
    wrong_server_public, _ = zmq.curve_keypair()
    pair = (material.client.public, material.client.secret)

    for endpoint in (paths.control_endpoint, tcp_endpoint(server)):
        error, elapsed = await expect_client_error(
            request_with, endpoint, wrong_server_public, pair)
        assert error.kind == "server-key", endpoint
        assert elapsed < 2.0


# -- no manager ---------------------------------------------------------------------


async def test_no_socket_means_no_manager(paths, material):
    error, elapsed = await expect_client_error(request_local, paths, "echo")

    assert error.kind == "no-manager"
    assert str(paths.control_socket) in error.message
    assert "unitmgr --user" in error.message
    assert elapsed < 2.0


async def test_stale_socket_means_no_manager(paths, material):
    paths.runtime.mkdir(parents=True, mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(paths.control_socket))
    stale.close()

    error, elapsed = await expect_client_error(request_local, paths, "echo")

    assert error.kind == "no-manager"
    assert "stale" in error.message
    assert elapsed < 2.0


async def test_direct_client_to_stale_socket_means_no_manager(paths, material):
    paths.runtime.mkdir(parents=True, mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(paths.control_socket))
    stale.close()
    pair = (material.client.public, material.client.secret)

    error, elapsed = await expect_client_error(
        request_with, paths.control_endpoint, material.server.public, pair)

    assert error.kind == "no-manager"
    assert elapsed < 2.0


async def test_closed_tcp_port_means_no_manager(material):
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    pair = (material.client.public, material.client.secret)

    error, elapsed = await expect_client_error(
        request_with, f"tcp://127.0.0.1:{port}", material.server.public, pair)

    assert error.kind == "no-manager"
    assert elapsed < 2.0


async def test_silent_peer_times_out(material):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    pair = (material.client.public, material.client.secret)
    try:
        error, elapsed = await expect_client_error(
            request_with, f"tcp://127.0.0.1:{listener.getsockname()[1]}",
            material.server.public, pair, connect_timeout=0.5)
    finally:
        listener.close()

    assert error.kind == "timeout"
    assert "handshake" in error.message
    assert elapsed < 2.0


# -- bad requests -------------------------------------------------------------------

BAD_REQUESTS = [
    pytest.param(b"\xff\xfe\x00garbage", None, id="not-utf8"),
    pytest.param(b"not json", None, id="not-json"),
    pytest.param(b"[1, 2]", None, id="json-array"),
    pytest.param(b'{"id": 1}', 1, id="missing-cmd"),
    pytest.param(b'{"id": 2, "cmd": 5}', 2, id="cmd-not-string"),
    pytest.param(b'{"id": 3, "cmd": "echo", "args": []}', 3, id="args-not-object"),
    pytest.param(b'{"id": [4], "cmd": "echo"}', None, id="id-not-scalar"),
]


@pytest.mark.parametrize("data, expected_id", BAD_REQUESTS)
async def test_malformed_request_gets_error_reply(raw, data, expected_id):
    await raw.send(data)
    reply = await raw.recv()

    assert reply["ok"] is False
    assert reply["id"] == expected_id
    assert reply["error"]["code"] == protocol.BAD_REQUEST
    assert "details" not in reply["error"]

    await raw.send(protocol.encode_request(99, "echo", {"after": "bad"}))
    assert (await raw.recv())["result"]["args"] == {"after": "bad"}


async def test_multi_frame_request_gets_error_reply(raw):
    await raw.send(protocol.encode_request(1, "echo"), b"second frame")
    reply = await raw.recv()

    assert reply["error"]["code"] == protocol.BAD_REQUEST
    assert "one message frame" in reply["error"]["message"]

    await raw.send(protocol.encode_request(2, "echo"))
    assert (await raw.recv())["id"] == 2


async def test_oversized_request_gets_too_large(raw):
    await raw.send(protocol.encode_request(1, "echo", {"pad": "x" * (MAX_BYTES + 10)}))
    reply = await raw.recv()

    assert reply["ok"] is False
    assert reply["error"]["code"] == protocol.TOO_LARGE

    await raw.send(protocol.encode_request(2, "echo"))
    assert (await raw.recv())["id"] == 2


async def test_huge_request_drops_connection_then_recovers(server, paths):
    def send_huge_then_small():
        with Client.local(paths) as client:
            client.request("echo")
            with pytest.raises(ClientError) as info:
                client.request("echo", {"pad": "x" * (3 * MAX_BYTES)})
            return info.value.kind, client.request("echo", {"n": 2})

    kind, result = await asyncio.to_thread(send_huge_then_small)

    assert kind == "connection-lost"
    assert result["args"] == {"n": 2}


async def test_unknown_command_gets_error_reply(server, paths):
    with pytest.raises(RemoteError) as info:
        await asyncio.to_thread(request_local, paths, "no-such-command")

    assert info.value.code == protocol.UNKNOWN_COMMAND
    assert "no-such-command" in info.value.message


async def test_handler_exception_becomes_internal_error(server, paths, caplog):
    with pytest.raises(RemoteError) as info:
        await asyncio.to_thread(request_local, paths, "boom")

    assert info.value.code == protocol.INTERNAL
    assert "secret detail" not in info.value.message
    assert "secret detail" in caplog.text  # logged with its traceback
    assert "Traceback" in caplog.text
    assert (await asyncio.to_thread(request_local, paths, "echo"))["args"] == {}


async def test_oversized_reply_becomes_too_large(server, paths):
    with pytest.raises(RemoteError) as info:
        await asyncio.to_thread(request_local, paths, "big")

    assert info.value.code == protocol.TOO_LARGE


# -- concurrency ----------------------------------------------------------------------


async def test_slow_request_does_not_block_fast_one(raw, handler):
    await raw.send(protocol.encode_request(1, "wait"))
    await asyncio.wait_for(handler.waiting.wait(), timeout=5)
    await raw.send(protocol.encode_request(2, "echo"))

    first = await raw.recv()
    assert first["id"] == 2
    assert not handler.gate.is_set()

    handler.gate.set()
    second = await raw.recv()
    assert second == {"id": 1, "ok": True, "result": {"waited": True}}


async def test_client_ignores_reply_to_timed_out_request(server, paths, handler):
    def slow_then_fast():
        with Client.local(paths, timeout=0.3) as client:
            with pytest.raises(ClientError) as info:
                client.request("wait")
            kind = info.value.kind
            handler_loop.call_soon_threadsafe(handler.gate.set)
            return kind, client.request("echo", {"n": 7}, timeout=5)

    handler_loop = asyncio.get_running_loop()
    kind, result = await asyncio.to_thread(slow_then_fast)

    assert kind == "timeout"
    assert result["args"] == {"n": 7}


async def test_rejected_key_warning_is_rate_limited(server, paths, material, caplog):
    intruder = zmq.curve_keypair()

    for _ in range(3):
        error, _elapsed = await expect_client_error(
            request_with, paths.control_endpoint, material.server.public, intruder)
        assert error.kind == "unauthorized"

    warnings = [r for r in caplog.records if "rejected client key" in r.getMessage()]
    assert len(warnings) == 1
    assert intruder[0][:8].decode() in warnings[0].getMessage()
    assert intruder[0].decode() not in warnings[0].getMessage()


async def test_unsafe_client_key_is_reported_by_local(server, paths):
    secret = paths.keys / "client.key"
    secret.chmod(0o640)

    error, _elapsed = await expect_client_error(request_local, paths, "echo")

    assert error.kind == "unauthorized"
    assert f"chmod 600 {secret}" in error.message


def test_client_module_imports_no_slow_modules():
    code = (
        "import sys, unitmgr.shell.client\n"
        "slow = ['asyncio', 'zmq.asyncio', 'zmq.utils.monitor', 'prompt_toolkit', 'paramiko']\n"
        "print(','.join(m for m in slow if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=30, check=True)

    assert result.stdout.strip() == ""


def zap_request(public_z85: bytes, mechanism: bytes = b"CURVE") -> list[bytes]:
    return [b"1.0", b"req-1", b"unitmgr", b"127.0.0.1", b"", mechanism,
            zmq.utils.z85.decode(public_z85)]


def test_zap_answers_by_authorized_keys(paths, material):
    zap = ZapAuthenticator(None, paths.authorized_keys)
    stranger, _ = zmq.curve_keypair()

    accepted = zap._answer(zap_request(material.client.public))
    rejected = zap._answer(zap_request(stranger))
    not_curve = zap._answer(zap_request(material.client.public, b"PLAIN"))
    malformed = zap._answer([b"2.0", b"x"])

    assert accepted == [b"1.0", b"req-1", b"200", b"OK", material.client.public, b""]
    assert rejected[2] == b"400"
    assert not_curve[2] == b"400"
    assert malformed[2] == b"400"


def test_zap_rejection_log_is_bounded(paths, material, caplog):
    zap = ZapAuthenticator(None, paths.authorized_keys)
    strangers = [zmq.curve_keypair()[0] for _ in range(MAX_TRACKED_REJECTIONS + 50)]

    with caplog.at_level(logging.WARNING, logger="unitmgr.manager.zap"):
        for key in strangers:
            assert zap._answer(zap_request(key))[2] == b"400"

    warnings = [r for r in caplog.records if "rejected client key" in r.getMessage()]
    assert len(warnings) == MAX_TRACKED_REJECTIONS
    assert zap._untracked_rejections == 50


def test_client_rejects_invalid_server_key(material):
    with pytest.raises(ClientError) as info:
        Client("ipc:///nonexistent.sock", b"too short", material.client.public,
               material.client.secret)

    assert info.value.kind == "server-key"
    assert "invalid server public key" in info.value.message


def test_client_rejects_invalid_endpoint(material):
    with pytest.raises(ClientError) as info:
        Client("http://127.0.0.1:1", material.server.public, material.client.public,
               material.client.secret)

    assert info.value.kind == "protocol"
    assert "invalid endpoint 'http://127.0.0.1:1'" in info.value.message


async def test_client_accepts_raw_32_byte_keys(server, paths, material):
    raw_keys = [zmq.utils.z85.decode(k) for k in
                (material.server.public, material.client.public, material.client.secret)]

    def request_raw():
        with Client(paths.control_endpoint, *raw_keys) as client:
            return client.request("echo")

    assert (await asyncio.to_thread(request_raw))["args"] == {}


async def test_busy_port_fails_start_cleanly(paths, material, handler):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        srv = ControlServer(paths, material, handler, listen=[f"tcp://127.0.0.1:{port}"])

        with pytest.raises(ControlServerError, match=f"cannot listen on tcp://127.0.0.1:{port}"):
            await srv.start()

    assert not paths.control_socket.exists()
    assert not paths.endpoint_file.exists()
    # The same paths can serve right away.
    retry = ControlServer(paths, material, handler)
    await retry.start()
    try:
        assert (await asyncio.to_thread(request_local, paths, "echo"))["args"] == {}
    finally:
        await retry.stop()
