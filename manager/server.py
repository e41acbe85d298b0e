"""The manager's control endpoint: one ZeroMQ ROUTER socket with CURVE, served
from the manager's asyncio loop.

The socket is a plain (blocking-API) ZeroMQ socket read from a callback on
its ZMQ_FD, with non-blocking receives and sends. With zmq.asyncio's futures
a round trip took about 30 µs longer (pyzmq 27, a minimal echo server on a
2-core machine).

Arguments are type-checked (manager/requestargs.py) before the handler is
called as

    outcome = handler(request, peer)

with a `protocol.Request` and a `Peer` (the client's Z85 public key and its
ROUTER routing id). It returns the result dict, or the result already
encoded as a `protocol.EncodedJSON`, or raises `protocol.ProtocolError` for
an error reply. Any other exception is logged with its traceback and the
client gets an `internal` error without it.

A result is sent before the server reads the next message, which saves a
task and a turn of the event loop per request, so the handler returns one
only for a command that needs no I/O, such as `list`. For any other command
it returns an awaitable (a coroutine), which runs as its own task, so a slow
command never delays another one. A client connection may have
MAX_REQUESTS_PER_CLIENT such tasks running. Beyond that, every further
request except an event `ack` gets a `busy` error at once without being run,
so a client that sends without reading replies cannot fill the manager with
tasks. The server reads one message per turn of the event loop, so unit
output, timers and other clients keep being served during a flood.

While serving, the server writes the endpoints and its public key to the
endpoint file (`Paths.endpoint_file`, mode 0600) for clients:

    {"endpoints": ["ipc:///run/user/1000/unitmgr/control.sock", "tcp://127.0.0.1:5555"],
     "server_key": "<Z85 public key>", "pid": 1234, "protocol": 2}
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import zmq
import zmq.asyncio
from unitmgr.manager import protocol
from unitmgr.manager.keys import KeyMaterial, write_atomic
from unitmgr.manager.paths import Paths, ensure_private_dir
from unitmgr.manager.requestargs import check_arguments
from unitmgr.manager.zap import ZapAuthenticator

log = logging.getLogger(__name__)

# Maximum unix socket path length: sizeof(sun_path) on Linux minus the final NUL.
MAX_SOCKET_PATH = 107
# Requests one client connection may have running at once. The shell sends one
# at a time and an event subscriber acks one window at a time, so 64 leaves
# room for clients that pipeline.
MAX_REQUESTS_PER_CLIENT = 64
# An ack is a few dozen bytes, so a longer message is not taken for one.
ACK_MAX_BYTES = 256
# zmq.POLLIN as a plain int: `&` with the IntFlag runs enum code (0.4 µs per check, CPython 3.11).
_POLLIN = int(zmq.POLLIN)


class ControlServerError(Exception):
    """The control endpoint cannot start (bind failed, another manager, bad address)."""


@dataclass(frozen=True)
class Peer:
    """The client behind a request."""

    key: str  # the client's CURVE public key, Z85
    identity: bytes  # ROUTER routing id, the address for events sent later


# The client behind the request being served; commands such as `subscribe` read it.
current_peer: contextvars.ContextVar[Peer | None] = contextvars.ContextVar("current_peer", default=None)

Result = dict[str, Any] | protocol.EncodedJSON
Handler = Callable[[protocol.Request, Peer], Result | Awaitable[Result]]


def is_loopback_endpoint(endpoint: str) -> bool:
    if not endpoint.startswith("tcp://"):
        return True
    host = endpoint[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    return host == "::1" or host == "localhost" or host.startswith("127.")


def check_listen_endpoint(endpoint: str) -> None:
    """Raise ControlServerError for an endpoint that is not tcp://HOST:PORT or ipc://PATH."""
    if endpoint.startswith("ipc://") and len(endpoint) > len("ipc://"):
        return
    if endpoint.startswith("tcp://") and ":" in endpoint[len("tcp://"):]:
        return
    raise ControlServerError(
        f"invalid listen endpoint {endpoint!r}; use tcp://127.0.0.1:PORT, tcp://[::1]:PORT "
        "or ipc:///PATH"
    )


