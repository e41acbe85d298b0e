"""A pipe of the manager's own between a unit's output pipe and its log file.

A splice from a pipe into a file copies the bytes into the page cache while
it holds the pipe's lock, and the unit, writing into the same pipe, copies
its next write in under that same lock. So the manager's copy and the
unit's copy take turns even on two cores. A splice from one pipe into
another copies nothing: it moves references to the pages. The manager
therefore moves what the unit wrote into this stage first, which holds the
unit's pipe only for a moment, and copies from the stage into the file
under a lock no unit shares. In a capture of 200 MB on two cores that took
the rate from about 0.65 to about 0.85 of a plain write to the file
(bench/notes.md, S5).

The event loop runs one callback at a time, and every fill is followed by
puts or a take-back in the same callback, so one stage serves all the
output pipes of a loop.
"""

from __future__ import annotations

import fcntl
import logging
import os

log = logging.getLogger(__name__)

F_SETPIPE_SZ = 1031
F_GETPIPE_SZ = 1032
STAGE_BYTES = 1024 * 1024


class SpliceStage:
    """A pipe that carries the bytes of one read from a unit's pipe into its log file."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(self.write_fd, F_SETPIPE_SZ, STAGE_BYTES)
        except OSError:
            # Over the user's pipe-user-pages-soft limit or pipe-max-size: the default size still works.
            pass
        self.capacity = fcntl.fcntl(self.write_fd, F_GETPIPE_SZ)
        # Bytes filled in and not yet put into a file or taken back.
        self.staged_bytes = 0

    def fill(self, source_fd: int, limit: int | None = None) -> int:
        """Move what waits in the pipe `source_fd` into the stage: as much as fits, and at most `limit` bytes.

        Return the bytes moved, 0 at EOF of `source_fd`. Raise BlockingIOError
        when that pipe is empty but still open for writing."""
        if self.staged_bytes:
            # Only a bug leaves bytes behind; they must not end up in another unit's log.
            log.error("splice stage still contained %d bytes of an earlier read; dropping them", self.staged_bytes)
            self.take_back()
        count = self.capacity if limit is None else min(limit, self.capacity)
        moved = os.splice(source_fd, self.write_fd, count, flags=os.SPLICE_F_NONBLOCK)
        self.staged_bytes = moved
        return moved

    def put(self, target_fd: int, offset: int, count: int) -> int:
        """Move up to `count` staged bytes into the file `target_fd` at `offset`; return the bytes moved."""
        moved = os.splice(self.read_fd, target_fd, min(count, self.staged_bytes), offset_dst=offset)
        self.staged_bytes -= moved
        return moved

    def take_back(self) -> bytes:
        """Read out and return every byte still in the stage, leaving it empty."""
        pieces = []
        while self.staged_bytes:
            try:
                data = os.read(self.read_fd, self.staged_bytes)
            except BlockingIOError:
                data = b""
            if not data:
                # The count went wrong somewhere; nothing more is in the pipe.
                self.staged_bytes = 0
                break
            pieces.append(data)
            self.staged_bytes -= len(data)
        return b"".join(pieces)

    def close(self) -> None:
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self.read_fd = self.write_fd = -1
