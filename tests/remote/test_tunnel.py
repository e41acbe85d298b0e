"""The local tunnel socket, with socket pairs standing in for SSH channels."""

from __future__ import annotations

import socket
import stat
import threading

from support import wait_for
from unitmgr.shell.tunnel import Tunnel


def echo_channel() -> socket.socket:
    """Return one end of a socket pair whose other end echoes in upper case until closed."""
    ours, theirs = socket.socketpair()

    def serve() -> None:
        with theirs:
            while data := theirs.recv(4096):
                theirs.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    return ours


def test_tunnel_carries_bytes_both_ways():
    tunnel = Tunnel(echo_channel)
    try:
        mode = stat.S_IMODE(tunnel.path.parent.stat().st_mode)
        assert mode == 0o700
        assert tunnel.endpoint == f"ipc://{tunnel.path}"
        for _ in range(2):  # each connection gets its own channel
            with socket.socket(socket.AF_UNIX) as conn:
                conn.connect(str(tunnel.path))
                conn.sendall(b"hello")
                received = b""
                while len(received) < 5:
                    received += conn.recv(16)
                assert received == b"HELLO"
    finally:
        tunnel.close()
    assert not tunnel.path.parent.exists()


def test_tunnel_records_channel_failure():
    def fail_to_open() -> socket.socket:
        raise OSError("channel open refused")

    tunnel = Tunnel(fail_to_open)
    try:
        with socket.socket(socket.AF_UNIX) as conn:
            conn.connect(str(tunnel.path))
            assert conn.recv(16) == b""
        wait_for(lambda: tunnel.channel_errors, timeout=5, message="the channel error")
        assert tunnel.channel_errors == ["channel open refused"]
    finally:
        tunnel.close()


def test_tunnel_close_ends_open_connections():
    tunnel = Tunnel(echo_channel)
    with socket.socket(socket.AF_UNIX) as conn:
        conn.connect(str(tunnel.path))
        conn.sendall(b"x")
        assert conn.recv(16) == b"X"
        tunnel.close()
        conn.settimeout(5)
        assert conn.recv(16) == b""
