"""Per-unit log files: the exact bytes a unit wrote, with the time and stream of every read.

Each unit has two files under the log directory:

- `UNIT.log`: the raw bytes of stdout and stderr, in the order they were read;
- `UNIT.idx`: one fixed-size record per read: offset into UNIT.log, time,
  length, pid and flags (stream, end of stream, metadata).

The work per read is one write to each file, never per line, so a unit can
write as fast as the disk takes it. Lines and their times are rebuilt when
the log is read: a line gets the time of the read that completed it. A
stream that reaches EOF writes a zero-length record, so a last line without
a newline is known to be complete.

A metadata record (flag META) stores the syslog identifier of a pid: its
bytes sit in UNIT.log like output but are never shown as output. It is
written before the first output of each pid in each file.

The manager's own messages about the unit ("Started Web server.", "Failed
with result 'exit-code'.") are records of a third stream, MANAGER, with the
manager's pid and identifier. They are lines of the log but not bytes the
unit wrote, so `logs -o raw` leaves them out (logquery.py).

`LogStore.write_message()` queues such a line with the time it was written
and stores it when the event loop has run the callbacks already due. One
start writes "Starting ..." and "Started ..." in the same round, so both
(and the identifier record) go to each file in one write. A unit's queued
lines are stored before any output of the unit and before any read through
the store. So the order in the files and what `logs` shows are the same as
if each line had been written at once.

While a transaction starts many units at once (a boot), the manager holds
these lines back (`hold_messages()`), for up to HOLD_SECONDS: creating and
writing two files per unit in the middle of the spawns took about a tenth
of a boot of 500 units, and their descriptors made every later spawn
slower. Output of a unit and every read through the store still store its
lines first, so holding changes when lines reach the files, not their order
or their times.

Files rotate by size to UNIT.log.1, UNIT.log.2, ... (with their .idx files);
files numbered `keep_files` or higher are deleted.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

# The defaults and per-unit options live in logconfig.py, which the unit preload imports without the store.
from unitmgr.manager.logconfig import DEFAULT_KEEP_FILES, DEFAULT_MAX_BYTES, UnitLogOptions
from unitmgr.manager.logformat import (  # noqa: F401 - re-exported for the users of the store
    EOF_FLAG,
    MANAGER,
    MANAGER_IDENTIFIER,
    META_FLAG,
    RECORD,
    STDERR,
    STDOUT,
    STREAM_MASK,
    STREAM_NAMES,
    LogLine,
    file_name,
)
from unitmgr.manager.logreader import CarryIn, last_time, read_lines
from unitmgr.manager.logremoval import remove_later, sweep_later, wait_idle
from unitmgr.manager.splicestage import SpliceStage

log = logging.getLogger(__name__)

# Seconds between checks that the log files still have their names.
CHECK_INTERVAL = 0.2
# How many announced pids of one file are kept in a tuple before a set (UnitLog._announce()).
ANNOUNCED_TUPLE_MAX = 4
# Maximum wait of a MANAGER line while hold_messages() is in effect.
HOLD_SECONDS = 1.0
# Maximum length in bytes of a stored identifier; longer ones are cut.
MAX_IDENTIFIER = 64

# A splice of at least BULK_BYTES starts at a multiple of PAGE_BYTES in
# UNIT.log, so the kernel copies whole pages. Each small record before it (a
# process name, a manager line) would otherwise shift every later page of
# output across two pages of the file: 20 to 30 % slower on the machines
# measured. The gap left is a hole of zeros that no index record covers.
PAGE_BYTES = 4096
BULK_BYTES = 64 * 1024
# How long a stopping manager waits for rotated-out files to be deleted.
CLOSE_WAIT_SECONDS = 2.0
# Older files read to continue a line that rotation split. A line spread over
# more files comes back with extra piece boundaries, but with its exact bytes.
MAX_CARRY_FILES = 32


def process_name(pid: int) -> str:
    """Return the kernel's name of a process (comm), or "" when it is gone."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            return f.read().strip().decode("utf-8", "replace")
    except OSError:
        return ""


