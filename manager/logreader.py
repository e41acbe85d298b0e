"""Reading lines back from one log file and its index.

Lines are rebuilt from the index records: a line gets the time of the read
that completed it. A request for the last N lines, or for the lines since a
time, does not rebuild the whole file. Reading starts near the end (or at
the time), just after a newline of every stream, and moves further back
only when that did not give enough lines. So `status` and `logs -n 10` cost
about the same for a small log and for a large one.

A line longer than LINE_MAX comes back in pieces (see linecut.py), and each
piece counts as one line for `lines`. The pieces are read from the start of
their line, so the last pieces of a long line take a read of the whole line
but never keep more than `lines` pieces in memory. A line that rotation
split between two files is continued from the unfinished end of the older
file (CarryIn), so its pieces are the same as when it is followed live.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from unitmgr.manager.linecut import LineCutter
from unitmgr.manager.logformat import (
    EOF_FLAG,
    META_FLAG,
    RECORD,
    STREAM_MASK,
    STREAM_NAMES,
    STREAM_NUMBERS,
    LogLine,
)

# Byte offsets of the time (f64) and the flags (u8) inside a RECORD.
_TIME = struct.Struct("<d")
_TIME_OFFSET = 8
_FLAGS_OFFSET = 24
# How far back to look for a line boundary before reading the file from its start.
MAX_BOUNDARY_SEARCH = 100_000

Accept = Callable[[LogLine], bool]


class CarryIn:
    """The unfinished lines at the end of the next older file, which a file read from its start continues.

    `load` returns the last lines of the older file; it is called at most
    once, and only when a stream's first record is read. `consumed` names
    the streams whose unfinished line the newer file continued: that line
    must not be shown a second time from the older file."""

    def __init__(self, load: Callable[[], list[LogLine]]):
        self._load = load
        self._lines: dict[int, LogLine] | None = None
        self.consumed: set[str] = set()

    def take(self, stream: int) -> LogLine | None:
        if self._lines is None:
            self._lines = {STREAM_NUMBERS[line.stream]: line for line in self._load() if line.pending}
        line = self._lines.get(stream)
        if line is not None:
            self.consumed.add(line.stream)
        return line


def last_time(index_path: Path) -> float:
    """Return the time of the last record of an index file (0.0 when empty or unreadable)."""
    try:
        with open(index_path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            usable = size - size % RECORD.size
            if not usable:
                return 0.0
            f.seek(usable - RECORD.size)
            return RECORD.unpack(f.read(RECORD.size))[1]
    except OSError:
        return 0.0


def read_lines(
    unit: str,
    data_path: Path,
    index_path: Path,
    lines: int = 0,
    since: float | None = None,
    accept: Accept | None = None,
    carry: CarryIn | None = None,
) -> list[LogLine]:
    """Return the last `lines` lines (0: all) of one file accepted by `accept`, oldest first.

    With `since`, only lines completed at or after that time. When reading
    starts at the file's first record, its first line of each stream continues
    the unfinished line of `carry`."""
    index = index_path.read_bytes()
    index = index[:len(index) - len(index) % RECORD.size]
    total = len(index) // RECORD.size
    with open(data_path, "rb") as data_file:
        size = os.fstat(data_file.fileno()).st_size
        data: bytes | mmap.mmap = b"" if size == 0 else mmap.mmap(data_file.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return _select(unit, data, index, total, lines, since, accept, carry)
        finally:
            if isinstance(data, mmap.mmap):
                data.close()


def _select(
    unit: str, data: bytes | mmap.mmap, index: bytes, total: int,
    lines: int, since: float | None, accept: Accept | None, carry: CarryIn | None,
) -> list[LogLine]:
    first = 0 if since is None else _first_at_or_after(index, total, since)

    def wanted(line: LogLine) -> bool:
        return (since is None or line.time >= since) and (accept is None or accept(line))

    window = lines * 2 + 64 if lines else total
    while True:
        tentative = max(first, total - window)
        start, skip = _boundary(data, index, tentative)
        rebuilt = (line for line in _rebuild(unit, data, index, start, total, skip, carry if start == 0 else None)
                   if wanted(line))
        if not lines:
            return list(rebuilt)
        # Only the last `lines` are kept, so a long line read from its start
        # costs time but not memory.
        found = deque(rebuilt, maxlen=lines)
        if len(found) >= lines or start <= first:
            return list(found)
        window *= 4


def _first_at_or_after(index: bytes, total: int, since: float) -> int:
    """Return the first record whose time is at or after `since` (records are in time order)."""
    low, high = 0, total
    while low < high:
        middle = (low + high) // 2
        if _TIME.unpack_from(index, middle * RECORD.size + _TIME_OFFSET)[0] < since:
            low = middle + 1
        else:
            high = middle
    return low


def _boundary(data: bytes | mmap.mmap, index: bytes, tentative: int) -> tuple[int, dict[int, tuple[int, int]]]:
    """Return where to start reading so that no line before `tentative` is cut.

    Walking back from `tentative`, each stream's last newline (or EOF) is
    found. Reading starts at the earliest record that contains one of them, and
    each stream skips its records, and its bytes, up to its own newline.
    The skips map a stream to (record, bytes of that record to skip)."""
    if tentative == 0:
        return 0, {}
    boundaries: dict[int, tuple[int, int]] = {}
    seen: set[int] = set()
    lowest = max(0, tentative - MAX_BOUNDARY_SEARCH)
    for position in range(tentative - 1, lowest - 1, -1):
        offset, _, length, _, flags = RECORD.unpack_from(index, position * RECORD.size)
        if flags & META_FLAG:
            continue
        stream = flags & STREAM_MASK
        if stream in boundaries:
            continue
        seen.add(stream)
        if flags & EOF_FLAG:
            boundaries[stream] = (position, 0)
        elif length and (newline := data.rfind(b"\n", offset, offset + length)) >= 0:
            boundaries[stream] = (position, newline + 1 - offset)
        else:
            continue
        if len(boundaries) == len(STREAM_NAMES):
            break
    if seen - boundaries.keys():
        # A stream is in the middle of a line that began before the search window, so the whole file is read.
        return 0, {}
    start = min(position for position, _ in boundaries.values()) if boundaries else tentative
    return start, boundaries


def _identifiers(data: bytes | mmap.mmap, index: bytes, end: int) -> dict[int, str]:
    """Return the identifiers (pid → name) of the metadata records before record `end`."""
    names: dict[int, str] = {}
    flags = index[_FLAGS_OFFSET:end * RECORD.size:RECORD.size]
    position = flags.find(META_FLAG)
    while position >= 0:
        offset, _, length, pid, _ = RECORD.unpack_from(index, position * RECORD.size)
        names[pid] = bytes(data[offset:offset + length]).decode("utf-8", "replace")
        position = flags.find(META_FLAG, position + 1)
    return names


def _rebuild(
    unit: str, data: bytes | mmap.mmap, index: bytes, start: int, end: int,
    skip: dict[int, tuple[int, int]], carry: CarryIn | None,
) -> Iterator[LogLine]:
    names = _identifiers(data, index, start)
    cutters: dict[int, LineCutter] = {}
    times: dict[int, float] = {}
    for position in range(start, end):
        offset, stamp, length, pid, flags = RECORD.unpack_from(index, position * RECORD.size)
        if flags & META_FLAG:
            names[pid] = bytes(data[offset:offset + length]).decode("utf-8", "replace")
            continue
        stream = flags & STREAM_MASK
        first, skipped = skip.get(stream, (-1, 0))
        if position < first:
            continue
        if position == first:
            offset += skipped
            length -= skipped
        chunk = data[offset:offset + length] if length else b""
        cutter = cutters.get(stream)
        if cutter is None:
            cutter = cutters[stream] = LineCutter(pid)
            if carry is not None and (unfinished := carry.take(stream)) is not None:
                cutter.restore(unfinished.data, unfinished.pid)
                names.setdefault(unfinished.pid, unfinished.identifier)
        name = STREAM_NAMES.get(stream, "stdout")
        for line, line_pid, partial in cutter.feed(chunk, pid):
            yield LogLine(unit, stamp, name, line_pid, line, partial=partial, identifier=names.get(line_pid, ""))
        times[stream] = stamp
        if flags & EOF_FLAG and (rest := cutter.flush()) is not None:
            yield LogLine(unit, stamp, name, rest[1], rest[0], partial=True, identifier=names.get(rest[1], ""))
    for stream, cutter in cutters.items():
        rest = cutter.flush()
        if rest is not None:
            yield LogLine(unit, times[stream], STREAM_NAMES.get(stream, "stdout"), rest[1], rest[0],
                          partial=True, pending=True, identifier=names.get(rest[1], ""))
