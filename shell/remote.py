"""A control-endpoint client for a manager on another host, reached through SSH.

`open_remote_client(host, options)` does what `unitsh HOST` needs:

1. connect with SSH (see `ssh.py` for config, agent and host keys);
2. run `unitmgr endpoint --json` there to learn the manager's public key and
   endpoints;
3. open a local tunnel (`tunnel.py`) whose connections go to the remote control
   socket through `unitmgr bridge` on an exec channel, or through a direct-tcpip
   channel when the manager also listens on loopback TCP;
4. connect the ordinary blocking Client to the tunnel and send `hello`. CURVE
   runs end to end, so SSH only carries encrypted bytes. When the manager
   rejects the local client key and the user agreed, authorise the key with
   `unitmgr authorize-key` over SSH and connect again.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import shlex
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import paramiko
import zmq
from unitmgr.manager import keys as keyfiles
from unitmgr.manager.paths import Paths, ensure_private_dir
from unitmgr.manager.paths import resolve as resolve_paths
from unitmgr.shell import ssh
from unitmgr.shell.client import Client, ClientError
from unitmgr.shell.session import Session
from unitmgr.shell.sshconfig import DEFAULT_CONNECT_TIMEOUT
from unitmgr.shell.tunnel import Tunnel

log = logging.getLogger(__name__)

EXIT_COMMAND_NOT_FOUND = 127  # what a POSIX shell returns for a missing command
EXIT_NOT_EXECUTABLE = 126


@dataclass
class RemoteOptions:
    """Settings of `unitsh HOST`, mostly from its command line."""

    remote_command: str = "unitmgr"  # run by the remote user's shell
    accept_new_host_key: bool = False
    authorize: bool = False
    # Asks the user a yes/no question; None when no user can be asked (-c, stdin not a terminal).
    ask: Callable[[str], bool] | None = None
    # None takes ConnectTimeout from ~/.ssh/config for SSH, else DEFAULT_CONNECT_TIMEOUT.
    connect_timeout: float | None = None
    timeout: float = 5.0  # for a reply to a request
    # Use a direct-tcpip channel when the manager listens on loopback TCP; else `unitmgr bridge`.
    direct_tcp: bool = True
    paths: Paths = field(default_factory=resolve_paths)  # where the local client key is

    def ssh_options(self) -> ssh.SSHOptions:
        return ssh.SSHOptions(accept_new_host_key=self.accept_new_host_key, ask=self.ask,
                              connect_timeout=self.connect_timeout)

    @property
    def channel_timeout(self) -> float:
        """Seconds to wait for an SSH channel or the manager's handshake once SSH is connected."""
        return self.connect_timeout or DEFAULT_CONNECT_TIMEOUT


