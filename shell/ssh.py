"""SSH connections for a remote `unitsh`, with paramiko.

`connect(target, options)` opens an authenticated `paramiko.SSHClient` the way
`ssh TARGET` would: it reads ~/.ssh/config (HostName, User, Port,
IdentityFile, ProxyJump, UserKnownHostsFile), offers the keys of the SSH agent
and the identity files, and checks the host key against known_hosts. An
unknown host key is accepted only after a yes at the prompt or with
`accept_new_host_key`; a changed one is always rejected.

Only the remote path of the shell imports this module, because importing
paramiko costs about 200 ms.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from unitmgr.shell.client import ClientError

log = logging.getLogger(__name__)
# paramiko logs transport failures that connect() also raises; without a handler
# they would reach stderr through logging's last-resort handler.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

DEFAULT_SSH_PORT = 22
MAX_JUMPS = 8  # ProxyJump chains longer than this are rejected as a likely loop


class SSHError(ClientError):
    """The SSH part of a remote connection failed.

    Besides the kinds of ClientError, `kind` is one of "ssh-connect",
    "ssh-auth", "host-key-unknown", "host-key-changed", "not-installed"."""


@dataclass(frozen=True)
class Target:
    """A host as given on the command line: `[user@]host[:port]`."""

    host: str
    user: str | None = None
    port: int | None = None

    def __str__(self) -> str:
        return self.host


def parse_target(text: str) -> Target:
    """Parse `[user@]host[:port]`; an IPv6 address with a port goes in brackets."""
    user, _, rest = text.rpartition("@")
    port_text = ""
    if rest.startswith("["):
        host, _, tail = rest[1:].partition("]")
        if tail and not tail.startswith(":"):
            raise ValueError(f"invalid host {text!r}: use [user@]host[:port] or [user@][ipv6]:port")
        port_text = tail[1:]
    elif rest.count(":") == 1:
        host, _, port_text = rest.partition(":")
    else:
        host = rest  # a host name, or a bare IPv6 address
    if not host:
        raise ValueError(f"invalid host {text!r}: the host name is empty")
    port = None
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"invalid port {port_text!r} in {text!r}: use a number from 1 to 65535")
        port = int(port_text)
    return Target(host=host, user=user or None, port=port)


@dataclass
class SSHOptions:
    """How to open SSH connections; the defaults match `ssh` for the current user."""

    accept_new_host_key: bool = False
    # Asks the user about an unknown host key and returns True for yes; None when no user can be asked.
    ask: Callable[[str], bool] | None = None
    connect_timeout: float = 5.0
    config_file: Path = field(default_factory=lambda: Path("~/.ssh/config").expanduser())
    known_hosts: Path = field(default_factory=lambda: Path("~/.ssh/known_hosts").expanduser())


@dataclass(frozen=True)
class HostSettings:
    """The settings for one host after ~/.ssh/config is applied."""

    alias: str
    hostname: str
    port: int
    user: str
    identity_files: tuple[str, ...]
    proxy_jump: str | None
    known_hosts: Path
    accept_new_host_key: bool = False  # StrictHostKeyChecking accept-new in the config

    @property
    def known_hosts_name(self) -> str:
        """The host's name in known_hosts: `host`, or `[host]:port` off port 22."""
        if self.port == DEFAULT_SSH_PORT:
            return self.hostname
        return f"[{self.hostname}]:{self.port}"


def load_config(path: Path) -> paramiko.SSHConfig:
    try:
        return paramiko.SSHConfig.from_path(str(path))
    except FileNotFoundError:
        return paramiko.SSHConfig()
    except (OSError, paramiko.ConfigParseError) as exc:
        raise SSHError("ssh-connect", f"cannot read the SSH configuration {path}: {exc}; "
                       "fix or move that file") from None


