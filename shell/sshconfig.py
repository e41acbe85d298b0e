"""The settings of one SSH host: the command-line target and ~/.ssh/config.

paramiko.SSHConfig parses the file and matches `Host` patterns (wildcards and
`!` negation) and `Match` blocks. This module adds what paramiko 5 leaves
out: `Include`, and the keys that unitsh acts on beyond HostName, User and
Port (see `HostSettings`). docs/remote.md lists the keys read and ignored.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paramiko
from unitmgr.shell.client import ClientError
from unitmgr.shell.remotecli import DEFAULT_CONNECT_TIMEOUT  # when neither --connect-timeout nor ConnectTimeout is set

log = logging.getLogger(__name__)

DEFAULT_SSH_PORT = 22
MAX_INCLUDE_DEPTH = 16  # the limit OpenSSH (readconf.c) puts on nested Include
HOST_KEY_CHECKING = {"yes": "yes", "ask": "ask", "accept-new": "accept-new", "no": "no", "off": "no"}

_INCLUDE_LINE = re.compile(r"include(?:\s*=\s*|\s+)(.+)", re.IGNORECASE)
_BLOCK_LINE = re.compile(r"(?:host|match)(?:\s*=\s*|\s+)", re.IGNORECASE)


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
    # None takes ConnectTimeout from the config file, else DEFAULT_CONNECT_TIMEOUT.
    connect_timeout: float | None = None
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
    known_hosts_files: tuple[Path, ...]  # All are read, and accepted keys go to the first.
    host_key_checking: str = "ask"  # StrictHostKeyChecking: "yes", "ask", "accept-new" or "no"
    proxy_command: str | None = None
    identities_only: bool = False
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    config_file: Path = Path("~/.ssh/config")

    @property
    def known_hosts(self) -> Path:
        return self.known_hosts_files[0]

    @property
    def accept_new_host_key(self) -> bool:
        return self.host_key_checking in ("accept-new", "no")

    @property
    def known_hosts_name(self) -> str:
        """The host's name in known_hosts: `host`, or `[host]:port` off port 22."""
        if self.port == DEFAULT_SSH_PORT:
            return self.hostname
        return f"[{self.hostname}]:{self.port}"


# -- reading the file --------------------------------------------------------------


def load_config(path: Path) -> paramiko.SSHConfig:
    """Parse an ssh_config file with its Include files. A missing file is an empty config."""
    try:
        lines = _read_with_includes(path, path.parent, depth=0)
        return paramiko.SSHConfig.from_text("\n".join(lines))
    except FileNotFoundError:
        return paramiko.SSHConfig()
    except (OSError, UnicodeDecodeError, paramiko.ConfigParseError) as exc:
        raise SSHError("ssh-connect", f"cannot read the SSH configuration {path}: {exc}; "
                       "fix or move that file") from None


def _read_with_includes(path: Path, base: Path, depth: int) -> list[str]:
    """Return the lines of `path` with each Include line replaced by the files it names.

    Relative Include paths are taken from `base` (~/.ssh for the user's file),
    as OpenSSH does. After an included file the enclosing Host or Match line
    is repeated, so the lines after the Include keep their condition."""
    if depth > MAX_INCLUDE_DEPTH:
        raise SSHError("ssh-connect", f"Include in the SSH configuration nests more than "
                       f"{MAX_INCLUDE_DEPTH} files deep at {path}; check the Include lines for a loop")
    lines: list[str] = []
    block_line: str | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        include = _INCLUDE_LINE.fullmatch(stripped)
        if include is None:
            if _BLOCK_LINE.match(stripped):
                block_line = stripped
            lines.append(line)
            continue
        # NOTE: an Include inside a Host or Match block inlines the file's own
        # Host and Match blocks unconditionally, where OpenSSH applies them only
        # when the enclosing block matched.
        for pattern in shlex.split(include.group(1)):
            expanded = Path(os.path.expanduser(pattern))
            if not expanded.is_absolute():
                expanded = base / expanded
            for included in sorted(glob.glob(str(expanded))):
                log.debug("reading %s, included from %s", included, path)
                lines.extend(_read_with_includes(Path(included), base, depth + 1))
                if block_line is not None:
                    lines.append(block_line)
    return lines


