"""Where a spawned process's stdout and stderr go (StandardOutput=, StandardError=).

`journal` (the default) and its aliases mean a pipe that the manager reads
and stores in the unit's log. The pipe is read until EOF, not until the
process exits, so output written just before an exit, or by a grandchild that
still holds the pipe, is kept.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import logging
import os

from unitmgr.manager.logstore import STDERR, STDOUT, UnitLog
from unitmgr.manager.pipepoller import PipePoller, pipe_poller
from unitmgr.manager.splicestage import F_SETPIPE_SZ

log = logging.getLogger(__name__)

READ_SIZE = 256 * 1024
# Bounds on the work for one pipe per wake-up, so that a flood of output
# leaves the loop free for requests and other units within a few milliseconds.
READS_PER_WAKEUP = 16
BYTES_PER_WAKEUP = 4 * 1024 * 1024
# A new pipe has room for 64 KiB. One that a read finds that full grows to
# PIPE_SIZE: fewer wake-ups and stalls for a fast writer. Growing every pipe
# at spawn would cost a kernel allocation per pipe, and past the user's
# pipe-user-pages-soft (64 MiB by default, 64 pipes of 1 MiB) the kernel
# refuses to grow pipes and makes each new one 8 KiB.
PIPE_SIZE = 1024 * 1024
GROW_AT = 64 * 1024
# Errors that mean splice(2) cannot target this file at all.
SPLICE_UNSUPPORTED = frozenset({errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EXDEV})

FILE_TARGETS = ("file:", "append:", "truncate:")
NOT_LOG_TARGETS = ("null", *FILE_TARGETS)
LOG_TARGETS = {"journal", "kmsg", "journal+console", "kmsg+console", "syslog", "syslog+console"}


class PipeReader:
    """Reads one pipe into a unit's log until EOF."""

    # Two per running service (stdout and stderr), so no instance dict for each.
    __slots__ = ("loop", "writer", "stream", "read_fd", "write_fd", "pid", "splice", "poller", "grown")

    def __init__(self, loop: asyncio.AbstractEventLoop, writer: UnitLog, stream: int):
        self.loop = loop
        self.writer = writer
        self.stream = stream
        self.read_fd, self.write_fd = os.pipe()
        self.pid = 0
        self.poller: PipePoller | None = None
        # splice(2) moves the bytes from the pipe to the file inside the kernel.
        self.splice = hasattr(os, "splice")
        self.grown = False

    def start(self, pid: int) -> None:
        """Begin reading; the caller has passed write_fd to the child, which now holds it."""
        self.pid = pid
        os.close(self.write_fd)
        self.write_fd = -1
        os.set_blocking(self.read_fd, False)
        self.poller = pipe_poller(self.loop)
        self.poller.add(self.read_fd, self._on_readable)

    def abandon(self) -> None:
        """Close both ends after a spawn that failed."""
        for fd in (self.read_fd, self.write_fd):
            if fd >= 0:
                os.close(fd)
        self.read_fd = self.write_fd = -1

    def _on_readable(self) -> None:
        # Several reads per wake-up: a fast writer refills the pipe while the
        # loop goes round, and each round trip costs more than a read.
        budget = BYTES_PER_WAKEUP
        for _ in range(READS_PER_WAKEUP):
            if self.read_fd < 0:
                return
            if self.splice and not self.writer.wants_data:
                moved = self._splice()
            else:
                moved = self._read()
            if not moved:
                return
            if moved >= GROW_AT and not self.grown:
                self._grow()
            budget -= moved
            if budget <= 0:
                return

    def _grow(self) -> None:
        self.grown = True
        try:
            fcntl.fcntl(self.read_fd, F_SETPIPE_SZ, PIPE_SIZE)
        except OSError as exc:
            log.debug("could not grow the output pipe of %s (pid %d): %s", self.writer.unit, self.pid, exc)

    def _splice(self) -> int:
        """Move one batch into the log; return its size, 0 when the pipe is empty or closed."""
        assert self.poller is not None  # set by start(), before the first callback
        stage = self.poller.stage
        try:
            moved = self.writer.splice_from(self.read_fd, stage, self.stream, self.pid)
        except BlockingIOError:
            return 0
        except OSError as exc:
            left = stage.take_back()
            if exc.errno in SPLICE_UNSUPPORTED:
                log.debug("splice into the log of %s (pid %d) failed (%s); reading instead",
                          self.writer.unit, self.pid, exc)
                self.splice = False
                if not left:
                    return self._read()
                self.writer.write(left, self.stream, self.pid)
                return len(left)
            if not left:
                return self._drain_after_failure(exc)
            self.writer.count_failure(len(left), self.pid, exc)
            return len(left)
        if moved == 0:
            self._finish()
        return moved

    def _drain_after_failure(self, exc: OSError) -> int:
        """Read and discard what could not be stored, so the writer does not stall on a full pipe."""
        try:
            data = os.read(self.read_fd, READ_SIZE)
        except BlockingIOError:
            return 0
        except OSError as read_error:
            log.error("reading output of %s (pid %d) failed: %s", self.writer.unit, self.pid, read_error)
            data = b""
        if not data:
            self._finish()
            return 0
        self.writer.count_failure(len(data), self.pid, exc)
        return len(data)

    def _read(self) -> int:
        """Read one batch into the log; return its size, 0 when the pipe is empty or closed."""
        try:
            data = os.read(self.read_fd, READ_SIZE)
        except BlockingIOError:
            return 0
        except OSError as exc:
            log.error("reading output of %s (pid %d) failed: %s", self.writer.unit, self.pid, exc)
            data = b""
        if not data:
            self._finish()
            return 0
        self.writer.write(data, self.stream, self.pid)
        return len(data)

    def _finish(self) -> None:
        self.writer.write(b"", self.stream, self.pid, eof=True)
        if self.poller is not None:
            self.poller.remove(self.read_fd)
        os.close(self.read_fd)
        self.read_fd = -1


