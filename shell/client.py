"""A blocking client of the manager's control endpoint.

Used by `unitsh -c`, so it imports neither asyncio (nor zmq.asyncio or
zmq.utils.monitor, which import it) nor prompt_toolkit nor paramiko: start-up
time is what a one-shot command pays. For the same reason `logging` and
`socket` are imported only on the paths that log or probe a control socket.

When the CURVE handshake fails, libzmq (4.3.5) does not fail a send or a
receive: it retries the connection or keeps waiting. The client therefore
watches a monitor socket and turns its events into errors. A key the manager
does not accept is reported as soon as the handshake fails, a refused
connection at once, and a peer that never completes the handshake after
`connect_timeout` seconds.

    with Client.local() as client:
        result = client.request("status", {"units": ["web"]})

A Client is not thread-safe; use one per thread.
"""

from __future__ import annotations

import errno
import json
import struct
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zmq
from unitmgr.manager import keys as keyfiles
from unitmgr.manager import protocol
from unitmgr.manager.lazylog import LazyLogger
from unitmgr.manager.paths import Paths, resolve
from unitmgr.shell.context import locate_local_manager
from zmq.utils import z85

log = LazyLogger(__name__)

_MONITOR_EVENTS = (
    zmq.EVENT_CONNECTED
    | zmq.EVENT_CONNECT_RETRIED
    | zmq.EVENT_DISCONNECTED
    | zmq.EVENT_HANDSHAKE_SUCCEEDED
    | zmq.EVENT_HANDSHAKE_FAILED_AUTH
    | zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
    | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
)
DEFAULT_CLIENT_PUB = "~/.config/unitmgr/keys/client.pub"
# zmq.POLLIN as a plain int: `&` with the IntFlag runs enum code on every request.
_POLLIN = int(zmq.POLLIN)

# Before it sleeps in poll(), a connected client checks its socket in a loop for
# this long: most replies come within it, and reading one without sleeping saves
# the wake-up of this thread. That took a list round trip from 0.317 to 0.246 ms
# (medians of 12 runs of 200) on a 2-core machine.
REPLY_SPIN_SECONDS = 0.0003


class ClientError(Exception):
    """The request could not be delivered, or no reply arrived.

    `kind` is one of "no-manager", "unauthorized", "server-key", "timeout",
    "connection-lost", "protocol". The message names the next step for the user."""

    KINDS = frozenset(
        {"no-manager", "unauthorized", "server-key", "timeout", "connection-lost", "protocol"}
    )

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class RemoteError(Exception):
    """An error reply from the manager."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


def no_manager_error(socket_path: Path, reason: str = "") -> ClientError:
    where = reason or f"no control socket at {socket_path}"
    return ClientError(
        "no-manager",
        f"no unitmgr manager is running for this user ({where}); start one with: unitmgr --user",
    )


def probe_unix_socket(path: Path) -> None:
    """Raise ClientError("no-manager") unless something accepts connections on `path`."""
    import socket

    if not path.exists():
        raise no_manager_error(path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(path))
    except ConnectionRefusedError:
        raise no_manager_error(
            path, f"the control socket {path} is stale: nothing is listening on it"
        ) from None
    except FileNotFoundError:
        raise no_manager_error(path) from None
    except OSError as exc:
        raise ClientError("no-manager", f"cannot connect to {path}: {exc.strerror}") from None
    finally:
        probe.close()


def read_endpoint_key(paths: Paths) -> bytes:
    """Return the running manager's public key from its endpoint file, else from server.pub."""
    try:
        info = json.loads(paths.endpoint_file.read_text(encoding="utf-8"))
        return keyfiles.parse_key(info["server_key"])
    except (OSError, ValueError, KeyError, TypeError):
        return keyfiles.load_server_public(paths)


class _Subscription:
    # A plain class, so that `unitsh -c` does not import dataclasses.
    __slots__ = ("window", "seq", "acked")

    def __init__(self, window: int):
        self.window = window
        self.seq = 0  # the highest sequence number read
        self.acked = 0  # the highest sequence number acknowledged


