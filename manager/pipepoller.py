"""One epoll set for the output pipes of every unit, which the event loop watches as one reader.

`loop.add_reader()` keeps a Handle, a copy of the context and a SelectorKey
for each descriptor, about 340 bytes (tracemalloc, CPython 3.11). A service
has two output pipes, so 500 services cost about 0.34 MB of the idle
manager's memory that way. Here each pipe costs an entry in a dict (about
50 bytes), and the loop watches the epoll descriptor instead. When it is
readable, `dispatch()` polls the set for the ready pipes and calls their
callbacks. The set is level-triggered like the loop's own selector, so a
pipe with data left after a callback is reported again in the next round.

The poller also owns the one splice stage (splicestage.py) that the readers
of these pipes share.
"""

from __future__ import annotations

import asyncio
import logging
import select
import weakref
from collections.abc import Callable

from unitmgr.manager.splicestage import SpliceStage

log = logging.getLogger(__name__)

# The poller of each running event loop; a poller exists only while it watches a pipe.
_pollers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PipePoller] = weakref.WeakKeyDictionary()


class PipePoller:
    """The output pipes of one event loop, in one epoll set."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        # A weak reference, so that the WeakKeyDictionary entry of the loop can go away with it.
        self._loop = weakref.ref(loop)
        self._epoll = select.epoll()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._stage: SpliceStage | None = None
        loop.add_reader(self._epoll.fileno(), self.dispatch)

    def add(self, fd: int, callback: Callable[[], None]) -> None:
        """Call `callback` whenever `fd` is readable, until remove(fd)."""
        self._epoll.register(fd, select.EPOLLIN)
        self._callbacks[fd] = callback

    def remove(self, fd: int) -> None:
        """Stop watching `fd`, which the caller closes afterwards. The last removal closes the poller."""
        if self._callbacks.pop(fd, None) is None:
            return
        self._epoll.unregister(fd)
        if not self._callbacks:
            self.close()

    @property
    def stage(self) -> SpliceStage:
        """The splice stage of these pipes, created on first use."""
        if self._stage is None:
            self._stage = SpliceStage()
        return self._stage

    def close(self) -> None:
        if self._stage is not None:
            self._stage.close()
            self._stage = None
        loop = self._loop()
        if loop is not None:
            if not loop.is_closed():
                loop.remove_reader(self._epoll.fileno())
            if _pollers.get(loop) is self:
                del _pollers[loop]
        self._epoll.close()

    def dispatch(self) -> None:
        """Call the callback of every ready pipe once."""
        for fd, _events in self._epoll.poll(0):
            # A callback before this one may have removed the pipe.
            callback = self._callbacks.get(fd)
            if callback is None:
                continue
            try:
                callback()
            except Exception:
                # Logged as the loop logs a failing reader, so the other pipes are still read.
                log.exception("callback of output pipe fd %d failed", fd)


def pipe_poller(loop: asyncio.AbstractEventLoop) -> PipePoller:
    """Return the poller of `loop`, creating it on the first pipe."""
    poller = _pollers.get(loop)
    if poller is None:
        poller = _pollers[loop] = PipePoller(loop)
    return poller
