"""Follow a log through size rotation and compare what it captured with what was written.

unitmgr keeps UNIT.log (bytes) beside UNIT.idx (one 28-byte record per
read: offset, time, length, pid, flags), rotates both to UNIT.log.1 ... at a
fixed size and deletes the oldest pair. UNIT.log also contains metadata records
(the process name, flag 0x40) and the manager's own lines about the unit
(stream 3, "Started writer.service."), which are not the unit's output. So the follower opens
every pair it sees under the rotation names and keeps it open: a renamed or
deleted file stays readable through its descriptor. The output stream is
then the output records of every pair, pairs in the order they were created.

For a manager without an index or rotation (supervisord, Circus) the log
file is the stream itself.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

# The record layout of unitmgr's UNIT.idx: offset u64, time f64, length u32, pid u32, flags u8, 3 pad.
RECORD = struct.Struct("<QdIIB3x")
META_FLAG = 0x40
STREAM_MASK = 0x0F
MANAGER_STREAM = 3


@dataclass
class Generation:
    """One log file (and its index) as it was first seen; `order` sorts generations by creation."""

    order: tuple[int, int]
    log_fd: int
    index_fd: int | None
    # The part of the index read so far and the output bytes it records. Each poll reads
    # only the new records, so that it does not slow the manager it measures.
    index_read: int = 0
    output_bytes: int = 0

    def records(self) -> Iterator[tuple[int, int]]:
        """Yield (offset, length) of every output record; the whole file when there is no index."""
        if self.index_fd is None:
            yield 0, os.fstat(self.log_fd).st_size
            return
        size = os.fstat(self.index_fd).st_size
        yield from _output_records(os.pread(self.index_fd, size - size % RECORD.size, 0))

    def captured(self) -> int:
        if self.index_fd is None:
            return os.fstat(self.log_fd).st_size
        size = os.fstat(self.index_fd).st_size
        end = size - size % RECORD.size
        if end > self.index_read:
            data = os.pread(self.index_fd, end - self.index_read, self.index_read)
            self.index_read += len(data) - len(data) % RECORD.size
            self.output_bytes += sum(length for _, length in _output_records(data))
        return self.output_bytes

    def close(self) -> None:
        os.close(self.log_fd)
        if self.index_fd is not None:
            os.close(self.index_fd)


def _output_records(data: bytes) -> Iterator[tuple[int, int]]:
    """Yield (offset, length) of the unit's output records among whole index records in `data`."""
    for offset, _time, length, _pid, flags in RECORD.iter_unpack(data[:len(data) - len(data) % RECORD.size]):
        if length and not flags & META_FLAG and flags & STREAM_MASK != MANAGER_STREAM:
            yield offset, length


def _open_same(path: Path) -> int | None:
    """Open `path` and check that the name still points to the opened file (no rotation in between)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        same = os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        os.close(fd)
        return None
    return fd


class LogFollower:
    def __init__(self, names: list[tuple[Path, Path | None]]):
        """`names`: (log, index) pairs, the current pair first, then the rotated ones from newest to oldest."""
        self.names = names
        self.generations: dict[int, Generation] = {}
        self.polls = 0

    def poll(self) -> int:
        """Open pairs not seen yet; return the output bytes captured so far."""
        self.polls += 1
        for position, (log_path, index_path) in enumerate(self.names):
            self._open_pair(position, log_path, index_path)
        return sum(generation.captured() for generation in self.generations.values())

    def _open_pair(self, position: int, log_path: Path, index_path: Path | None) -> None:
        log_fd = _open_same(log_path)
        if log_fd is None:
            return
        inode = os.fstat(log_fd).st_ino
        if inode in self.generations:
            os.close(log_fd)
            return
        index_fd = None
        if index_path is not None:
            index_fd = _open_same(index_path)
            # The pair moved while it was being opened: the next poll finds it under its new name.
            if index_fd is None or os.stat(log_path).st_ino != inode:
                os.close(log_fd)
                if index_fd is not None:
                    os.close(index_fd)
                return
        self.generations[inode] = Generation((self.polls, -position), log_fd, index_fd)

    def digest(self) -> tuple[int, str]:
        """Return the size and SHA-256 of the captured output, generations in creation order."""
        digest = hashlib.sha256()
        size = 0
        for generation in sorted(self.generations.values(), key=lambda g: g.order):
            for offset, length in generation.records():
                chunk = os.pread(generation.log_fd, length, offset)
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def close(self) -> None:
        for generation in self.generations.values():
            generation.close()
        self.generations.clear()


def unitmgr_names(log_file: Path, keep: int = 8) -> list[tuple[Path, Path | None]]:
    """Return the (UNIT.log, UNIT.idx) pairs under unitmgr's rotation names, newest first."""
    index = log_file.with_suffix(".idx")
    pairs: list[tuple[Path, Path | None]] = [(log_file, index)]
    pairs += [(Path(f"{log_file}.{n}"), Path(f"{index}.{n}")) for n in range(1, keep)]
    return pairs
