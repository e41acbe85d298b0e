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

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning with the holder's pid."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip()
            os.close(fd)
            raise AlreadyRunning(int(holder) if holder.isdigit() else None) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
