"""Signalling a set of processes and waiting for all of them to be gone.

pidfds make both parts race-free: a signal sent through a pidfd cannot hit a
recycled pid, and a pidfd becomes readable when its process exits, also for
processes that are not the manager's children. The wait therefore needs no
polling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Iterable

log = logging.getLogger(__name__)


class ProcessSet:
    """Live processes of a unit, held by pidfd while they are being stopped."""

    def __init__(self, loop: asyncio.AbstractEventLoop, unit: str):
        self.loop = loop
        self.unit = unit
        self._fds: dict[int, int] = {}
        self._empty = asyncio.Event()
        self._empty.set()

    def add(self, pids: Iterable[int]) -> None:
        for pid in pids:
            if pid in self._fds:
                continue
            try:
                fd = os.pidfd_open(pid)
            except ProcessLookupError:
                continue
            self._fds[pid] = fd
            self._empty.clear()
            self.loop.add_reader(fd, self._on_exit, pid)

    def _on_exit(self, pid: int) -> None:
        fd = self._fds.pop(pid, None)
        if fd is not None:
            self.loop.remove_reader(fd)
            os.close(fd)
        if not self._fds:
            self._empty.set()

    @property
    def pids(self) -> list[int]:
        return list(self._fds)

    def signal(self, signum: int, pids: Iterable[int] | None = None) -> None:
        for pid in list(self._fds if pids is None else pids):
            fd = self._fds.get(pid)
            if fd is None:
                continue
            try:
                signal.pidfd_send_signal(fd, signum)
            except ProcessLookupError:
                pass
            except OSError as exc:
                log.warning("could not send %s to %s (pid %d): %s",
                            signal.Signals(signum).name, self.unit, pid, exc)

    async def wait_empty(self, timeout: float) -> bool:
        """Wait until every process is gone; return False on timeout."""
        if timeout == float("inf"):
            await self._empty.wait()
            return True
        try:
            await asyncio.wait_for(self._empty.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def close(self) -> None:
        for pid in list(self._fds):
            self._on_exit(pid)
