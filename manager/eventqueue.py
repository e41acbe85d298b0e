"""One event subscription and its queue, bounded by a number of events and by bytes.

Events wait in the queue while the subscriber has WINDOW events that it has
not acknowledged. When an event does not fit (the queue has `capacity`
events, or `max_bytes` would be exceeded), the oldest waiting events are
dropped to make room. The dropped events are replaced by one marker at the
head of the queue,

    {"event": "dropped", "count": N, "seq": <seq of the last dropped event>}

so the subscriber learns how many it missed, and the seq numbers it receives
stay contiguous: the marker counts for `count` of them. The newest event is
always kept, so a queue contains at most `max_bytes` plus one event.

Sizes are estimates of the encoded event (see event_size), counted when an
event is queued; they are not a measurement of Python's memory.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from unitmgr.manager.logquery import LogQuery

DEFAULT_QUEUE = 1000
MAX_QUEUE = 10_000
DEFAULT_QUEUE_BYTES = 4 * 1024 * 1024
MIN_QUEUE_BYTES = 256 * 1024
MAX_QUEUE_BYTES = 32 * 1024 * 1024
# Added to the estimate of each log record and each event, for the keys and JSON syntax.
RECORD_OVERHEAD = 120
EVENT_OVERHEAD = 100
# Estimate for one unit's figures in a `stats` event.
STATS_UNIT_BYTES = 300


def event_size(event: dict[str, Any]) -> int:
    """Return an estimate in bytes of one event once encoded."""
    records = event.get("records")
    if records is not None:
        return EVENT_OVERHEAD + sum(record_size(record) for record in records)
    units = event.get("units")
    if isinstance(units, dict):
        return EVENT_OVERHEAD + STATS_UNIT_BYTES * len(units)
    return EVENT_OVERHEAD * 2


def record_size(record: dict[str, Any]) -> int:
    """Return an estimate in bytes of one log record once encoded (characters count as bytes)."""
    return RECORD_OVERHEAD + len(record["text"]) + len(record.get("raw", ""))


@dataclass
class Subscription:
    sub_id: int
    identity: bytes
    key: str
    streams: frozenset[str]
    units: frozenset[str] | None
    query: LogQuery
    capacity: int
    max_bytes: int
    interval: float
    seq: int = 0
    sent: int = 0  # the seq of the last event sent
    acked: int = 0
    in_flight: deque[int] = field(default_factory=deque)  # seqs sent and not acknowledged
    dropped_total: int = 0
    last_progress: float = field(default_factory=time.monotonic)  # the time of subscribing or of the last ack
    unacked_since: float = field(default_factory=time.monotonic)  # since when in_flight has been non-empty
    # Events waiting to be sent, with their estimated sizes, and the sum of those.
    queue: deque[tuple[dict[str, Any], int]] = field(default_factory=deque)
    queue_bytes: int = 0

    def wants(self, stream: str, unit: str | None) -> bool:
        if stream not in self.streams:
            return False
        return unit is None or self.units is None or unit in self.units

    def has_marker(self) -> bool:
        """Return True when the head of the queue is the marker of dropped events."""
        return bool(self.queue) and self.queue[0][0]["event"] == "dropped"

    def waiting(self) -> int:
        """Return the number of queued events that could be dropped (the marker is not one)."""
        return len(self.queue) - 1 if self.has_marker() else len(self.queue)

    def over_limit(self, size: int) -> bool:
        """Return True when room must be made before an event of `size` bytes is queued."""
        return self.waiting() > 0 and (len(self.queue) >= self.capacity
                                       or self.queue_bytes + size > self.max_bytes)

    def push(self, event: dict[str, Any], size: int) -> None:
        self.queue.append((event, size))
        self.queue_bytes += size

    def pop(self) -> tuple[dict[str, Any], int]:
        event, size = self.queue.popleft()
        self.queue_bytes -= size
        return event, size

    def drop_oldest(self) -> int:
        """Drop the oldest waiting event into the marker at the head, and return the bytes freed."""
        count = 0
        freed = 0
        if self.has_marker():
            marker, size = self.queue.popleft()
            count = marker["count"]
            freed += size
        event, size = self.queue.popleft()
        freed += size
        count += 1
        marker = {"event": "dropped", "count": count, "seq": event["seq"]}
        marker_size = event_size(marker)
        self.queue.appendleft((marker, marker_size))
        self.queue_bytes += marker_size - freed
        self.dropped_total += 1
        return freed - marker_size
