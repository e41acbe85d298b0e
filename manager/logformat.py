"""The on-disk format of unit logs, shared by the writer (logstore.py) and the reader (logreader.py).

`UNIT.idx` contains one RECORD per read of a pipe: offset into `UNIT.log`,
time, length, pid and flags. The flags contain the stream (STDOUT or STDERR,
or MANAGER for a message of the manager about the unit, such as "Started
Web server.", whose pid is the manager's),
EOF_FLAG for the zero-length record written at the end of a stream, and
META_FLAG for a record whose bytes are the syslog identifier of its pid
rather than output.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

# offset (u64), time (f64), length (u32), pid (u32), flags (u8), padding.
RECORD = struct.Struct("<QdIIB3x")
STDOUT, STDERR, MANAGER = 1, 2, 3
STREAM_NAMES = {STDOUT: "stdout", STDERR: "stderr", MANAGER: "manager"}
STREAM_NUMBERS = {name: number for number, name in STREAM_NAMES.items()}
# The syslog identifier of MANAGER lines, as journald shows systemd[1] for systemd's own.
MANAGER_IDENTIFIER = "unitmgr"
STREAM_MASK = 0x0F
META_FLAG = 0x40
EOF_FLAG = 0x80


@dataclass
class LogLine:
    unit: str
    time: float
    stream: str
    pid: int
    data: bytes
    # No newline follows: the last line of a stream that had none, or a piece
    # of a line longer than linecut.LINE_MAX other than its last piece.
    partial: bool = False
    identifier: str = ""
    # A partial line whose stream has not reached EOF yet: more may follow.
    pending: bool = False



def file_name(unit: str) -> str:
    """Return the base file name of a unit's log."""
    # Unit names cannot contain '/', but guard against a crafted one anyway.
    return unit.replace("/", "\\x2f")
