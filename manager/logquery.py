"""Selecting log lines for the `logs` command and for log event streams.

A `LogQuery` is built from request arguments:

    {"units": ["web"], "lines": 50, "raw": false, "since": "10 min ago",
     "until": "now", "grep": "error", "stream": "stderr"}

`stream` selects one of stdout, stderr and manager (the manager's messages
about the unit). Without it every line is selected, except that `raw`
leaves out the manager's lines, so the raw output is the unit's own bytes.
`since` and `until` take journalctl's time syntax (see timesyntax.py) or a
Unix time as a number. `grep` is a Python regular expression, matched
against the line decoded as UTF-8; as in journalctl, it ignores case unless
it contains an upper-case letter. `skip` leaves out the newest N of the
selected lines; with `until`, it is the cursor of the next older page (see
query_records).
"""

from __future__ import annotations

import base64
import heapq
import math
import re
from dataclasses import dataclass
from typing import Any

from unitmgr.manager import protocol
from unitmgr.manager.logstore import LogLine, LogStore
from unitmgr.manager.protocol import ProtocolError
from unitmgr.manager.timesyntax import TimeSyntaxError, parse_time

MAX_LOG_LINES = 100_000
# Replies stay below protocol.MAX_MESSAGE_BYTES: the oldest records are left
# out past this estimate, and the reply counts them in `omitted`.
REPLY_BUDGET = protocol.MAX_MESSAGE_BYTES * 3 // 4
STREAMS = ("stdout", "stderr", "manager")
# Bytes that JSON escapes: control characters take 6 bytes (\u0001), quote and backslash 2.
_JSON_ESCAPED = bytes(range(0x20)) + b'"\\'
# The keys, time, pid and punctuation of one record, without its strings.
_RECORD_OVERHEAD = 120


@dataclass
class LogQuery:
    lines: int = 10
    since: float | None = None
    until: float | None = None
    grep: re.Pattern[str] | None = None
    stream: str | None = None
    raw: bool = False
    skip: int = 0

    @classmethod
    def from_args(cls, args: dict[str, Any], default_lines: int = 10) -> LogQuery:
        """Build a query from request arguments; raise ProtocolError naming a bad one."""
        query = cls(lines=_lines_arg(args, default_lines), raw=bool(args.get("raw")))
        query.since = _time_arg(args, "since")
        query.until = _time_arg(args, "until")
        query.grep = _grep_arg(args)
        stream = args.get("stream")
        if stream not in (None, "", *STREAMS):
            raise ProtocolError(protocol.BAD_REQUEST,
                                f"'stream' must be stdout, stderr or manager, not {stream!r}")
        query.stream = stream or None
        skip = args.get("skip", 0)
        if isinstance(skip, bool) or not isinstance(skip, int) or not 0 <= skip <= MAX_LOG_LINES:
            raise ProtocolError(protocol.BAD_REQUEST, f"'skip' must be an integer from 0 to {MAX_LOG_LINES}, "
                                f"not {skip!r}")
        query.skip = skip
        return query

    def accepts(self, line: LogLine) -> bool:
        if self.since is not None and line.time < self.since:
            return False
        if self.until is not None and line.time > self.until:
            return False
        if self.stream is not None and line.stream != self.stream:
            return False
        if self.raw and self.stream is None and line.stream == "manager":
            # The raw output is the bytes the unit wrote, so the manager's lines need --stream manager.
            return False
        if self.grep is not None and not self.grep.search(line.data.decode("utf-8", "replace")):
            return False
        return True

    def accepts_all(self) -> bool:
        """Return True when `accepts` passes every line (a raw query leaves out the manager's lines)."""
        return (self.since is None and self.until is None and self.stream is None and self.grep is None
                and not self.raw)


