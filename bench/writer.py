"""The S5 writer: TOTAL bytes of numbered 100-byte lines to stdout, as fast as it can.

    python writer.py TOTAL STAMP_FILE

The content is built before the clock starts, then written in 64 KiB
writes. The wall-clock time of the first write goes to STAMP_FILE, so the
benchmark can time capture from the moment output begins. `expected(TOTAL)`
rebuilds the same bytes for the comparison.
"""

from __future__ import annotations

import os
import sys
import time

LINE = 100
CHUNK = 64 * 1024


def expected(total: int) -> bytes:
    """Return the exact bytes a writer of `total` bytes produces."""
    count = -(-total // LINE)
    pad = b"x" * (LINE - 12)
    lines = b"".join(b"%010d %s\n" % (number, pad) for number in range(count))
    return lines[:total]


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        offset += os.write(fd, view[offset:offset + CHUNK])


def main(argv: list[str]) -> int:
    total, stamp = int(argv[0]), argv[1]
    data = expected(total)
    with open(stamp + ".tmp", "w") as f:
        f.write(repr(time.time()))
    os.replace(stamp + ".tmp", stamp)
    write_all(1, data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
