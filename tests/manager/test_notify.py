"""The notify socket on its own: path and abstract addresses, credentials, parsing, deadlines."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from unitmgr.manager.notify import NotifyMessage, NotifySocket, NotifySocketError, parse_fields
from unitmgr.manager.timeouts import Deadline

SENDER = """\
import os, socket, sys
address = os.environ["NOTIFY_SOCKET"]
if address.startswith("@"):
    address = "\\0" + address[1:]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
r, w = os.pipe()
sock.sendmsg([sys.argv[1].encode()], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, bytes(memoryview(
    __import__("array").array("i", [r]))))], 0, address)
"""


def test_parse_fields_skips_bad_lines() -> None:
    fields = parse_fields(b"READY=1\nSTATUS=a=b\nnoequals\n=x\nBAD=\xff\nERRNO=2")
    assert fields == {"READY": "1", "STATUS": "a=b", "ERRNO": "2"}


async def receive_from_child(address: str, text: str) -> tuple[NotifyMessage, int]:
    loop = asyncio.get_running_loop()
    received: asyncio.Future[NotifyMessage] = loop.create_future()
    notify = NotifySocket(loop, address, lambda message: received.done() or received.set_result(message))
    notify.open()
    try:
        child = subprocess.Popen([sys.executable, "-c", SENDER, text], env=dict(os.environ, NOTIFY_SOCKET=address))
        try:
            message = await asyncio.wait_for(received, 10)
        finally:
            child.wait(10)
    finally:
        notify.close()
    return message, child.pid


@pytest.mark.parametrize("kind", ["path", "abstract"])
async def test_credentials_and_fields(kind: str, tmp_path: Path) -> None:
    address = str(tmp_path / "notify.sock") if kind == "path" else f"@unitmgr-test-{uuid.uuid4().hex}"
    message, pid = await receive_from_child(address, "READY=1\nSTATUS=up")
    assert message.sender.pid == pid
    assert message.sender.uid == os.getuid()
    assert message.fields == {"READY": "1", "STATUS": "up"}
    assert message.fd_count == 1
    if kind == "path":
        assert not (tmp_path / "notify.sock").exists(), "close() removes the socket file"


async def test_socket_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "notify.sock"
    notify = NotifySocket(asyncio.get_running_loop(), str(path), lambda message: None)
    notify.open()
    try:
        assert path.stat().st_mode & 0o077 == 0
    finally:
        notify.close()


async def test_deadline_extends_and_fires() -> None:
    deadline = Deadline(0.2)
    waiter = asyncio.get_running_loop().create_future()

    async def extend_later() -> None:
        await asyncio.sleep(0.1)
        deadline.extend(0.5)

    extender = asyncio.ensure_future(extend_later())
    started = asyncio.get_running_loop().time()
    with pytest.raises(TimeoutError):
        await deadline.run(waiter)
    elapsed = asyncio.get_running_loop().time() - started
    await extender
    assert elapsed >= 0.55
    assert waiter.cancelled()


async def test_deadline_infinite_returns_result() -> None:
    deadline = Deadline(0)

    async def value() -> int:
        await asyncio.sleep(0.01)
        return 7

    assert await deadline.run(value()) == 7


@pytest.mark.parametrize("address", ["/tmp/" + "n" * 120 + "/notify.sock", "@" + "n" * 120])
async def test_too_long_address_named(address: str) -> None:
    notify = NotifySocket(asyncio.get_running_loop(), address, lambda message: None)
    with pytest.raises(NotifySocketError) as error:
        notify.open()
    message = str(error.value)
    assert address in message
    assert "above the 107-byte limit" in message
    assert "XDG_RUNTIME_DIR" in message


async def test_bind_failure_named(tmp_path: Path) -> None:
    address = str(tmp_path / "missing-dir" / "notify.sock")
    notify = NotifySocket(asyncio.get_running_loop(), address, lambda message: None)
    with pytest.raises(NotifySocketError, match="cannot bind the notify socket .*missing-dir"):
        notify.open()


ROUTED_SERVICE = """\
import os, socket, subprocess, sys, time
address = os.environ["NOTIFY_SOCKET"]
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def send(text):
    sock.sendto(text.encode(), address)
def wait_file(path):
    while not os.path.exists(path):
        time.sleep(0.02)
with open(sys.argv[1] + ".address", "w") as f:
    f.write(address)
send("READY=1\\nSTATUS=from main")
wait_file(sys.argv[1] + ".child")
# In a session of its own, so only its parent ties it to the service.
child = ("import os, socket; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)"
         ".sendto(b'STATUS=from child', os.environ['NOTIFY_SOCKET'])")
subprocess.run([sys.executable, "-c", child], start_new_session=True, check=True)
wait_file(sys.argv[1] + ".last")
send("ERRNO=7")
while True:
    time.sleep(1)
"""


def test_notify_routed_by_sender(make_manager, tmp_path: Path) -> None:
    from support import wait_for, write_unit

    units = tmp_path / "units"
    script = tmp_path / "routed.py"
    script.write_text(ROUTED_SERVICE)
    flags = tmp_path / "flag"
    write_unit(units, "routed.service", f"""\
[Service]
Type=notify
NotifyAccess=all
TimeoutStopSec=2
ExecStart={sys.executable} {script} {flags}
""")
    write_unit(units, "bystander.service", "[Service]\nExecStart=/bin/sleep 1000\nTimeoutStopSec=2\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["bystander"]})
    reply = manager.request("start", {"units": ["routed"]})
    assert reply["jobs"] == [{"unit": "routed.service", "job": "start", "result": "done"}]
    assert manager.status("routed")["status_text"] == "from main"

    Path(f"{flags}.child").touch()
    wait_for(lambda: manager.status("routed")["status_text"] == "from child",
             message="the child's STATUS= to reach routed.service")

    # A process of no unit (this test) is dropped. The main process's ERRNO= is
    # queued after it on the socket, so once ERRNO= is applied the earlier message was handled.
    address = Path(f"{flags}.address").read_text()
    outside = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        outside.sendto(b"STATUS=from outside", address)
    finally:
        outside.close()
    Path(f"{flags}.last").touch()
    wait_for(lambda: manager.status("routed")["status_errno"] == 7,
             message="the main process's ERRNO= to reach routed.service")
    assert manager.status("routed")["status_text"] == "from child"
    assert manager.status("bystander")["status_text"] == ""
