"""One manager per user: an exclusive flock on a file in the runtime directory.

The kernel drops the lock when the holder dies, so a lock left by a crashed
manager never blocks the next start; the pid written into the file is only
for messages.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class AlreadyRunning(Exception):
    def __init__(self, pid: int | None):
        super().__init__(pid)
        self.pid = pid


class ManagerLock:
    def __init__(self, path: Path):
        self.path = path
        self.fd = -1
        # The pid of the manager that held the lock before, if it died without
        # cleaning up: its units may still be running (see leftovers.py).
        self.previous_pid: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning with the holder's pid."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise AlreadyRunning(int(holder) if holder.isdigit() else None) from None
        previous = os.read(fd, 32).decode(errors="replace").strip()
        if previous.isdigit() and int(previous) != os.getpid():
            self.previous_pid = int(previous)
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        """Drop the lock after a clean shutdown, leaving the file empty so the next manager sees no crash."""
        if self.fd >= 0:
            os.ftruncate(self.fd, 0)
            os.close(self.fd)
            self.fd = -1

    def peek(self) -> int | None:
        """Return the pid of a manager holding the lock now, without taking it; None if free."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            return int(holder) if holder.isdigit() else 0
        finally:
            os.close(fd)
        return None
