"""Phase time limits that a service may push back with `EXTEND_TIMEOUT_USEC=`.

systemd's rule: the limit of the current phase (start, stop, abort) fires at
`max(original deadline, time of the last extension + its length)`, so a
service must repeat the extension before each one runs out.
"""

from __future__ import annotations

import asyncio
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
    """The time limit of one phase. `extend()` moves it later but never earlier, and `expire()` ends it now.

    `run()` awaits in the calling task under an `asyncio.Timeout` that
    `extend()` and `expire()` reschedule, so a phase costs one timer handle
    and no extra task.
    """

    def __init__(self, seconds: float | None):
        self.seconds = effective_timeout(seconds)
        self.limit = time.monotonic() + self.seconds
        self._timeouts: list[asyncio.Timeout] = []

    def extend(self, seconds: float) -> None:
        candidate = time.monotonic() + seconds
        if candidate > self.limit:
            self.limit = candidate
            self._reschedule()

    def expire(self) -> None:
        """End the phase now, so that `run()` cancels what it awaits and raises TimeoutError."""
        self.limit = time.monotonic()
        self._reschedule()

    def expired(self) -> bool:
        return time.monotonic() >= self.limit

    def _when(self) -> float | None:
        """Return the limit on the running loop's clock, or None for no limit."""
        if math.isinf(self.limit):
            return None
        return asyncio.get_running_loop().time() + (self.limit - time.monotonic())

    def _reschedule(self) -> None:
        for timeout in self._timeouts:
            timeout.reschedule(self._when())

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable`, or cancel it and raise TimeoutError when the deadline passes first."""
        if self.expired():
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            elif isinstance(awaitable, asyncio.Future):
                awaitable.cancel()
            raise TimeoutError(f"timed out after {self.seconds:g}s")
        timeout = asyncio.timeout_at(self._when())
        try:
            async with timeout:
                self._timeouts.append(timeout)
                try:
                    return await awaitable
                finally:
                    self._timeouts.remove(timeout)
        except TimeoutError:
            if not timeout.expired():
                raise  # raised by the awaitable itself
            raise TimeoutError(f"timed out after {self.seconds:g}s") from None
