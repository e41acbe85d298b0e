"""A local unix socket whose connections are carried over SSH channels.

The ZeroMQ client connects to the socket through `ipc://`. Each accepted
connection gets a new SSH channel from `open_channel`: an exec channel running
`unitmgr bridge`, or a direct-tcpip channel. A thread per connection copies
bytes both ways until either side closes. The socket lives in a fresh directory of mode
0700, so other local users cannot connect to it. When ZeroMQ reconnects after a
dropped channel, the new connection gets a new channel.
"""

from __future__ import annotations

import logging
import selectors
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)

CHUNK = 65536
MAX_DIRECTORY_LENGTH = 90  # leaves room for /tun.sock within the 107 bytes


class Channel(Protocol):
    """The parts of paramiko.Channel that the tunnel uses."""

    def fileno(self) -> int: ...
    def recv(self, size: int) -> bytes: ...
    def sendall(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class Tunnel:
    """Listen on a private unix socket; pump each connection through a new channel."""

    def __init__(self, open_channel: Callable[[], Channel], name: str = "tunnel",
                 describe_end: Callable[[Channel], str] | None = None):
        """`describe_end(channel)` returns why a channel ended early (say, the
        stderr of a failed command), or an empty string for a normal end."""
        self._open_channel = open_channel
        self._describe_end = describe_end
        self._name = name
        self._directory = Path(tempfile.mkdtemp(prefix="unitsh-"))  # mkdtemp makes it 0700
        if len(str(self._directory)) > MAX_DIRECTORY_LENGTH:
            # A unix socket path is limited to 107 bytes on Linux; $TMPDIR may be deep.
            self._directory.rmdir()
            self._directory = Path(tempfile.mkdtemp(prefix="unitsh-", dir="/tmp"))
        self.path = self._directory / "tun.sock"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        self._listener.listen(4)
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self.channel_errors: list[str] = []
        self._thread = threading.Thread(target=self._accept_loop, name=f"{name}-accept", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"ipc://{self.path}"

    def close(self) -> None:
        """Stop accepting, close every open connection and remove the socket directory."""
        if self._closed.is_set():
            return
        self._closed.set()
        # shutdown() wakes the thread blocked in accept(); close() alone may not.
        _shutdown(self._listener)
        self._listener.close()
        with self._lock:
            for conn in self._open:
                _shutdown(conn)
        self._thread.join(timeout=2)
        shutil.rmtree(self._directory, ignore_errors=True)

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return  # the listener was closed
            try:
                channel = self._open_channel()
            except Exception as exc:  # noqa: BLE001 - any failure ends this one connection
                log.debug("%s: cannot open a channel: %s", self._name, exc)
                self.channel_errors.append(str(exc) or type(exc).__name__)
                conn.close()
                continue
            with self._lock:
                self._open.add(conn)
            threading.Thread(target=self._pump, args=(conn, channel), name=f"{self._name}-pump",
                             daemon=True).start()

    def _pump(self, conn: socket.socket, channel: Channel) -> None:
        try:
            copy_both_ways(conn, channel)
        except OSError as exc:
            log.debug("%s: connection ended: %s", self._name, exc)
        finally:
            with self._lock:
                self._open.discard(conn)
            if self._describe_end is not None and not self._closed.is_set():
                reason = self._describe_end(channel)
                if reason:
                    log.debug("%s: the channel ended: %s", self._name, reason)
                    self.channel_errors.append(reason)
            _close_channel(channel)
            conn.close()


def copy_both_ways(conn: socket.socket, channel: Channel) -> None:
    """Copy bytes between `conn` and `channel` until one of them reaches end of file."""
    with selectors.DefaultSelector() as selector:
        selector.register(conn, selectors.EVENT_READ, "local")
        selector.register(channel, selectors.EVENT_READ, "channel")
        while True:
            for key, _events in selector.select():
                if key.data == "local":
                    data = conn.recv(CHUNK)
                    if not data:
                        return
                    channel.sendall(data)
                else:
                    data = channel.recv(CHUNK)
                    if not data:
                        return
                    conn.sendall(data)


def _close_channel(channel: Channel) -> None:
    try:
        channel.close()
    except Exception as exc:  # noqa: BLE001 - paramiko raises EOFError or SSHException on a dead transport
        log.debug("closing a channel failed: %s", exc)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
