"""Servers that run as units in the socket tests, and the clients that talk to them.

Each server is a small script written into the test's temporary folder. They
serve plain HTTP/1.0 on a socket the manager passed (fd 3) and answer with a
tag naming the process, so a test can tell which instance answered.
"""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

PYTHON = sys.executable

# Serves HTTP on every stream socket of LISTEN_FDS (fd 3 when unset). On
# SIGTERM it finishes the request it has accepted and exits, as gunicorn's
# workers do. Accepting only after select() and without blocking lets several
# instances share one listening socket.
HTTP_SERVER = r'''
import json, os, selectors, signal, socket, sys

stopping = False

def on_term(signum, frame):
    global stopping
    stopping = True

signal.signal(signal.SIGTERM, on_term)
tag = sys.argv[1]
report = sys.argv[2] if len(sys.argv) > 2 else ""
if report:
    info = {k: os.environ.get(k) for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")}
    info["pid"] = os.getpid()
    with open(report + ".tmp", "w") as f:
        json.dump(info, f)
    os.replace(report + ".tmp", report)
count = int(os.environ.get("LISTEN_FDS", "1"))
selector = selectors.SelectSelector()  # no descriptor of its own
kept = []
for fd in range(3, 3 + count):
    try:
        sock = socket.socket(fileno=fd)
    except OSError:
        continue  # a FIFO
    kept.append(sock)
    if sock.type == socket.SOCK_STREAM:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
while not stopping:
    for key, _ in selector.select(0.2):
        try:
            conn, _ = key.fileobj.accept()
        except BlockingIOError:
            continue
        conn.setblocking(True)
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
        body = f"{tag} {os.getpid()}\n".encode()
        conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
        conn.close()
'''

# Accept=yes: one process per connection, the connection on fd 3.
ECHO_SERVER = r'''
import os, socket
conn = socket.socket(fileno=3)
data = b""
while not data.endswith(b"\n"):
    chunk = conn.recv(4096)
    if not chunk:
        break
    data += chunk
names = os.environ.get("LISTEN_FDNAMES")
conn.sendall(b"echo %s %s %s " % (names.encode(), os.environ["REMOTE_ADDR"].encode(), str(os.getpid()).encode()) + data)
conn.close()
'''

WSGI_APP = r'''
import os

def app(environ, start_response):
    body = f"gunicorn {os.getpid()}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''

ASGI_APP = r'''
import os

async def app(scope, receive, send):
    assert scope["type"] == "http"
    body = f"uvicorn {os.getpid()}\n".encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
'''


def write_script(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


def http_get(address: tuple | str, timeout: float = 15.0) -> str:
    """GET / over TCP (address tuple) or a unix socket (path or "\\0name"); return the body."""
    if isinstance(address, str):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        sock.connect(address)
    else:
        sock = socket.create_connection(address, timeout=timeout)
    with sock:
        sock.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1."):
        raise AssertionError(f"not an HTTP answer: {data[:200]!r}")
    return body.decode()


def ipv6_loopback() -> bool:
    """True when this host can bind ::1."""
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def free_port6() -> int:
    with socket.socket(socket.AF_INET6) as sock:
        sock.bind(("::1", 0))
        return sock.getsockname()[1]


class LoopClient(threading.Thread):
    """Requests in a loop on fresh connections, counting every failure."""

    def __init__(self, address: tuple):
        super().__init__(daemon=True)
        self.address = address
        self.done = threading.Event()
        self.ok = 0
        self.failures: list[str] = []
        self.pids: set[str] = set()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                body = http_get(self.address, timeout=20)
                self.pids.add(body.split()[1])
                self.ok += 1
            except (OSError, AssertionError, IndexError) as exc:
                self.failures.append(repr(exc))
