"""Reading ~/.ssh/config and choosing keys, without an SSH server."""

from __future__ import annotations

import io
from pathlib import Path

import paramiko
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import BestAvailableEncryption, Encoding, PrivateFormat
from sshserver import ed25519_key_pair
from unitmgr.shell.sshauth import key_sources
from unitmgr.shell.sshconfig import SSHError, SSHOptions, expand_tokens, host_settings, parse_target


def options_for(tmp_path: Path, text: str) -> SSHOptions:
    config = tmp_path / "config"
    config.write_text(text)
    return SSHOptions(config_file=config, known_hosts=tmp_path / "known_hosts")


def settings_of(tmp_path: Path, text: str, host: str = "web"):
    return host_settings(parse_target(host), options_for(tmp_path, text))


def test_include_relative_glob(tmp_path: Path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a").write_text("Host web\n    User from-a\n")
    (tmp_path / "conf.d" / "b").write_text("Host web\n    User from-b\n    Port 2201\n")
    settings = settings_of(tmp_path, "Include conf.d/*\nHost *\n    Port 2299\n")
    assert settings.user == "from-a"
    assert settings.port == 2201


def test_include_keeps_enclosing_block(tmp_path: Path):
    (tmp_path / "other").write_text("Host other\n    User other-user\n")
    text = "Host web\n    Include other\n    User web-user\n"
    assert settings_of(tmp_path, text).user == "web-user"
    assert settings_of(tmp_path, text, "other").user == "other-user"


def test_include_loop_rejected(tmp_path: Path):
    with pytest.raises(SSHError, match="nests more than 16 files"):
        settings_of(tmp_path, "Include config\n")


def test_include_missing_file_ignored(tmp_path: Path):
    assert settings_of(tmp_path, "Include nothing-here/*\nHost web\n    Port 2202\n").port == 2202


@pytest.mark.parametrize(("value", "mode"), [
    ("yes", "yes"), ("ask", "ask"), ("accept-new", "accept-new"), ("no", "no"), ("off", "no"), ("YES", "yes"),
])
def test_strict_host_key_checking_values(tmp_path: Path, value: str, mode: str):
    assert settings_of(tmp_path, f"StrictHostKeyChecking {value}\n").host_key_checking == mode


def test_strict_host_key_checking_invalid(tmp_path: Path):
    with pytest.raises(SSHError, match="invalid StrictHostKeyChecking 'maybe' for web"):
        settings_of(tmp_path, "StrictHostKeyChecking maybe\n")


def test_connect_timeout_sources(tmp_path: Path):
    assert settings_of(tmp_path, "ConnectTimeout 12\n").connect_timeout == 12
    assert settings_of(tmp_path, "").connect_timeout == 5
    options = options_for(tmp_path, "ConnectTimeout 12\n")
    options.connect_timeout = 3
    assert host_settings(parse_target("web"), options).connect_timeout == 3
    with pytest.raises(SSHError, match="invalid ConnectTimeout '1.5'"):
        settings_of(tmp_path, "ConnectTimeout 1.5\n")


def test_identities_only_invalid(tmp_path: Path):
    with pytest.raises(SSHError, match="invalid IdentitiesOnly 'sure'"):
        settings_of(tmp_path, "IdentitiesOnly sure\n")


def test_proxy_command_tokens(tmp_path: Path):
    settings = settings_of(tmp_path, "Host web\n    HostName 10.9.8.7\n    Port 2200\n    User ann\n"
                                     "    ProxyCommand relay %h %p %r\n")
    assert settings.proxy_command == "relay 10.9.8.7 2200 ann"


def test_proxy_command_none_and_jump(tmp_path: Path):
    assert settings_of(tmp_path, "Host web\n    ProxyCommand none\nHost *\n    ProxyCommand relay\n"
                       ).proxy_command is None
    both = settings_of(tmp_path, "Host web\n    ProxyJump bastion\n    ProxyCommand relay %h\n")
    assert both.proxy_jump == "bastion"
    assert both.proxy_command is None


def test_user_known_hosts_file_tokens(tmp_path: Path):
    settings = settings_of(tmp_path, "Host web\n    HostName 127.0.0.1\n    Port 2200\n"
                                     "    UserKnownHostsFile /kh/%n_%h_%p %d/second 100%%\n")
    assert settings.known_hosts_files == (Path("/kh/web_127.0.0.1_2200"), Path.home() / "second",
                                          Path("100%"))
    assert settings.known_hosts == Path("/kh/web_127.0.0.1_2200")


def test_unknown_token_rejected():
    with pytest.raises(SSHError, match="unknown token %k"):
        expand_tokens("~/.ssh/%k", {"%h": "web"})


def test_match_exec_needs_invoke(tmp_path: Path):
    try:
        import invoke  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("invoke is installed, so paramiko runs Match exec")
    with pytest.raises(SSHError, match="Match exec"):
        settings_of(tmp_path, "Match exec true\n    User x\n")


def test_negated_host_pattern(tmp_path: Path):
    text = "Host *.lab !db.lab\n    User lab-user\n"
    assert settings_of(tmp_path, text, "web.lab").user == "lab-user"
    assert settings_of(tmp_path, text, "db.lab").user != "lab-user"


# -- which keys are offered ---------------------------------------------------------


def write_key(path: Path) -> paramiko.PKey:
    private, _ = ed25519_key_pair()
    path.write_bytes(private)
    path.chmod(0o600)
    return paramiko.Ed25519Key.from_private_key(io.StringIO(private.decode()))


def offered(settings, agent_keys) -> list[bytes]:
    return [source.pkey.asbytes() for source in key_sources(settings, tuple(agent_keys))]


def test_key_order_configured_first(tmp_path: Path):
    configured = write_key(tmp_path / "configured")
    agent_a, agent_b = write_key(tmp_path / "a"), write_key(tmp_path / "b")
    settings = settings_of(tmp_path, f"IdentityFile {tmp_path / 'configured'}\n")
    assert offered(settings, [agent_a, agent_b]) == [configured.asbytes(), agent_a.asbytes(), agent_b.asbytes()]


def test_key_order_identities_only(tmp_path: Path):
    write_key(tmp_path / "configured")
    agent_a = write_key(tmp_path / "a")
    settings = settings_of(tmp_path, f"IdentityFile {tmp_path / 'configured'}\nIdentitiesOnly yes\n")
    assert len(offered(settings, [agent_a])) == 1
    assert offered(settings, [agent_a]) != [agent_a.asbytes()]


def test_key_public_half_uses_agent(tmp_path: Path):
    in_agent = write_key(tmp_path / "in-agent")
    other = write_key(tmp_path / "other")
    (tmp_path / "public.pub").write_text(f"{in_agent.get_name()} {in_agent.get_base64()}\n")
    settings = settings_of(tmp_path, f"IdentityFile {tmp_path / 'public.pub'}\nIdentitiesOnly yes\n")
    sources = key_sources(settings, (other, in_agent))
    assert [source.pkey for source in sources] == [in_agent]


def test_encrypted_key_skipped(tmp_path: Path):
    path = tmp_path / "locked"
    path.write_bytes(Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.OpenSSH, BestAvailableEncryption(b"secret")))
    settings = settings_of(tmp_path, f"IdentityFile {path}\nIdentitiesOnly yes\n")
    assert key_sources(settings, ()) == []