def _lines_arg(args: dict[str, Any], default: int) -> int:
    value = args.get("lines", default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ProtocolError(protocol.BAD_REQUEST, f"'lines' must be an integer >= 0, not {value!r}")
    return value


def _time_arg(args: dict[str, Any], key: str) -> float | None:
    value = args.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ProtocolError(protocol.BAD_REQUEST, f"'{key}' must be a finite Unix time, not {value!r}")
        return float(value)
    if not isinstance(value, str):
        raise ProtocolError(protocol.BAD_REQUEST, f"'{key}' must be a time string or a number, not {value!r}")
    try:
        return parse_time(value)
    except TimeSyntaxError as exc:
        raise ProtocolError(protocol.BAD_REQUEST, f"--{key}: {exc}") from None


def _grep_arg(args: dict[str, Any]) -> re.Pattern[str] | None:
    pattern = args.get("grep")
    if pattern is None or pattern == "":
        return None
    if not isinstance(pattern, str):
        raise ProtocolError(protocol.BAD_REQUEST, f"'grep' must be a string, not {pattern!r}")
    flags = 0 if any(char.isupper() for char in pattern) else re.IGNORECASE
    try:
        return re.compile(pattern, flags)
    except re.error as exc:
        raise ProtocolError(protocol.BAD_REQUEST, f"--grep: invalid regular expression {pattern!r}: {exc}") from None


def record_of(line: LogLine, raw: bool) -> dict[str, Any]:
    """Return the LogRecord of one line, as docs/protocol.md describes it."""
    record: dict[str, Any] = {
        "unit": line.unit, "time": line.time, "stream": line.stream, "pid": line.pid,
        "text": line.data.decode("utf-8", "replace"),
    }
    if line.identifier:
        record["identifier"] = line.identifier
    if line.partial:
        record["partial"] = True
    if raw:
        record["raw"] = base64.b64encode(line.data).decode("ascii")
    return record


def encoded_record_size(record: dict[str, Any], data: bytes) -> int:
    """Return an upper bound of the encoded JSON size in bytes of `record`, which was made from `data`.

    Text that is not ASCII is measured in UTF-8: every invalid byte became
    U+FFFD, 3 bytes. Each byte JSON escapes is counted at 6 bytes."""
    text: str = record["text"]
    size = len(data) if data.isascii() else len(text.encode("utf-8"))
    escaped = len(data) - len(data.translate(None, _JSON_ESCAPED))
    size += 5 * escaped + len(record.get("raw", ""))
    return _RECORD_OVERHEAD + size + len(record["unit"]) + len(record.get("identifier", ""))


def select_lines(store: LogStore, names: list[str], query: LogQuery, follow: bool = False) -> list[LogLine]:
    """Return the lines of several units merged by time, the last `query.lines` of them.

    The newest `query.skip` lines are left out first. With `follow`, an
    unfinished last line is left out: the event stream delivers it once it
    is complete."""
    limit = min(query.lines, MAX_LOG_LINES) if query.lines else MAX_LOG_LINES
    needed = limit + query.skip
    per_unit = []
    for name in names:
        lines = store.query(name, needed, since=query.since, accept=query.accepts)
        if follow:
            lines = [line for line in lines if not line.pending]
        per_unit.append(lines)
    # heapq.merge keeps each unit's own order even where its clock went back.
    merged = list(heapq.merge(*per_unit, key=lambda line: line.time))
    del merged[len(merged) - min(query.skip, len(merged)):]
    return merged[-limit:]


def query_records(store: LogStore, names: list[str], query: LogQuery, follow: bool = False) -> dict[str, Any]:
    """Return `{"records": [...]}` oldest first, and report the oldest records that did not fit.

    A reply stays below REPLY_BUDGET and always contains the newest record. The
    records left out are counted in `omitted` and their bytes in
    `omitted_bytes`, and `older` is the cursor of the next older page: the
    same request with its `until` and `skip` (and `lines` = omitted) returns
    the lines just before these."""
    lines = select_lines(store, names, query, follow)
    records: list[dict[str, Any]] = []
    budget = REPLY_BUDGET
    for line in reversed(lines):
        record = record_of(line, query.raw)
        cost = encoded_record_size(record, line.data)
        if records and cost > budget:
            break
        budget -= cost
        records.append(record)
    records.reverse()
    result: dict[str, Any] = {"records": records}
    left_out = len(lines) - len(records)
    if left_out:
        result["omitted"] = left_out
        result["omitted_bytes"] = sum(len(line.data) for line in lines[:left_out])
        result["older"] = _older_cursor(query, lines[left_out:])
    return result


def _older_cursor(query: LogQuery, returned: list[LogLine]) -> dict[str, Any]:
    """Return the `until` and `skip` that select the lines before `returned`.

    Lines completed later than the oldest returned one cannot fall before
    it, so the cursor stays right while the unit writes more. Lines with the
    same time as the oldest returned one are distinguished by their count."""
    oldest = returned[0].time
    skip = 0
    for line in returned:
        if line.time != oldest:
            break
        skip += 1
    if query.until == oldest:
        skip += query.skip
    return {"until": oldest, "skip": skip}