DataListener = Callable[[bytes, int, int, float, bool], None]


class UnitLog:
    """The writer side of one unit's log."""

    # One writer per unit with output or manager lines: slots save about 150 bytes on each (CPython 3.11).
    __slots__ = ("directory", "unit", "max_bytes", "keep_files", "identifier", "base", "data_fd", "index_fd",
                 "size", "dropped_bytes", "stored_bytes", "reopened", "last_error", "_last_error_log",
                 "_last_check", "check_interval", "_names", "manager_pid", "_announced", "_queued", "on_data",
                 "follower")

    def __init__(self, directory: Path, unit: str, max_bytes: int, keep_files: int):
        self.directory = directory
        self.unit = unit
        self.max_bytes = max_bytes
        self.keep_files = keep_files
        self.identifier = ""
        # The path of both files without ".log" or ".idx". A str takes less memory than a Path.
        self.base = os.path.join(directory, file_name(unit))
        self.data_fd = -1
        self.index_fd = -1
        self.size = 0
        self.dropped_bytes = 0
        self.stored_bytes = 0  # output bytes stored since the manager started
        self.reopened = 0
        self.last_error = ""
        self._last_error_log = 0.0
        self._last_check = 0.0
        self.check_interval = CHECK_INTERVAL
        self._names: dict[int, str] = {}
        self.manager_pid = os.getpid()  # the pid of MANAGER lines
        # The pids whose identifier record this file has (_announce()).
        self._announced: tuple[int, ...] | set[int] = ()
        # MANAGER lines with their times, waiting for flush_messages(), or None when there are none.
        self._queued: list[tuple[bytes, float]] | None = None
        # Called with (data, stream, pid, time, eof) for every read: `on_data`
        # by whoever copies output elsewhere, `follower` by the event hub while
        # someone follows this unit's log.
        self.on_data: DataListener | None = None
        self.follower: DataListener | None = None

    @property
    def wants_data(self) -> bool:
        """Tell whether someone needs the bytes of each read, so splice(2) cannot be used."""
        return self.on_data is not None or self.follower is not None

    def configure(self, options: UnitLogOptions) -> None:
        self.max_bytes = max(options.max_bytes, 4096)
        self.keep_files = max(options.keep_files, 1)
        self.identifier = options.identifier[:MAX_IDENTIFIER]

    # -- files ------------------------------------------------------------

    def _open(self) -> None:
        # No O_APPEND on the data file: splice(2) refuses append-mode targets,
        # so every write names its offset (pwrite, splice with an offset).
        data_path = f"{self.base}.log"
        data_flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
        try:
            self.data_fd = os.open(data_path, data_flags, 0o600)
        except FileNotFoundError:
            # The log directory was removed while the manager ran, so it is created again.
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            self.data_fd = os.open(data_path, data_flags, 0o600)
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC
        try:
            self.index_fd = os.open(f"{self.base}.idx", flags, 0o600)
        except OSError:
            os.close(self.data_fd)
            self.data_fd = -1
            raise
        self.size = os.fstat(self.data_fd).st_size
        if self.size == 0 and os.fstat(self.index_fd).st_size:
            # The index describes a data file that is gone.
            os.ftruncate(self.index_fd, 0)
        self._announced = ()
        self._last_check = time.monotonic()

    def close(self) -> None:
        for fd in (self.data_fd, self.index_fd):
            if fd >= 0:
                os.close(fd)
        self.data_fd = self.index_fd = -1

    def _ensure_open(self) -> None:
        if self.data_fd < 0:
            self._open()
            return
        now = time.monotonic()
        if now - self._last_check < self.check_interval:
            return
        self._last_check = now
        # Someone deleted or moved a file: start new ones rather than writing
        # into an inode that no longer has this name.
        if not (_same_file(f"{self.base}.log", self.data_fd) and _same_file(f"{self.base}.idx", self.index_fd)):
            log.warning("log file of %s was removed or moved; opening a new one", self.unit)
            self.reopened += 1
            self.close()
            self._open()

    def _rotate(self) -> None:
        self.close()
        # The oldest kept file goes first, so that no rename below replaces an existing file:
        # ext4 writes a renamed file's data out at once when the rename replaces another one
        # (auto_da_alloc), which made each rotation wait for the disk.
        for number in range(max(self.keep_files - 1, 1), _last_number(Path(self.base)) + 1):
            for suffix in ("log", "idx"):
                remove_later(f"{self.base}.{suffix}.{number}")
        for number in range(self.keep_files - 1, 0, -1):
            for suffix in ("log", "idx"):
                older = Path(f"{self.base}.{suffix}.{number}")
                newer = Path(f"{self.base}.{suffix}.{number - 1}" if number > 1 else f"{self.base}.{suffix}")
                if newer.exists():
                    os.replace(newer, older)
        if self.keep_files == 1:
            for suffix in ("log", "idx"):
                remove_later(f"{self.base}.{suffix}")
        self._open()

    def _prepare(self, pid: int) -> None:
        """Store the queued MANAGER lines, open, reopen or rotate the files as needed, and announce `pid`."""
        if self._queued is not None:
            self.flush_messages()
        self._ensure_open()
        if self.size >= self.max_bytes:
            self._rotate()
        if pid and pid not in self._announced:
            self._append_record(self._identifier_record(pid), META_FLAG, pid, time.time())
            self._announce(pid)

    def _announce(self, pid: int) -> None:
        # Usually the manager and one main process: a tuple of up to 4 takes 48 to 72 bytes where a
        # set takes 216. A unit whose many processes write output gets a set, for constant-time lookups.
        announced = self._announced
        if isinstance(announced, set):
            announced.add(pid)
        elif len(announced) < ANNOUNCED_TUPLE_MAX:
            self._announced = (*announced, pid)
        else:
            self._announced = {*announced, pid}

    def _identifier_record(self, pid: int) -> bytes:
        return self.identifier_of(pid).encode("utf-8", "replace")[:MAX_IDENTIFIER]

    def name_process(self, pid: int, path: str) -> None:
        """Record the name a process spawned from `path` gets at exec, so a quick exit cannot lose it.

        The kernel names a process after the basename of the file it executes,
        cut to 15 bytes, which is what /proc/PID/comm would return.
        """
        if len(self._names) > 1024:
            self._names.clear()
        self._names[pid] = os.path.basename(path).encode()[:15].decode("utf-8", "ignore")

    def identifier_of(self, pid: int) -> str:
        if pid == self.manager_pid:
            return MANAGER_IDENTIFIER
        if self.identifier:
            return self.identifier
        name = self._names.get(pid)
        if name is None:
            if len(self._names) > 1024:
                self._names.clear()
            name = self._names[pid] = process_name(pid) or self.unit.rsplit(".", 1)[0]
        return name

    def _append_record(self, data: bytes, flags: int, pid: int, stamp: float) -> None:
        if data:
            _write_all(self.data_fd, data, self.size)
        os.write(self.index_fd, RECORD.pack(self.size, stamp, len(data), pid, flags))
        self.size += len(data)

    # -- writing ----------------------------------------------------------

    def write(self, data: bytes, stream: int, pid: int, eof: bool = False, counted: bool = True) -> None:
        """Store one read of `stream`. A failed write is counted and logged, not raised.

        Without `counted`, the bytes are not added to `stored_bytes`, the output of the unit."""
        stamp = time.time()
        try:
            self._prepare(pid)
            self._append_record(data, stream | (EOF_FLAG if eof else 0), pid, stamp)
            if counted:
                self.stored_bytes += len(data)
        except OSError as exc:
            self._failed(len(data), pid, exc)
        if self.on_data is not None:
            self.on_data(data, stream, pid, stamp, eof)
        if self.follower is not None:
            self.follower(data, stream, pid, stamp, eof)

    def write_message(self, text: str) -> None:
        """Store one line of the manager about this unit, in the MANAGER stream."""
        self.write(f"{text}\n".encode("utf-8", "replace"), MANAGER, self.manager_pid, counted=False)

    def queue_message(self, text: str) -> bool:
        """Keep one MANAGER line, stamped now, for flush_messages(); return whether none was waiting."""
        entry = (f"{text}\n".encode("utf-8", "replace"), time.time())
        if self._queued is None:
            self._queued = [entry]
            return True
        self._queued.append(entry)
        return False

    def flush_messages(self) -> None:
        """Store the queued MANAGER lines with one write to each file. A failed write is counted and logged."""
        queued = self._queued
        if queued is None:
            return
        self._queued = None
        pid = self.manager_pid
        records: list[tuple[bytes, int, float]] = [(data, MANAGER, stamp) for data, stamp in queued]
        try:
            self._prepare(0)
            if pid not in self._announced:
                records.insert(0, (self._identifier_record(pid), META_FLAG, queued[0][1]))
                self._announce(pid)
            self._append_records(records, pid)
        except OSError as exc:
            self._failed(sum(len(data) for data, _stamp in queued), pid, exc)
        for data, stamp in queued:
            if self.on_data is not None:
                self.on_data(data, MANAGER, pid, stamp, False)
            if self.follower is not None:
                self.follower(data, MANAGER, pid, stamp, False)

    def _append_records(self, records: list[tuple[bytes, int, float]], pid: int) -> None:
        """Append several records of `pid` with one write to each file."""
        index = bytearray()
        offset = self.size
        for data, flags, stamp in records:
            index += RECORD.pack(offset, stamp, len(data), pid, flags)
            offset += len(data)
        _write_all(self.data_fd, b"".join(data for data, _flags, _stamp in records), self.size)
        os.write(self.index_fd, index)
        self.size = offset

    def splice_from(self, pipe_fd: int, stage: SpliceStage, stream: int, pid: int) -> int:
        """Move what waits in a pipe into the log through `stage`, without copying it through Python.

        Return the bytes moved: 0 at EOF. Raise BlockingIOError when the pipe
        is empty, and OSError when a splice failed; the bytes stored before the
        failure are in the log, and the caller takes the rest back from `stage`
        (see output.py)."""
        self._prepare(pid)
        stamp = time.time()
        # Up to the rotation size, so a file outgrows LogMaxBytes= by at most BULK_BYTES.
        count = stage.fill(pipe_fd, max(self.max_bytes - self.size, BULK_BYTES))
        if not count:
            return 0
        if count >= BULK_BYTES and self.size % PAGE_BYTES:
            self.size += PAGE_BYTES - self.size % PAGE_BYTES
        start = self.size
        stored = 0
        try:
            while stored < count:
                moved = stage.put(self.data_fd, start + stored, count - stored)
                if not moved:
                    raise OSError(errno.EIO, f"short splice ({stored} of {count} bytes)")
                stored += moved
        finally:
            if stored:
                os.write(self.index_fd, RECORD.pack(start, stamp, stored, pid, stream))
                self.size = start + stored
                self.stored_bytes += stored
        return count

    def _failed(self, length: int, pid: int, exc: OSError) -> None:
        self.dropped_bytes += length
        self.last_error = exc.strerror or str(exc)
        now = time.monotonic()
        if now - self._last_error_log > 10:
            self._last_error_log = now
            log.error(
                "could not write the log of %s (pid %d): %s; %d bytes lost so far",
                self.unit, pid, exc, self.dropped_bytes,
            )
        # A file in a bad state is reopened on the next write.
        self.close()

    def count_failure(self, length: int, pid: int, exc: OSError) -> None:
        """Record `length` bytes that a caller could not store."""
        self._failed(length, pid, exc)