def ask_on_terminal(question: str) -> bool:
    """Ask a yes/no question on stderr and read the answer from stdin."""
    print(question, end="", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        return False
    return answer.strip().lower() in ("y", "yes")


@dataclass(frozen=True)
class RemoteEndpoint:
    """The server key and endpoints that `unitmgr endpoint --json` printed on the remote host."""

    server_key: bytes
    endpoints: tuple[str, ...]

    def loopback_tcp(self) -> tuple[str, int] | None:
        """Return (address, port) of a loopback TCP endpoint of the manager, if it has one."""
        for endpoint in self.endpoints:
            if not endpoint.startswith("tcp://"):
                continue
            host, _, port = endpoint[len("tcp://"):].rpartition(":")
            address = loopback_address(host.strip("[]"))
            if address and port.isdigit():
                return address, int(port)
        return None


def loopback_address(host: str) -> str | None:
    """Return the loopback address to reach a manager bound to `host`, or None when
    `host` is not local. ZeroMQ reports an IPv4 bind on an IPv6 socket as
    `::ffff:127.0.0.1`, and a wildcard bind reaches loopback too."""
    if host == "localhost":
        return "127.0.0.1"
    if host == "*":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if not (address.is_loopback or address.is_unspecified):
        return None
    return "127.0.0.1" if address.version == 4 else "::1"


class SSHLink:
    """One SSH connection to a host's manager, shared by the clients opened through it.

    Each client takes a reference with `acquire()` and gives it back when it
    closes; the connection closes with the last reference."""

    def __init__(self, host: str, connection: paramiko.SSHClient, endpoint: RemoteEndpoint,
                 options: RemoteOptions):
        self.host = host
        self.connection = connection
        self.endpoint = endpoint
        self.channel_kind, self.open_channel = channel_opener(connection, endpoint, options)
        self._users = 0
        self._closed = False
        self._lock = threading.Lock()

    def alive(self) -> bool:
        transport = self.connection.get_transport()
        return transport is not None and transport.is_active()

    def acquire(self) -> bool:
        """Take a reference; return False when the connection is closed or lost."""
        with self._lock:
            if self._closed or not self.alive():
                return False
            self._users += 1
            return True

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users > 0 or self._closed:
                return
            self._closed = True
        ssh.close(self.connection)


class RemoteClient(Client):
    """A Client whose endpoint is a tunnel over an SSH link; it holds one reference to the link."""

    def __init__(self, link: SSHLink, tunnel: Tunnel, pair: keyfiles.KeyPair, options: RemoteOptions):
        self.host = link.host
        self.link = link
        self.tunnel = tunnel
        self.channel_kind = link.channel_kind  # "bridge" or "direct-tcpip"
        super().__init__(tunnel.endpoint, link.endpoint.server_key, pair.public, pair.secret,
                         timeout=options.timeout, connect_timeout=options.channel_timeout,
                         client_pub_file=str(keyfiles.key_files(options.paths, "client")[1]))
        # Client uses `endpoint` only in messages once connected: name the host, not the tunnel.
        self.tunnel_endpoint = self.endpoint
        self.endpoint = f"{self.host} (through SSH)"

    @property
    def connection(self) -> paramiko.SSHClient:
        return self.link.connection

    def request(self, cmd: str, args: dict[str, Any] | None = None,
                timeout: float | None = None) -> dict[str, Any]:
        try:
            return super().request(cmd, args, timeout)
        except ClientError as exc:
            raise self._explain(exc, f"before the reply to '{cmd}' arrived") from None

    def iter_events(self, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        try:
            yield from super().iter_events(timeout)
        except ClientError as exc:
            raise self._explain(exc, "while following events") from None

    def _explain(self, exc: ClientError, when: str) -> ClientError:
        """Report a lost SSH connection as such, and name --authorize for a rejected key."""
        if not self.link.alive() and exc.kind in ("connection-lost", "timeout", "no-manager"):
            return ClientError(
                "connection-lost",
                f"the SSH connection to {self.host} was lost {when}; a command sent may have "
                f"run there. Check with: unitsh {self.host} -c status",
            )
        if exc.kind == "unauthorized":
            return ClientError("unauthorized", f"the manager on {self.host} rejects this client's key; "
                               "run again with --authorize to add it there")
        return exc

    def close(self) -> None:
        if self._socket.closed:
            return
        try:
            super().close()
        finally:
            self.tunnel.close()
            self.link.release()


# -- the steps -------------------------------------------------------------------


def open_remote_client(host: str, options: RemoteOptions) -> RemoteClient:
    """Connect to the manager on `host` through SSH and return a client that has
    completed `hello`; raise ClientError (or ssh.SSHError) with the next step."""
    pair = ensure_client_keys(options.paths)
    connection = ssh.connect(host, options.ssh_options())
    try:
        endpoint = read_remote_endpoint(connection, host, options)
        link = SSHLink(host, connection, endpoint, options)
    except BaseException:
        ssh.close(connection)
        raise
    if not link.acquire():
        raise ClientError("connection-lost", f"the SSH connection to {host} closed right after it "
                          "opened; run unitsh again")
    return open_client_on_link(link, pair, options)


def open_client_on_link(link: SSHLink, pair: keyfiles.KeyPair, options: RemoteOptions) -> RemoteClient:
    """Open one more client through an acquired link and send `hello`, authorising the
    client key on the host first if the manager rejects it and the user agrees.

    The new client owns the caller's reference to the link; on failure it is released."""
    try:
        try:
            return _greet(link, pair, options)
        except ClientError as exc:
            if exc.kind != "unauthorized":
                raise
            if not _may_authorize(link.host, options):
                raise ClientError("unauthorized", f"the manager on {link.host} does not accept this "
                                  "client's key yet; run again with --authorize to add it to the "
                                  "authorized_keys there") from None
        authorize_remote(link.connection, link.host, pair.public, options)
        return _greet(link, pair, options)
    except BaseException:
        link.release()
        raise


def _greet(link: SSHLink, pair: keyfiles.KeyPair, options: RemoteOptions) -> RemoteClient:
    """Open a tunnel and a client on it, and send `hello`."""
    describe_end = describe_bridge_end if link.channel_kind == "bridge" else None
    tunnel = Tunnel(link.open_channel, name=f"ssh-{link.host}", describe_end=describe_end)
    try:
        client = RemoteClient(link, tunnel, pair, options)
    except BaseException:
        tunnel.close()
        raise
    try:
        client.request("hello")
    except ClientError as exc:
        _close_client_only(client)
        raise _with_channel_errors(exc, tunnel, link.host) from None
    except BaseException:
        _close_client_only(client)
        raise
    return client


def _close_client_only(client: RemoteClient) -> None:
    """Close the client and its tunnel but keep the reference to the link."""
    Client.close(client)
    client.tunnel.close()


def _with_channel_errors(exc: ClientError, tunnel: Tunnel, host: str) -> ClientError:
    """Blame the SSH channel when it failed: a handshake that broke off or never
    started is then a symptom, not the cause."""
    if not tunnel.channel_errors:
        return exc
    return ClientError("no-manager", f"cannot reach the manager on {host} through SSH: "
                       f"{tunnel.channel_errors[-1]}; check that a manager runs there (unitmgr --user)")


def _may_authorize(host: str, options: RemoteOptions) -> bool:
    if options.authorize:
        return True
    if options.ask is None:
        return False
    return options.ask(f"The manager on {host} does not accept this client's key.\n"
                       f"Add it to the authorized_keys there? [y/N] ")


def ensure_client_keys(paths: Paths) -> keyfiles.KeyPair:
    """Load the local client key pair, creating it when this host never ran a manager."""
    secret_file, public_file = keyfiles.key_files(paths, "client")
    if not secret_file.exists():
        ensure_private_dir(paths.keys)
        public, secret = zmq.curve_keypair()
        keyfiles.write_atomic(secret_file, f"# unitmgr client secret key (Z85); keep it private\n"
                              f"{secret.decode()}\n", 0o600)
        keyfiles.write_atomic(public_file, f"{public.decode()}\n", 0o644)
        log.info("created a client key pair in %s", paths.keys)
    try:
        return keyfiles.load_client_keys(paths)
    except keyfiles.KeyFileError as exc:
        raise ClientError("unauthorized", f"cannot use the local client key: {exc}") from None


def read_remote_endpoint(connection: paramiko.SSHClient, host: str, options: RemoteOptions) -> RemoteEndpoint:
    """Run `unitmgr endpoint --json` on the host; raise a ClientError naming the problem."""
    command = f"{options.remote_command} endpoint --json"
    result = ssh.run_command(connection, command, timeout=max(options.timeout, 10.0))
    if result.status in (EXIT_COMMAND_NOT_FOUND, EXIT_NOT_EXECUTABLE):
        raise ssh.SSHError(
            "not-installed",
            f"unitmgr is not installed on {host} (running {options.remote_command!r} there failed: "
            f"{result.error_text()}); install it there, or give its path with --remote-command",
        )
    if result.status != 0:
        raise ClientError(
            "no-manager",
            f"no unitmgr manager is running for that user on {host} ({result.error_text()}); "
            f"start one there with: unitmgr --user",
        )
    try:
        info = json.loads(result.stdout)
        server_key = keyfiles.parse_key(info["server_key"])
        endpoints = tuple(str(endpoint) for endpoint in info.get("endpoints", []))
    except (ValueError, KeyError, TypeError) as exc:
        raise ClientError("protocol", f"'{command}' on {host} printed no valid endpoint information "
                          f"({exc}); is the unitmgr there a compatible version?") from None
    return RemoteEndpoint(server_key=server_key, endpoints=endpoints)


def channel_opener(connection: paramiko.SSHClient, endpoint: RemoteEndpoint,
                   options: RemoteOptions) -> tuple[str, Callable[[], paramiko.Channel]]:
    """Return the channel kind and a function opening one channel to the remote control endpoint.

    A direct-tcpip channel is used when the manager listens on loopback TCP and
    the server allows forwarding; otherwise an exec channel runs `unitmgr bridge`."""
    transport = connection.get_transport()
    assert transport is not None
    timeout = options.channel_timeout
    tcp = endpoint.loopback_tcp() if options.direct_tcp else None

    def open_tcp() -> paramiko.Channel:
        return transport.open_channel("direct-tcpip", tcp, ("127.0.0.1", 0), timeout=timeout)

    def open_bridge() -> paramiko.Channel:
        channel = transport.open_session(timeout=timeout)
        channel.exec_command(f"{options.remote_command} bridge")
        return channel

    if tcp is not None:
        try:
            open_tcp().close()
            return "direct-tcpip", open_tcp
        except (paramiko.SSHException, OSError) as exc:
            log.info("opening a direct-tcpip channel to %s port %d failed (%s); using unitmgr bridge",
                     *tcp, exc)
    return "bridge", open_bridge


def describe_bridge_end(channel: paramiko.Channel) -> str:
    """Return the stderr of a remote `unitmgr bridge` that failed, else an empty string."""
    # sshd sends the exit status just after the end of the output.
    channel.status_event.wait(timeout=2.0)
    if not channel.exit_status_ready() or channel.recv_exit_status() == 0:
        return ""
    errors = b""
    while channel.recv_stderr_ready():
        errors += channel.recv_stderr(65536)
    text = " ".join(errors.decode("utf-8", "replace").split())
    return text or f"the remote command exited with status {channel.recv_exit_status()}"


def authorize_remote(connection: paramiko.SSHClient, host: str, public_key: bytes,
                     options: RemoteOptions) -> None:
    """Add `public_key` to the remote manager's authorized_keys with `unitmgr authorize-key`."""
    label = f"unitsh@{socket.gethostname()}"
    command = f"{options.remote_command} authorize-key --label {shlex.quote(label)} -"
    result = ssh.run_command(connection, command, stdin=public_key + b"\n",
                             timeout=max(options.timeout, 10.0))
    if result.status != 0:
        raise ClientError("unauthorized", f"authorising this client's key on {host} failed: "
                          f"{result.error_text()}; add it there by hand with: unitmgr authorize-key "
                          f"{public_key.decode()}")
    print(f"unitsh: authorised this client's key on {host} ({label})", file=sys.stderr)


# -- for the shell ---------------------------------------------------------------


def remote_connector(host: str, options: RemoteOptions) -> Callable[[], Client]:
    """Return a Session connector for `host`.

    While a client from an earlier call is open (say, the shell's while `logs -f`
    opens a second one), a new client shares its SSH connection. Only the
    first call may ask questions: a reconnection after a lost connection does not."""
    link: SSHLink | None = None

    def connect() -> Client:
        nonlocal link
        pair = ensure_client_keys(options.paths)
        if link is not None and link.acquire():
            return open_client_on_link(link, pair, options)
        first = link is None
        client = open_remote_client(host, options if first else dataclasses.replace(options, ask=None))
        link = client.link
        return client

    return connect


def open_remote_session(host: str, options: RemoteOptions, eager: bool = False) -> Session:
    """Return a Session for `host`, labelled with it for the prompt.

    With `eager`, connect now, so that questions about host keys or
    authorisation come before an interactive shell takes over the terminal."""
    session = Session(remote_connector(host, options), label=host)
    if eager:
        session.request("hello")
    return session
