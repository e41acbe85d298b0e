"""Event streams on the control endpoint: `state`, `log` and `stats`.

A client subscribes with a request and then receives events tagged with the
subscription id and a sequence number:

    request  {"cmd": "subscribe", "args": {"streams": ["state", "log"], "units": ["web"]}}
    reply    {"sub": 3, "streams": ["log", "state"], "records": [...]}
    event    {"sub": 3, "seq": 118, "event": "state", "unit": "web.service", ...}

Flow control is by acknowledgement. The manager sends at most WINDOW events
that the client has not acknowledged, and the client acknowledges with `ack`
and the highest seq it has read. Further events wait in a queue per
subscription of at most `queue` events and `queue_bytes` bytes, and all
queues together contain at most TOTAL_QUEUE_BYTES. When an event does not fit,
the oldest waiting events are dropped and the client receives
`{"event": "dropped", "count": N}` in their place (eventqueue.py). Past the
total, the events dropped are those of the largest queue. Nothing here ever
waits for a client: a slow or vanished subscriber costs its own bounded
queue, never the manager's time or other subscribers' events. A
subscription is removed when it drops events and no ack has come for
EXPIRE_SECONDS.

Statistics are sampled only while someone subscribes to `stats`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from unitmgr.manager import protocol
from unitmgr.manager.eventqueue import (
    DEFAULT_QUEUE,
    DEFAULT_QUEUE_BYTES,
    EVENT_OVERHEAD,
    MAX_QUEUE,
    MAX_QUEUE_BYTES,
    MIN_QUEUE_BYTES,
    Subscription,
    event_size,
    record_size,
)
from unitmgr.manager.linecut import LineCutter
from unitmgr.manager.logconfig import configure_logs
from unitmgr.manager.logformat import STREAM_NUMBERS
from unitmgr.manager.logquery import LogQuery, query_records, record_of
from unitmgr.manager.logstore import STREAM_NAMES, LogLine, UnitLog
from unitmgr.manager.protocol import ProtocolError
from unitmgr.manager.server import current_peer
from unitmgr.manager.stats import unit_statistics

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager
    from unitmgr.manager.server import Peer
    from unitmgr.manager.unitbase import UnitRuntime

log = logging.getLogger(__name__)

STREAM_KINDS = ("state", "log", "stats")
WINDOW = 64
EXPIRE_SECONDS = 60.0
MAX_SUBSCRIPTIONS_PER_CLIENT = 16
# The queued events of all subscriptions together, as estimated by event_size.
TOTAL_QUEUE_BYTES = 64 * 1024 * 1024
DEFAULT_STATS_INTERVAL = 1.0
MIN_STATS_INTERVAL = 0.1
MAX_STATS_INTERVAL = 3600.0
# A client acknowledges within about half a second of reading (shell/client.py), so
# events unacknowledged for longer mark a subscriber that is gone or stalled.
ACK_GRACE_SECONDS = 2.0
# A log event contains the lines of one read, split so that each event has at
# most this many records and, past its first record, this many bytes. With
# lines cut at LINE_MAX, WINDOW events in flight stay below about 16 MiB.
MAX_EVENT_RECORDS = 2000
MAX_EVENT_BYTES = 128 * 1024

Sender = Callable[[bytes, dict[str, Any]], bool]
UNSUBSCRIBED = "unsubscribed"


class EventHub:
    """Subscriptions, their queues, and the producers of the three streams."""

    def __init__(self, manager: Manager, send: Sender):
        self.manager = manager
        self.send = send
        self.subscriptions: dict[int, Subscription] = {}
        self._next_id = 0
        self._assemblers: dict[str, LineAssembler] = {}
        self._stats_task: asyncio.Task[None] | None = None
        self._stats_previous: dict[str, tuple[float, float]] = {}  # unit → (time, cpu seconds)
        self.sent_events = 0
        self.dropped_events = 0
        self.queued_bytes = 0  # the sum of queue_bytes over all subscriptions

    # -- commands ---------------------------------------------------------

    async def subscribe(self, args: dict[str, Any]) -> dict[str, Any]:
        peer = _peer()
        streams = _streams_arg(args)
        names = protocol.arg_units(args, required=False)
        units = frozenset(self.manager.resolve(n) for n in names) if names else None
        query = LogQuery.from_args(args, default_lines=0)
        capacity = _int_arg(args, "queue", DEFAULT_QUEUE, 1, MAX_QUEUE)
        max_bytes = _int_arg(args, "queue_bytes", DEFAULT_QUEUE_BYTES, MIN_QUEUE_BYTES, MAX_QUEUE_BYTES)
        interval = _float_arg(args, "interval", DEFAULT_STATS_INTERVAL, MIN_STATS_INTERVAL, MAX_STATS_INTERVAL)
        self._limit_per_client(peer.key)
        self._next_id += 1
        sub = Subscription(self._next_id, peer.identity, peer.key, streams, units, query, capacity,
                           max_bytes, interval)
        result: dict[str, Any] = {"sub": sub.sub_id, "streams": sorted(streams), "window": WINDOW,
                                  "queue": capacity, "queue_bytes": max_bytes}
        # History and registration happen in one step of the loop, so no line
        # falls between the records returned here and the first log event.
        if "log" in streams and (query.lines or query.since is not None) and units:
            result.update(query_records(self.manager.logs, sorted(units), query, follow=True))
        self.subscriptions[sub.sub_id] = sub
        if "stats" in streams and self._stats_task is not None:
            # The sampler may be sleeping for the longer interval of another subscriber.
            # Restarting it gives the new subscriber a sample now, then one at its own interval.
            self._stats_task.cancel()
            self._stats_task = None
        self._update_producers()
        log.info("subscription %d: client %s… follows %s of %s", sub.sub_id, peer.key[:8],
                 ",".join(sorted(streams)), ",".join(sorted(units)) if units else "all units")
        return result

    async def unsubscribe(self, args: dict[str, Any]) -> dict[str, Any]:
        sub = self._own_subscription(args)
        self._remove(sub, UNSUBSCRIBED)
        return {"sub": sub.sub_id, "seq": sub.seq}

    async def ack(self, args: dict[str, Any]) -> dict[str, Any]:
        sub = self._own_subscription(args)
        seq = _int_arg(args, "seq", 0, 0, 2**63)
        if seq > sub.acked:
            sub.acked = min(seq, sub.sent)
            sub.last_progress = sub.unacked_since = time.monotonic()
            while sub.in_flight and sub.in_flight[0] <= sub.acked:
                sub.in_flight.popleft()
        self._pump(sub)
        return {}

    def _own_subscription(self, args: dict[str, Any]) -> Subscription:
        peer = _peer()
        number = _int_arg(args, "sub", 0, 1, 2**63)
        sub = self.subscriptions.get(number)
        # A subscription belongs to the connection that made it, where its events go.
        if sub is None or sub.identity != peer.identity:
            raise ProtocolError(protocol.NOT_APPLICABLE, f"no subscription {number} on this connection; "
                                "subscribe again")
        return sub

    def _limit_per_client(self, key: str) -> None:
        own = [s for s in self.subscriptions.values() if s.key == key]
        if len(own) >= MAX_SUBSCRIPTIONS_PER_CLIENT:
            # Every local client shares one key. A subscriber that left without
            # unsubscribing never acknowledges again, so such subscriptions go
            # first, then the one without an acknowledgement for the longest time.
            now = time.monotonic()
            oldest = min(own, key=lambda s: (not s.in_flight or now - s.unacked_since < ACK_GRACE_SECONDS,
                                             s.last_progress))
            self._remove(oldest, f"more than {MAX_SUBSCRIPTIONS_PER_CLIENT} subscriptions of one client")

    def _remove(self, sub: Subscription, reason: str) -> None:
        if self.subscriptions.pop(sub.sub_id, None) is not None:
            self.queued_bytes -= sub.queue_bytes
            sub.queue.clear()
            sub.queue_bytes = 0
            log.info("subscription %d removed: %s (%d events sent, %d dropped)", sub.sub_id, reason,
                     sub.sent, sub.dropped_total)
            if reason != UNSUBSCRIBED:
                # Without this notice a live subscriber would wait for events forever.
                self.send(sub.identity, {"sub": sub.sub_id, "event": "ended", "reason": reason})
            self._update_producers()

    def close(self) -> None:
        if self._stats_task is not None:
            self._stats_task.cancel()
            self._stats_task = None
        self.subscriptions.clear()
        self.queued_bytes = 0
        self._update_producers()

    # -- delivery ---------------------------------------------------------

    def publish(self, stream: str, unit: str | None, event: dict[str, Any]) -> None:
        for sub in list(self.subscriptions.values()):
            if sub.wants(stream, unit):
                self._offer(sub, event)

    def _offer(self, sub: Subscription, event: dict[str, Any], size: int = 0) -> None:
        """Queue one event for `sub`, dropping older ones where it does not fit, and send what the window allows."""
        size = size or event_size(event)
        sub.seq += 1
        while sub.over_limit(size):
            self._drop_oldest(sub)
        while self.queued_bytes + size > TOTAL_QUEUE_BYTES and sub.sub_id in self.subscriptions:
            largest = max(self.subscriptions.values(), key=lambda s: s.queue_bytes if s.waiting() else -1)
            if not largest.waiting():
                break
            self._drop_oldest(largest)
        if sub.sub_id not in self.subscriptions:
            return  # removed above for lack of acknowledgements
        sub.push({**event, "seq": sub.seq}, size)
        self.queued_bytes += size
        self._pump(sub)

    def _drop_oldest(self, sub: Subscription) -> None:
        self.queued_bytes -= sub.drop_oldest()
        self.dropped_events += 1
        self._expire_if_stuck(sub)

    def _pump(self, sub: Subscription) -> None:
        while len(sub.in_flight) < WINDOW and sub.queue:
            event, size = sub.pop()
            self.queued_bytes -= size
            sub.sent = event["seq"]
            if not sub.in_flight:
                sub.unacked_since = time.monotonic()
            sub.in_flight.append(sub.sent)
            self.sent_events += 1
            self.send(sub.identity, {"sub": sub.sub_id, **event})

    def _expire_if_stuck(self, sub: Subscription) -> None:
        if time.monotonic() - sub.last_progress > EXPIRE_SECONDS:
            self._remove(sub, f"no acknowledgement for {EXPIRE_SECONDS:g} s")

    # -- producers --------------------------------------------------------

    def _update_producers(self) -> None:
        """Follow the log writers and sample statistics only while someone subscribes."""
        wanted = self._followed_units()
        for writer in self.manager.logs.writers():
            self._attach(writer, wanted)
        stats = any("stats" in s.streams for s in self.subscriptions.values())
        if stats and self._stats_task is None:
            log.debug("statistics sampling started")
            self._stats_task = asyncio.ensure_future(self._sample_stats())
        elif not stats and self._stats_task is not None:
            log.debug("statistics sampling stopped")
            self._stats_task.cancel()
            self._stats_task = None
            self._stats_previous.clear()

    def _followed_units(self) -> set[str] | None:
        """Return the units someone follows the log of; None means every unit."""
        units: set[str] = set()
        for sub in self.subscriptions.values():
            if "log" in sub.streams:
                if sub.units is None:
                    return None
                units |= sub.units
        return units

    def attach_writer(self, writer: UnitLog) -> None:
        """Called for every new log writer."""
        self._attach(writer, self._followed_units())

    def _attach(self, writer: UnitLog, wanted: set[str] | None) -> None:
        if wanted is None or writer.unit in wanted:
            if writer.unit not in self._assemblers:
                assembler = LineAssembler(writer, self._on_lines)
                # The line being written when following starts is completed
                # from the log, as the reader cuts it.
                try:
                    assembler.resume(self.manager.logs.query(writer.unit, len(STREAM_NAMES)))
                except OSError as exc:
                    log.warning("failed to read the unfinished line of %s from its log: %s. "
                                "Followers receive that line from the next read on", writer.unit, exc)
                self._assemblers[writer.unit] = assembler
                writer.follower = assembler.feed
        elif writer.unit in self._assemblers:
            del self._assemblers[writer.unit]
            writer.follower = None

    def _on_lines(self, unit: str, lines: list[LogLine]) -> None:
        # The subscriptions that accept every line share one list of events.
        shared: list[tuple[dict[str, Any], int]] | None = None
        for sub in list(self.subscriptions.values()):
            if not sub.wants("log", unit):
                continue
            query = sub.query
            if query.accepts_all():
                if shared is None:
                    shared = _log_events(unit, lines, raw=False)
                events = shared
            else:
                events = _log_events(unit, [line for line in lines if query.accepts(line)], query.raw)
            for event, size in events:
                self._offer(sub, event, size)

    def state_changed(self, runtime: UnitRuntime) -> None:
        if not self.subscriptions:
            return
        self.publish("state", runtime.name, {
            "event": "state", "unit": runtime.name, "time": runtime.state_change_time,
            "active_state": runtime.active_state.value, "sub_state": runtime.sub_state,
            "result": runtime.result, "main_pid": getattr(runtime, "main_pid", 0) or 0,
        })

    async def _sample_stats(self) -> None:
        # Kept across a restart of this task, so cpu_percent goes on without a gap.
        previous = self._stats_previous
        while True:
            interval = min((s.interval for s in self.subscriptions.values() if "stats" in s.streams),
                           default=DEFAULT_STATS_INTERVAL)
            try:
                figures = self._unit_figures(previous)
            except Exception:
                log.exception("sampling unit statistics failed; trying again in %g s", interval)
            else:
                self.publish("stats", None, {"event": "stats", "time": time.time(), "units": figures})
            await asyncio.sleep(interval)

    def _unit_figures(self, previous: dict[str, tuple[float, float]]) -> dict[str, Any]:
        figures: dict[str, Any] = {}
        now = time.monotonic()
        for name, runtime in list(self.manager.runtimes.items()):
            pids = runtime.members()
            if not pids:
                previous.pop(name, None)
                continue
            data = unit_statistics(pids)
            data.pop("processes", None)
            cpu = data.get("cpu_seconds") or 0.0
            if name in previous:
                then, cpu_then = previous[name]
                data["cpu_percent"] = round(100.0 * max(cpu - cpu_then, 0.0) / max(now - then, 1e-6), 1)
            previous[name] = (now, cpu)
            figures[name] = data
        return figures


def _log_events(unit: str, lines: list[LogLine], raw: bool) -> list[tuple[dict[str, Any], int]]:
    """Split `lines` into `log` events and return them with their estimated sizes.

    Each event stays well below the message size limit (MAX_EVENT_RECORDS,
    MAX_EVENT_BYTES), so the window bounds the bytes in flight."""
    events: list[tuple[dict[str, Any], int]] = []
    records: list[dict[str, Any]] = []
    size = 0
    for line in lines:
        record = record_of(line, raw)
        cost = record_size(record)
        if records and (len(records) >= MAX_EVENT_RECORDS or size + cost > MAX_EVENT_BYTES):
            events.append(({"event": "log", "unit": unit, "records": records}, size + EVENT_OVERHEAD))
            records, size = [], 0
        records.append(record)
        size += cost
    if records:
        events.append(({"event": "log", "unit": unit, "records": records}, size + EVENT_OVERHEAD))
    return events


class LineAssembler:
    """Cuts the reads of one unit into lines for log events, while someone follows it.

    Lines longer than LINE_MAX are cut into the same pieces as when the log
    is read back, and sent as they complete."""

    def __init__(self, writer: UnitLog, deliver: Callable[[str, list[LogLine]], None]):
        self.writer = writer
        self.deliver = deliver
        self.cutters: dict[int, LineCutter] = {}

    def resume(self, unfinished: list[LogLine]) -> None:
        """Start from the unfinished lines that the log already contains (LogLine.pending)."""
        for line in unfinished:
            stream = STREAM_NUMBERS.get(line.stream)
            if line.pending and stream is not None:
                cutter = self.cutters[stream] = LineCutter()
                cutter.restore(line.data, line.pid)

    def feed(self, data: bytes, stream: int, pid: int, stamp: float, eof: bool) -> None:
        name = STREAM_NAMES.get(stream, "stdout")
        cutter = self.cutters.get(stream)
        if cutter is None:
            cutter = self.cutters[stream] = LineCutter(pid)
        lines = [self._line(piece, name, line_pid, stamp, partial)
                 for piece, line_pid, partial in cutter.feed(data, pid)]
        if eof and (rest := cutter.flush()) is not None:
            lines.append(self._line(rest[0], name, rest[1], stamp, True))
        if lines:
            self.deliver(self.writer.unit, lines)

    def _line(self, data: bytes, stream: str, pid: int, stamp: float, partial: bool) -> LogLine:
        identifier = self.writer.identifier_of(pid) if pid else ""
        return LogLine(self.writer.unit, stamp, stream, pid, data, partial=partial, identifier=identifier)


def _peer() -> Peer:
    peer = current_peer.get()
    if peer is None:
        raise ProtocolError(protocol.REFUSED, "event streams need a connection to the control endpoint")
    return peer


def _streams_arg(args: dict[str, Any]) -> frozenset[str]:
    streams = args.get("streams", list(STREAM_KINDS))
    if isinstance(streams, str):
        streams = [streams]
    if not isinstance(streams, list) or not streams or not all(s in STREAM_KINDS for s in streams):
        raise ProtocolError(protocol.BAD_REQUEST, f"'streams' must be a non-empty list of "
                            f"{', '.join(STREAM_KINDS)}, not {streams!r}")
    return frozenset(streams)


def _int_arg(args: dict[str, Any], key: str, default: int, minimum: int, maximum: int) -> int:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise ProtocolError(protocol.BAD_REQUEST, f"'{key}' must be an integer from {minimum} to "
                            f"{maximum}, not {value!r}")
    return value


def _float_arg(args: dict[str, Any], key: str, default: float, minimum: float, maximum: float) -> float:
    value = args.get(key, default)
    if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            or not minimum <= value <= maximum):
        raise ProtocolError(protocol.BAD_REQUEST, f"'{key}' must be a number of seconds from {minimum:g} "
                            f"to {maximum:g}, not {value!r}")
    return float(value)


def attach_events(manager: Manager, handler: Any, server: Any) -> EventHub:
    """Create the hub and connect it: commands, state listener, log writers, the server's sender.

    Also applies the log settings of the manager's configuration file."""
    configure_logs(manager)
    hub = EventHub(manager, server.send_event)
    handler.commands.update({
        "subscribe": hub.subscribe,
        "unsubscribe": hub.unsubscribe,
        "ack": hub.ack,
    })
    manager.listeners.append(hub.state_changed)
    manager.logs.writer_callbacks.append(hub.attach_writer)
    server.on_stop.append(hub.close)
    return hub