def _same_file(path: str, fd: int) -> bool:
    """Tell whether `path` still names the file open as `fd`."""
    try:
        named = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (named.st_dev, named.st_ino) == (opened.st_dev, opened.st_ino)


def _write_all(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        if written <= 0:
            raise OSError(errno.EIO, f"short write ({len(data) - len(view)} of {len(data)} bytes)")
        view = view[written:]
        offset += written


def _last_number(base: Path) -> int:
    """Return the highest N for which BASE.log.N or BASE.idx.N exists (0 when none)."""
    highest = 0
    prefix = base.name + "."
    try:
        names = os.listdir(base.parent)
    except OSError:
        return 0
    for name in names:
        if not name.startswith(prefix):
            continue
        suffix, _, number = name[len(prefix):].partition(".")
        if suffix in ("log", "idx") and number.isdigit():
            highest = max(highest, int(number))
    return highest


class LogStore:
    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES, keep_files: int = DEFAULT_KEEP_FILES):
        self.directory = directory
        self.max_bytes = max_bytes
        self.keep_files = keep_files
        self._writers: dict[str, UnitLog] = {}
        # Returns a unit's own settings; set by the manager (see logconfig.py).
        self.unit_options: Callable[[str], UnitLogOptions] | None = None
        # Called with each new writer, so listeners can attach to it.
        self.on_writer: Callable[[UnitLog], None] | None = None
        self.writer_callbacks: list[Callable[[UnitLog], None]] = []
        # Writers with queued MANAGER lines, which flush_messages() stores.
        self._flush_due: list[UnitLog] = []
        # The pending call of flush_messages(), and how many callers hold the lines back.
        self._flush_call: asyncio.Handle | None = None
        self._hold_count = 0
        sweep_later(str(directory))

    def options_for(self, unit: str) -> UnitLogOptions:
        if self.unit_options is not None:
            return self.unit_options(unit)
        return UnitLogOptions(self.max_bytes, self.keep_files)

    def writer(self, unit: str) -> UnitLog:
        """Return the writer of `unit`, with the unit's current settings applied."""
        writer = self._writers.get(unit)
        if writer is None:
            writer = UnitLog(self.directory, unit, self.max_bytes, self.keep_files)
            self._writers[unit] = writer
            for callback in self.writer_callbacks:
                callback(writer)
            if self.on_writer is not None:
                self.on_writer(writer)
        writer.configure(self.options_for(unit))
        return writer

    def write_message(self, unit: str, text: str) -> None:
        """Store one line of the manager about `unit` in the unit's log, once the loop's due callbacks ran.

        Without a running event loop the line is stored at once."""
        writer = self._writers.get(unit)
        if writer is None:
            writer = self.writer(unit)
        if not writer.queue_message(text):
            return
        self._flush_due.append(writer)
        if len(self._flush_due) > 1:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush_messages()
            return
        if self._hold_count:
            self._flush_call = loop.call_later(HOLD_SECONDS, self.flush_messages)
        else:
            self._flush_call = loop.call_soon(self.flush_messages)

    def hold_messages(self) -> None:
        """Keep MANAGER lines queued until release_messages(), or HOLD_SECONDS at most: many units are starting."""
        self._hold_count += 1

    def release_messages(self) -> None:
        """End one hold_messages(); the last one stores the held lines once the loop's due callbacks ran."""
        self._hold_count -= 1
        if self._hold_count or not isinstance(self._flush_call, asyncio.TimerHandle):
            return
        self._flush_call.cancel()
        self._flush_call = asyncio.get_running_loop().call_soon(self.flush_messages)

    def flush_messages(self) -> None:
        """Store every queued MANAGER line (UnitLog.flush_messages)."""
        if self._flush_call is not None:
            self._flush_call.cancel()
            self._flush_call = None
        due, self._flush_due = self._flush_due, []
        for writer in due:
            try:
                writer.flush_messages()
            except Exception:
                # A failing listener (on_data, follower) must not keep the other units' lines queued.
                log.exception("storing the manager's lines in the log of %s failed", writer.unit)

    def writers(self) -> list[UnitLog]:
        return list(self._writers.values())

    def close(self) -> None:
        self.flush_messages()
        for writer in self._writers.values():
            writer.close()
        # Files still queued after the wait are removed by the next manager's sweep.
        if not wait_idle(CLOSE_WAIT_SECONDS):
            log.info("deleting rotated-out log files timed out after %g s; the next manager start deletes the rest",
                     CLOSE_WAIT_SECONDS)

    def dropped_bytes(self, unit: str) -> int:
        writer = self._writers.get(unit)
        return writer.dropped_bytes if writer else 0

    def status_fields(self, unit: str) -> dict[str, object]:
        """Return the log figures `status` shows: bytes stored and lost, files reopened, the last error."""
        writer = self._writers.get(unit)
        if writer is None:
            return {"log_bytes": 0, "log_write_errors": 0, "log_reopened": 0, "log_last_error": ""}
        return {
            "log_bytes": writer.stored_bytes,
            "log_write_errors": writer.dropped_bytes,
            "log_reopened": writer.reopened,
            "log_last_error": writer.last_error,
        }

    def tail(self, unit: str, lines: int) -> list[LogLine]:
        """Return the last `lines` lines of a unit (all lines when `lines` is 0), oldest first."""
        return self.query(unit, lines)

    def query(
        self,
        unit: str,
        lines: int = 0,
        since: float | None = None,
        accept: Callable[[LogLine], bool] | None = None,
    ) -> list[LogLine]:
        """Return the last `lines` lines (0: all) accepted by `accept`, oldest first.

        With `since`, only lines completed at or after that time; older files are not read."""
        writer = self._writers.get(unit)
        if writer is not None:
            writer.flush_messages()
        files = self._files(unit)
        result: list[LogLine] = []
        continued: CarryIn | None = None  # what the newer file took from this one
        for position, (data_path, index_path) in enumerate(files):
            if since is not None and last_time(index_path) < since:
                break
            needed = lines - len(result) if lines else 0
            # The unfinished lines that the newer file continued are read, then left out.
            shown_twice = continued.consumed if continued is not None else set()
            carry = self._carry_into(unit, files, position)
            try:
                found = read_lines(unit, data_path, index_path, needed + len(shown_twice) if needed else 0,
                                   since, accept, carry)
            except FileNotFoundError:
                continue  # rotated or deleted while being read
            if shown_twice:
                found = [line for line in found if not (line.pending and line.stream in shown_twice)]
                found = found[-needed:] if needed else found
            result = found + result
            continued = carry
            if lines and len(result) >= lines:
                break
        return result[-lines:] if lines else result

    def _carry_into(self, unit: str, files: list[tuple[Path, Path]], position: int) -> CarryIn | None:
        """Return the unfinished lines of the file after `position` (the next older one), read when needed."""
        older = position + 1
        if older >= len(files) or older > MAX_CARRY_FILES:
            return None

        def load() -> list[LogLine]:
            data_path, index_path = files[older]
            try:
                return read_lines(unit, data_path, index_path, len(STREAM_NAMES), carry=self._carry_into(
                    unit, files, older))
            except FileNotFoundError:
                return []

        return CarryIn(load)

    def _files(self, unit: str) -> list[tuple[Path, Path]]:
        """Return the unit's (data, index) file pairs, newest first."""
        base = self.directory / file_name(unit)
        files = [(Path(f"{base}.log"), Path(f"{base}.idx"))]
        for number in range(1, _last_number(base) + 1):
            files.append((Path(f"{base}.log.{number}"), Path(f"{base}.idx.{number}")))
        return [(d, i) for d, i in files if d.exists() and i.exists()]