# -- one host ---------------------------------------------------------------------


def host_settings(target: Target, options: SSHOptions) -> HostSettings:
    """Apply ~/.ssh/config to `target`; values given on the command line win."""
    config = options.config_file
    try:
        entry = load_config(config).lookup(target.host)
    except ImportError:
        # paramiko runs `Match exec` through the optional package invoke.
        raise SSHError("ssh-connect", f"{config} has a 'Match exec' line that applies to "
                       f"{target.host}, and paramiko needs the Python package invoke to run it; "
                       "install invoke (pip install invoke) or remove that line") from None
    port = target.port or _config_port(entry.get("port", str(DEFAULT_SSH_PORT)), target.host, config)
    user = target.user or entry.get("user") or local_user()
    hostname = entry.get("hostname", target.host)
    jump = entry.get("proxyjump")
    if jump and jump.lower() == "none":
        jump = None
    proxy_command = entry.get("proxycommand")  # paramiko stores "ProxyCommand none" as None
    if jump and proxy_command:
        # NOTE: OpenSSH uses whichever of the two comes first in the file;
        # paramiko does not keep that order, so ProxyJump wins here.
        log.info("%s: both ProxyJump and ProxyCommand are set in %s; using ProxyJump", target.host, config)
        proxy_command = None
    tokens = {"%d": str(Path.home()), "%u": local_user(), "%h": hostname, "%p": str(port), "%r": user,
              "%n": target.host}
    known_hosts = (options.known_hosts,)
    if "userknownhostsfile" in entry:
        known_hosts = tuple(Path(expand_tokens(name, tokens)).expanduser()
                            for name in shlex.split(entry["userknownhostsfile"]))
    return HostSettings(
        alias=target.host, hostname=hostname, port=port, user=user,
        identity_files=tuple(entry.get("identityfile", [])), proxy_jump=jump,
        known_hosts_files=known_hosts or (options.known_hosts,),
        host_key_checking=_host_key_checking(entry.get("stricthostkeychecking", "ask"), target.host, config),
        proxy_command=proxy_command,
        identities_only=_yes_no(entry.get("identitiesonly", "no"), "IdentitiesOnly", target.host, config),
        connect_timeout=options.connect_timeout or _connect_timeout(entry.get("connecttimeout"),
                                                                     target.host, config),
        config_file=config,
    )


def expand_tokens(text: str, tokens: dict[str, str]) -> str:
    """Replace the `%x` tokens of an ssh_config value. `%%` is a literal percent sign."""

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "%%":
            return "%"
        if token not in tokens:
            raise SSHError("ssh-connect", f"unknown token {token} in {text!r} in the SSH configuration; "
                           f"use one of {', '.join(sorted(tokens))} or %%")
        return tokens[token]

    return re.sub(r"%.", replace, text)


def _config_port(text: str, host: str, config: Path) -> int:
    if text.isdigit() and 0 < int(text) < 65536:
        return int(text)
    raise SSHError("ssh-connect", f"invalid Port {text!r} for {host} in {config}; "
                   "use a number from 1 to 65535")


def _host_key_checking(text: str, host: str, config: Path) -> str:
    mode = HOST_KEY_CHECKING.get(text.lower())
    if mode is None:
        raise SSHError("ssh-connect", f"invalid StrictHostKeyChecking {text!r} for {host} in {config}; "
                       "use yes, ask, accept-new or no")
    return mode


def _yes_no(text: str, key: str, host: str, config: Path) -> bool:
    if text.lower() in ("yes", "no"):
        return text.lower() == "yes"
    raise SSHError("ssh-connect", f"invalid {key} {text!r} for {host} in {config}; use yes or no")


def _connect_timeout(text: str | None, host: str, config: Path) -> float:
    if text is None or text.lower() == "none":
        return DEFAULT_CONNECT_TIMEOUT
    if text.isdigit() and int(text) > 0:
        return float(text)
    raise SSHError("ssh-connect", f"invalid ConnectTimeout {text!r} for {host} in {config}; "
                   "use a whole number of seconds above 0")


def local_user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return os.environ.get("USER", "")