def host_settings(target: Target, options: SSHOptions) -> HostSettings:
    """Apply ~/.ssh/config to `target`; values given on the command line win."""
    entry = load_config(options.config_file).lookup(target.host)
    port = target.port or _config_port(entry.get("port", str(DEFAULT_SSH_PORT)), target.host, options)
    user = target.user or entry.get("user") or _local_user()
    jump = entry.get("proxyjump")
    if jump and jump.lower() == "none":
        jump = None
    known_hosts = options.known_hosts
    if "userknownhostsfile" in entry:
        known_hosts = Path(entry["userknownhostsfile"].split()[0]).expanduser()
    # "accept-new" (and "no", which OpenSSH treats the same way for new keys)
    # accepts unknown keys; a changed key is rejected whatever the setting.
    accept_new = entry.get("stricthostkeychecking", "").lower() in ("accept-new", "no", "off")
    return HostSettings(
        alias=target.host, hostname=entry.get("hostname", target.host), port=port, user=user,
        identity_files=tuple(entry.get("identityfile", [])), proxy_jump=jump,
        known_hosts=known_hosts, accept_new_host_key=accept_new,
    )


def _config_port(text: str, host: str, options: SSHOptions) -> int:
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    raise SSHError("ssh-connect", f"invalid Port {text!r} for {host} in {options.config_file}; "
                   "use a number from 1 to 65535")


def _local_user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return os.environ.get("USER", "")


# -- host keys -------------------------------------------------------------------


def describe_key(key: paramiko.PKey) -> str:
    """Return the key type and fingerprint as ssh shows them: `ED25519 key SHA256:...`."""
    return f"{key.algorithm_name} key {key.fingerprint}"


class HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Decide about a host key that known_hosts does not contain.

    The key is accepted after a yes from `options.ask`, or at once with
    `accept_new_host_key`, and then appended to the known_hosts file."""

    def __init__(self, settings: HostSettings, options: SSHOptions):
        self.settings = settings
        self.options = options

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        name = self.settings.known_hosts_name
        if not (self.options.accept_new_host_key or self.settings.accept_new_host_key):
            question = (f"The authenticity of host '{name}' can't be established.\n"
                        f"{key.algorithm_name} key fingerprint is {key.fingerprint}.\n"
                        "Add it to known_hosts? [y/N] ")
            if self.options.ask is None or not self.options.ask(question):
                raise SSHError(
                    "host-key-unknown",
                    f"the host key of {name} is not in {self.settings.known_hosts} "
                    f"({describe_key(key)}); check that fingerprint with the host's owner, then "
                    "run again with --accept-new-host-key, or answer yes in the interactive shell",
                )
        append_known_host(self.settings.known_hosts, name, key)
        client.get_host_keys().add(name, key.get_name(), key)
        print(f"unitsh: added {name} ({describe_key(key)}) to {self.settings.known_hosts}",
              file=sys.stderr)


def append_known_host(path: Path, name: str, key: paramiko.PKey) -> None:
    """Append one line to known_hosts, creating ~/.ssh (0700) and the file (0600) if missing."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    line = f"{name} {key.get_name()} {key.get_base64()}\n"
    try:
        if path.stat().st_size > 0 and not path.read_bytes().endswith(b"\n"):
            line = "\n" + line
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as f:
        f.write(line)
    log.info("added host key of %s to %s", name, path)


def _changed_key_error(settings: HostSettings, exc: paramiko.BadHostKeyException) -> SSHError:
    name = settings.known_hosts_name
    return SSHError(
        "host-key-changed",
        f"HOST KEY MISMATCH for {name}: the host sent {describe_key(exc.key)}, but "
        f"{settings.known_hosts} lists {describe_key(exc.expected_key)}. Someone may be "
        "intercepting the connection, or the host was reinstalled. The connection was refused; "
        f"if the new key is right, remove the old one with: ssh-keygen -R '{name}'",
    )


# -- connecting ------------------------------------------------------------------


def connect(target: Target | str, options: SSHOptions) -> paramiko.SSHClient:
    """Open an authenticated SSH connection to `target`; raise SSHError on failure."""
    if isinstance(target, str):
        target = _checked_target(target)
    return _connect(target, options, depth=0)


