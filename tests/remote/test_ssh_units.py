"""The parts of the remote shell that need no SSH server: targets, ssh config, output labels."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import paramiko
import pytest
from unitmgr.shell.fanout import LabelledStream
from unitmgr.shell.remote import RemoteEndpoint, loopback_address
from unitmgr.shell.ssh import SSHError, SSHOptions, Target, append_known_host, host_settings, parse_target


@pytest.mark.parametrize(("text", "expected"), [
    ("web1", Target("web1")),
    ("ann@web1", Target("web1", user="ann")),
    ("ann@web1:2222", Target("web1", user="ann", port=2222)),
    ("web1:22", Target("web1", port=22)),
    ("[::1]:2222", Target("::1", port=2222)),
    ("ann@[fe80::1]", Target("fe80::1", user="ann")),
    ("::1", Target("::1")),
    ("a@b@web1", Target("web1", user="a@b")),
])
def test_parse_target(text: str, expected: Target):
    assert parse_target(text) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("web1:0", "invalid port '0'"),
    ("web1:ssh", "invalid port 'ssh'"),
    ("ann@", "the host name is empty"),
    ("[::1]x", "invalid host"),
])
def test_parse_target_rejects(text: str, message: str):
    with pytest.raises(ValueError, match=message):
        parse_target(text)


def write_config(tmp_path: Path, text: str) -> SSHOptions:
    config = tmp_path / "config"
    config.write_text(text)
    return SSHOptions(config_file=config, known_hosts=tmp_path / "known_hosts")


def test_host_settings_from_config(tmp_path: Path):
    options = write_config(tmp_path, (
        "Host web\n    HostName 10.0.0.5\n    User deploy\n    Port 2200\n"
        "    IdentityFile /keys/web\n    ProxyJump bastion\n"
        "Host *\n    User fallback\n"))
    settings = host_settings(parse_target("web"), options)
    assert settings.hostname == "10.0.0.5"
    assert settings.user == "deploy"
    assert settings.port == 2200
    assert settings.identity_files == ("/keys/web",)
    assert settings.proxy_jump == "bastion"
    assert settings.known_hosts_name == "[10.0.0.5]:2200"


def test_host_settings_command_line_wins(tmp_path: Path):
    options = write_config(tmp_path, "Host web\n    User deploy\n    Port 2200\n    ProxyJump none\n")
    settings = host_settings(parse_target("ann@web:22"), options)
    assert settings.user == "ann"
    assert settings.port == 22
    assert settings.proxy_jump is None
    assert settings.known_hosts_name == "web"


def test_host_settings_without_config(tmp_path: Path):
    options = SSHOptions(config_file=tmp_path / "missing", known_hosts=tmp_path / "known_hosts")
    settings = host_settings(parse_target("web"), options)
    assert settings.hostname == "web"
    assert settings.port == 22
    assert settings.user


def test_append_known_host(tmp_path: Path):
    known_hosts = tmp_path / "ssh" / "known_hosts"
    host_key = paramiko.RSAKey.generate(1024)
    append_known_host(known_hosts, "[127.0.0.1]:2222", host_key)
    assert known_hosts.stat().st_mode & 0o777 == 0o600
    assert known_hosts.parent.stat().st_mode & 0o777 == 0o700
    keys = paramiko.HostKeys(str(known_hosts))
    assert keys.lookup("[127.0.0.1]:2222")["ssh-rsa"] == host_key


@pytest.mark.parametrize(("endpoints", "expected"), [
    (["ipc:///run/x/control.sock"], None),
    (["ipc:///x", "tcp://[::ffff:127.0.0.1]:5555"], ("127.0.0.1", 5555)),
    (["tcp://127.0.0.1:5555"], ("127.0.0.1", 5555)),
    (["tcp://[::1]:5555"], ("::1", 5555)),
    (["tcp://0.0.0.0:5555"], ("127.0.0.1", 5555)),
    (["tcp://192.0.2.7:5555"], None),
    (["tcp://web.example:5555"], None),
])
def test_loopback_endpoint(endpoints: list[str], expected: tuple[str, int] | None):
    assert RemoteEndpoint(server_key=b"", endpoints=tuple(endpoints)).loopback_tcp() == expected


def test_loopback_address_names():
    assert loopback_address("localhost") == "127.0.0.1"
    assert loopback_address("::") == "::1"


def test_labelled_stream_whole_lines():
    target = io.StringIO()
    stream = LabelledStream(target, "web1", threading.Lock())
    stream.write("first li")
    assert target.getvalue() == ""
    stream.write("ne\nsecond\n\nthird")
    assert target.getvalue() == "web1: first line\nweb1: second\nweb1: \n"
    stream.flush()
    assert target.getvalue().endswith("web1: third\n")


def test_labelled_stream_json():
    target = io.StringIO()
    stream = LabelledStream(target, "web1", threading.Lock(), json_lines=True)
    stream.write('{"units": []}\nnot json\n')
    assert target.getvalue() == '{"host": "web1", "output": {"units": []}}\nweb1: not json\n'


def test_host_settings_invalid_port(tmp_path: Path):
    options = write_config(tmp_path, "Host web\n    Port ssh\n")
    with pytest.raises(SSHError, match="invalid Port 'ssh' for web"):
        host_settings(parse_target("web"), options)


def test_host_settings_accept_new(tmp_path: Path):
    options = write_config(tmp_path, "Host web\n    StrictHostKeyChecking accept-new\n")
    assert host_settings(parse_target("web"), options).accept_new_host_key
    assert not host_settings(parse_target("other"), options).accept_new_host_key


def test_append_known_host_after_unterminated_line(tmp_path: Path):
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text("other ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl")
    append_known_host(known_hosts, "web", paramiko.RSAKey.generate(1024))
    lines = known_hosts.read_text().splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("web ssh-rsa ")
