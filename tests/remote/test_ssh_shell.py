"""`unitsh HOST` against a real OpenSSH server and a manager running as another user."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import threading
import time

import paramiko
import pytest
from sshclient import UNITSH, ClientHome, RemoteHost
from sshserver import ed25519_key_pair
from support import wait_for


def host_fingerprint(remote_host: RemoteHost) -> str:
    key = paramiko.Ed25519Key(filename=str(remote_host.server.host_key))
    return key.fingerprint


def main_pid(client: ClientHome, unit: str) -> int:
    result = client.unitsh("hosta", "--json", "-c", f"status {unit}")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["units"][0]["main_pid"]


# -- host keys ------------------------------------------------------------------------


def test_unknown_host_key_rejected(new_client: ClientHome, remote_host: RemoteHost):
    result = new_client.unitsh("hosta", "-c", "list")
    assert result.returncode == 1
    assert "is not in" in result.stderr
    assert host_fingerprint(remote_host) in result.stderr
    assert "--accept-new-host-key" in result.stderr
    assert not new_client.known_hosts.exists()


def test_accept_new_host_key_and_authorize(new_client: ClientHome, remote_host: RemoteHost):
    result = new_client.unitsh("hosta", "--accept-new-host-key", "-c", "is-active web")
    assert result.returncode == 1
    assert "--authorize" in result.stderr
    known = new_client.known_hosts.read_text()
    assert f"{new_client.host_name} {remote_host.server.host_public_key}" in known

    result = new_client.unitsh("hosta", "--authorize", "-c", "is-active web")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "active"
    assert "authorised this client's key" in result.stderr
    public = (new_client.unitmgr_home / "config" / "keys" / "client.pub").read_text().strip()
    assert public in remote_host.manager.authorized_keys()

    result = new_client.unitsh("hosta", "-c", "is-active web")
    assert result.returncode == 0, result.stderr
    assert known == new_client.known_hosts.read_text()


def test_changed_host_key_rejected(client: ClientHome, remote_host: RemoteHost):
    _, other_key = ed25519_key_pair()
    client.known_hosts.write_text(f"{client.host_name} {other_key}\n")
    result = client.unitsh("hosta", "--accept-new-host-key", "-c", "list")
    assert result.returncode == 1
    assert "HOST KEY MISMATCH" in result.stderr
    assert host_fingerprint(remote_host) in result.stderr
    assert "ssh-keygen -R" in result.stderr
    assert client.known_hosts.read_text() == f"{client.host_name} {other_key}\n"


# -- commands over SSH ------------------------------------------------------------------


def test_restart_over_ssh(client: ClientHome):
    before = main_pid(client, "web")
    assert before > 0
    result = client.unitsh("hosta", "-c", "restart web")
    assert result.returncode == 0, result.stderr
    after = main_pid(client, "web")
    assert after > 0
    assert after != before


def test_logs_over_ssh(client: ClientHome):
    result = client.unitsh("hosta", "-c", "logs -n 20 web")
    assert result.returncode == 0, result.stderr
    assert "web started" in result.stdout


def test_proxy_jump(client: ClientHome):
    result = client.unitsh("viajump", "-c", "is-active web")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "active"


# -- errors ---------------------------------------------------------------------------


def test_ssh_authentication_failed(client: ClientHome):
    private, _ = ed25519_key_pair()
    (client.ssh_dir / "id_ed25519").write_bytes(private)
    result = client.unitsh("hosta", "-c", "list")
    assert result.returncode == 1
    assert "SSH authentication failed" in result.stderr


def test_unitmgr_not_installed(client: ClientHome):
    result = client.unitsh("hosta", "-c", "list", remote_command=False)
    assert result.returncode == 1
    assert "unitmgr is not installed on hosta" in result.stderr
    assert "--remote-command" in result.stderr


def test_manager_not_running(client: ClientHome, remote_host: RemoteHost):
    command = f"env UNITMGR_HOME=/nonexistent {remote_host.manager.command}"
    result = client.unitsh("hosta", "--remote-command", command, "-c", "list", remote_command=False)
    assert result.returncode == 1
    assert "no unitmgr manager is running for that user on hosta" in result.stderr


# -- many hosts -----------------------------------------------------------------------


def test_fanout_with_unreachable_host(client: ClientHome):
    before = main_pid(client, "web")
    started = time.monotonic()
    # Both aliases reach one manager, so the other host's restart of web may still run after this
    # host's: "is-active web" could print "deactivating", and "list" without --all could omit web.
    result = client.unitsh("-c", "restart web; list --all", "hosta", "hostb", "hostdown", "--connect-timeout", "3")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < 30
    lines = result.stdout.splitlines()
    assert any(line.startswith("hosta: ") and "web.service" in line for line in lines), result.stdout + result.stderr
    assert any(line.startswith("hostb: ") and "web.service" in line for line in lines), result.stdout + result.stderr
    assert not any(line.startswith("hostdown: ") for line in lines)
    assert any(line.startswith("hostdown: unitsh: cannot connect") for line in result.stderr.splitlines())
    summary = [line for line in result.stdout.splitlines() if line.startswith("== ")]
    assert summary[0].startswith("== hosta: ok (exit status 0"), result.stdout + result.stderr
    assert summary[1].startswith("== hostb: ok (exit status 0"), result.stdout + result.stderr
    assert summary[2].startswith("== hostdown: FAILED (exit status 1")
    assert main_pid(client, "web") != before


def test_fanout_json(client: ClientHome):
    result = client.unitsh("--json", "-c", "is-active web", "hosta", "hostb")
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    outputs = {obj["host"]: obj["output"] for obj in objects if "output" in obj}
    assert set(outputs) == {"hosta", "hostb"}
    assert all(obj["units"][0]["active_state"] == "active" for obj in outputs.values())
    summaries = [obj for obj in objects if "exit_status" in obj]
    assert [(s["host"], s["exit_status"]) for s in summaries] == [("hosta", 0), ("hostb", 0)]


def test_fanout_silent_host_bounded_by_timeout(client: ClientHome):
    with socket.socket() as silent:
        # A listening socket that never accepts: TCP connects, but no SSH greeting ever comes.
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        with open(client.ssh_dir / "config", "a") as config:
            config.write(f"Host hostsilent\n    HostName 127.0.0.1\n    Port {silent.getsockname()[1]}\n")
        started = time.monotonic()
        result = client.unitsh("-c", "is-active web", "hosta", "hostsilent", "--connect-timeout", "1")
        elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert "hosta: active" in result.stdout.splitlines()
    assert "no SSH server answered within 1 s" in result.stderr
    assert result.stderr.startswith("hostsilent: unitsh: cannot connect")
    # paramiko alone would wait 15 s for the greeting.
    assert elapsed < 10


# -- ssh settings ---------------------------------------------------------------------


def test_commands_from_stdin(client: ClientHome):
    result = client.unitsh("hosta", input="is-active web\nis-active nosuch\n")
    assert result.returncode == 3
    assert result.stdout.splitlines() == ["active", "inactive"]


def test_hashed_known_hosts_entry(client: ClientHome, remote_host: RemoteHost):
    hashed = paramiko.HostKeys.hash_host(client.host_name)
    client.known_hosts.write_text(f"{hashed} {remote_host.server.host_public_key}\n")
    result = client.unitsh("hosta", "-c", "is-active web")
    assert result.returncode == 0, result.stderr
    assert client.known_hosts.read_text().count("\n") == 1


@pytest.mark.skipif(not (shutil.which("ssh-agent") and shutil.which("ssh-add")),
                    reason="ssh-agent and ssh-add are missing; install openssh-client")
def test_authentication_through_agent(client: ClientHome, tmp_path):
    identity = client.ssh_dir / "id_ed25519"
    agent_socket = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(agent_socket)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for(agent_socket.exists, timeout=10, message="ssh-agent's socket")
        env = {"SSH_AUTH_SOCK": str(agent_socket)}
        added = subprocess.run(["ssh-add", str(identity)], env={**client.env(), **env},
                               capture_output=True, text=True, timeout=30)
        assert added.returncode == 0, added.stderr
        identity.rename(client.root / "moved-away")
        (client.ssh_dir / "config").write_text(
            (client.ssh_dir / "config").read_text().replace("    IdentityFile ~/.ssh/id_ed25519\n", ""))
        result = client.unitsh("hosta", "-c", "is-active web", env=env)
        without_agent = client.unitsh("hosta", "-c", "is-active web")
    finally:
        agent.terminate()
        agent.wait(10)
    assert result.returncode == 0, result.stderr
    assert without_agent.returncode == 1
    assert "SSH authentication failed" in without_agent.stderr


def test_fanout_commands_from_stdin(client: ClientHome):
    result = client.unitsh("hosta", "hostb", input="is-active web\n")
    assert result.returncode == 0, result.stderr
    assert sorted(line for line in result.stdout.splitlines() if not line.startswith("== ")) == [
        "hosta: active", "hostb: active"]


def test_logs_follow_over_ssh(client: ClientHome):
    follower = subprocess.Popen([*UNITSH, "--remote-command", client.remote.manager.command, "hosta",
                                 "-c", "logs -f -n 1 web"], env=client.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(follower.stdout.readline, "")), daemon=True)
        reader.start()
        wait_for(lambda: any("web started" in line for line in lines), timeout=20,
                 message="the last log line of web")
        seen = len(lines)
        result = client.unitsh("hosta", "-c", "restart web")
        assert result.returncode == 0, result.stderr
        wait_for(lambda: any("web started" in line for line in lines[seen:]), timeout=20,
                 message="the log line of the restarted web")
        follower.send_signal(signal.SIGINT)
        assert follower.wait(timeout=20) == 0, follower.stderr.read()
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