def _checked_target(text: str) -> Target:
    try:
        return parse_target(text)
    except ValueError as exc:
        raise SSHError("ssh-connect", str(exc)) from None


def _connect(target: Target, options: SSHOptions, depth: int) -> paramiko.SSHClient:
    settings = host_settings(target, options)
    sock = None
    jump_client = None
    if settings.proxy_jump:
        if depth >= MAX_JUMPS:
            raise SSHError("ssh-connect", f"ProxyJump for {settings.alias} nests more than {MAX_JUMPS} "
                           "hosts; check ~/.ssh/config for a loop")
        jump_client, sock = _open_jump(settings, options, depth)
    client = paramiko.SSHClient()
    _load_host_keys(client, settings)
    client.set_missing_host_key_policy(HostKeyPolicy(settings, options))
    try:
        _connect_client(client, settings, options, sock)
    except BaseException:
        client.close()
        if jump_client is not None:
            jump_client.close()
        raise
    transport = client.get_transport()
    assert transport is not None
    # Without TCP_NODELAY every small ZeroMQ message can wait for a delayed ACK.
    if isinstance(transport.sock, socket.socket):
        transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if jump_client is not None:
        client._unitsh_jump = jump_client  # type: ignore[attr-defined]  # closed with the client
    log.debug("connected to %s@%s port %d", settings.user, settings.hostname, settings.port)
    return client


def close(client: paramiko.SSHClient) -> None:
    """Close an SSH connection and the ProxyJump connections it goes through."""
    client.close()
    jump = getattr(client, "_unitsh_jump", None)
    if jump is not None:
        close(jump)


def _open_jump(settings: HostSettings, options: SSHOptions, depth: int,
               ) -> tuple[paramiko.SSHClient, paramiko.Channel]:
    # "ProxyJump a,b" reaches b through a, then the target through b.
    hops = [hop.strip() for hop in settings.proxy_jump.split(",") if hop.strip()]  # type: ignore[union-attr]
    first = _checked_target(hops[0].removeprefix("ssh://"))
    jump = _connect(first, options, depth + 1)
    for hop in hops[1:]:
        # NOTE: the hops after the first are reached directly from the first hop,
        # without their own ProxyJump settings.
        next_target = _checked_target(hop.removeprefix("ssh://"))
        jump = _connect_through(jump, next_target, options)
    try:
        channel = jump.get_transport().open_channel(  # type: ignore[union-attr]
            "direct-tcpip", (settings.hostname, settings.port), ("127.0.0.1", 0),
            timeout=options.connect_timeout)
    except (paramiko.SSHException, OSError) as exc:
        close(jump)
        raise SSHError("ssh-connect", f"the jump host {hops[-1]} cannot reach {settings.hostname} "
                       f"port {settings.port}: {exc}; check ProxyJump in ~/.ssh/config") from None
    return jump, channel


def _connect_through(jump: paramiko.SSHClient, target: Target, options: SSHOptions) -> paramiko.SSHClient:
    settings = host_settings(target, options)
    client = paramiko.SSHClient()
    _load_host_keys(client, settings)
    client.set_missing_host_key_policy(HostKeyPolicy(settings, options))
    try:
        channel = jump.get_transport().open_channel(  # type: ignore[union-attr]
            "direct-tcpip", (settings.hostname, settings.port), ("127.0.0.1", 0),
            timeout=options.connect_timeout)
        _connect_client(client, settings, options, channel)
    except BaseException:
        client.close()
        close(jump)
        raise
    client._unitsh_jump = jump  # type: ignore[attr-defined]
    return client


def _load_host_keys(client: paramiko.SSHClient, settings: HostSettings) -> None:
    for path in (Path("/etc/ssh/ssh_known_hosts"), settings.known_hosts):
        try:
            # Keys loaded as "system" keys are never saved back, so the user's file stays as it is.
            client.load_system_host_keys(str(path))
        except FileNotFoundError:
            continue
        except (OSError, paramiko.SSHException) as exc:
            raise SSHError("ssh-connect", f"cannot read {path}: {exc}; fix or move that file") from None


