"""~/.ssh/config keys beyond HostName, User, Port and ProxyJump, against the real sshd.

ProxyCommand, IdentitiesOnly with an agent and a server with a low MaxAuthTries,
Include with Host wildcards, negation and Match, IdentityFile tokens,
ConnectTimeout, StrictHostKeyChecking and UserKnownHostsFile.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sshclient import ClientHome, RemoteHost
from sshserver import SSHServer, ed25519_key_pair
from support import wait_for
from unitmgr.shell import ssh

# A ProxyCommand for the tests: it relays stdin and stdout to 127.0.0.1 PORT, and to no other address.
RELAY = """\
import os, socket, sys, threading
host, port, pid_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if host != "127.0.0.1":
    sys.exit(f"relay: only 127.0.0.1 is allowed, not {host}")
with open(pid_file, "w") as f:
    f.write(str(os.getpid()))
sock = socket.create_connection(("127.0.0.1", port))

def upstream():
    while data := os.read(0, 65536):
        sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)

threading.Thread(target=upstream, daemon=True).start()
while data := sock.recv(65536):
    os.write(1, data)
"""

HAS_AGENT = bool(shutil.which("ssh-agent") and shutil.which("ssh-add"))


def add_host(client: ClientHome, text: str) -> None:
    """Put a Host block before the others, so that its values win."""
    config = client.ssh_dir / "config"
    config.write_text(text + config.read_text())


def host_block(client: ClientHome, name: str, *lines: str, port: int | None = None) -> str:
    port = port or client.remote.server.port
    body = "".join(f"    {line}\n" for line in lines)
    return (f"Host {name}\n    HostName 127.0.0.1\n    Port {port}\n    User {client.remote.user.name}\n"
            f"{body}")


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def relay(client: ClientHome) -> tuple[Path, Path]:
    script = client.root / "relay.py"
    script.write_text(RELAY)
    return script, client.root / "relay.pid"


@pytest.fixture
def in_process_home(client: ClientHome, monkeypatch: pytest.MonkeyPatch) -> ssh.SSHOptions:
    """SSH options of this test process, with HOME pointing at the client home."""
    monkeypatch.setenv("HOME", str(client.home))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return ssh.SSHOptions(config_file=client.ssh_dir / "config", known_hosts=client.known_hosts)


# -- ProxyCommand -----------------------------------------------------------------------


def test_proxy_command_runs_command(client: ClientHome, relay: tuple[Path, Path]):
    script, pid_file = relay
    add_host(client, host_block(client, "viaproxy", "IdentityFile ~/.ssh/id_ed25519",
                                f"ProxyCommand {sys.executable} {script} %h %p {pid_file}"))
    result = client.unitsh("viaproxy", "-c", "is-active web")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "active"
    assert pid_file.exists()
    pid = int(pid_file.read_text())
    wait_for(lambda: not process_exists(pid), timeout=10, message=f"the ProxyCommand pid {pid} to end")


def test_proxy_command_ended_on_close(client: ClientHome, relay: tuple[Path, Path],
                                     in_process_home: ssh.SSHOptions):
    script, pid_file = relay
    add_host(client, host_block(client, "viaproxy", "IdentityFile ~/.ssh/id_ed25519",
                                f"ProxyCommand {sys.executable} {script} %h %p {pid_file}"))
    connection = ssh.connect("viaproxy", in_process_home)
    try:
        result = ssh.run_command(connection, "echo through the proxy")
        proxy = connection._unitsh_proxy  # type: ignore[attr-defined]
        pid = int(pid_file.read_text())
        assert proxy.process.pid == pid
        assert process_exists(pid)
    finally:
        ssh.close(connection)
    assert result.status == 0
    assert result.stdout == b"through the proxy\n"
    # close() waits for the process, so it is neither running nor a zombie afterwards.
    assert proxy.process.returncode is not None
    assert not process_exists(pid)


def test_proxy_command_failure_shows_stderr(client: ClientHome):
    add_host(client, host_block(client, "badproxy",
                                "ProxyCommand sh -c 'echo proxy says no >&2; exit 3'"))
    result = client.unitsh("badproxy", "-c", "is-active web")
    assert result.returncode == 1
    assert "exited with status 3" in result.stderr
    assert "proxy says no" in result.stderr
    assert "ProxyCommand" in result.stderr


def test_proxy_command_not_found(client: ClientHome):
    add_host(client, host_block(client, "missingproxy", "ProxyCommand /nonexistent/relay %h %p"))
    result = client.unitsh("missingproxy", "-c", "is-active web")
    assert result.returncode == 1
    assert "exited with status 127" in result.stderr
    assert "/nonexistent/relay" in result.stderr


# -- IdentitiesOnly ---------------------------------------------------------------------


@pytest.fixture
def strict_server(remote_host: RemoteHost) -> Iterator[SSHServer]:
    """A second sshd for the same user that closes the connection after 2 rejected keys."""
    directory = Path(tempfile.mkdtemp(prefix="um-sshd-", dir="/var/tmp"))
    server = SSHServer(directory, remote_host.user.name, extra_config="MaxAuthTries 2\n")
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def agent(client: ClientHome) -> Iterator[dict[str, str]]:
    """An ssh-agent holding three keys the server rejects, then the one it accepts."""
    if not HAS_AGENT:
        pytest.skip("ssh-agent and ssh-add are missing; install openssh-client")
    agent_socket = client.root / "agent.sock"
    process = subprocess.Popen(["ssh-agent", "-D", "-a", str(agent_socket)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    try:
        wait_for(agent_socket.exists, timeout=10, message="ssh-agent's socket")
        env = {"SSH_AUTH_SOCK": str(agent_socket)}
        keys = []
        for index in range(3):
            private, public = ed25519_key_pair()
            path = client.root / f"wrong-{index}"
            path.write_bytes(private)
            path.chmod(0o600)
            Path(f"{path}.pub").write_text(public + "\n")
            keys.append(path)
        keys.append(client.ssh_dir / "id_ed25519")
        for path in keys:
            added = subprocess.run(["ssh-add", str(path)], env={**client.env(), **env},
                                   capture_output=True, text=True, timeout=30)
            assert added.returncode == 0, added.stderr
        yield env
    finally:
        process.terminate()
        process.wait(10)


def agent_only_identity(client: ClientHome) -> None:
    """Leave only the public half of the accepted key on disk, as ~/.ssh/server.pub."""
    (client.ssh_dir / "server.pub").write_text(client.remote.client_public_key + "\n")
    (client.ssh_dir / "id_ed25519").rename(client.root / "moved-away")


def test_identities_only_offers_configured_key(client: ClientHome, strict_server: SSHServer,
                                               agent: dict[str, str]):
    agent_only_identity(client)
    client.known_hosts.write_text(f"[127.0.0.1]:{strict_server.port} {strict_server.host_public_key}\n")
    add_host(client, host_block(client, "strict", "IdentityFile ~/.ssh/server.pub", "IdentitiesOnly yes",
                                port=strict_server.port))
    result = client.unitsh("strict", "-c", "is-active web", env=agent)
    assert result.returncode == 0, result.stderr + strict_server.log()
    assert result.stdout.strip() == "active"
    assert "Failed publickey" not in strict_server.log()


def test_all_agent_keys_exceed_max_auth_tries(client: ClientHome, strict_server: SSHServer,
                                              agent: dict[str, str]):
    # The control case: without IdentityFile, the agent's keys go in the agent's order.
    agent_only_identity(client)
    client.known_hosts.write_text(f"[127.0.0.1]:{strict_server.port} {strict_server.host_public_key}\n")
    add_host(client, host_block(client, "strict", port=strict_server.port))
    result = client.unitsh("strict", "-c", "is-active web", env=agent)
    assert result.returncode == 1
    assert "SSH authentication failed" in result.stderr
    assert "(agent)" in result.stderr
    assert "Failed publickey" in strict_server.log()


def test_identities_only_filters_agent_keys(client: ClientHome, agent: dict[str, str]):
    # The configured key is one the server rejects: only IdentitiesOnly keeps the agent's others back.
    agent_only_identity(client)
    wrong = client.root / "wrong-0.pub"
    add_host(client, host_block(client, "wrongonly", f"IdentityFile {wrong}", "IdentitiesOnly yes")
             + host_block(client, "wrongfirst", f"IdentityFile {wrong}"))
    only = client.unitsh("wrongonly", "-c", "is-active web", env=agent)
    assert only.returncode == 1
    assert "(IdentitiesOnly yes): SHA256:" in only.stderr
    assert only.stderr.count("(agent)") == 1
    first = client.unitsh("wrongfirst", "-c", "is-active web", env=agent)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == "active"


def test_identities_only_without_key_in_agent(client: ClientHome, agent: dict[str, str]):
    (client.ssh_dir / "other.pub").write_text(ed25519_key_pair()[1] + "\n")
    add_host(client, host_block(client, "onlyother", "IdentityFile ~/.ssh/other.pub", "IdentitiesOnly yes"))
    result = client.unitsh("onlyother", "-c", "is-active web", env=agent)
    assert result.returncode == 1
    assert "no key to offer" in result.stderr


# -- Include, patterns, Match, tokens ------------------------------------------------------


def test_include_patterns_match_and_tokens(client: ClientHome, remote_host: RemoteHost):
    keys = client.ssh_dir / "keys"
    keys.mkdir()
    (client.ssh_dir / "id_ed25519").rename(keys / remote_host.user.name)
    included = client.ssh_dir / "config.d"
    included.mkdir()
    port, user = remote_host.server.port, remote_host.user.name
    (included / "10-blocked").write_text(f"Host inc-blocked\n    Port {remote_host.closed_port}\n")
    (included / "20-lab").write_text(
        f"Host inc-* !inc-other\n    HostName 127.0.0.1\n    Port {port}\n    User {user}\n"
        "    IdentityFile %d/.ssh/keys/%r\n"
        f"Match originalhost matched-*\n    HostName 127.0.0.1\n    Port {port}\n    User {user}\n"
        "    IdentityFile ~/.ssh/keys/%r\n"
        f"Host inc-other\n    HostName 127.0.0.1\n    Port {port}\n    User no-such-user\n")
    (client.ssh_dir / "config").write_text("Include config.d/*\n")

    for alias in ("inc-one", "matched-two"):
        result = client.unitsh(alias, "-c", "is-active web")
        assert result.returncode == 0, f"{alias}: {result.stderr}"
        assert result.stdout.strip() == "active"
    blocked = client.unitsh("inc-blocked", "-c", "is-active web")
    assert blocked.returncode == 1
    assert f"port {remote_host.closed_port}: connection refused" in blocked.stderr
    # The negated pattern skips the inc-* block, so inc-other gets User from its own block only.
    other = client.unitsh("inc-other", "-c", "is-active web")
    assert other.returncode == 1
    assert f"SSH authentication failed for no-such-user@127.0.0.1 port {port}" in other.stderr


# -- ConnectTimeout, StrictHostKeyChecking, UserKnownHostsFile -----------------------------


def test_connect_timeout_from_config(client: ClientHome):
    with socket.socket() as silent:
        # Listening but never accepting: TCP connects, and no SSH greeting comes.
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        add_host(client, f"Host hostsilent\n    HostName 127.0.0.1\n    Port {silent.getsockname()[1]}\n"
                         "    ConnectTimeout 1\n")
        started = time.monotonic()
        result = client.unitsh("hostsilent", "-c", "is-active web")
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "no SSH server answered within 1 s" in result.stderr
    assert elapsed < 10


def test_strict_host_key_checking_yes(client: ClientHome):
    client.known_hosts.write_text("")
    add_host(client, host_block(client, "strictyes", "IdentityFile ~/.ssh/id_ed25519",
                                "StrictHostKeyChecking yes"))
    result = client.unitsh("strictyes", "-c", "is-active web")
    assert result.returncode == 1
    assert "StrictHostKeyChecking yes" in result.stderr
    assert client.known_hosts.read_text() == ""
    # The command line wins over the config file.
    accepted = client.unitsh("strictyes", "--accept-new-host-key", "-c", "is-active web")
    assert accepted.returncode == 0, accepted.stderr
    assert client.remote.server.host_public_key in client.known_hosts.read_text()


def test_strict_host_key_checking_no_rejects_changed_key(client: ClientHome):
    _, other_key = ed25519_key_pair()
    client.known_hosts.write_text(f"{client.host_name} {other_key}\n")
    add_host(client, host_block(client, "strictno", "IdentityFile ~/.ssh/id_ed25519",
                                "StrictHostKeyChecking no"))
    result = client.unitsh("strictno", "-c", "is-active web")
    assert result.returncode == 1
    assert "HOST KEY MISMATCH" in result.stderr
    assert "StrictHostKeyChecking no does not accept a changed key" in result.stderr
    assert client.known_hosts.read_text() == f"{client.host_name} {other_key}\n"


def test_user_known_hosts_files(client: ClientHome):
    listed = client.ssh_dir / "listed_hosts"
    listed.write_text(f"{client.host_name} {client.remote.server.host_public_key}\n")
    add_host(client, host_block(client, "khfiles", "IdentityFile ~/.ssh/id_ed25519",
                                "UserKnownHostsFile ~/.ssh/known_%n %d/.ssh/listed_hosts"))
    result = client.unitsh("khfiles", "-c", "is-active web")
    assert result.returncode == 0, result.stderr
    assert not (client.ssh_dir / "known_khfiles").exists()

    add_host(client, host_block(client, "khnew", "IdentityFile ~/.ssh/id_ed25519",
                                "UserKnownHostsFile ~/.ssh/known_%n", "StrictHostKeyChecking accept-new"))
    result = client.unitsh("khnew", "-c", "is-active web")
    assert result.returncode == 0, result.stderr
    written = (client.ssh_dir / "known_khnew").read_text()
    assert written == f"{client.host_name} {client.remote.server.host_public_key}\n"
