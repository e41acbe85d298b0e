"""Watching a unit's main process, and finding the main process of a forking daemon.

The exit status comes from the reaper: the manager is a subreaper, so a
daemon whose parent exited is re-parented to it and reaped by it. A main
process that still has another parent (a `MAINPID=` naming a grandchild whose
parent is alive) is reaped by that parent instead; its pidfd still says when
it is gone, and the exit is then reported as a clean exit because its status
cannot be known.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from unitmgr.manager import processes
from unitmgr.manager.reaper import ExitStatus, Reaper

log = logging.getLogger(__name__)

# How long a pidfd exit waits for the reaper to deliver the real status.
REAPER_GRACE = 0.5


class ExitWatch:
    """Resolves `future` with the exit status of `pid`, from the reaper or, failing that, the pidfd."""

    def __init__(self, loop: asyncio.AbstractEventLoop, reaper: Reaper, pid: int,
                 on_exit: Callable[[ExitStatus], None] | None = None, own_child: bool = False):
        """Watch `pid`. Set `own_child` when the manager spawned `pid` itself and has not reaped it,
        so the reaper delivers its status and /proc need not be read to find its parent."""
        self.loop = loop
        self.pid = pid
        self.future: asyncio.Future[ExitStatus] = loop.create_future()
        self._on_exit = on_exit
        self._fd: int | None = None
        reaper.watch(pid, self._resolve)
        if own_child:
            return
        info = processes.read_stat(pid)
        if info is not None and info.ppid == os.getpid():
            # A child of the manager: the reaper always delivers its status.
            return
        try:
            self._fd = os.pidfd_open(pid)
        except ProcessLookupError:
            # Gone and already reaped by someone else: nothing more will come.
            self.loop.call_soon(self._resolve, ExitStatus(pid, "exited", 0))
            return
        loop.add_reader(self._fd, self._on_pidfd)

    def _on_pidfd(self) -> None:
        self._close_fd()
        if not self.future.done():
            self.loop.call_later(REAPER_GRACE, self._resolve, ExitStatus(self.pid, "exited", 0))

    def _close_fd(self) -> None:
        if self._fd is not None:
            self.loop.remove_reader(self._fd)
            os.close(self._fd)
            self._fd = None

    def _resolve(self, status: ExitStatus) -> None:
        self._close_fd()
        if self.future.done():
            return
        self.future.set_result(status)
        if self._on_exit is not None:
            self._on_exit(status)

    def cancel(self) -> None:
        self._close_fd()
        if not self.future.done():
            self.future.cancel()


class PIDFileError(Exception):
    """The PID file of a forking service is missing, malformed or names a foreign process."""


def pid_file_path(value: str, runtime_dir: Path) -> Path:
    """Resolve PIDFile=: a relative path is taken relative to the runtime directory (systemd: /run)."""
    path = Path(value)
    return path if path.is_absolute() else runtime_dir / path


def read_pid_file(path: Path) -> int:
    try:
        text = path.read_text(errors="replace").strip()
    except FileNotFoundError:
        raise PIDFileError(f"PID file {path} not readable (yet?) after start") from None
    except OSError as exc:
        raise PIDFileError(f"could not read PID file {path}: {exc.strerror}") from None
    first = text.split()[0] if text else ""
    if not first.isdigit() or int(first) <= 1:
        raise PIDFileError(f"PID file {path} does not contain a valid PID: {text[:40]!r}")
    return int(first)


async def wait_pid_file(path: Path, members: Callable[[], set[int]]) -> int:
    """Read `path` until it names a live process of the unit. The caller bounds the wait.

    A daemon may write its PID file a moment after its parent exited, so a
    missing or empty file is read again whenever its directory changes.
    """
    loop = asyncio.get_running_loop()
    changed = asyncio.Event()
    watch = DirectoryWatch(path.parent, changed.set)
    if watch.fd is not None:
        loop.add_reader(watch.fd, watch.drain)
    try:
        pause = 0.005
        while True:
            changed.clear()
            pid = _pid_of_unit(path, members)
            if pid:
                return pid
            if watch.fd is None:
                # No inotify: read again after a growing pause.
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.1)
            else:
                await changed.wait()
    finally:
        if watch.fd is not None:
            loop.remove_reader(watch.fd)
        watch.close()


def _pid_of_unit(path: Path, members: Callable[[], set[int]]) -> int:
    try:
        pid = read_pid_file(path)
    except PIDFileError as exc:
        log.debug("%s", exc)
        return 0
    if pid in members():
        return pid
    if processes.read_stat(pid) is not None:
        raise PIDFileError(f"PID {pid} in {path} does not belong to the service, so it is rejected")
    # A stale file naming a process that is gone: wait for the daemon to write its own.
    return 0


class DirectoryWatch:
    """inotify on one directory: `on_change` runs when a file in it is written, created or moved in."""

    IN_CLOSE_WRITE = 0x08
    IN_MOVED_TO = 0x80
    IN_CREATE = 0x100
    IN_NONBLOCK = os.O_NONBLOCK
    IN_CLOEXEC = os.O_CLOEXEC

    def __init__(self, directory: Path, on_change: Callable[[], None]):
        self.on_change = on_change
        self.fd: int | None = None
        try:
            # Here, not at the top: ctypes adds about 0.4 MB to the manager, and only
            # services with a PID file need it.
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.inotify_init1(self.IN_NONBLOCK | self.IN_CLOEXEC)
            if fd < 0:
                return
            mask = self.IN_CLOSE_WRITE | self.IN_MOVED_TO | self.IN_CREATE
            if libc.inotify_add_watch(fd, os.fsencode(directory), mask) < 0:
                os.close(fd)
                return
        except (ImportError, OSError, AttributeError) as exc:
            log.debug("inotify is not available (%s); PID files are read again after a pause", exc)
            return
        self.fd = fd

    def drain(self) -> None:
        assert self.fd is not None
        try:
            while os.read(self.fd, 4096):
                pass
        except BlockingIOError:
            pass
        self.on_change()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def guess_main_pid(members: set[int], manager_pid: int) -> int:
    """systemd's GuessMainPID=: the one process re-parented to the manager, else 0."""
    table = processes.process_table()
    candidates = [pid for pid in members if pid in table and table[pid].ppid == manager_pid]
    if len(candidates) == 1:
        return candidates[0]
    return 0