class ControlServer:
    def __init__(
        self,
        paths: Paths,
        keys: KeyMaterial,
        handler: Handler,
        listen: Iterable[str] = (),
        *,
        max_message_bytes: int = protocol.MAX_MESSAGE_BYTES,
    ):
        self.paths = paths
        self.keys = keys
        self.handler = handler
        self.listen = list(listen)
        self.max_message_bytes = max_message_bytes
        self._context: zmq.asyncio.Context | None = None
        self._socket: zmq.Socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._read_scheduled = False
        self._zap: ZapAuthenticator | None = None
        self._requests: set[asyncio.Task[None]] = set()
        # Running requests per client routing id, and the busy replies sent to
        # each client since it last dropped below the limit.
        self._in_flight: dict[bytes, int] = {}
        self._busy_replies: dict[bytes, int] = {}
        self._bound: list[str] = []
        # Called when the server stops (the event hub cancels its producers).
        self.on_stop: list[Callable[[], None]] = []

    @property
    def bound_endpoints(self) -> list[str]:
        """The endpoints bound, with tcp port 0 replaced by the port the kernel chose."""
        return list(self._bound)

    # -- lifecycle -------------------------------------------------------------

    async def start(self) -> None:
        for endpoint in self.listen:
            check_listen_endpoint(endpoint)
        ensure_private_dir(self.paths.runtime)
        self._remove_stale_socket()
        self._context = zmq.asyncio.Context()
        # The ZAP handler must be bound before the ROUTER: without one, libzmq
        # accepts every CURVE client.
        self._zap = ZapAuthenticator(self._context, self.paths.authorized_keys)
        self._zap.start()
        try:
            self._socket = self._make_socket()
            for endpoint in [self.paths.control_endpoint, *self.listen]:
                self._bind(endpoint)
            self._write_endpoint_file()
        except BaseException:
            await self.stop()
            raise
        self._loop = asyncio.get_running_loop()
        self._read_scheduled = False
        self._loop.add_reader(self._socket.FD, self._on_readable)
        # Requests may have arrived before the reader was added; the edge is gone then.
        self._schedule_read()
        log.info("control endpoint listening on %s", " ".join(self._bound))

    async def stop(self) -> None:
        """Stop serving, cancel running requests, remove the socket and endpoint files."""
        for callback in self.on_stop:
            try:
                callback()
            except Exception:
                log.exception("control endpoint: a stop callback failed")
        if self._loop is not None and self._socket is not None:
            self._loop.remove_reader(self._socket.FD)
        tasks = list(self._requests)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._requests.clear()
        self._in_flight.clear()
        self._busy_replies.clear()
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._zap is not None:
            await self._zap.stop()
            self._zap = None
        if self._context is not None:
            self._context.term()
            self._context = None
        if self._bound:
            self.paths.control_socket.unlink(missing_ok=True)
            self.paths.endpoint_file.unlink(missing_ok=True)
        self._bound = []

    def _make_socket(self) -> zmq.Socket:
        assert self._context is not None
        # A synchronous socket on the asyncio context, which the ZAP handler shares.
        sock = zmq.Socket(self._context, zmq.ROUTER)
        sock.linger = 0
        sock.ipv6 = True
        sock.curve_server = True
        sock.curve_secretkey = self.keys.server.secret
        sock.curve_publickey = self.keys.server.public
        sock.zap_domain = b"unitmgr"
        # Requests up to twice the limit get a too-large reply; above that libzmq
        # drops the connection before buffering the whole message.
        sock.maxmsgsize = 2 * self.max_message_bytes
        return sock

    def _bind(self, endpoint: str) -> None:
        assert self._socket is not None
        if endpoint.startswith("ipc://") and len(endpoint[6:].encode()) > MAX_SOCKET_PATH:
            raise ControlServerError(
                f"socket path {endpoint[6:]} is longer than {MAX_SOCKET_PATH} bytes; "
                "set UNITMGR_RUNTIME_DIR to a shorter directory"
            )
        if not is_loopback_endpoint(endpoint):
            log.warning("control endpoint %s is reachable from other hosts; "
                        "only CURVE keys in authorized_keys protect it", endpoint)
        try:
            self._socket.bind(endpoint)
        except zmq.ZMQError as exc:
            raise ControlServerError(f"cannot listen on {endpoint}: {exc.strerror}") from None
        self._bound.append(self._socket.last_endpoint.decode())

    def _remove_stale_socket(self) -> None:
        """Remove a control socket left by a manager that died, refusing to remove a live one."""
        path = self.paths.control_socket
        if not path.exists():
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except ConnectionRefusedError:
            log.info("removing stale control socket %s", path)
            path.unlink(missing_ok=True)
            return
        except OSError as exc:
            raise ControlServerError(f"cannot check control socket {path}: {exc}") from None
        finally:
            probe.close()
        raise ControlServerError(f"another manager is listening on {path}")

    def _write_endpoint_file(self) -> None:
        info = {
            "endpoints": self._bound,
            "server_key": self.keys.server.public.decode(),
            "pid": os.getpid(),
            "protocol": protocol.PROTOCOL_VERSION,
        }
        write_atomic(self.paths.endpoint_file, json.dumps(info, indent=2) + "\n", 0o600)

    # -- serving ---------------------------------------------------------------

    def _schedule_read(self) -> None:
        """Check the socket for requests on the next turn of the event loop.

        ZMQ_FD is edge-triggered: any receive, send or EVENTS read may consume
        the edge while messages wait, so this runs after each of them."""
        if self._read_scheduled or self._loop is None:
            return
        self._read_scheduled = True
        self._loop.call_soon(self._on_readable)

    def _on_readable(self) -> None:
        """Read and dispatch one request, if one is queued."""
        self._read_scheduled = False
        if self._socket is None:
            return
        try:
            if not self._socket.getsockopt(zmq.EVENTS) & _POLLIN:
                return  # the next message raises the edge of ZMQ_FD again
            frames = self._socket.recv_multipart(zmq.NOBLOCK, copy=False)
        except zmq.Again:
            return
        except zmq.ZMQError as exc:
            if exc.errno == zmq.ETERM:
                return
            log.error("control endpoint: receive failed: %s; still serving", exc)
            self._schedule_read()
            return
        try:
            self._dispatch(frames)
        finally:
            # One message per turn, so a flood of requests does not starve other tasks.
            self._schedule_read()

    def _dispatch(self, frames: list[zmq.Frame]) -> None:
        """Run one request, or reply at once to a multi-frame message or one over the client's limit."""
        identity = frames[0].bytes
        try:
            key = frames[-1].get("User-Id")
        except zmq.ZMQError:
            key = ""  # no ZAP metadata: our ZAP handler sets User-Id on every accepted client
        peer = Peer(key=key, identity=identity)
        if len(frames) != 2:
            log.debug("rejected a request of %d frames from client %s…", len(frames) - 1,
                      key[:8])
            self._send(peer, protocol.reply_error(
                None, protocol.BAD_REQUEST,
                f"a request is one message frame, got {len(frames) - 1}"))
            return
        data = frames[1].bytes
        running = self._in_flight.get(identity, 0)
        if running >= MAX_REQUESTS_PER_CLIENT and not _is_ack(data):
            self._reply_busy(peer, data)
            return
        self._start(peer, data)

    def _start(self, peer: Peer, data: bytes) -> None:
        """Reply at once when the handler returns a result, or run the awaitable it returns as a task."""
        request_id: Any = None
        try:
            request = self._decode(data)
            request_id = request.id
            request = check_arguments(request)
            # A task copies the context it is created in, so a command that
            # runs as a task reads the peer too.
            token = current_peer.set(peer)
            try:
                outcome = self.handler(request, peer)
                if not isinstance(outcome, (dict, protocol.EncodedJSON)):
                    self._run_task(peer, request_id, outcome)
                    return
            finally:
                current_peer.reset(token)
            reply = protocol.reply_ok(request_id, outcome)
        except protocol.ProtocolError as exc:
            reply = self._error_reply(peer, request_id, exc)
        except Exception:
            log.exception("request failed: client=%s… request=%r", peer.key[:8], data[:200])
            reply = protocol.reply_error(request_id, protocol.INTERNAL,
                                         "internal error in the manager; see its log")
        self._send(peer, reply)

    def _decode(self, data: bytes) -> protocol.Request:
        if len(data) > self.max_message_bytes:
            raise protocol.ProtocolError(
                protocol.TOO_LARGE,
                f"request of {len(data)} bytes exceeds the {self.max_message_bytes} byte limit",
            )
        return protocol.decode_request(data)

    def _run_task(self, peer: Peer, request_id: Any, outcome: Any) -> None:
        if not inspect.isawaitable(outcome):
            raise TypeError(f"handler returned {type(outcome).__name__}, not a dict or an awaitable")
        assert self._loop is not None
        self._in_flight[peer.identity] = self._in_flight.get(peer.identity, 0) + 1
        task = self._loop.create_task(self._serve(peer, request_id, outcome))
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)
        task.add_done_callback(lambda _: self._request_done(peer))

    def _request_done(self, peer: Peer) -> None:
        running = self._in_flight.get(peer.identity, 0) - 1
        if running > 0:
            self._in_flight[peer.identity] = running
        else:
            self._in_flight.pop(peer.identity, None)
        rejected = self._busy_replies.pop(peer.identity, 0)
        if rejected:
            log.warning("client %s… is below the limit of %d requests in flight again; %d requests "
                        "got a busy error", peer.key[:8], MAX_REQUESTS_PER_CLIENT, rejected)

    def _reply_busy(self, peer: Peer, data: bytes) -> None:
        """Reply `busy` to a request over the client's limit, without running it."""
        rejected = self._busy_replies.get(peer.identity, 0)
        if rejected == 0:
            log.warning("client %s… has %d requests in flight; replying busy to further requests "
                        "until some finish", peer.key[:8], MAX_REQUESTS_PER_CLIENT)
        self._busy_replies[peer.identity] = rejected + 1
        try:
            request_id = protocol.decode_request(data).id
        except protocol.ProtocolError as exc:
            request_id = exc.details.get("id")
        self._send(peer, protocol.reply_error(
            request_id, protocol.BUSY,
            f"too many requests in flight: this connection already has "
            f"{MAX_REQUESTS_PER_CLIENT} running, the limit; wait for their replies before sending more"))

    async def _serve(self, peer: Peer, request_id: Any, outcome: Awaitable[Any]) -> None:
        try:
            result = await outcome
            if not isinstance(result, (dict, protocol.EncodedJSON)):
                raise TypeError(f"handler returned {type(result).__name__}, not a dict")
            reply = protocol.reply_ok(request_id, result)
        except protocol.ProtocolError as exc:
            reply = self._error_reply(peer, request_id, exc)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is None or task.cancelling():
                raise  # the server is stopping
            # A task the handler awaited was canceled, not this request, so it still gets a reply.
            log.error("request id=%r from client %s… failed: a task it waited for was canceled",
                      request_id, peer.key[:8])
            reply = protocol.reply_error(request_id, protocol.INTERNAL,
                                         "internal error in the manager; see its log")
        except Exception:
            log.exception("request id=%r from client %s… failed", request_id, peer.key[:8])
            reply = protocol.reply_error(request_id, protocol.INTERNAL,
                                         "internal error in the manager; see its log")
        self._send(peer, reply)

    def _error_reply(self, peer: Peer, request_id: Any, exc: protocol.ProtocolError) -> dict[str, Any]:
        details = dict(exc.details)
        # decode_request puts the id of a request it rejects into the details.
        detail_id = details.pop("id", None)
        if request_id is None:
            request_id = detail_id
        log.debug("request id=%r from client %s… failed: %s: %s",
                  request_id, peer.key[:8], exc.code, exc.message)
        reply = protocol.reply_error(request_id, exc.code, exc.message)
        if details:
            reply["error"]["details"] = details
        return reply

    def _send(self, peer: Peer, reply: dict[str, Any]) -> None:
        if self._socket is None:
            return
        try:
            data = protocol.encode(reply)
            if len(data) > self.max_message_bytes:
                raise protocol.ProtocolError(protocol.TOO_LARGE, "reply too large")
        except protocol.ProtocolError:
            log.warning("reply to request id=%r exceeds the %d byte limit; sent too-large",
                        reply.get("id"), self.max_message_bytes)
            data = protocol.encode(protocol.reply_error(
                reply.get("id"), protocol.TOO_LARGE,
                f"the reply exceeds the {self.max_message_bytes} byte limit"))
        except (TypeError, ValueError, RecursionError):
            log.exception("cannot encode reply to request id=%r", reply.get("id"))
            data = protocol.encode(protocol.reply_error(
                reply.get("id"), protocol.INTERNAL, "internal error in the manager; see its log"))
        # Without ROUTER_MANDATORY a ROUTER send does not block; libzmq drops a
        # message to a peer that has disconnected, or one whose queue is full.
        try:
            self._socket.send_multipart([peer.identity, data], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.warning("cannot send reply to request id=%r to client %s…: %s",
                        reply.get("id"), peer.key[:8], exc)
        self._schedule_read()

    def send_event(self, identity: bytes, event: dict[str, Any]) -> bool:
        """Send one event to one client at once, without waiting; return False if it was not sent.

        A ROUTER socket without ROUTER_MANDATORY never blocks a send: libzmq
        drops a message for a client that has gone. The event hub's window
        keeps a live client's queue in libzmq well below its high-water mark."""
        if self._socket is None:
            return False
        try:
            data = protocol.encode(event)
        except (protocol.ProtocolError, TypeError, ValueError, RecursionError) as exc:
            log.error("cannot encode a %s event for subscription %s: %s", event.get("event"),
                      event.get("sub"), exc)
            return False
        try:
            self._socket.send_multipart([identity, data], zmq.NOBLOCK)
        except zmq.ZMQError as exc:
            log.debug("event for subscription %s not sent: %s", event.get("sub"), exc)
            return False
        finally:
            self._schedule_read()
        return True


def _is_ack(data: bytes) -> bool:
    """Return whether a request is an event `ack`, which passes the in-flight limit.

    A busy client still has to acknowledge the events it read, or its
    subscription stalls for good. An ack is cheap and runs no job.
    """
    if b'"ack"' not in data or len(data) > ACK_MAX_BYTES:
        return False
    try:
        return protocol.decode_request(data).cmd == "ack"
    except protocol.ProtocolError:
        return False
