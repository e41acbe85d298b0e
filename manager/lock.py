"""One manager per user: exclusive flocks on files in the runtime and state directories.

The kernel drops a lock when the holder dies, so a lock left by a crashed
manager never blocks the next start. The file contains the holder's pid, for
messages, its unit directories, which a second start compares with its own,
and its control socket, where `unitsh` finds a manager whose runtime
directory differs from its own (paths.running_control_socket).

Two locks, because the runtime directory depends on XDG_RUNTIME_DIR, which
cron jobs and logins without pam_systemd do not set, while the state
directory (logs) is the same for both: the runtime lock keeps one manager per
runtime directory, the state lock one manager per set of log files.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The lock file is small: a pid line, a JSON line of unit directories and the control socket path.
MAX_LOCK_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class LockHolder:
    """The pid, unit directories and control socket that the lock holder wrote into the lock file."""

    pid: int | None
    unit_dirs: tuple[str, ...] | None  # None when the file does not list them (older managers)
    control_socket: str = ""  # "" when the file does not name it (older managers)


def _read_holder(fd: int) -> LockHolder:
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, MAX_LOCK_FILE_BYTES).decode(errors="replace")
    first, _, rest = text.partition("\n")
    dirs_line, _, socket_line = rest.partition("\n")
    pid = int(first) if first.strip().isdigit() else None
    try:
        dirs = json.loads(dirs_line.strip() or "null")
    except ValueError:
        dirs = None
    unit_dirs = tuple(dirs) if isinstance(dirs, list) and all(isinstance(d, str) for d in dirs) else None
    return LockHolder(pid, unit_dirs, socket_line.strip())


class AlreadyRunning(Exception):
    def __init__(self, holder: LockHolder):
        super().__init__(holder.pid)
        self.holder = holder
        self.pid = holder.pid
        self.unit_dirs = holder.unit_dirs
        self.control_socket = holder.control_socket


class ManagerLock:
    def __init__(self, path: Path):
        self.path = path
        self.fd = -1
        # The pid of the manager that held the lock before, if it died without
        # cleaning up: its units may still be running (see leftovers.py).
        self.previous_pid: int | None = None

    def acquire(self, unit_dirs: Iterable[Path | str] = (), control_socket: Path | str = "") -> None:
        """Take the lock or raise AlreadyRunning with the holder's pid, unit directories and socket.

        The file then contains this process's pid, `unit_dirs`, which a second
        manager compares with its own unit directories, and `control_socket`."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise AlreadyRunning(holder) from None
        previous = _read_holder(fd).pid
        if previous is not None and previous != os.getpid():
            self.previous_pid = previous
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        dirs = json.dumps([str(d) for d in unit_dirs])
        os.write(fd, f"{os.getpid()}\n{dirs}\n{control_socket}\n".encode())
        self.fd = fd

    def release(self) -> None:
        """Drop the lock after a clean shutdown, leaving the file empty so the next manager detects no crash."""
        if self.fd >= 0:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = -1

    def peek(self) -> int | None:
        """Return the pid of a manager holding the lock now, without taking it; None if free."""
        holder = self.holder()
        if holder is None:
            return None
        return 0 if holder.pid is None else holder.pid

    def holder(self) -> LockHolder | None:
        """Return the contents the current lock holder wrote, without taking the lock, or None if it is free."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read_holder(fd)
        finally:
            os.close(fd)
        return None
