"""Phase time limits that a service may push back with `EXTEND_TIMEOUT_USEC=`.

systemd's rule: the limit of the current phase (start, stop, abort) fires at
`max(original deadline, time of the last extension + its length)`, so a
service must repeat the extension before each one runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


def effective_timeout(seconds: float | None) -> float:
    """Map systemd's `0` and `infinity` to math.inf."""
    if seconds is None or seconds <= 0:
        return math.inf
    return seconds


class Deadline:
    """The time limit of one phase. `extend()` moves it later but never earlier, and `expire()` ends it now."""

    def __init__(self, seconds: float | None):
        self.seconds = effective_timeout(seconds)
        self.limit = time.monotonic() + self.seconds
        self._changed = asyncio.Event()

    def extend(self, seconds: float) -> None:
        candidate = time.monotonic() + seconds
        if candidate > self.limit:
            self.limit = candidate
            self._changed.set()

    def expire(self) -> None:
        """End the phase now, so that `run()` cancels what it awaits and raises TimeoutError."""
        self.limit = time.monotonic()
        self._changed.set()

    def expired(self) -> bool:
        return time.monotonic() >= self.limit

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable`, or cancel it and raise TimeoutError when the deadline passes first."""
        task = asyncio.ensure_future(awaitable)
        try:
            while True:
                remaining = self.limit - time.monotonic()
                if remaining <= 0:
                    break
                self._changed.clear()
                changed = asyncio.ensure_future(self._changed.wait())
                timeout = None if math.isinf(remaining) else remaining
                try:
                    done, _ = await asyncio.wait({task, changed}, timeout=timeout,
                                                 return_when=asyncio.FIRST_COMPLETED)
                finally:
                    changed.cancel()
                if task in done:
                    return task.result()
        except asyncio.CancelledError:
            task.cancel()
            raise
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise TimeoutError(f"timed out after {self.seconds:g}s")
