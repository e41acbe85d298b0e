"""Listening sockets and FIFOs of socket units: the address forms and the binding.

`parse_address()` reads one `Listen*=` value the way systemd does:

| value                 | socket                                        |
|-----------------------|-----------------------------------------------|
| `8080`                | IPv6 any address, dual-stack (IPv4 too)       |
| `127.0.0.1:8080`      | IPv4 address and port                         |
| `[::1]:8080`          | IPv6 address and port (`[fe80::1%eth0]:80`)   |
| `/run/app.sock`       | AF_UNIX socket file                           |
| `@app`                | AF_UNIX abstract name (no file)               |

`ListenFIFO=` takes an absolute path. `open_listener()` binds (and listens
on stream and seqpacket sockets) with the unit's options applied. Every
descriptor is created close-on-exec: the manager hands a socket to a unit
only through the explicit dup2 of spawn.py, never by accident.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from unitmgr.units.model import Unit
from unitmgr.units.syntax import lex

log = logging.getLogger(__name__)

# setting -> socket type; 0 is a FIFO.
LISTEN_SETTINGS: dict[str, int] = {
    "ListenStream": socket.SOCK_STREAM,
    "ListenDatagram": socket.SOCK_DGRAM,
    "ListenSequentialPacket": socket.SOCK_SEQPACKET,
    "ListenFIFO": 0,
}
# The TYPE column of `systemctl list-sockets`.
TYPE_NAMES = {"ListenStream": "Stream", "ListenDatagram": "Datagram",
              "ListenSequentialPacket": "SequentialPacket", "ListenFIFO": "FIFO"}
UNIX_PATH_MAX = 107
# listen() takes an int; the kernel lowers any larger backlog to net.core.somaxconn.
MAX_BACKLOG = 65535


class ListenError(Exception):
    """A socket could not be parsed or opened; the message names the setting and the fix."""


@dataclass(frozen=True)
class ListenAddress:
    setting: str  # "ListenStream", ...
    text: str  # the value as written
    family: int  # AF_INET, AF_INET6, AF_UNIX; 0 for a FIFO
    sock_type: int  # SOCK_STREAM, ...; 0 for a FIFO
    address: Any  # (host, port[, flow, scope]) or a path; "\0name" for abstract names

    @property
    def type_name(self) -> str:
        return TYPE_NAMES[self.setting]

    @property
    def node(self) -> str | None:
        """The file-system path this socket or FIFO creates, if any."""
        if self.family in (socket.AF_UNIX, 0) and not self.address.startswith("\0"):
            return self.address
        return None

    @property
    def is_ip(self) -> bool:
        return self.family in (socket.AF_INET, socket.AF_INET6)

    def __str__(self) -> str:
        return f"{self.setting}={self.text}"


def _port(text: str, value: str, setting: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ListenError(f"{setting}={value}: '{text}' is not a port number; use 1 to 65535")
    return int(text)


def _parse_ip(setting: str, value: str) -> tuple[int, Any]:
    if value.isdigit():
        port = _port(value, value, setting)
        if socket.has_ipv6:
            return socket.AF_INET6, ("::", port, 0, 0)
        return socket.AF_INET, ("0.0.0.0", port)
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ListenError(f"{setting}={value}: an IPv6 address needs the form [ADDRESS]:PORT")
        host, _, scope = host.partition("%")
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ListenError(f"{setting}={value}: '{host}' is not an IPv6 address") from None
        scope_id = socket.if_nametoindex(scope) if scope else 0
        return socket.AF_INET6, (host, _port(rest[1:], value, setting), 0, scope_id)
    host, sep, port_text = value.rpartition(":")
    if not sep:
        raise ListenError(f"{setting}={value}: not an address; use PORT, ADDRESS:PORT, [IPV6]:PORT, "
                          "/path or @name")
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        raise ListenError(f"{setting}={value}: '{host}' is not an IPv4 address; write IPv6 "
                          "addresses in brackets, [::1]:PORT") from None
    return socket.AF_INET, (host, _port(port_text, value, setting))


def parse_address(setting: str, value: str) -> ListenAddress:
    """Parse one Listen*= value; raise ListenError naming the value and the accepted forms."""
    if setting not in LISTEN_SETTINGS:
        raise ListenError(f"{setting}= is not a socket setting; use one of {', '.join(LISTEN_SETTINGS)}")
    sock_type = LISTEN_SETTINGS[setting]
    if not value:
        raise ListenError(f"{setting}= is empty; give an address")
    if setting == "ListenFIFO":
        if not value.startswith("/"):
            raise ListenError(f"ListenFIFO={value}: a FIFO needs an absolute path")
        return ListenAddress(setting, value, 0, 0, os.path.normpath(value))
    if value.startswith(("/", "@")):
        path = "\0" + value[1:] if value.startswith("@") else os.path.normpath(value)
        if len(path.encode()) > UNIX_PATH_MAX:
            raise ListenError(f"{setting}={value}: a unix socket path is limited to {UNIX_PATH_MAX} "
                              "bytes; choose a shorter path")
        return ListenAddress(setting, value, socket.AF_UNIX, sock_type, path)
    if value.startswith("vsock:"):
        raise ListenError(f"{setting}={value}: vsock sockets are not supported by unitmgr")
    if sock_type == socket.SOCK_SEQPACKET:
        raise ListenError(f"ListenSequentialPacket={value}: only unix sockets (/path or @name) "
                          "support sequential packets")
    family, address = _parse_ip(setting, value)
    return ListenAddress(setting, value, family, sock_type, address)


def unit_addresses(unit: Unit) -> list[ListenAddress]:
    """Return every Listen*= of a socket unit, parsed, in the order of the unit's files."""
    values = {setting: list(unit.get("Socket", setting) or []) for setting in LISTEN_SETTINGS}
    order = _settings_in_file_order(unit, values)
    found = [parse_address(setting, values[setting].pop(0)) for setting in order]
    if not found:
        raise ListenError(f"{unit.name} has no Listen*= setting; add ListenStream=, ListenDatagram=, "
                          "ListenSequentialPacket= or ListenFIFO=")
    return found


