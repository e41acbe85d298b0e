"""The remote client in this process: both channel kinds, and a connection lost mid-command."""

from __future__ import annotations

import threading

import pytest
from sshclient import ClientHome, RemoteHost
from sshserver import wait_for_process
from unitmgr.manager import protocol
from unitmgr.manager.paths import resolve
from unitmgr.shell import ssh
from unitmgr.shell.client import ClientError
from unitmgr.shell.remote import RemoteOptions, open_remote_client, remote_connector


@pytest.fixture
def options(client: ClientHome, remote_host: RemoteHost, monkeypatch: pytest.MonkeyPatch) -> RemoteOptions:
    for name, value in client.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return RemoteOptions(remote_command=remote_host.manager.command, connect_timeout=5, timeout=10,
                         paths=resolve())


@pytest.mark.parametrize(("direct_tcp", "kind"), [(True, "direct-tcpip"), (False, "bridge")])
def test_channel_kinds(options: RemoteOptions, direct_tcp: bool, kind: str):
    options.direct_tcp = direct_tcp
    with open_remote_client("hosta", options) as client:
        assert client.channel_kind == kind
        hello = client.request("hello")
        status = client.request("status", {"units": ["web"], "lines": 0})
    assert hello["protocol"] == protocol.PROTOCOL_VERSION
    assert status["units"][0]["active_state"] == "active"


def test_connection_lost_mid_command(options: RemoteOptions, remote_host: RemoteHost):
    options.direct_tcp = False
    options.timeout = 60
    errors: list[ClientError] = []
    client = open_remote_client("hosta", options)

    def start_slow() -> None:
        try:
            client.request("start", {"units": ["slow"]})
        except ClientError as exc:
            errors.append(exc)

    thread = threading.Thread(target=start_slow)
    try:
        thread.start()
        wait_for_process(remote_host.user, "sleep 30")
        ssh.close(client.connection)
        thread.join(timeout=20)
        assert not thread.is_alive()
    finally:
        client.close()
    assert len(errors) == 1
    assert errors[0].kind == "connection-lost"
    assert "the SSH connection to hosta was lost" in errors[0].message

    with open_remote_client("hosta", options) as again:
        result = again.request("stop", {"units": ["slow"]})
    assert result["jobs"][0]["result"] == "done"


def test_connector_shares_ssh_connection(options: RemoteOptions):
    connect = remote_connector("hosta", options)
    first = connect()
    second = connect()
    try:
        assert second.link is first.link
        first.close()
        assert second.request("hello")["protocol"] == protocol.PROTOCOL_VERSION
    finally:
        first.close()
        second.close()
    assert not first.link.alive()

    third = connect()
    try:
        assert third.link is not first.link
        assert third.request("hello")["protocol"] == protocol.PROTOCOL_VERSION
    finally:
        third.close()


def test_failing_bridge_reported(options: RemoteOptions, remote_host: RemoteHost):
    # A wrapper whose `endpoint` works but whose `bridge` fails, as with a stale endpoint file.
    script = (f'if [ "$1" = bridge ]; then echo "bridge failed here" >&2; exit 1; fi; '
              f'exec {remote_host.manager.command} "$@"')
    options.remote_command = f"sh -c '{script}' unitmgr"
    options.direct_tcp = False
    options.connect_timeout = 2
    with pytest.raises(ClientError) as caught:
        open_remote_client("hosta", options)
    assert caught.value.kind == "no-manager", caught.value.message
    assert "cannot reach the manager on hosta through SSH" in caught.value.message
    assert "bridge failed here" in caught.value.message
