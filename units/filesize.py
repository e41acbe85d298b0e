"""Reading unit files, drop-ins and environment files with a size limit.

The manager parses these files in its event loop, so a huge file (a log
written to the wrong path, say) would stall every unit while it is read and
parsed. Files above the limit are rejected before they are read.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

MIB = 1024 * 1024
# Hand-written unit files are a few KiB, and systemd accepts lines up to 1 MiB.
# A 4 MiB file of Environment= lines took 1.2 s to load on a 2-core AMD EPYC VM
# (units.loader.load_file), so a file at the limit stalls the manager for about that long.
MAX_UNIT_FILE_BYTES = 4 * MIB


class FileTooLargeError(OSError):
    """A file above the size limit; `strerror` names its size, the limit and the fix."""

    def __init__(self, path: Path | str, size: int, limit: int, kind: str) -> None:
        super().__init__(
            errno.EFBIG,
            f"{kind} is {size} bytes, above the limit of {limit} bytes ({limit / MIB:g} MiB); "
            "shorten it (the limit applies to each file on its own)",
            str(path),
        )


def read_limited(path: Path | str, kind: str = "unit file", limit: int = MAX_UNIT_FILE_BYTES) -> bytes:
    """Return the bytes of `path`; raise FileTooLargeError above `limit`, or OSError when unreadable.

    `kind` names the file in the error message ("unit file", "environment file")."""
    # os.open() and os.read() rather than open(): a buffered file object costs three more system
    # calls per file (fstat, ioctl, lseek), and the manager reads every unit file at start-up.
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        size = os.fstat(fd).st_size
        if size > limit:
            raise FileTooLargeError(path, size, limit, kind)
        # st_size is 0 for some special files, and a file may grow meanwhile, so
        # reading up to one byte more than the limit detects a file over it. The
        # first read requests the size found plus one byte: a read of the whole
        # limit allocates a 4 MiB buffer each time (24 µs more per unit file).
        chunks = []
        total = 0
        target = size + 1 if size else limit + 1
        while total < target:
            chunk = os.read(fd, target - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total == target:
                target = limit + 1  # the file grew since fstat()
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        raise FileTooLargeError(path, len(data), limit, kind)
    return data
