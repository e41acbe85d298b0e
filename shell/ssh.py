"""SSH connections for a remote `unitsh`, with paramiko.

`connect(target, options)` opens an authenticated `paramiko.SSHClient` the way
`ssh TARGET` would: it applies ~/.ssh/config (sshconfig.py), goes through
ProxyJump hosts or a ProxyCommand (sshproxy.py), offers the identity files and
the keys of the SSH agent (sshauth.py), and checks the host key against
known_hosts. An unknown host key is accepted only after a yes at the prompt,
with `accept_new_host_key`, or with StrictHostKeyChecking accept-new or no; a
changed one is always rejected.

Only the remote path of the shell imports this module, because importing
paramiko costs about 200 ms.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import paramiko
from paramiko.auth_strategy import AuthFailure
from unitmgr.shell import sshauth
from unitmgr.shell.client import ClientError
from unitmgr.shell.sshconfig import (
    DEFAULT_SSH_PORT,
    HostSettings,
    SSHError,
    SSHOptions,
    Target,
    host_settings,
    parse_target,
)
from unitmgr.shell.sshproxy import ProxyProcess

log = logging.getLogger(__name__)
# paramiko logs transport failures that connect() also raises; without a handler
# they would reach stderr through logging's last-resort handler.
logging.getLogger("paramiko").addHandler(logging.NullHandler())

MAX_JUMPS = 8  # ProxyJump chains longer than this are rejected as a likely loop

__all__ = ["DEFAULT_SSH_PORT", "HostSettings", "SSHError", "SSHOptions", "Target", "connect", "close",
           "host_settings", "parse_target", "run_command"]


# -- host keys -------------------------------------------------------------------


def describe_key(key: paramiko.PKey) -> str:
    """Return the key type and fingerprint as ssh shows them: `ED25519 key SHA256:...`."""
    return f"{key.algorithm_name} key {key.fingerprint}"


class HostKeyPolicy(paramiko.MissingHostKeyPolicy):
    """Decide about a host key that known_hosts does not contain.

    The key is accepted at once with `accept_new_host_key` or with
    StrictHostKeyChecking accept-new or no, after a yes from `options.ask`
    with StrictHostKeyChecking ask (the default), and never with
    StrictHostKeyChecking yes. An accepted key is appended to the first
    known_hosts file."""

    def __init__(self, settings: HostSettings, options: SSHOptions):
        self.settings = settings
        self.options = options

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        name = self.settings.known_hosts_name
        if not (self.options.accept_new_host_key or self.settings.accept_new_host_key):
            if self.settings.host_key_checking == "yes":
                raise SSHError(
                    "host-key-unknown",
                    f"the host key of {name} is not in {self.settings.known_hosts} "
                    f"({describe_key(key)}), and StrictHostKeyChecking yes in "
                    f"{self.settings.config_file} forbids adding it; check that fingerprint with the "
                    "host's owner, then run again with --accept-new-host-key",
                )
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
    files = " or ".join(str(path) for path in settings.known_hosts_files)
    # Unlike OpenSSH, StrictHostKeyChecking no never lets a changed key through.
    strict_no = " (StrictHostKeyChecking no does not accept a changed key)" \
        if settings.host_key_checking == "no" else ""
    default = Path("~/.ssh/known_hosts").expanduser()
    file_option = "" if settings.known_hosts == default else f" -f '{settings.known_hosts}'"
    return SSHError(
        "host-key-changed",
        f"HOST KEY MISMATCH for {name}: the host sent {describe_key(exc.key)}, but "
        f"{files} lists {describe_key(exc.expected_key)}. Someone may be "
        "intercepting the connection, or the host was reinstalled. The connection was refused"
        f"{strict_no}; if the new key is right, remove the old one with: ssh-keygen -R '{name}'{file_option}",
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
    proxy = _start_proxy(settings) if settings.proxy_command else None
    client = paramiko.SSHClient()
    try:
        _load_host_keys(client, settings)
        client.set_missing_host_key_policy(HostKeyPolicy(settings, options))
        _connect_client(client, settings, proxy.sock if proxy else sock, proxy)
    except BaseException:
        client.close()
        if jump_client is not None:
            close(jump_client)
        if proxy is not None:
            proxy.close()
        raise
    transport = client.get_transport()
    assert transport is not None
    # Without TCP_NODELAY every small ZeroMQ message can wait for a delayed ACK.
    if isinstance(transport.sock, socket.socket) and transport.sock.family in (socket.AF_INET, socket.AF_INET6):
        transport.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    # Both are closed with the client, by close().
    if jump_client is not None:
        client._unitsh_jump = jump_client  # type: ignore[attr-defined]
    if proxy is not None:
        client._unitsh_proxy = proxy  # type: ignore[attr-defined]
    log.debug("connected to %s@%s port %d", settings.user, settings.hostname, settings.port)
    return client


def close(client: paramiko.SSHClient) -> None:
    """Close an SSH connection, the ProxyJump connections it goes through and its ProxyCommand."""
    client.close()
    jump = getattr(client, "_unitsh_jump", None)
    if jump is not None:
        close(jump)
    proxy = getattr(client, "_unitsh_proxy", None)
    if proxy is not None:
        proxy.close()


def _start_proxy(settings: HostSettings) -> ProxyProcess:
    assert settings.proxy_command is not None
    try:
        return ProxyProcess(settings.proxy_command, settings.alias)
    except OSError as exc:
        raise SSHError("ssh-connect", f"cannot start ProxyCommand {settings.proxy_command!r} for "
                       f"{settings.alias}: {exc}; check ProxyCommand in {settings.config_file}") from None


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
            timeout=settings.connect_timeout)
    except (paramiko.SSHException, OSError) as exc:
        close(jump)
        raise SSHError("ssh-connect", f"the jump host {hops[-1]} cannot reach {settings.hostname} "
                       f"port {settings.port}: {exc}; check ProxyJump in {settings.config_file}") from None
    return jump, channel


def _connect_through(jump: paramiko.SSHClient, target: Target, options: SSHOptions) -> paramiko.SSHClient:
    settings = host_settings(target, options)
    client = paramiko.SSHClient()
    _load_host_keys(client, settings)
    client.set_missing_host_key_policy(HostKeyPolicy(settings, options))
    try:
        channel = jump.get_transport().open_channel(  # type: ignore[union-attr]
            "direct-tcpip", (settings.hostname, settings.port), ("127.0.0.1", 0),
            timeout=settings.connect_timeout)
        _connect_client(client, settings, channel)
    except BaseException:
        client.close()
        close(jump)
        raise
    client._unitsh_jump = jump  # type: ignore[attr-defined]
    return client


def _load_host_keys(client: paramiko.SSHClient, settings: HostSettings) -> None:
    for path in (Path("/etc/ssh/ssh_known_hosts"), *settings.known_hosts_files):
        try:
            # Keys loaded as "system" keys are never saved back, so the user's file stays as it is.
            client.load_system_host_keys(str(path))
        except FileNotFoundError:
            continue
        except (OSError, paramiko.SSHException) as exc:
            raise SSHError("ssh-connect", f"cannot read {path}: {exc}; fix or move that file") from None


def _connect_client(client: paramiko.SSHClient, settings: HostSettings,
                    sock: paramiko.Channel | socket.socket | None, proxy: ProxyProcess | None = None) -> None:
    timeout = settings.connect_timeout
    agent = sshauth.open_agent()
    try:
        sources = sshauth.key_sources(settings, tuple(agent.get_keys()) if agent else ())
        client.connect(
            settings.hostname, settings.port, username=settings.user, auth_strategy=sshauth.KeyList(sources),
            sock=sock, timeout=timeout, banner_timeout=timeout, auth_timeout=timeout,
            channel_timeout=timeout)
    except (paramiko.SSHException, OSError, EOFError) as exc:
        failure = proxy.describe_failure() if proxy is not None else None
        if failure is not None and not isinstance(exc, paramiko.AuthenticationException):
            raise SSHError("ssh-connect", f"cannot connect to {settings.alias}: {failure}; check "
                           f"ProxyCommand in {settings.config_file}") from None
        raise _connect_error(settings, timeout, exc) from None
    finally:
        if agent is not None:
            agent.close()


def _describe_source(source: object) -> str:
    """Name an offered key: its fingerprint, and its file or "agent"."""
    key = getattr(source, "pkey", None)
    if key is None:
        return type(source).__name__
    origin = "agent" if isinstance(key, paramiko.AgentKey) else str(getattr(source, "path", "file"))
    return f"{key.fingerprint} ({origin})"


def _connect_error(settings: HostSettings, timeout: float, exc: BaseException) -> SSHError:
    """Turn a failure of SSHClient.connect into an error that says what to do."""
    where = f"{settings.user}@{settings.hostname} port {settings.port}"
    if isinstance(exc, paramiko.BadHostKeyException):
        return _changed_key_error(settings, exc)
    if isinstance(exc, AuthFailure):
        offered = ", ".join(_describe_source(result.source) for result in exc.result) or "none"
        only = " (IdentitiesOnly yes)" if settings.identities_only else ""
        return SSHError(
            "ssh-auth",
            f"SSH authentication failed for {where}: the server accepted none of the keys offered"
            f"{only}: {offered}; check that one of your keys (ssh-add -l, IdentityFile in "
            f"{settings.config_file}) is in that user's ~/.ssh/authorized_keys")
    if isinstance(exc, paramiko.AuthenticationException):
        return SSHError(
            "ssh-auth",
            f"SSH authentication failed for {where} ({exc}); check that one of your keys (ssh-add -l, "
            f"IdentityFile in {settings.config_file}) is in that user's ~/.ssh/authorized_keys")
    if str(exc) == "No authentication methods available":
        return SSHError(
            "ssh-auth",
            f"SSH authentication failed for {where}: no key to offer (no key in the SSH agent, and no "
            f"identity file in ~/.ssh or IdentityFile in {settings.config_file}); add a key with ssh-add")
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
