"""The client side of the SSH tests: a HOME with ~/.ssh for `unitsh`, and what the session set up."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sshserver import RemoteManager, SSHServer, TestUser

UNITSH = [sys.executable, "-m", "unitmgr.shell.cli"]


@dataclass
class RemoteHost:
    """The session's sshd, test user and remote manager, and the client identity sshd accepts."""

    server: SSHServer
    user: TestUser
    manager: RemoteManager
    client_private_key: bytes
    client_public_key: str
    curve_home: Path  # a local UNITMGR_HOME whose client key the remote manager accepts
    closed_port: int  # a loopback port where nothing listens


class ClientHome:
    """The client side: a HOME with ~/.ssh, a UNITMGR_HOME, and `unitsh` run inside them."""

    def __init__(self, root: Path, remote: RemoteHost, known: bool = True, curve_home: Path | None = None):
        self.root = root
        self.remote = remote
        self.home = root / "home"
        self.ssh_dir = self.home / ".ssh"
        self.ssh_dir.mkdir(parents=True, mode=0o700)
        self.known_hosts = self.ssh_dir / "known_hosts"
        self.unitmgr_home = curve_home or root / "curve"
        identity = self.ssh_dir / "id_ed25519"
        identity.write_bytes(remote.client_private_key)
        identity.chmod(0o600)
        self.write_config()
        if known:
            self.known_hosts.write_text(f"{self.host_name} {remote.server.host_public_key}\n")

    @property
    def host_name(self) -> str:
        return f"[127.0.0.1]:{self.remote.server.port}"

    def write_config(self) -> None:
        port, user = self.remote.server.port, self.remote.user.name
        (self.ssh_dir / "config").write_text(
            f"Host hosta hostb\n    HostName 127.0.0.1\n    Port {port}\n    User {user}\n"
            f"    IdentityFile ~/.ssh/id_ed25519\n"
            f"Host hostdown\n    HostName 127.0.0.1\n    Port {self.remote.closed_port}\n    User {user}\n"
            f"Host viajump\n    HostName 127.0.0.1\n    Port {port}\n    User {user}\n"
            f"    ProxyJump hosta\n"
        )

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("UNITMGR_", "XDG_", "SSH_"))}
        env.update(HOME=str(self.home), UNITMGR_HOME=str(self.unitmgr_home), NO_COLOR="1")
        return env

    def unitsh(self, *args: str, remote_command: bool = True, timeout: float = 60.0, input: str = "",
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        extra = ["--remote-command", self.remote.manager.command] if remote_command else []
        return subprocess.run([*UNITSH, *extra, *args], env={**self.env(), **(env or {})},
                              capture_output=True, text=True, timeout=timeout, input=input)
