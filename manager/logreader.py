"""Reading lines back from one log file and its index.

Lines are rebuilt from the index records: a line gets the time of the read
that completed it. A request for the last N lines, or for the lines since a
time, does not rebuild the whole file. Reading starts near the end (or at
the time), at a record where every stream is at a line boundary, and moves
further back only when that did not give enough lines. So `status` and
`logs -n 10` cost about the same for a small log and for a large one.
"""

from __future__ import annotations

import mmap
import os
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from unitmgr.manager.logformat import EOF_FLAG, META_FLAG, RECORD, STREAM_MASK, STREAM_NAMES, LogLine

# Byte offsets of the time (f64) and the flags (u8) inside a RECORD.
_TIME = struct.Struct("<d")
_TIME_OFFSET = 8
_FLAGS_OFFSET = 24
# How far back to look for a line boundary before reading the file from its start.
MAX_BOUNDARY_SEARCH = 100_000

Accept = Callable[[LogLine], bool]


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
) -> list[LogLine]:
    """Return the last `lines` lines (0: all) of one file accepted by `accept`, oldest first.

    With `since`, only lines completed at or after that time."""
    index = index_path.read_bytes()
    index = index[:len(index) - len(index) % RECORD.size]
    total = len(index) // RECORD.size
    with open(data_path, "rb") as data_file:
        size = os.fstat(data_file.fileno()).st_size
        data: bytes | mmap.mmap = b"" if size == 0 else mmap.mmap(data_file.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return _select(unit, data, index, total, lines, since, accept)
        finally:
            if isinstance(data, mmap.mmap):
                data.close()


def _select(
    unit: str, data: bytes | mmap.mmap, index: bytes, total: int,
    lines: int, since: float | None, accept: Accept | None,
) -> list[LogLine]:
    first = 0 if since is None else _first_at_or_after(index, total, since)

    def wanted(line: LogLine) -> bool:
        return (since is None or line.time >= since) and (accept is None or accept(line))

    window = lines * 2 + 64 if lines else total
    while True:
        tentative = max(first, total - window)
        start, skip = _boundary(data, index, tentative)
        found = [line for line in _rebuild(unit, data, index, start, total, skip) if wanted(line)]
        if not lines:
            return found
        if len(found) >= lines or start <= first:
            return found[-lines:]
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


def _boundary(data: bytes | mmap.mmap, index: bytes, tentative: int) -> tuple[int, dict[int, int]]:
    """Return where to start reading so that no line before `tentative` is cut.

    Walking back from `tentative`, each stream's last record that ended a line
    (a newline at its end, or EOF) is found. Reading starts after the earliest
    of them, and a stream's records up to its own boundary are skipped."""
    if tentative == 0:
        return 0, {}
    boundaries: dict[int, int] = {}
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
        if flags & EOF_FLAG or (length and data[offset + length - 1] == 0x0A):
            boundaries[stream] = position
            if len(boundaries) == len(STREAM_NAMES):
                break
    if seen - boundaries.keys():
        # A stream in the middle of a very long line: read the whole file.
        return 0, {}
    start = min(boundaries.values()) + 1 if boundaries else tentative
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


class _Pending:
    """The unfinished line of one stream while a file is read."""

    __slots__ = ("parts", "pid", "time")

    def __init__(self, pid: int, stamp: float):
        self.parts: list[bytes] = []
        self.pid = pid
        self.time = stamp


def _rebuild(
    unit: str, data: bytes | mmap.mmap, index: bytes, start: int, end: int, skip: dict[int, int]
) -> Iterator[LogLine]:
    names = _identifiers(data, index, start)
    pending: dict[int, _Pending] = {}
    for position in range(start, end):
        offset, stamp, length, pid, flags = RECORD.unpack_from(index, position * RECORD.size)
        chunk = data[offset:offset + length] if length else b""
        if flags & META_FLAG:
            names[pid] = bytes(chunk).decode("utf-8", "replace")
            continue
        stream = flags & STREAM_MASK
        if position <= skip.get(stream, -1):
            continue
        state = pending.get(stream)
        if state is None:
            state = pending[stream] = _Pending(pid, stamp)
        yield from _cut(unit, chunk, state, STREAM_NAMES.get(stream, "stdout"), pid, stamp,
                        bool(flags & EOF_FLAG), names)
    for stream, state in pending.items():
        if state.parts:
            yield LogLine(unit, state.time, STREAM_NAMES.get(stream, "stdout"), state.pid,
                          b"".join(state.parts), partial=True, pending=True,
                          identifier=names.get(state.pid, ""))


def _cut(
    unit: str, chunk: bytes, state: _Pending, stream: str, pid: int, stamp: float, eof: bool,
    names: dict[int, str],
) -> Iterator[LogLine]:
    """Yield the lines one read completes; keep its unfinished end in `state`."""
    if not state.parts:
        state.pid = pid
    start = 0
    while (end := chunk.find(b"\n", start)) >= 0:
        state.parts.append(chunk[start:end])
        yield LogLine(unit, stamp, stream, state.pid, b"".join(state.parts),
                      identifier=names.get(state.pid, ""))
        state.parts = []
        state.pid = pid
        start = end + 1
    if start < len(chunk):
        state.parts.append(chunk[start:])
    state.time = stamp
    if eof and state.parts:
        yield LogLine(unit, stamp, stream, state.pid, b"".join(state.parts), partial=True,
                      identifier=names.get(state.pid, ""))
        state.parts = []
