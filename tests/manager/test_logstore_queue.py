"""The manager's queued lines: stored in the next loop round, in order with the unit's output."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from unitmgr.manager.logformat import RECORD
from unitmgr.manager.logstore import STDOUT, LogStore


def index_records(path: Path) -> list[tuple[int, float, int, int, int]]:
    data = path.read_bytes()
    return [RECORD.unpack_from(data, offset) for offset in range(0, len(data), RECORD.size)]


async def test_queued_lines_stored_next_round(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.write_message("q.service", "Starting q...")
    store.write_message("q.service", "Started q.")
    # Nothing is on disk until the loop has run the callbacks that were already due.
    assert not (tmp_path / "q.service.idx").exists()

    await asyncio.sleep(0)

    records = index_records(tmp_path / "q.service.idx")
    # The identifier record and both lines, all from the manager's pid.
    assert len(records) == 3
    assert [line.data for line in store.tail("q.service", 0)] == [b"Starting q...", b"Started q."]
    store.close()


async def test_query_stores_queued_lines(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.write_message("r.service", "Started r.")

    lines = store.tail("r.service", 0)

    assert [(line.stream, line.data) for line in lines] == [("manager", b"Started r.")]
    store.close()


async def test_output_after_queued_line(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer("s.service")
    store.write_message("s.service", "Started s.")
    writer.write(b"hello\n", STDOUT, 10)
    store.write_message("s.service", "s.service: Deactivated successfully.")
    await asyncio.sleep(0)

    lines = store.tail("s.service", 0)

    assert [(line.stream, line.data) for line in lines] == [
        ("manager", b"Started s."),
        ("stdout", b"hello"),
        ("manager", b"s.service: Deactivated successfully."),
    ]
    store.close()


async def test_line_keeps_time_it_was_written(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    before = time.time()
    store.write_message("t.service", "Started t.")
    after = time.time()
    await asyncio.sleep(0.05)

    [line] = store.tail("t.service", 0)

    # The record carries the time of write_message(), not of the later flush.
    assert before <= line.time <= after
    store.close()


async def test_close_stores_queued_lines(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.write_message("u.service", "Stopped u.")
    store.close()

    reopened = LogStore(tmp_path)
    assert [line.data for line in reopened.tail("u.service", 0)] == [b"Stopped u."]


async def test_followers_get_queued_lines(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer("v.service")
    seen: list[tuple[bytes, int]] = []
    writer.follower = lambda data, stream, pid, stamp, eof: seen.append((data, stream))
    store.write_message("v.service", "Started v.")
    assert seen == []

    await asyncio.sleep(0)

    assert seen == [(b"Started v.\n", 3)]
    store.close()


async def test_failing_follower_keeps_other_units(tmp_path: Path) -> None:
    store = LogStore(tmp_path)

    def fail(*_args: object) -> None:
        raise RuntimeError("follower broke")

    store.writer("w.service").follower = fail
    store.write_message("w.service", "Started w.")
    store.write_message("x.service", "Started x.")
    await asyncio.sleep(0)

    assert [line.data for line in store.tail("w.service", 0)] == [b"Started w."]
    assert [line.data for line in store.tail("x.service", 0)] == [b"Started x."]
    store.close()


def test_without_loop_stored_at_once(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.write_message("y.service", "Started y.")

    assert len(index_records(tmp_path / "y.service.idx")) == 2
    store.close()


def test_missing_directory_created(tmp_path: Path) -> None:
    directory = tmp_path / "removed"
    store = LogStore(directory)
    store.write_message("z.service", "Started z.")

    assert [line.data for line in store.tail("z.service", 0)] == [b"Started z."]
    store.close()


async def test_held_lines_wait_for_release(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.hold_messages()
    store.write_message("h.service", "Starting h...")
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    # Held: no file is created while many units are starting.
    assert not (tmp_path / "h.service.idx").exists()

    store.release_messages()
    await asyncio.sleep(0)

    assert [line.data for line in store.tail("h.service", 0)] == [b"Starting h..."]
    store.close()


async def test_nested_holds_release_on_the_last(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.hold_messages()
    store.hold_messages()
    store.write_message("n.service", "Started n.")
    store.release_messages()
    await asyncio.sleep(0)
    assert not (tmp_path / "n.service.idx").exists()

    store.release_messages()
    await asyncio.sleep(0)

    assert (tmp_path / "n.service.idx").exists()
    store.close()


async def test_held_lines_stored_after_hold_seconds(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("unitmgr.manager.logstore.HOLD_SECONDS", 0.05)
    store = LogStore(tmp_path)
    store.hold_messages()
    store.write_message("w.service", "Started w.")
    index = tmp_path / "w.service.idx"
    deadline = time.monotonic() + 5
    while not index.exists() and time.monotonic() < deadline:
        await asyncio.sleep(0.01)

    # Stored although the hold never ended.
    assert index.exists()
    store.release_messages()
    store.close()


async def test_output_while_held_comes_after_the_held_lines(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.hold_messages()
    writer = store.writer("o.service")
    store.write_message("o.service", "Started o.")
    writer.write(b"first output\n", STDOUT, 10)

    lines = store.tail("o.service", 0)

    assert [(line.stream, line.data) for line in lines] == [("manager", b"Started o."), ("stdout", b"first output")]
    store.release_messages()
    store.close()