class Client:
    def __init__(
        self,
        endpoint: str,
        server_public: bytes,
        client_public: bytes,
        client_secret: bytes,
        timeout: float = 5.0,
        connect_timeout: float = 2.0,
        *,
        client_pub_file: str = DEFAULT_CLIENT_PUB,
        local_socket: Path | None = None,
    ):
        """`local_socket`: the unix socket behind an ipc:// endpoint, probed when the
        connection is refused so that the error can report a stale socket."""
        self.endpoint = endpoint
        self.local_socket = local_socket
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.client_pub_file = client_pub_file
        self._next_id = 0
        self._connected = False  # a transport connection exists
        self._ready = False  # the CURVE handshake succeeded
        self._ever_ready = False
        self._failure: ClientError | None = None
        self._events: deque[dict[str, Any]] = deque()
        self._subscriptions: dict[int, _Subscription] = {}
        self._unanswered: set[int] = set()  # ids of acks, whose replies are skipped
        server_public = _checked_key(server_public, "server-key", "server public key")
        client_public = _checked_key(client_public, "protocol", "client public key")
        client_secret = _checked_key(client_secret, "protocol", "client secret key")
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._monitor = self._setup_socket(server_public, client_public, client_secret)
        # One poller for every request: building one per request cost a few microseconds each.
        self._poller = zmq.Poller()
        self._poller.register(self._socket, zmq.POLLIN)
        self._poller.register(self._monitor, zmq.POLLIN)
        try:
            self._socket.connect(endpoint)
        except zmq.ZMQError as exc:
            self.close()
            raise ClientError(
                "protocol", f"invalid endpoint {endpoint!r} ({exc.strerror}); use "
                "tcp://HOST:PORT or ipc:///PATH"
            ) from None

    @classmethod
    def local(cls, paths: Paths | None = None, timeout: float = 5.0) -> Client:
        """Connect to this user's manager through its control socket.

        Raise ClientError("no-manager") at once when no manager runs, and
        ClientError("unauthorized") when the client key files are missing or unsafe."""
        paths = locate_local_manager(paths or resolve())
        # A missing socket is checked here, a stale one only when ZeroMQ's connection
        # is refused (see _on_event), so that a working connection skips the probe.
        if not paths.control_socket.exists():
            raise no_manager_error(paths.control_socket)
        try:
            server_public = read_endpoint_key(paths)
            pair = keyfiles.load_client_keys(paths)
        except keyfiles.KeyFileError as exc:
            probe_unix_socket(paths.control_socket)  # A missing manager explains more than a key error.
            raise ClientError(
                "unauthorized", f"cannot use the local keys: {exc}"
            ) from None
        return cls(
            paths.control_endpoint, server_public, pair.public, pair.secret, timeout=timeout,
            client_pub_file=str(keyfiles.key_files(paths, "client")[1]),
            local_socket=paths.control_socket,
        )

    def _setup_socket(self, server_public: bytes, public: bytes, secret: bytes) -> zmq.Socket:
        sock = self._socket
        sock.linger = 0
        sock.ipv6 = True
        sock.curve_serverkey = server_public
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.setsockopt(zmq.HANDSHAKE_IVL, max(1, int(self.connect_timeout * 1000)))
        try:
            # A DRAFT option of libzmq 4.3: without it a failed handshake is retried forever.
            sock.setsockopt(zmq.RECONNECT_STOP, zmq.RECONNECT_STOP_HANDSHAKE_FAILED)
        except (AttributeError, zmq.ZMQError):
            log.debug("RECONNECT_STOP is not supported by this libzmq")
        return sock.get_monitor_socket(_MONITOR_EVENTS)

    # -- public API --------------------------------------------------------------

    def request(
        self, cmd: str, args: dict[str, Any] | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        """Send one request and return its result; raise RemoteError or ClientError."""
        if self._socket.closed:
            raise ClientError("protocol", "the client is closed")
        self._read_monitor(waiting=False)
        self._next_id += 1
        request_id = self._next_id
        try:
            data = protocol.encode_request(request_id, cmd, args)
        except protocol.ProtocolError as exc:
            raise ClientError("protocol", f"cannot send '{cmd}': {exc.message}") from None
        try:
            self._socket.send(data, zmq.NOBLOCK)
        except zmq.Again:
            raise ClientError(
                "timeout", f"cannot queue '{cmd}' for {self.endpoint}: the send queue is full"
            ) from None
        return self._wait_reply(request_id, cmd, self.timeout if timeout is None else timeout)

    def close(self) -> None:
        if self._socket.closed:
            return
        try:
            self._socket.disable_monitor()
        except zmq.ZMQError:
            pass
        self._monitor.close(linger=0)
        self._socket.close(linger=0)
        self._context.term()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- event streams -------------------------------------------------------------

    def subscribe(
        self, streams: list[str], units: list[str] | None = None, **args: Any
    ) -> dict[str, Any]:
        """Subscribe to event streams ("state", "log", "stats"); return the manager's result.

        Extra `args` are those of the `subscribe` command (lines, since, grep,
        stream, raw, queue, interval); the result has the subscription id
        under "sub" and, for a log subscription with `lines` or `since`, the
        earlier "records". Read the events with iter_events()."""
        request_args: dict[str, Any] = {"streams": list(streams), **args}
        if units:
            request_args["units"] = list(units)
        result = self.request("subscribe", request_args)
        sub = result.get("sub")
        if not isinstance(sub, int):
            raise ClientError("protocol", f"the subscribe reply from {self.endpoint} has no id")
        window = result.get("window")
        self._subscriptions[sub] = _Subscription(window if isinstance(window, int) else 64)
        return result

    def unsubscribe(self, sub: int) -> None:
        self._subscriptions.pop(sub, None)
        self.request("unsubscribe", {"sub": sub})

    def iter_events(self, timeout: float | None = None) -> Iterator[dict[str, Any]]:
        """Yield the events of this client's subscriptions as they arrive.

        Stop after `timeout` seconds without an event (None: never). Events
        the manager dropped because this client read too slowly arrive as
        `{"event": "dropped", "count": N}`; a gap in the sequence numbers is
        reported the same way. Acknowledgements are sent as events are read,
        so the manager keeps sending. Raise ClientError("connection-lost") when
        the connection to the manager is lost."""
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        last_event = time.monotonic()
        while True:
            while self._events:
                yield from self._account(self._events.popleft())
                last_event = time.monotonic()
            now = time.monotonic()
            if timeout is not None and now - last_event >= timeout:
                return
            wait = 0.5 if timeout is None else min(0.5, timeout - (now - last_event))
            ready = dict(poller.poll(max(1, int(wait * 1000))))
            self._read_monitor(waiting=False)
            if self._ever_ready and not self._connected:
                raise ClientError("connection-lost", f"the connection to {self.endpoint} was lost; "
                                  "the manager may have stopped, and the subscriptions with it")
            if self._socket in ready:
                self._read_replies(None)
            else:
                self._ack_all()

    def _account(self, event: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """Check the sequence number of one event, acknowledge when due, and yield it."""
        sub = event.get("sub")
        state = self._subscriptions.get(sub) if isinstance(sub, int) else None
        seq = event.get("seq")
        if state is None or not isinstance(seq, int):
            yield event
            return
        gap = seq - state.seq - 1
        if event.get("event") == "dropped":
            gap -= int(event.get("count", 0)) - 1
        state.seq = max(state.seq, seq)
        if gap > 0:
            yield {"sub": sub, "seq": seq - 1, "event": "dropped", "count": gap}
        if state.seq - state.acked >= max(1, state.window // 2):
            self._ack(sub, state)
        yield event

    def _ack_all(self) -> None:
        for sub, state in self._subscriptions.items():
            if state.seq > state.acked:
                self._ack(sub, state)

    def _ack(self, sub: int, state: _Subscription) -> None:
        self._next_id += 1
        self._unanswered.add(self._next_id)
        try:
            self._socket.send(protocol.encode_request(self._next_id, "ack", {"sub": sub, "seq": state.seq}),
                              zmq.NOBLOCK)
        except zmq.Again:
            return
        state.acked = state.seq

    # -- waiting -----------------------------------------------------------------

    def _wait_reply(self, request_id: int, cmd: str, timeout: float) -> dict[str, Any]:
        started = time.monotonic()
        connect_deadline = started + self.connect_timeout
        reply_deadline = started + timeout
        while True:
            now = time.monotonic()
            if not self._ready and now >= connect_deadline:
                raise self._not_connected_error()
            if now >= reply_deadline:
                raise ClientError(
                    "timeout", f"no reply to '{cmd}' from {self.endpoint} within {timeout:g} s; "
                    "the manager may be busy (the command may still complete)"
                )
            deadline = reply_deadline if self._ready else min(connect_deadline, reply_deadline)
            if self._ready:
                self._spin_for_reply()
            ready = dict(self._poller.poll(max(1, int((deadline - now) * 1000) + 1)))
            if self._monitor in ready:
                self._read_monitor(waiting=True, cmd=cmd)
            if self._socket in ready:
                result = self._read_replies(request_id)
                if result is not None:
                    return result

    def _spin_for_reply(self) -> None:
        """Return once a message waits on the socket or REPLY_SPIN_SECONDS have passed."""
        end = time.perf_counter() + REPLY_SPIN_SECONDS
        while not self._socket.get(zmq.EVENTS) & _POLLIN and time.perf_counter() < end:
            pass

    def _read_replies(self, request_id: int | None) -> dict[str, Any] | None:
        """Consume queued messages; return the result for `request_id` if it arrived."""
        while True:
            try:
                frames = self._socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return None
            try:
                reply = protocol.decode_reply(frames[-1])
            except protocol.ProtocolError as exc:
                raise ClientError("protocol", f"invalid reply from {self.endpoint}: "
                                  f"{exc.message}") from None
            if "sub" in reply and "id" not in reply:
                self._events.append(reply)  # an event, for iter_events()
                continue
            reply_id = reply.get("id")
            if reply_id in self._unanswered:
                self._unanswered.discard(reply_id)  # the reply to an ack
                continue
            if request_id is None:
                continue
            # An error about a request the manager could not parse has no id; with
            # one request in flight it can only be about that one.
            if reply_id != request_id and not (reply_id is None and reply.get("ok") is False):
                log.debug("ignoring a reply to an earlier request (id=%r)", reply_id)
                continue
            return self._unpack(reply)

    def _unpack(self, reply: dict[str, Any]) -> dict[str, Any]:
        if reply.get("ok") is True:
            result = reply.get("result")
            if not isinstance(result, dict):
                raise ClientError("protocol", f"reply from {self.endpoint} has no result object")
            return result
        error = reply.get("error")
        if not isinstance(error, dict) or not isinstance(error.get("code"), str):
            raise ClientError("protocol", f"reply from {self.endpoint} has no error object")
        details = error.get("details")
        raise RemoteError(error["code"], str(error.get("message", "")),
                          details if isinstance(details, dict) else None)

    # -- monitor events ------------------------------------------------------------

    def _read_monitor(self, waiting: bool, cmd: str = "") -> None:
        if self._failure is not None:
            raise self._failure
        # Reading EVENTS first is cheaper than the zmq.Again raised by an empty socket.
        while self._monitor.get(zmq.EVENTS) & _POLLIN:
            try:
                frames = self._monitor.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            event, value = struct.unpack("=HI", frames[0][:6])
            self._on_event(event, value, waiting, cmd)

    def _on_event(self, event: int, value: int, waiting: bool, cmd: str) -> None:
        if event == zmq.EVENT_CONNECTED:
            self._connected = True
        elif event == zmq.EVENT_HANDSHAKE_SUCCEEDED:
            self._ready = self._ever_ready = True
        elif event == zmq.EVENT_DISCONNECTED:
            was_ready = self._ready
            self._connected = self._ready = False
            if was_ready and waiting:
                raise ClientError(
                    "connection-lost",
                    f"the connection to {self.endpoint} was lost before the reply to '{cmd}' "
                    "arrived; the manager may have stopped, and the command may have run",
                )
        elif event == zmq.EVENT_CONNECT_RETRIED and not self._ever_ready:
            # Refused on the first attempt: nothing listens there. Later refusals
            # (a manager restarting) are waited out until connect_timeout.
            if self.local_socket is not None:
                # Raises the stale-socket or permission error. When the socket
                # accepts connections now, ZeroMQ's next attempt will connect.
                probe_unix_socket(self.local_socket)
                return
            raise ClientError(
                "no-manager",
                f"nothing accepts connections at {self.endpoint}; is a unitmgr manager "
                "running there?",
            )
        elif event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            self._fail(ClientError(
                "unauthorized",
                f"the manager at {self.endpoint} refused this client's key; authorise it with: "
                f"unitmgr authorize-key < {self.client_pub_file}",
            ))
        elif event in (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL):
            self._on_handshake_failed(value)

    def _on_handshake_failed(self, value: int) -> None:
        if value in (errno.EAGAIN, errno.ETIMEDOUT):
            # HANDSHAKE_IVL expired: the peer accepted the connection but never spoke ZMTP.
            raise ClientError(
                "timeout",
                f"{self.endpoint} accepted the connection but did not complete the handshake "
                f"within {self.connect_timeout:g} s; is a unitmgr manager listening there?",
            )
        self._fail(ClientError(
            "server-key",
            f"the CURVE handshake with {self.endpoint} failed ({_strerror(value)}): the server "
            "key is wrong or this is not a unitmgr endpoint; read the key with "
            "`unitmgr endpoint --json` on that host",
        ))

    def _fail(self, error: ClientError) -> None:
        # Handshake failures are final: RECONNECT_STOP ended the connection attempts.
        self._failure = error
        raise error

    def _not_connected_error(self) -> ClientError:
        if self._connected:
            return ClientError(
                "timeout",
                f"{self.endpoint} accepted the connection but did not complete the handshake "
                f"within {self.connect_timeout:g} s; is a unitmgr manager listening there?",
            )
        return ClientError(
            "no-manager",
            f"no unitmgr manager answered at {self.endpoint} within {self.connect_timeout:g} s; "
            "is it running?",
        )


def _checked_key(key: bytes, kind: str, name: str) -> bytes:
    """Return `key` (raw 32 bytes or Z85) as Z85, or raise ClientError naming it."""
    if isinstance(key, bytes) and len(key) == 32:
        return z85.encode(key)
    try:
        return keyfiles.parse_key(key)
    except ValueError as exc:
        raise ClientError(kind, f"invalid {name}: {exc}") from None


def _strerror(value: int) -> str:
    try:
        return f"{errno.errorcode[value]}"
    except KeyError:
        return f"code {value}"
