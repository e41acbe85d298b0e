"""Held manager lines keep their times, and identifiers survive rotation with many pids per file."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from unitmgr.manager.logstore import ANNOUNCED_TUPLE_MAX, STDOUT, LogStore


async def test_held_line_keeps_time_of_write(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.hold_messages()
    store.write_message("t.service", "Starting t...")
    written_before = time.time()
    store.writer("u.service").write(b"other unit\n", STDOUT, 4242)

    store.release_messages()
    await asyncio.sleep(0)

    [line] = store.tail("t.service", 0)
    # The time the line was written, not the time the hold ended.
    assert line.time <= written_before
    store.close()


async def test_close_stores_held_lines(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.hold_messages()
    store.write_message("c.service", "Stopping c...")

    store.close()

    reader = LogStore(tmp_path)
    assert [line.data for line in reader.tail("c.service", 0)] == [b"Stopping c..."]
    reader.close()


def test_identifiers_after_rotation_with_many_pids(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=4096, keep_files=4)
    writer = store.writer("m.service")
    # More pids than the announced tuple keeps, so the file switches to a set, then rotates back to a tuple.
    pids = list(range(900001, 900002 + 2 * ANNOUNCED_TUPLE_MAX))
    for pid in pids:
        writer.name_process(pid, f"/bin/proc{pid}")
    for number in range(300):
        pid = pids[number % len(pids)]
        writer.write(f"line {number} from {pid}\n".encode(), STDOUT, pid)
        if number % 50 == 0:
            store.write_message("m.service", f"manager line {number}")
    store.flush_messages()

    lines = store.tail("m.service", 0)

    assert (tmp_path / "m.service.log.1").exists()
    output = [line for line in lines if line.stream == "stdout"]
    assert len(output) == 300
    wrong = [(line.pid, line.identifier) for line in output if line.identifier != f"proc{line.pid}"]
    assert not wrong
    assert {line.identifier for line in lines if line.stream == "manager"} == {"unitmgr"}
    store.close()
