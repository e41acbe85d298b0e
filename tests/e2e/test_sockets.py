"""Socket units against a real manager: passing, activation, Accept=yes, real servers, restarts.

Every socket lives on 127.0.0.1, ::1, a unix path in the test's folder or an
abstract name with a random part, on ports found free just before.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest
from socketapps import (
    ASGI_APP,
    ECHO_SERVER,
    HTTP_SERVER,
    PYTHON,
    WSGI_APP,
    LoopClient,
    free_port6,
    http_get,
    ipv6_loopback,
    write_script,
)
from support import free_port, wait_for, write_unit
from unitmgr.manager import protocol


def start_with_inherited_fd(manager, leaked_fd: int) -> None:
    """Start `manager` the way ManagerProcess does, but with one extra inheritable descriptor."""
    manager.home.mkdir(parents=True, exist_ok=True)
    with open(manager.log_path, "ab") as log:
        manager.proc = subprocess.Popen(
            [sys.executable, "-m", "unitmgr.manager.cli", "--user", "--units", str(manager.unit_dir),
             "--log-level", "debug"],
            env=manager.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            pass_fds=[leaked_fd],
        )
    manager.wait_ready()


def active(manager, unit: str) -> bool:
    return manager.status(unit)["active_state"] == "active"


def fd_targets(pid: int) -> dict[int, str]:
    base = f"/proc/{pid}/fd"
    return {int(entry): os.readlink(f"{base}/{entry}") for entry in os.listdir(base)}


def test_sockets_passed_to_service(make_manager, tmp_path: Path) -> None:
    """LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES from fd 3 on, every address form, nothing else leaked."""
    units = tmp_path / "units"
    server = write_script(tmp_path, "server.py", HTTP_SERVER)
    report = tmp_path / "report.json"
    port4 = free_port()
    unix_path = tmp_path / "run" / "web.sock"
    abstract = f"unitmgr-test-{uuid.uuid4().hex[:12]}"
    listens = [f"ListenStream=127.0.0.1:{port4}", f"ListenStream={unix_path}", f"ListenStream=@{abstract}"]
    port6 = free_port6() if ipv6_loopback() else 0
    if port6:
        listens.append(f"ListenStream=[::1]:{port6}")
    write_unit(units, "web.socket", "[Socket]\n" + "\n".join(listens) + "\nFileDescriptorName=http\n"
               "SocketMode=0600\nBacklog=32\nNoDelay=yes\nReusePort=yes\nRemoveOnStop=yes\n")
    fifo = tmp_path / "run" / "control.fifo"
    write_unit(units, "extra.socket", f"[Socket]\nListenDatagram=127.0.0.1:{free_port()}\n"
               f"ListenSequentialPacket={tmp_path}/run/seq.sock\nListenFIFO={fifo}\n")
    write_unit(units, "web.service", f"[Service]\nSockets=web.socket extra.socket\n"
               f"ExecStart={PYTHON} {server} web {report}\n", enable=True)
    manager = make_manager(units, start=False)
    leaked_read, leaked_write = os.pipe()
    os.set_inheritable(leaked_read, True)
    try:
        start_with_inherited_fd(manager, leaked_read)
    finally:
        os.close(leaked_read)
        os.close(leaked_write)

    wait_for(report.exists, message="the server's report")
    info = json.loads(report.read_text())
    count = len(listens) + 3
    pid = manager.status("web")["main_pid"]
    assert info["pid"] == pid
    assert info["LISTEN_PID"] == str(pid), "LISTEN_PID must be the pid of the process that exec'd"
    assert info["LISTEN_FDS"] == str(count), info
    assert info["LISTEN_FDNAMES"] == ":".join(["http"] * len(listens) + ["extra.socket"] * 3)

    targets = fd_targets(pid)
    assert sorted(targets) == list(range(3 + count)), f"unexpected descriptors in the unit: {targets}"
    assert all(targets[fd].startswith("socket:") for fd in range(3, 3 + count - 1))
    assert targets[2 + count] == str(fifo), "the FIFO comes last"

    assert http_get(("127.0.0.1", port4)).startswith("web ")
    assert http_get(str(unix_path)).startswith("web ")
    assert http_get("\0" + abstract).startswith("web ")
    if port6:
        assert http_get(("::1", port6)).startswith("web ")
    assert stat.S_IMODE(os.stat(unix_path).st_mode) == 0o600

    rows = manager.request("list-sockets")["sockets"]
    assert {(r["unit"], r["type"]) for r in rows} >= {("web.socket", "Stream"), ("extra.socket", "Datagram"),
                                                      ("extra.socket", "SequentialPacket"),
                                                      ("extra.socket", "FIFO")}
    assert manager.status("web.socket")["sub_state"] == "running"
    listed = manager.unitsh("-c", "list-sockets")
    assert listed.returncode == 0, listed.stderr
    table = [line.split() for line in listed.stdout.splitlines()]
    assert [f"127.0.0.1:{port4}", "Stream", "web.socket", "web.service"] in table
    assert [str(fifo), "FIFO", "extra.socket", "extra.service"] in table
    shown = manager.unitsh("-c", "status web.socket")
    assert f"Listen: 127.0.0.1:{port4} (Stream)" in shown.stdout
    assert "Triggers: web.service" in shown.stdout

    stopped = manager.unitsh("-c", "stop web.socket")
    assert stopped.returncode == 0, stopped.stderr
    assert not unix_path.exists(), "RemoveOnStop=yes must remove the socket file"
    assert fifo.exists(), "extra.socket has RemoveOnStop=no"


def test_taken_port_fails_only_that_socket(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    taken = holder.getsockname()[1]
    good_port = free_port()
    try:
        write_unit(units, "busy.socket", f"[Socket]\nListenStream=127.0.0.1:{taken}\n", enable=True)
        write_unit(units, "fine.socket", f"[Socket]\nListenStream=127.0.0.1:{good_port}\n", enable=True)
        write_unit(units, "dgram.socket", f"[Socket]\nListenDatagram=127.0.0.1:{free_port()}\nAccept=yes\n",
                   enable=True)
        write_unit(units, "empty.socket", "[Socket]\nBacklog=8\n", enable=True)
        manager = make_manager(units)
        wait_for(lambda: manager.status("busy.socket")["active_state"] == "failed", message="busy.socket failed")
        busy = manager.status("busy.socket")
        assert busy["result"] == "resources"
        assert f"ListenStream=127.0.0.1:{taken}" in busy["socket_error"]
        assert "address already in use" in busy["socket_error"]
        assert "address already in use" in manager.log()
        wait_for(lambda: active(manager, "fine.socket"), message="fine.socket listening")
        assert manager.status("fine.socket")["sub_state"] == "listening"
        with socket.create_connection(("127.0.0.1", good_port), timeout=5):
            pass
        dgram = manager.status("dgram.socket")
        assert dgram["active_state"] == "failed"
        assert "Accept=yes needs connection sockets" in dgram["socket_error"]
        empty = manager.status("empty.socket")
        assert empty["load_state"] == "bad-setting"
        assert "no Listen setting" in empty["load_error"]
    finally:
        holder.close()


def test_first_connection_starts_service(make_manager, tmp_path: Path) -> None:
    """Socket enabled, service not: traffic starts it, no client is refused, it re-arms after a stop."""
    units = tmp_path / "units"
    server = write_script(tmp_path, "server.py", HTTP_SERVER)
    port = free_port()
    write_unit(units, "app.socket", f"[Socket]\nListenStream=127.0.0.1:{port}\n\n[Install]\n"
               "WantedBy=sockets.target\n", enable=True)
    write_unit(units, "app.service", f"[Service]\nExecStart={PYTHON} {server} app\nTimeoutStopSec=5\n")
    manager = make_manager(units)
    wait_for(lambda: manager.status("app.socket")["sub_state"] == "listening", message="app.socket listening")
    assert manager.status("app")["active_state"] == "inactive"

    answers: list[str] = []
    errors: list[BaseException] = []

    def client() -> None:
        try:
            answers.append(http_get(("127.0.0.1", port)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [], f"clients failed while the service started: {errors}"
    assert len(answers) == 8
    assert all(a.startswith("app ") for a in answers)
    first_pid = manager.status("app")["main_pid"]
    assert first_pid
    assert manager.status("app.socket")["sub_state"] == "running"

    assert manager.unitsh("-c", "stop app").returncode == 0
    wait_for(lambda: manager.status("app.socket")["sub_state"] == "listening", message="socket re-armed")
    assert http_get(("127.0.0.1", port)).startswith("app ")
    second_pid = manager.status("app")["main_pid"]
    assert second_pid
    assert second_pid != first_pid


def test_added_socket_needs_daemon_reload(make_manager, tmp_path: Path) -> None:
    """A service gets its same-name socket from the unit files as last read, as in systemd."""
    units = tmp_path / "units"
    server = write_script(tmp_path, "server.py", HTTP_SERVER)
    report = tmp_path / "report.json"
    write_unit(units, "web.service", f"[Service]\nExecStart={PYTHON} {server} web {report}\n", enable=True)
    manager = make_manager(units)
    wait_for(report.exists, message="the first server's report")
    first = json.loads(report.read_text())
    assert first["LISTEN_FDS"] is None
    report.unlink()

    port = free_port()
    write_unit(units, "web.socket", f"[Socket]\nListenStream=127.0.0.1:{port}\n")
    reloaded = manager.unitsh("-c", "daemon-reload")
    assert reloaded.returncode == 0, reloaded.stderr
    restarted = manager.unitsh("-c", "restart web")
    assert restarted.returncode == 0, restarted.stderr

    wait_for(report.exists, message="the restarted server's report")
    second = json.loads(report.read_text())
    assert second["pid"] != first["pid"]
    assert second["LISTEN_FDS"] == "1", second
    assert http_get(("127.0.0.1", port)).startswith("web ")


def test_crashing_service_fails_socket(make_manager, tmp_path: Path) -> None:
    """A service that exits without accepting is retried until its start limit, then the socket fails."""
    units = tmp_path / "units"
    port = free_port()
    write_unit(units, "flaky.socket", f"[Socket]\nListenStream=127.0.0.1:{port}\n", enable=True)
    write_unit(units, "flaky.service", "[Unit]\nStartLimitIntervalSec=60\nStartLimitBurst=3\n\n"
               "[Service]\nExecStart=/bin/true\n")
    manager = make_manager(units)
    wait_for(lambda: active(manager, "flaky.socket"), message="flaky.socket listening")
    with socket.create_connection(("127.0.0.1", port), timeout=15):
        wait_for(lambda: manager.status("flaky.socket")["active_state"] == "failed", timeout=30,
                 message="flaky.socket failed")
    status = manager.status("flaky.socket")
    assert status["result"] == "service-start-limit-hit"
    assert manager.status("flaky")["result"] == "start-limit-hit"
    assert len(manager.status("flaky")["start_times"]) == 3


def test_accept_yes_serves_concurrent_clients(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    echo = write_script(tmp_path, "echo.py", ECHO_SERVER)
    port = free_port()
    write_unit(units, "echo.socket", f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n", enable=True)
    write_unit(units, "echo@.service", f"[Service]\nExecStart={PYTHON} {echo}\n")
    manager = make_manager(units)
    wait_for(lambda: active(manager, "echo.socket"), message="echo.socket listening")

    clients = [socket.create_connection(("127.0.0.1", port), timeout=15) for _ in range(3)]
    try:
        # Each client speaks only once all three are connected, the last first:
        # a server that handled one connection at a time would hang here.
        for index, client in reversed(list(enumerate(clients))):
            client.sendall(b"message %d\n" % index)
        replies = []
        for client in clients:
            data = b""
            while chunk := client.recv(4096):
                data += chunk
            replies.append(data.decode())
    finally:
        for client in clients:
            client.close()
    pids = set()
    for index, reply in enumerate(replies):
        words = reply.split()
        assert words[:3] == ["echo", "connection", "127.0.0.1"], reply
        assert reply.endswith(f"message {index}\n")
        pids.add(words[3])
    assert len(pids) == 3, "every connection gets its own instance"

    def finished() -> bool:
        units_now = protocol.expand_table(manager.request("list", {"all": True}), "units")
        return not [u for u in units_now if u["name"].startswith("echo@") and u["active_state"] != "inactive"]

    wait_for(finished, message="the connection instances to end")
    status = manager.status("echo.socket")
    assert status["accepted"] == 3
    assert status["connections"] == 0
    assert status["sub_state"] == "listening"


def test_inetd_style_stdin_socket(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    port = free_port()
    write_unit(units, "cat.socket", f"[Socket]\nListenStream=127.0.0.1:{port}\nAccept=yes\n", enable=True)
    write_unit(units, "cat@.service", "[Service]\nExecStart=/bin/cat\nStandardInput=socket\n")
    manager = make_manager(units)
    wait_for(lambda: active(manager, "cat.socket"), message="cat.socket listening")
    with socket.create_connection(("127.0.0.1", port), timeout=15) as client:
        client.sendall(b"through cat\n")
        client.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := client.recv(4096):
            data += chunk
    assert data == b"through cat\n"


def test_gunicorn_serves_from_passed_socket(make_manager, tmp_path: Path) -> None:
    pytest.importorskip("gunicorn")
    units = tmp_path / "units"
    app_dir = tmp_path / "app"
    write_script(app_dir, "wsgiapp.py", WSGI_APP)
    port = free_port()
    write_unit(units, "web.socket", f"[Socket]\nListenStream=127.0.0.1:{port}\n", enable=True)
    write_unit(units, "web.service", f"[Service]\nExecStart={PYTHON} -m gunicorn --workers 2 "
               f"--chdir {app_dir} wsgiapp:app\nTimeoutStopSec=10\n", enable=True)
    manager = make_manager(units)
    wait_for(lambda: active(manager, "web"), message="gunicorn running")
    answer = wait_for(lambda: _try_get(("127.0.0.1", port)), timeout=30, message="gunicorn answering")
    assert str(answer).startswith("gunicorn ")
    # The answer comes from a worker, a child of the gunicorn master the manager started.
    worker = int(str(answer).split()[1])
    assert worker in {p["pid"] for p in manager.status("web")["processes"]}


def test_uvicorn_serves_from_fd_3(make_manager, tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    units = tmp_path / "units"
    app_dir = tmp_path / "app"
    write_script(app_dir, "asgiapp.py", ASGI_APP)
    port = free_port()
    write_unit(units, "api.socket", f"[Socket]\nListenStream=127.0.0.1:{port}\n", enable=True)
    write_unit(units, "api.service", f"[Service]\nExecStart={PYTHON} -m uvicorn --fd 3 --app-dir {app_dir} "
               "asgiapp:app\nTimeoutStopSec=10\n", enable=True)
    manager = make_manager(units)
    answer = wait_for(lambda: _try_get(("127.0.0.1", port)), timeout=30, message="uvicorn answering")
    assert str(answer).startswith("uvicorn ")
    assert int(str(answer).split()[1]) == manager.status("api")["main_pid"]


def _try_get(address: tuple) -> str | None:
    try:
        return http_get(address, timeout=5)
    except OSError:
        return None


def test_restart_drops_no_connection(make_manager, tmp_path: Path) -> None:
    """`restart web` three times while a client requests in a loop: zero refused or reset."""
    pytest.importorskip("gunicorn")
    units = tmp_path / "units"
    app_dir = tmp_path / "app"
    write_script(app_dir, "wsgiapp.py", WSGI_APP)
    port = free_port()
    write_unit(units, "web.socket", f"[Socket]\nListenStream=127.0.0.1:{port}\n", enable=True)
    write_unit(units, "web.service", f"[Service]\nExecStart={PYTHON} -m gunicorn --workers 2 "
               f"--graceful-timeout 5 --chdir {app_dir} wsgiapp:app\nTimeoutStopSec=15\n", enable=True)
    manager = make_manager(units)
    wait_for(lambda: _try_get(("127.0.0.1", port)), timeout=30, message="gunicorn answering")

    client = LoopClient(("127.0.0.1", port))
    client.start()
    try:
        for _ in range(3):
            before = manager.status("web")["main_pid"]
            restarted = manager.unitsh("-c", "restart web", timeout=60)
            assert restarted.returncode == 0, restarted.stderr
            after = manager.status("web")["main_pid"]
            assert after
            assert after != before
            served = client.ok
            wait_for(lambda served=served: client.ok > served + 5, timeout=30, message="requests after restart")
    finally:
        client.done.set()
        client.join(30)
    print(f"zero-drop restart: {client.ok} requests, {len(client.failures)} failed, "
          f"{len(client.pids)} worker pids")
    assert client.failures == [], client.failures[:5]
    assert client.ok > 20
    assert len(client.pids) >= 4, "the answers must come from workers of several gunicorn runs"
