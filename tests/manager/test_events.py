"""Event streams on a real manager: sequence numbers, slow and vanished subscribers, stats."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from support import ManagerProcess, wait_for, write_unit
from unitmgr.manager import paths as paths_module
from unitmgr.shell.client import Client, RemoteError

# A unit that writes one line per read of the manager: each line is one log event.
CHATTY = """\
[Service]
Type=oneshot
ExecStart=/usr/bin/python3 -c 'import time\\nfor i in range({count}): print("line", i, flush=True); time.sleep(0.0005)'
"""


@contextmanager
def client_of(manager: ManagerProcess) -> Iterator[Client]:
    with Client.local(paths_module.resolve(manager.env)) as client:
        yield client


def collect(client: Client, until: callable, timeout: float = 30.0) -> list[dict]:
    """Read events until `until(events)` is true; fail after `timeout` seconds."""
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    for event in client.iter_events(timeout=timeout):
        events.append(event)
        if until(events):
            return events
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"events incomplete after {timeout}s: {len(events)} received, last {events[-3:]}")


def log_lines(events: list[dict]) -> list[str]:
    """Return the texts of the units' output lines in `events`, without the manager's lines."""
    return [r["text"] for e in events if e.get("event") == "log" for r in e["records"]
            if r["stream"] != "manager"]


def test_state_events_in_sequence(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "short.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
    manager = make_manager(units)
    with client_of(manager) as client:
        result = client.subscribe(["state"], ["short"])
        assert result["streams"] == ["state"]
        manager.request("start", {"units": ["short"]})
        events = collect(client, lambda evs: evs[-1].get("active_state") == "inactive")

    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert {e["sub"] for e in events} == {result["sub"]}
    assert events[0]["active_state"] == "activating"
    assert all(e["event"] == "state" and e["unit"] == "short.service" for e in events)


def test_slow_subscriber_does_not_stall_others(make_manager, tmp_path: Path) -> None:
    count = 3000
    units = tmp_path / "units"
    write_unit(units, "chatty.service", CHATTY.format(count=count))
    manager = make_manager(units)
    with client_of(manager) as slow, client_of(manager) as fast, client_of(manager) as gone:
        slow_sub = slow.subscribe(["log"], ["chatty"], queue=100)
        fast.subscribe(["log"], ["chatty"], queue=10_000)  # room enough on a loaded machine
        gone.subscribe(["log"], ["chatty"])
        gone.close()  # vanishes without unsubscribing

        manager.request("start", {"units": ["chatty"], "no_block": True})
        fast_events = collect(fast, lambda evs: len(log_lines(evs)) >= count)
        assert log_lines(fast_events) == [f"line {i}" for i in range(count)]
        assert not [e for e in fast_events if e["event"] == "dropped"]
        wait_for(lambda: manager.status("chatty")["active_state"] == "inactive", message="chatty to finish")

        # Only now does the slow subscriber read: it gets what its window and
        # queue held, then the number of events it missed.
        slow_events = collect(slow, lambda evs: evs[-1]["event"] == "dropped", timeout=30)
        delivered = [e for e in slow_events if e["event"] == "log"]
        [dropped] = [e for e in slow_events if e["event"] == "dropped"]
        assert dropped["sub"] == slow_sub["sub"]
        assert dropped["count"] > 0
        assert len(delivered) <= slow_sub["window"] + slow_sub["queue"]
        assert dropped["seq"] == len(delivered) + dropped["count"]
        assert log_lines(delivered) == [f"line {i}" for i in range(len(log_lines(delivered)))]


def test_dropped_then_live_again(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "chatty.service", CHATTY.format(count=600))
    write_unit(units, "later.service", "[Service]\nType=oneshot\nExecStart=/bin/echo later line\n")
    manager = make_manager(units)
    with client_of(manager) as client:
        client.subscribe(["log"], ["chatty", "later"], queue=10)
        manager.request("start", {"units": ["chatty"]})
        events = collect(client, lambda evs: evs[-1]["event"] == "dropped")
        manager.request("start", {"units": ["later"]})
        events += collect(client, lambda evs: "later line" in log_lines(evs))

    kinds = [e["event"] for e in events]
    assert "dropped" in kinds
    assert kinds.index("dropped") < len(kinds) - 1, "events after the gap are delivered again"
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs)
    assert sum(e.get("count", 1) for e in events) == seqs[-1], "seq numbers count every event"


def test_log_history_then_live(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "twice.service", "[Service]\nType=oneshot\nExecStart=/bin/echo run\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["twice"]})
    with client_of(manager) as client:
        result = client.subscribe(["log"], ["twice"], lines=5, grep="RUN")
        assert [r["text"] for r in result["records"]] == []
        result = client.subscribe(["log"], ["twice"], lines=5, grep="run")
        assert [r["text"] for r in result["records"]] == ["run"]
        manager.request("start", {"units": ["twice"]})
        events = collect(client, lambda evs: log_lines(evs).count("run") >= 1)
    assert {e["sub"] for e in events} == {result["sub"]}


def test_stats_only_while_subscribed(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "idle.service", "[Service]\nExecStart=/bin/sleep 1000\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["idle"]})
    with client_of(manager) as client:
        result = client.subscribe(["stats"], interval=0.2)
        events = collect(client, lambda evs: len(evs) >= 3)
        assert all(e["event"] == "stats" for e in events)
        figures = events[-1]["units"]["idle.service"]
        assert figures["tasks"] >= 1
        assert figures["memory_bytes"] > 0
        assert "cpu_percent" in figures
        client.unsubscribe(result["sub"])
        assert list(client.iter_events(timeout=1.0)) == []
    log_text = manager.log()
    assert log_text.count("statistics sampling started") == 1
    assert log_text.index("statistics sampling started") < log_text.index("statistics sampling stopped")


def test_subscribe_rejects_bad_arguments(make_manager, tmp_path: Path) -> None:
    manager = make_manager(tmp_path / "units")
    (tmp_path / "units").mkdir(exist_ok=True)
    with client_of(manager) as client:
        with pytest.raises(RemoteError) as bad_stream:
            client.subscribe(["journal"])
        assert "journal" in bad_stream.value.message
        with pytest.raises(RemoteError) as bad_queue:
            client.subscribe(["state"], queue=0)
        assert "queue" in bad_queue.value.message
        with pytest.raises(RemoteError) as unknown:
            client.request("unsubscribe", {"sub": 999})
        assert unknown.value.code == "not-applicable"


def test_subscription_belongs_to_its_connection(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    manager = make_manager(units)
    with client_of(manager) as first, client_of(manager) as second:
        sub = first.subscribe(["state"])["sub"]
        with pytest.raises(RemoteError) as foreign:
            second.request("unsubscribe", {"sub": sub})
        assert foreign.value.code == "not-applicable"
        first.unsubscribe(sub)


def test_line_assembler_cuts_reads(tmp_path: Path) -> None:
    from unitmgr.manager.events import LineAssembler
    from unitmgr.manager.linecut import LINE_MAX
    from unitmgr.manager.logstore import STDERR, STDOUT, LogStore

    writer = LogStore(tmp_path).writer("cut.service")
    writer.identifier = "cutter"
    delivered: list = []
    assembler = LineAssembler(writer, lambda unit, lines: delivered.extend(lines))

    assembler.feed(b"one\ntw", STDOUT, 5, 1.0, False)
    assembler.feed(b"err\n", STDERR, 5, 2.0, False)
    assembler.feed(b"o\nthree", STDOUT, 5, 3.0, False)
    assembler.feed(b"", STDOUT, 5, 4.0, True)
    assert [(line.stream, line.data, line.partial, line.time) for line in delivered] == [
        ("stdout", b"one", False, 1.0),
        ("stderr", b"err", False, 2.0),
        ("stdout", b"two", False, 3.0),
        ("stdout", b"three", True, 4.0),
    ]
    assert {line.identifier for line in delivered} == {"cutter"}

    delivered.clear()
    assembler.feed(b"x" * (2 * LINE_MAX + 10), STDOUT, 6, 5.0, False)
    assert [(len(line.data), line.partial) for line in delivered] == [(LINE_MAX, True), (LINE_MAX, True)]
    assembler.feed(b"y\n", STDOUT, 6, 6.0, False)
    assert [(len(line.data), line.partial) for line in delivered[2:]] == [(11, False)]


def test_follower_told_when_manager_stops(make_manager, tmp_path: Path) -> None:
    from unitmgr.shell.client import ClientError

    units = tmp_path / "units"
    units.mkdir()
    manager = make_manager(units)
    with client_of(manager) as client:
        client.subscribe(["state"])
        manager.stop()
        started = time.monotonic()
        with pytest.raises(ClientError) as lost:
            for _ in client.iter_events(timeout=20):
                pass
        assert lost.value.kind == "connection-lost"
        assert time.monotonic() - started < 20


def test_log_events_of_every_unit(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    for name in ("one", "two"):
        write_unit(units, f"{name}.service", f"[Service]\nType=oneshot\nExecStart=/bin/echo from {name}\n")
    manager = make_manager(units)
    with client_of(manager) as client:
        client.subscribe(["log"], stream="stdout")
        manager.request("start", {"units": ["one", "two"]})
        events = collect(client, lambda evs: {"from one", "from two"} <= set(log_lines(evs)))
    assert {e["unit"] for e in events} == {"one.service", "two.service"}


def test_assembler_resumes_unfinished_line(tmp_path: Path) -> None:
    from unitmgr.manager.events import LineAssembler
    from unitmgr.manager.logstore import STDOUT, LogStore

    store = LogStore(tmp_path)
    writer = store.writer("resume.service")
    writer.write(b"done\nhalf of a ", STDOUT, 3)
    delivered: list = []
    assembler = LineAssembler(writer, lambda unit, lines: delivered.extend(lines))
    assembler.resume(store.query("resume.service", 2))
    assembler.feed(b"line\n", STDOUT, 3, 2.0, False)
    assert [line.data for line in delivered] == [b"half of a line"]
