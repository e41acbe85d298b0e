"""The queue of one subscription: byte and count limits, and the marker of dropped events."""

from __future__ import annotations

from unitmgr.manager.eventqueue import Subscription, event_size
from unitmgr.manager.logquery import LogQuery


def subscription(capacity: int = 100, max_bytes: int = 10_000) -> Subscription:
    return Subscription(1, b"id", "key", frozenset({"log"}), None, LogQuery(lines=0), capacity, max_bytes, 1.0)


def offer(sub: Subscription, text: str) -> None:
    """Queue one log event the way EventHub._offer does, without a hub."""
    event = {"event": "log", "unit": "a.service", "records": [{"text": text}]}
    size = event_size(event)
    sub.seq += 1
    while sub.over_limit(size):
        sub.drop_oldest()
    sub.push({**event, "seq": sub.seq}, size)


def test_bytes_limit_drops_oldest() -> None:
    sub = subscription(max_bytes=3000)
    for number in range(10):
        offer(sub, f"{number}" * 900)
    events = [sub.pop()[0] for _ in range(len(sub.queue))]
    marker = events[0]
    assert marker["event"] == "dropped"
    assert marker["count"] == 10 - (len(events) - 1)
    assert marker["seq"] == marker["count"]
    assert [e["seq"] for e in events[1:]] == list(range(marker["seq"] + 1, 11))
    assert events[-1]["records"][0]["text"] == "9" * 900
    assert sub.queue_bytes == 0


def test_queue_bytes_tracked() -> None:
    sub = subscription(capacity=3, max_bytes=1_000_000)
    for _ in range(5):
        offer(sub, "x" * 100)
    assert len(sub.queue) == 3
    assert sub.queue_bytes == sum(size for _, size in sub.queue)
    assert sub.queue[0][0] == {"event": "dropped", "count": 3, "seq": 3}
    assert sub.dropped_total == 3


def test_newest_event_always_queued() -> None:
    sub = subscription(max_bytes=500)
    offer(sub, "small")
    offer(sub, "y" * 2000)
    assert sub.waiting() == 1
    assert sub.queue[-1][0]["records"][0]["text"] == "y" * 2000
