"""Cutting one stream's reads into lines of bounded size.

The log files keep every line whole. Lines are cut when they are read back
(logreader.py) and when they are sent as log events (events.py), both with
this class. So a line longer than LINE_MAX bytes comes back as the same
pieces from `logs`, from `logs -f` and from `status`. Every piece but the
last is marked partial (no newline follows it), so the pieces concatenated,
with a newline after each one not marked, give the exact bytes.

The pieces are fixed by the line alone, not by where reading started: piece
k covers bytes k*LINE_MAX to (k+1)*LINE_MAX of the line, and the last piece
has from 1 to LINE_MAX bytes (an empty line is one empty piece).
"""

from __future__ import annotations

from collections.abc import Iterator

# journald cuts stream lines at the same length: LineMax=48K is the default in journald.conf.
LINE_MAX = 48 * 1024

# A line or a piece of one: (bytes without the newline, pid of the process
# that began the line, partial: no newline follows these bytes).
Piece = tuple[bytes, int, bool]


class LineCutter:
    """The unfinished line of one stream, fed read by read."""

    __slots__ = ("parts", "size", "pid")

    def __init__(self, pid: int = 0):
        self.parts: list[bytes] = []
        self.size = 0
        self.pid = pid

    def feed(self, chunk: bytes, pid: int) -> Iterator[Piece]:
        """Yield the lines and pieces that `chunk` completes, and keep its unfinished end."""
        if not self.parts:
            self.pid = pid
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if self.parts or end - start > LINE_MAX:
                self._add(chunk[start:end])
                yield from self._pieces(final=True)
            else:
                yield chunk[start:end], self.pid, False
            self.pid = pid
            start = end + 1
        if start < len(chunk):
            self._add(chunk[start:])
            if self.size > LINE_MAX:
                yield from self._pieces(final=False)

    def restore(self, data: bytes, pid: int) -> None:
        """Start from an unfinished line read back from the log (its last piece, so no newline)."""
        self.parts = [data] if data else []
        self.size = len(data)
        self.pid = pid

    def flush(self) -> Piece | None:
        """Return the unfinished line, marked partial, and clear it (None when there is none)."""
        if not self.parts:
            return None
        data = b"".join(self.parts)
        self.parts = []
        self.size = 0
        return data, self.pid, True

    def _add(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)

    def _pieces(self, final: bool) -> Iterator[Piece]:
        """Yield whole LINE_MAX pieces. With `final`, also yield the rest as the line's last piece."""
        data = b"".join(self.parts)
        position = 0
        while len(data) - position > LINE_MAX:
            yield data[position:position + LINE_MAX], self.pid, True
            position += LINE_MAX
        rest = data[position:]
        if final:
            self.parts = []
            self.size = 0
            yield rest, self.pid, False
        else:
            self.parts = [rest]
            self.size = len(rest)
