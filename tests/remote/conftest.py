"""Fixtures of the SSH tests: a real sshd, a remote manager, and client homes for unitsh.

The session fixture `remote_host` needs root and /usr/sbin/sshd; without them
every test that uses it is skipped with the reason. The client side of each
test gets its own HOME (with ~/.ssh/config, known_hosts and an identity) and
its own UNITMGR_HOME, so the real ~/.ssh of the user running the tests is
never read or written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshclient import ClientHome, RemoteHost
from sshserver import RemoteManager, SSHServer, TestUser, ed25519_key_pair, install_checkout, skip_reason
from support import free_port

WEB_UNIT = """\
[Unit]
Description=Remote test web

[Service]
ExecStart=/bin/sh -c 'echo "web started"; exec sleep 600'
TimeoutStopSec=2
"""

SLOW_UNIT = """\
[Service]
Type=oneshot
ExecStart=/bin/sleep 30
TimeoutStopSec=2
"""


@pytest.fixture(scope="session")
def remote_host() -> Iterator[RemoteHost]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    directory = Path(tempfile.mkdtemp(prefix="um-remote-", dir="/var/tmp"))
    directory.chmod(0o755)  # the test user runs the virtualenv inside
    user = TestUser.create(f"unitmgr-test-{os.getpid()}")
    server = manager = None
    try:
        venv = install_checkout(directory)
        private, public = ed25519_key_pair()
        user.write(".ssh/authorized_keys", public + "\n", mode=0o600)
        user.write(".config/unitmgr/units/web.service", WEB_UNIT)
        user.write(".config/unitmgr/units/slow.service", SLOW_UNIT)
        server = SSHServer(directory, user.name).start()
        # Loopback TCP as well, so that both the direct-tcpip channel and the bridge can be tested.
        manager = RemoteManager(user, venv).start("--listen", f"tcp://127.0.0.1:{free_port()}")
        curve_home = directory / "curve"
        curve_public = _make_curve_keys(curve_home)
        manager.authorize(curve_public)
        assert _start_web(user, manager) == 0
        yield RemoteHost(server=server, user=user, manager=manager, client_private_key=private,
                         client_public_key=public, curve_home=curve_home, closed_port=free_port())
    finally:
        if manager is not None:
            manager.stop()
        if server is not None:
            server.stop()
        user.remove()
        shutil.rmtree(directory, ignore_errors=True)


def _make_curve_keys(home: Path) -> str:
    from unitmgr.manager.paths import resolve
    from unitmgr.shell.remote import ensure_client_keys

    return ensure_client_keys(resolve({"UNITMGR_HOME": str(home), "HOME": str(home)})).public.decode()


def _start_web(user: TestUser, manager: RemoteManager) -> int:
    result = user.run([str(manager.venv / "bin" / "unitsh"), "-c", "start web"], manager.venv)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.returncode


@pytest.fixture
def client(remote_host: RemoteHost, tmp_path: Path) -> ClientHome:
    """A client home whose known_hosts lists the host key and whose CURVE key is authorised."""
    return ClientHome(tmp_path / "client", remote_host, curve_home=remote_host.curve_home)


@pytest.fixture
def new_client(remote_host: RemoteHost, tmp_path: Path) -> ClientHome:
    """A client home with an empty known_hosts and a CURVE key the manager does not know."""
    return ClientHome(tmp_path / "new-client", remote_host, known=False)
