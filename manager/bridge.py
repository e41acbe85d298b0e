"""`unitmgr bridge`: copy bytes between stdin/stdout and the local control socket.

A remote `unitsh` runs this command over an SSH exec channel. Through it the
client's ZeroMQ connection reaches the manager's ipc:// socket (a plain
AF_UNIX stream socket) without a TCP port on the remote host. The bytes are
ZMTP with CURVE, so they stay encrypted end to end. The bridge ends when either side
closes its end.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys

from unitmgr.manager.paths import Paths

CHUNK = 65536


def connect_control_socket(paths: Paths) -> socket.socket:
    """Connect to the manager's control socket; raise ConnectionError with a message
    for the user when no manager is running."""
    path = paths.control_socket
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        sock.close()
        if isinstance(exc, FileNotFoundError):
            reason = f"no control socket at {path}"
        else:
            reason = f"nothing is listening on the control socket {path}"
        raise ConnectionError(
            f"no unitmgr manager is running for this user ({reason}); "
            "start one with: unitmgr --user"
        ) from None
    except OSError as exc:
        sock.close()
        raise ConnectionError(f"cannot connect to the control socket {path}: {exc.strerror}") \
            from None
    return sock


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def copy_both_ways(sock: socket.socket, stdin_fd: int, stdout_fd: int) -> None:
    """Copy stdin to `sock` and `sock` to stdout until one side reaches end of file."""
    with selectors.DefaultSelector() as selector:
        selector.register(stdin_fd, selectors.EVENT_READ, "stdin")
        selector.register(sock, selectors.EVENT_READ, "socket")
        while True:
            for key, _events in selector.select():
                if key.data == "stdin":
                    data = os.read(stdin_fd, CHUNK)
                    if not data:
                        return
                    sock.sendall(data)
                else:
                    data = sock.recv(CHUNK)
                    if not data:
                        return
                    _write_all(stdout_fd, data)


def run_bridge(paths: Paths, stdin_fd: int = 0, stdout_fd: int = 1) -> int:
    """Run the bridge; return the exit status (1 with a message on stderr when no
    manager is running)."""
    try:
        sock = connect_control_socket(paths)
    except ConnectionError as exc:
        print(f"unitmgr bridge: {exc}", file=sys.stderr)
        return 1
    try:
        copy_both_ways(sock, stdin_fd, stdout_fd)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the other side went away: a normal end for a bridge
    except OSError as exc:
        print(f"unitmgr bridge: copying failed: {exc}", file=sys.stderr)
        return 1
    finally:
        sock.close()
    return 0