def _settings_in_file_order(unit: Unit, values: dict[str, list[str]]) -> list[str]:
    """Return one setting name per value, interleaved as the assignments appear in the files.

    systemd passes the descriptors in file order across the Listen*= kinds,
    while the unit model keeps the order within each key only, so the
    fragment and its drop-ins are lexed again for the sequence of keys. An
    empty assignment resets its key. When the files cannot be read or no
    longer match, the settings table's order is used.
    """
    table_order = [setting for setting, found in values.items() for _ in found]
    sequence: list[str] = []
    for path in [unit.fragment_path, *unit.dropin_paths]:
        if not path:
            continue
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            return table_order
        for assignment in lex(text, path, ("Unit", "Socket", "Install")).assignments:
            if assignment.section != "Socket" or assignment.key not in LISTEN_SETTINGS:
                continue
            if assignment.value.strip():
                sequence.append(assignment.key)
            else:
                sequence = [key for key in sequence if key != assignment.key]
    counts = {setting: sequence.count(setting) for setting in LISTEN_SETTINGS}
    if any(counts[setting] != len(found) for setting, found in values.items()):
        return table_order
    return sequence


def _int_option(unit: Unit, key: str) -> int | None:
    value = unit.get("Socket", key)
    if value in (None, ""):
        return None
    try:
        return int(str(value).strip())
    except ValueError:
        raise ListenError(f"{unit.name}: {key}={value} is not a whole number") from None


@dataclass
class ListenOptions:
    backlog: int = MAX_BACKLOG
    socket_mode: int = 0o666
    directory_mode: int = 0o755
    reuse_port: bool = False
    no_delay: bool = False
    keep_alive: bool = False
    broadcast: bool = False
    free_bind: bool = False
    pass_credentials: bool = False
    receive_buffer: int | None = None
    send_buffer: int | None = None
    ipv6_only: str = "default"

    @classmethod
    def from_unit(cls, unit: Unit) -> ListenOptions:
        def flag(key: str) -> bool:
            return bool(unit.get("Socket", key))

        backlog = _int_option(unit, "Backlog")
        mode = unit.get("Socket", "SocketMode")
        directory_mode = unit.get("Socket", "DirectoryMode")
        return cls(
            backlog=MAX_BACKLOG if backlog is None else max(0, min(backlog, MAX_BACKLOG)),
            socket_mode=0o666 if mode is None else mode,
            directory_mode=0o755 if directory_mode is None else directory_mode,
            reuse_port=flag("ReusePort"), no_delay=flag("NoDelay"), keep_alive=flag("KeepAlive"),
            broadcast=flag("Broadcast"), free_bind=flag("FreeBind"),
            pass_credentials=flag("PassCredentials"),
            receive_buffer=_int_option(unit, "ReceiveBuffer"), send_buffer=_int_option(unit, "SendBuffer"),
            ipv6_only=unit.get("Socket", "BindIPv6Only") or "default",
        )


