"""Per-unit log files: the exact bytes a unit wrote, with the time and stream of every read.

Each unit has two files under the log directory:

- `UNIT.log`: the raw bytes of stdout and stderr, in the order they were read;
- `UNIT.idx`: one fixed-size record per read: offset into UNIT.log, time,
  length, pid and stream.

The work per read is one write to each file, never per line, so a unit can
write as fast as the disk takes it. Lines and their times are rebuilt when
the log is read: a line gets the time of the read that completed it. A
stream that reaches EOF writes a zero-length record, so a last line without
a newline is known to be complete. Files rotate by size to UNIT.log.1 ...
"""

from __future__ import annotations

import logging
import os
import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

# offset (u64), time (f64), length (u32), pid (u32), stream (u8), padding.
RECORD = struct.Struct("<QdIIB3x")
STDOUT, STDERR = 1, 2
STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr"}
EOF_FLAG = 0x80

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
DEFAULT_KEEP_FILES = 4


@dataclass
class LogLine:
    unit: str
    time: float
    stream: str
    pid: int
    data: bytes
    partial: bool = False


def _file_name(unit: str) -> str:
    # Unit names cannot contain '/', but guard against a crafted one anyway.
    return unit.replace("/", "\\x2f")


class UnitLog:
    """The writer side of one unit's log."""

    def __init__(self, directory: Path, unit: str, max_bytes: int, keep_files: int):
        self.directory = directory
        self.unit = unit
        self.max_bytes = max_bytes
        self.keep_files = keep_files
        self.base = directory / _file_name(unit)
        self.data_fd = -1
        self.index_fd = -1
        self.size = 0
        self.dropped_bytes = 0
        self.reopened = 0
        self._last_error_log = 0.0

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        self.data_fd = os.open(f"{self.base}.log", flags, 0o600)
        self.index_fd = os.open(f"{self.base}.idx", flags, 0o600)
        self.size = os.fstat(self.data_fd).st_size

    def close(self) -> None:
        for fd in (self.data_fd, self.index_fd):
            if fd >= 0:
                os.close(fd)
        self.data_fd = self.index_fd = -1

    def _ensure_open(self) -> None:
        if self.data_fd < 0:
            self._open()
            return
        # Someone deleted or moved the file: start a new one rather than
        # writing into an unlinked inode nobody can read.
        if os.fstat(self.data_fd).st_nlink == 0 or os.fstat(self.index_fd).st_nlink == 0:
            log.warning("log file of %s was removed; opening a new one", self.unit)
            self.reopened += 1
            self.close()
            self._open()

    def _rotate(self) -> None:
        self.close()
        for number in range(self.keep_files - 1, 0, -1):
            for suffix in ("log", "idx"):
                older = Path(f"{self.base}.{suffix}.{number}")
                newer = Path(f"{self.base}.{suffix}.{number - 1}" if number > 1 else f"{self.base}.{suffix}")
                if newer.exists():
                    os.replace(newer, older)
        self._open()

    def write(self, data: bytes, stream: int, pid: int, eof: bool = False) -> None:
        try:
            self._ensure_open()
            if self.size >= self.max_bytes:
                self._rotate()
            record = RECORD.pack(self.size, time.time(), len(data), pid, stream | (EOF_FLAG if eof else 0))
            if data:
                written = os.write(self.data_fd, data)
                if written != len(data):
                    raise OSError(0, f"short write ({written} of {len(data)} bytes)")
            os.write(self.index_fd, record)
            self.size += len(data)
        except OSError as exc:
            self.dropped_bytes += len(data)
            now = time.monotonic()
            if now - self._last_error_log > 10:
                self._last_error_log = now
                log.error(
                    "could not write the log of %s (pid %d): %s; %d bytes lost so far",
                    self.unit, pid, exc, self.dropped_bytes,
                )
            # A file in a bad state is reopened on the next write.
            self.close()


class LogStore:
    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES, keep_files: int = DEFAULT_KEEP_FILES):
        self.directory = directory
        self.max_bytes = max_bytes
        self.keep_files = keep_files
        self._writers: dict[str, UnitLog] = {}

    def writer(self, unit: str) -> UnitLog:
        writer = self._writers.get(unit)
        if writer is None:
            writer = UnitLog(self.directory, unit, self.max_bytes, self.keep_files)
            self._writers[unit] = writer
        return writer

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()

    def dropped_bytes(self, unit: str) -> int:
        writer = self._writers.get(unit)
        return writer.dropped_bytes if writer else 0

    def tail(self, unit: str, lines: int) -> list[LogLine]:
        """Return the last `lines` lines of a unit (all lines when `lines` is 0), oldest first."""
        files = self._files(unit)
        result: list[LogLine] = []
        for data_path, index_path in files:
            chunk_lines = list(_lines_of_file(unit, data_path, index_path))
            result = chunk_lines + result
            if lines and len(result) >= lines:
                break
        return result[-lines:] if lines else result

    def _files(self, unit: str) -> list[tuple[Path, Path]]:
        base = self.directory / _file_name(unit)
        files = [(Path(f"{base}.log"), Path(f"{base}.idx"))]
        for number in range(1, self.keep_files):
            files.append((Path(f"{base}.log.{number}"), Path(f"{base}.idx.{number}")))
        return [(d, i) for d, i in files if d.exists() and i.exists()]


def _read_records(index_path: Path) -> Iterator[tuple[int, float, int, int, int]]:
    data = index_path.read_bytes()
    usable = len(data) - len(data) % RECORD.size
    yield from RECORD.iter_unpack(data[:usable])


def _lines_of_file(unit: str, data_path: Path, index_path: Path) -> Iterator[LogLine]:
    # stream -> (bytes not yet ended by a newline, pid, time of the last read)
    pending: dict[int, tuple[bytes, int, float]] = {}
    with open(data_path, "rb") as data_file:
        for offset, stamp, length, pid, flags in _read_records(index_path):
            stream = flags & ~EOF_FLAG
            name = STREAM_NAMES.get(stream, "stdout")
            buffer, buffer_pid, _ = pending.get(stream, (b"", pid, stamp))
            if length:
                data_file.seek(offset)
                buffer += data_file.read(length)
            *complete, rest = buffer.split(b"\n")
            for line in complete:
                yield LogLine(unit, stamp, name, buffer_pid, line)
                buffer_pid = pid
            if flags & EOF_FLAG and rest:
                yield LogLine(unit, stamp, name, pid, rest, partial=True)
                rest = b""
            pending[stream] = (rest, pid if complete else buffer_pid, stamp)
    for stream, (buffer, pid, stamp) in pending.items():
        if buffer:
            yield LogLine(unit, stamp, STREAM_NAMES.get(stream, "stdout"), pid, buffer, partial=True)
