"""The manager's end of the sd_notify protocol.

One AF_UNIX datagram socket receives every unit's messages. SO_PASSCRED
makes the kernel attach the sender's pid, uid and gid to each datagram, so a
message is attributed by who sent it, never by what it claims. A datagram is
newline-separated `KEY=VALUE` lines; unknown keys are ignored. Descriptors
attached with SCM_RIGHTS are closed right after the message is handled:
unitmgr keeps no file descriptor store, and `BARRIER=1` (used by
`systemd-notify` since systemd 250) only needs its descriptor closed once the
earlier messages are processed, which holds because messages are handled in
order.

`$NOTIFY_SOCKET` is a path, or an abstract name written with a leading `@`.
"""

from __future__ import annotations

import array
import asyncio
import logging
import os
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

# Big enough for any message systemd's own clients send (they cap at 4 KiB).
MAX_DATAGRAM = 64 * 1024
# systemd accepts up to 253 descriptors per message (SCM_MAX_FD).
MAX_FDS = 253
_UCRED = struct.Struct("3i")
# sizeof(sun_path) on Linux minus the final NUL.
MAX_SOCKET_PATH = 107


class NotifySocketError(Exception):
    """The notify socket cannot be opened; the message names the address and the fix."""


@dataclass(frozen=True)
class Credentials:
    pid: int
    uid: int
    gid: int


@dataclass
class NotifyMessage:
    """One datagram: the sender's credentials and its `KEY=VALUE` fields, last one wins."""

    sender: Credentials
    fields: dict[str, str] = field(default_factory=dict)
    fd_count: int = 0


def parse_fields(data: bytes) -> dict[str, str]:
    """Split a datagram into fields, dropping lines without `=` and values that are not UTF-8."""
    fields: dict[str, str] = {}
    for line in data.split(b"\n"):
        key, has_value, value = line.partition(b"=")
        if not has_value or not key:
            continue
        try:
            fields[key.decode("ascii")] = value.decode("utf-8")
        except UnicodeDecodeError:
            log.debug("notify: dropping a field that is not valid UTF-8: %r", line[:80])
    return fields


def socket_address(address: str) -> str | bytes:
    """Turn a `$NOTIFY_SOCKET` value into a bind/connect address (abstract names start with NUL)."""
    if address.startswith("@"):
        return b"\0" + address[1:].encode()
    return address


def check_address(address: str) -> None:
    """Raise NotifySocketError for an address longer than a unix socket address can be."""
    size = len(os.fsencode(address))
    if size <= MAX_SOCKET_PATH:
        return
    kind = "name" if address.startswith("@") else "path"
    # NOTE: an abstract fallback would not help a long runtime directory, because the
    # control socket in the same directory has a longer name than notify.sock.
    raise NotifySocketError(
        f"the notify socket {kind} {address} is {size} bytes, above the {MAX_SOCKET_PATH}-byte "
        "limit of a unix socket address; set XDG_RUNTIME_DIR or UNITMGR_RUNTIME_DIR to a shorter "
        "directory (or, where UNITMGR_NOTIFY_SOCKET is set, set it to a shorter path or to @NAME)"
    )


class NotifySocket:
    """The listening socket, which passes every message with sender credentials to `handler`."""

    def __init__(self, loop: asyncio.AbstractEventLoop, address: str,
                 handler: Callable[[NotifyMessage], None]):
        self.loop = loop
        self.address = address
        self.handler = handler
        self._sock: socket.socket | None = None

    def open(self) -> None:
        """Bind the socket and start reading; raise NotifySocketError when that fails."""
        check_address(self.address)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        # Bursts of WATCHDOG=1 from many units must not be dropped.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024 * 1024)
        if not self.address.startswith("@"):
            path = Path(self.address)
            try:
                path.unlink()
            except FileNotFoundError:
                pass
        old_umask = os.umask(0o077)
        try:
            sock.bind(socket_address(self.address))
        except OSError as exc:
            sock.close()
            raise NotifySocketError(f"cannot bind the notify socket {self.address}: {exc.strerror}") from None
        finally:
            os.umask(old_umask)
        self._sock = sock
        self.loop.add_reader(sock.fileno(), self._on_readable)
        log.debug("notify socket listening at %s", self.address)

    def close(self) -> None:
        if self._sock is None:
            return
        self.loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
        if not self.address.startswith("@"):
            try:
                os.unlink(self.address)
            except OSError:
                pass

    def _on_readable(self) -> None:
        # Drain everything queued. Each datagram is one message.
        while self._sock is not None:
            message = self._receive()
            if message is None:
                return
            try:
                self.handler(message)
            except Exception:
                log.exception("notify: handling a message from pid %d failed", message.sender.pid)

    def _receive(self) -> NotifyMessage | None:
        """Return the next datagram that names its sender, or None once the queue is empty."""
        assert self._sock is not None
        ancillary_size = socket.CMSG_SPACE(_UCRED.size) + socket.CMSG_SPACE(MAX_FDS * 4)
        while True:
            try:
                data, ancillary, flags, _ = self._sock.recvmsg(
                    MAX_DATAGRAM, ancillary_size, socket.MSG_CMSG_CLOEXEC)
            except (BlockingIOError, InterruptedError):
                return None
            sender, fd_count = _read_ancillary(ancillary)
            if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
                log.warning("notify: dropping a truncated message (more than %d bytes or %d descriptors)",
                            MAX_DATAGRAM, MAX_FDS)
                continue
            if sender is None or sender.pid <= 0:
                log.warning("notify: dropping a message without sender credentials")
                continue
            return NotifyMessage(sender, parse_fields(data), fd_count)


def _read_ancillary(ancillary: list[tuple[int, int, bytes]]) -> tuple[Credentials | None, int]:
    """Return the sender's credentials and how many descriptors came along (they are closed here)."""
    sender: Credentials | None = None
    fds = array.array("i")
    for level, kind, payload in ancillary:
        if level != socket.SOL_SOCKET:
            continue
        if kind == socket.SCM_CREDENTIALS and len(payload) >= _UCRED.size:
            sender = Credentials(*_UCRED.unpack(payload[: _UCRED.size]))
        elif kind == socket.SCM_RIGHTS:
            fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
    for fd in fds:
        os.close(fd)
    return sender, len(fds)
