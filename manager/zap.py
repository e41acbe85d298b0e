"""A ZAP handler (ZeroMQ RFC 27) that accepts CURVE clients listed in authorized_keys.

libzmq sends a ZAP request for every CURVE handshake to the handler bound at
inproc://zeromq.zap.01 of the socket's context. With no handler bound, libzmq accepts
every client, so the handler must be running before the ROUTER binds.
The file is read again whenever its mtime, size or inode changes, so a key
added or removed takes effect on the next connection without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.asyncio
from unitmgr.manager.keys import read_authorized_keys
from zmq.utils import z85

log = logging.getLogger(__name__)

ZAP_ENDPOINT = "inproc://zeromq.zap.01"
REJECTION_LOG_INTERVAL = 60.0  # seconds between two warnings about the same rejected key
# Distinct rejected keys remembered per interval; past it (a client trying random
# keys) further rejections are only counted.
MAX_TRACKED_REJECTIONS = 256


@dataclass
class AuthorizedKeys:
    """The keys of an authorized_keys file, re-read when the file changes."""

    path: Path
    _keys: set[bytes] = field(default_factory=set)
    _signature: tuple[int, int, int] | None = None
    _loaded: bool = False

    def current(self) -> set[bytes]:
        try:
            info = os.stat(self.path)
            signature: tuple[int, int, int] | None = (info.st_mtime_ns, info.st_size, info.st_ino)
        except OSError:
            signature = None
        if not self._loaded or signature != self._signature:
            # read_authorized_keys warns about a missing file and bad lines, so
            # each problem is logged once per change of the file.
            self._keys = read_authorized_keys(self.path)
            self._signature = signature
            self._loaded = True
        return self._keys


class ZapAuthenticator:
    """Run the ZAP handler of `context` as a task of the running asyncio loop."""

    def __init__(self, context: zmq.asyncio.Context, authorized_keys: Path):
        self._context = context
        self._keys = AuthorizedKeys(authorized_keys)
        self._socket: zmq.asyncio.Socket | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_rejection_log: dict[bytes, float] = {}
        self._suppressed: dict[bytes, int] = {}
        self._untracked_rejections = 0

    def start(self) -> None:
        self._keys.current()  # log problems of the file at start-up
        self._socket = self._context.socket(zmq.REP)
        self._socket.linger = 0
        self._socket.bind(ZAP_ENDPOINT)
        self._task = asyncio.get_running_loop().create_task(self._serve(), name="zap")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            except Exception:
                log.exception("ZAP handler had failed before it was stopped")
            self._task = None
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        # With pyzmq 27.3, sockets created right after the ZAP socket closed in the
        # same loop lost the first request in 6 of 10 runs. A 10 ms pause lost none.
        await asyncio.sleep(0.01)

    async def _serve(self) -> None:
        assert self._socket is not None
        # A stopped ZAP handler would leave every CURVE handshake waiting, so
        # errors are logged and the loop goes on.
        while True:
            try:
                frames = await self._socket.recv_multipart()
            except zmq.ZMQError as exc:
                if exc.errno == zmq.ETERM:
                    return
                log.error("ZAP: receive failed: %s", exc)
                continue
            try:
                reply = self._answer(frames)
            except Exception:
                log.exception("ZAP handler failed on a request; rejecting the client")
                request_id = frames[1] if len(frames) > 1 else b""
                reply = [b"1.0", request_id, b"500", b"internal error", b"", b""]
            try:
                await self._socket.send_multipart(reply)
            except zmq.ZMQError as exc:
                log.error("ZAP: sending the reply failed: %s", exc)

    def _answer(self, frames: list[bytes]) -> list[bytes]:
        if len(frames) < 6 or frames[0] != b"1.0":
            log.warning("ZAP: malformed request with %d frames; rejecting it", len(frames))
            request_id = frames[1] if len(frames) > 1 else b""
            return [b"1.0", request_id, b"400", b"malformed ZAP request", b"", b""]
        request_id, address, mechanism = frames[1], frames[3], frames[5]
        if mechanism != b"CURVE" or len(frames) < 7 or len(frames[6]) != 32:
            return [b"1.0", request_id, b"400", b"CURVE required", b"", b""]
        key = z85.encode(frames[6])
        if key in self._keys.current():
            log.debug("ZAP: accepted client key %s…", key[:8].decode())
            return [b"1.0", request_id, b"200", b"OK", key, b""]
        self._log_rejection(key, address.decode("utf-8", "replace"))
        return [b"1.0", request_id, b"400", b"client key not authorized", b"", b""]

    def _log_rejection(self, key: bytes, address: str) -> None:
        now = time.monotonic()
        if len(self._last_rejection_log) >= MAX_TRACKED_REJECTIONS:
            self._forget_old_rejections(now)
        if key not in self._last_rejection_log and (
            len(self._last_rejection_log) >= MAX_TRACKED_REJECTIONS
        ):
            self._untracked_rejections += 1
            return
        last = self._last_rejection_log.get(key)
        if last is not None and now - last < REJECTION_LOG_INTERVAL:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        repeats = self._suppressed.pop(key, 0)
        self._last_rejection_log[key] = now
        log.warning(
            "rejected client key %s… (not in %s)%s%s",
            key[:8].decode(),
            self._keys.path,
            f" address={address}" if address else "",
            f" ({repeats} more rejections not logged)" if repeats else "",
        )

    def _forget_old_rejections(self, now: float) -> None:
        for key, last in list(self._last_rejection_log.items()):
            if now - last >= REJECTION_LOG_INTERVAL:
                del self._last_rejection_log[key]
                self._suppressed.pop(key, None)
        if self._untracked_rejections and len(self._last_rejection_log) < MAX_TRACKED_REJECTIONS:
            log.warning("rejected %d connections from further unknown client keys (not logged "
                        "one by one)", self._untracked_rejections)
            self._untracked_rejections = 0
