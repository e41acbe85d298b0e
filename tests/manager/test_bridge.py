"""`unitmgr bridge` end to end: a Client connects to a unix socket of the test, each
accepted connection becomes the stdin and stdout of a real bridge process, and the
bridge carries the CURVE stream to a real ControlServer."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest
import zmq
from unitmgr.manager import protocol
from unitmgr.manager.keys import ensure_keys
from unitmgr.manager.paths import resolve
from unitmgr.manager.server import ControlServer, Peer
from unitmgr.shell.client import Client, ClientError

BRIDGE_CODE = (
    "import sys\n"
    "from unitmgr.manager.bridge import run_bridge\n"
    "from unitmgr.manager.paths import resolve\n"
    "sys.exit(run_bridge(resolve()))\n"
)


async def echo_handler(request: protocol.Request, peer: Peer) -> dict:
    return {"cmd": request.cmd, "args": request.args, "key": peer.key}


def bridge_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("UNITMGR_CONFIG_DIR", "UNITMGR_DATA_DIR", "UNITMGR_STATE_DIR",
                 "UNITMGR_RUNTIME_DIR"):
        env.pop(name, None)
    env["UNITMGR_HOME"] = str(home)
    return env


class BridgeRelay:
    """Listen on a unix socket and run one bridge process per accepted connection.

    The connection is the process's stdin and stdout, as sshd does for an exec channel."""

    def __init__(self, directory: Path, home: Path) -> None:
        self.path = directory / "relay.sock"
        self.env = bridge_env(home)
        self.processes: list[subprocess.Popen] = []
        self._stop = threading.Event()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen()
        self._listener.settimeout(0.1)  # so the accept loop notices stop()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"ipc://{self.path}"

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.setblocking(True)
                process = subprocess.Popen(
                    [sys.executable, "-c", BRIDGE_CODE],
                    stdin=conn, stdout=conn, stderr=subprocess.PIPE, env=self.env,
                )
                # Recorded before the bridge can carry a reply, so a test that got
                # one always finds its process here.
                self.processes.append(process)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._listener.close()
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=5)
            process.stderr.close()


@pytest.fixture
def home():
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
async def server(paths, material):
    srv = ControlServer(paths, material, echo_handler)
    await srv.start()
    yield srv
    await srv.stop()


@pytest.fixture
def relay(home):
    directory = Path(tempfile.mkdtemp(prefix="um-relay-"))
    relay = BridgeRelay(directory, home)
    yield relay
    relay.stop()
    shutil.rmtree(directory, ignore_errors=True)


def make_client(relay: BridgeRelay, material) -> Client:
    # The first request waits for a Python start-up in the bridge process.
    return Client(relay.endpoint, material.server.public, material.client.public,
                  material.client.secret, timeout=10, connect_timeout=10)


def run_bridge_process(home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BRIDGE_CODE], stdin=subprocess.DEVNULL, capture_output=True,
        text=True, env=bridge_env(home), timeout=30,
    )


async def test_client_round_trip_through_bridge(server, relay, material):
    def round_trips():
        with make_client(relay, material) as client:
            return [client.request("echo", {"n": n}) for n in range(3)]

    results = await asyncio.to_thread(round_trips)

    assert [r["args"] for r in results] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert results[0]["key"] == material.client.public.decode()
    assert len(relay.processes) == 1


async def test_bridge_exits_when_client_closes(server, relay, material):
    client = make_client(relay, material)
    try:
        await asyncio.to_thread(client.request, "echo")
    finally:
        client.close()

    status = await asyncio.to_thread(relay.processes[0].wait, 10)

    assert status == 0


async def test_bridge_exits_when_manager_stops(server, relay, material):
    with make_client(relay, material) as client:
        await asyncio.to_thread(client.request, "echo")
        await server.stop()
        status = await asyncio.to_thread(relay.processes[0].wait, 10)

    assert status == 0


async def test_refused_key_through_bridge_is_reported(server, relay, material):
    intruder_public, intruder_secret = zmq.curve_keypair()

    def intrude():
        with Client(relay.endpoint, material.server.public, intruder_public, intruder_secret,
                    timeout=10, connect_timeout=10) as client:
            client.request("echo")

    with pytest.raises(ClientError) as info:
        await asyncio.to_thread(intrude)

    assert info.value.kind == "unauthorized"


def test_bridge_without_manager_fails_with_message(home):
    result = run_bridge_process(home)

    assert result.returncode == 1
    assert "no unitmgr manager is running" in result.stderr
    assert "no control socket at " in result.stderr
    assert "unitmgr --user" in result.stderr
    assert result.stdout == ""


def test_bridge_with_stale_socket_fails_with_message(home, paths):
    paths.runtime.mkdir(parents=True, mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(paths.control_socket))
    stale.close()

    result = run_bridge_process(home)

    assert result.returncode == 1
    assert "nothing is listening" in result.stderr
    assert str(paths.control_socket) in result.stderr