def _connect_client(client: paramiko.SSHClient, settings: HostSettings, options: SSHOptions,
                    sock: paramiko.Channel | None) -> None:
    timeout = options.connect_timeout
    try:
        client.connect(
            settings.hostname, settings.port, username=settings.user,
            key_filename=list(settings.identity_files) or None, allow_agent=True, look_for_keys=True,
            sock=sock, timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
            channel_timeout=timeout)
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise _connect_error(settings, timeout, exc) from None


def _connect_error(settings: HostSettings, timeout: float, exc: BaseException) -> SSHError:
    """Turn a failure of SSHClient.connect into an error that says what to do."""
    where = f"{settings.user}@{settings.hostname} port {settings.port}"
    if isinstance(exc, paramiko.BadHostKeyException):
        return _changed_key_error(settings, exc)
    if isinstance(exc, paramiko.AuthenticationException):
        return SSHError(
            "ssh-auth",
            f"SSH authentication failed for {where} ({exc}); check that one of your keys (ssh-add -l, "
            "IdentityFile in ~/.ssh/config) is in that user's ~/.ssh/authorized_keys")
    if str(exc) == "No authentication methods available":
        return SSHError(
            "ssh-auth",
            f"SSH authentication failed for {where}: no key to offer (no SSH agent, and no identity "
            "file in ~/.ssh or IdentityFile in ~/.ssh/config); add a key with ssh-add")
    if isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError):
        reason = "connection refused"
    elif isinstance(exc, TimeoutError):
        reason = f"timed out after {timeout:g} s (raise it with --connect-timeout)"
    elif isinstance(exc, socket.gaierror):
        return SSHError("ssh-connect", f"cannot resolve {settings.hostname}: {exc.strerror}; "
                        "check the host name and HostName in ~/.ssh/config")
    else:
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        # paramiko 5 reports a missing greeting as "No existing session" once the
        # banner read has timed out in the transport thread.
        if "banner" in reason or reason == "No existing session":
            reason = f"no SSH server answered within {timeout:g} s"
    return SSHError("ssh-connect", f"cannot connect to {where}: {reason}; check the host name, "
                    "the port and that sshd runs there")


# -- remote commands -------------------------------------------------------------


@dataclass(frozen=True)
class CommandResult:
    status: int  # -1 when the server sent no exit status
    stdout: bytes
    stderr: bytes

    def error_text(self) -> str:
        text = self.stderr.decode("utf-8", "replace").strip() or self.stdout.decode("utf-8", "replace")
        return " ".join(text.split())


def run_command(client: paramiko.SSHClient, command: str, stdin: bytes = b"",
                timeout: float = 30.0) -> CommandResult:
    """Run `command` on the remote host through an exec channel and wait for it."""
    transport = client.get_transport()
    if transport is None or not transport.is_active():
        raise ClientError("connection-lost", "the SSH connection was closed; run unitsh again")
    try:
        channel = transport.open_session(timeout=timeout)
        channel.settimeout(timeout)
        channel.exec_command(command)
        if stdin:
            channel.sendall(stdin)
        channel.shutdown_write()
        stdout = _read_all(channel.recv)
        stderr = _read_all(channel.recv_stderr)
        status = channel.recv_exit_status()
    except TimeoutError:
        raise ClientError("timeout", f"the remote command {command!r} did not finish within "
                          f"{timeout:g} s") from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise ClientError("connection-lost", f"running {command!r} over SSH failed: {exc}; "
                          "the connection may have dropped, run unitsh again") from None
    channel.close()
    return CommandResult(status=status, stdout=stdout, stderr=stderr)


def _read_all(recv: Callable[[int], bytes]) -> bytes:
    chunks = []
    while chunk := recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)
