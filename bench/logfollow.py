"""Follow a log file through size rotation and compare what it captured with what was written.

unitmgr rotates UNIT.log to UNIT.log.1 ... at a fixed size and deletes the
oldest file, so 200 MB of output never sits in one file. The follower opens
every file it sees under the rotation names and keeps it open: a renamed or
deleted file stays readable through the open descriptor, and the files,
read in the order they were created, hold the whole stream. For a manager
that does not rotate, the only name is the log file itself.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path


class LogFollower:
    def __init__(self, names: list[Path]):
        """`names`: the current file first, then the rotated names from newest to oldest."""
        self.names = names
        # (poll number, -position in names) -> open descriptor; sorting gives creation order.
        self.files: dict[int, tuple[tuple[int, int], int]] = {}
        self.polls = 0

    def poll(self) -> int:
        """Open files not seen yet; return the bytes captured so far."""
        self.polls += 1
        for position, name in enumerate(self.names):
            try:
                fd = os.open(name, os.O_RDONLY)
            except FileNotFoundError:
                continue
            inode = os.fstat(fd).st_ino
            if inode in self.files:
                os.close(fd)
                continue
            self.files[inode] = ((self.polls, -position), fd)
        return sum(os.fstat(fd).st_size for _, fd in self.files.values())

    def digest(self) -> tuple[int, str]:
        """Return the size and SHA-256 of the captured stream, files in creation order."""
        digest = hashlib.sha256()
        size = 0
        for _, fd in sorted(self.files.values()):
            os.lseek(fd, 0, os.SEEK_SET)
            while chunk := os.read(fd, 1 << 20):
                digest.update(chunk)
                size += len(chunk)
        return size, digest.hexdigest()

    def close(self) -> None:
        for _, fd in self.files.values():
            os.close(fd)
        self.files.clear()


def rotation_names(log_file: Path, keep: int = 8) -> list[Path]:
    return [log_file, *(Path(f"{log_file}.{number}") for number in range(1, keep))]