class Listener:
    """One open listening socket or FIFO, owned by the manager."""

    def __init__(self, address: ListenAddress, fd: int, sock: socket.socket | None):
        self.address = address
        self.fd = fd
        self.sock = sock

    def close(self, remove_node: bool) -> None:
        if self.sock is not None:
            self.sock.close()
        elif self.fd >= 0:
            os.close(self.fd)
        self.fd = -1
        node = self.address.node
        if remove_node and node:
            try:
                os.unlink(node)
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.warning("could not remove %s: %s", node, exc)


def open_listener(address: ListenAddress, options: ListenOptions) -> Listener:
    """Bind (and listen on) one address; raise ListenError saying what is wrong and what to do."""
    if address.node:
        _make_parent(address.node, options.directory_mode)
    if address.sock_type == 0:
        return _open_fifo(address, options)
    sock = socket.socket(address.family, address.sock_type | socket.SOCK_CLOEXEC)
    try:
        _apply_options(sock, address, options)
        if address.node:
            _clear_stale_node(address)
        sock.bind(address.address)
        if address.node:
            os.chmod(address.node, options.socket_mode)
        if address.sock_type in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
            sock.listen(options.backlog)
    except OSError as exc:
        sock.close()
        raise ListenError(_bind_failure(address, exc)) from None
    except ListenError:
        sock.close()
        raise
    return Listener(address, sock.fileno(), sock)


def _bind_failure(address: ListenAddress, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"{address}: address already in use: another socket is bound there; "
                "stop the program that holds it or choose a free address")
    if exc.errno == errno.EACCES and address.is_ip:
        return (f"{address}: permission denied: ports below 1024 need privileges a user "
                "manager lacks; choose a port from 1024 up")
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{address}: the address is not on any interface of this host; use a local address"
    return f"{address}: {exc.strerror or exc}"


def _apply_options(sock: socket.socket, address: ListenAddress, options: ListenOptions) -> None:
    if address.is_ip:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if options.free_bind:
            sock.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND
    if address.family == socket.AF_INET6 and options.ipv6_only != "default":
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(options.ipv6_only == "ipv6-only"))
    if options.reuse_port and address.is_ip:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if options.no_delay and address.is_ip and address.sock_type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if options.keep_alive and address.sock_type == socket.SOCK_STREAM:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if options.broadcast:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    if options.pass_credentials and address.family == socket.AF_UNIX:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    if options.receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, options.receive_buffer)
    if options.send_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, options.send_buffer)


def _make_parent(path: str, mode: int) -> None:
    parent = os.path.dirname(path)
    try:
        os.makedirs(parent, mode=mode, exist_ok=True)
    except OSError as exc:
        raise ListenError(f"could not create the directory {parent}: {exc.strerror}") from None


def _clear_stale_node(address: ListenAddress) -> None:
    """Remove a socket file left by a program that has exited; reject one that still accepts connections."""
    path = address.node
    assert path is not None
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(info.st_mode):
        raise ListenError(f"{address}: {path} exists and is not a socket; remove it or choose another path")
    probe = socket.socket(socket.AF_UNIX, address.sock_type | socket.SOCK_CLOEXEC)
    try:
        probe.connect(path)
    except OSError:
        os.unlink(path)  # no listener: a stale file
        return
    finally:
        probe.close()
    raise ListenError(f"{address}: address already in use: a program is listening on {path}; "
                      "stop it or choose another path")


def _open_fifo(address: ListenAddress, options: ListenOptions) -> Listener:
    path = address.address
    try:
        os.mkfifo(path, options.socket_mode)
    except FileExistsError:
        if not stat.S_ISFIFO(os.lstat(path).st_mode):
            raise ListenError(f"{address}: {path} exists and is not a FIFO; remove it or choose "
                              "another path") from None
    except OSError as exc:
        raise ListenError(f"{address}: could not create the FIFO: {exc.strerror}") from None
    try:
        # Read-write, so the FIFO never reports end-of-file when a writer leaves.
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        os.set_blocking(fd, True)
        os.chmod(path, options.socket_mode)
    except OSError as exc:
        raise ListenError(f"{address}: could not open the FIFO: {exc.strerror}") from None
    return Listener(address, fd, None)