class StdioTargets:
    """The descriptors for one spawn's stdout and stderr, and the readers behind them."""

    def __init__(self) -> None:
        self.stdout_fd = -1
        self.stderr_fd = -1
        self.readers: list[PipeReader] = []
        self._opened: list[int] = []

    def started(self, pid: int) -> None:
        for reader in self.readers:
            reader.start(pid)
        self._close_opened()

    def failed(self) -> None:
        for reader in self.readers:
            reader.abandon()
        self._close_opened()

    def _close_opened(self) -> None:
        for fd in self._opened:
            os.close(fd)
        self._opened = []


def _open_file_target(spec: str) -> int:
    kind, _, path = spec.partition(":")
    flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
    if kind == "append":
        flags |= os.O_APPEND
    elif kind == "truncate":
        flags |= os.O_TRUNC
    return os.open(path, flags, 0o644)


def open_stdio(
    loop: asyncio.AbstractEventLoop,
    writer: UnitLog,
    stdout_spec: str,
    stderr_spec: str,
) -> StdioTargets:
    """Open the descriptors for StandardOutput=/StandardError=; raise OSError naming the file."""
    targets = StdioTargets()
    try:
        targets.stdout_fd = _target_fd(loop, writer, stdout_spec, STDOUT, targets)
        if _shares_stdout(stdout_spec, stderr_spec):
            targets.stderr_fd = targets.stdout_fd
        else:
            if stderr_spec == "inherit":
                # Both go to the log, through pipes of their own, so that each
                # line keeps its stream.
                stderr_spec = "journal"
            targets.stderr_fd = _target_fd(loop, writer, stderr_spec, STDERR, targets)
    except OSError:
        targets.failed()
        raise
    return targets


def _shares_stdout(stdout_spec: str, stderr_spec: str) -> bool:
    """Tell whether stderr uses stdout's descriptor: systemd shares it for inherit and the same file."""
    if stderr_spec == "inherit":
        return stdout_spec == "inherit" or stdout_spec.startswith(NOT_LOG_TARGETS)
    return stderr_spec.startswith(FILE_TARGETS) and stderr_spec == stdout_spec


def _target_fd(
    loop: asyncio.AbstractEventLoop, writer: UnitLog, spec: str, stream: int, targets: StdioTargets
) -> int:
    if spec in ("", "inherit") or spec in LOG_TARGETS:
        if spec == "inherit" and stream == STDOUT:
            # StandardOutput=inherit means stdin's target, which is /dev/null here.
            return _devnull(targets)
        reader = PipeReader(loop, writer, stream)
        targets.readers.append(reader)
        return reader.write_fd
    if spec == "null":
        return _devnull(targets)
    if spec.startswith(FILE_TARGETS):
        fd = _open_file_target(spec)
        targets._opened.append(fd)
        return fd
    # Unsupported targets (tty, socket, fd:NAME) fall back to the log.
    # TODO: StandardOutput=tty, socket and fd:NAME.
    reader = PipeReader(loop, writer, stream)
    targets.readers.append(reader)
    return reader.write_fd


def _devnull(targets: StdioTargets) -> int:
    fd = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    targets._opened.append(fd)
    return fd
