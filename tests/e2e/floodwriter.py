"""The writer program of test_splice_flood_breakit2.py, and the bytes it writes.

    python floodwriter.py NAME MODE TOTAL

Writes TOTAL bytes to stdout and a quarter of that to stderr, interleaved, in
writes of mixed sizes (MODE "flood", or "endless" to repeat that forever) or
of 40 bytes ("lines"). The bytes are binary (newlines and zeros included) and
differ per unit name and stream, so the tests rebuild them with stream_data().
"""

from __future__ import annotations

import hashlib
import os
import sys

MIXED_SIZES = [1, 17, 4096, 65536, 70000, 300000, 1 << 20]


def stream_data(name: str, tag: str, size: int) -> bytes:
    """Return the bytes the writer of unit `name` writes on the stream `tag` ("out" or "err")."""
    data = bytearray()
    block = 0
    while len(data) < size:
        data += hashlib.sha256(f"{name}/{tag}/{block}".encode()).digest() * 32
        block += 1
    return bytes(data[:size])


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main(name: str, mode: str, total: int) -> None:
    out, err = stream_data(name, "out", total), stream_data(name, "err", total // 4)
    sizes = [40] if mode == "lines" else MIXED_SIZES
    round_number = out_offset = err_offset = 0
    while out_offset < len(out) or err_offset < len(err) or mode == "endless":
        if mode == "endless" and out_offset >= len(out) and err_offset >= len(err):
            round_number = out_offset = err_offset = 0
        size = sizes[round_number % len(sizes)]
        if out_offset < len(out):
            write_all(1, out[out_offset:out_offset + size])
            out_offset += size
        if err_offset < len(err) and round_number % 3 == 0:
            write_all(2, err[err_offset:err_offset + size])
            err_offset += size
        round_number += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
