"""Stalled event subscribers during a 100 MB burst: the manager's memory stays bounded."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

from support import ManagerProcess, wait_for, write_unit
from unitmgr.manager import paths as paths_module
from unitmgr.shell.client import Client

MB = 1024 * 1024
# A generous bound: the manager starts at about 35 MB here, and with the
# byte limits of the queues lifted this test makes it grow to about 390 MB.
RSS_LIMIT = 150 * MB
STALLED = 6


def resident_bytes(pid: int) -> int:
    """Return VmRSS of a process in bytes, from /proc."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def log_texts(events: list[dict]) -> Iterator[str]:
    for event in events:
        if event.get("event") == "log":
            for record in event["records"]:
                yield record["text"]


def test_stalled_subscribers_bounded(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    source = tmp_path / "burst.txt"
    line = b"b" * 4095 + b"\n"
    source.write_bytes(line * (100 * MB // len(line)) + b"burst done\n")
    write_unit(units, "burst.service", f"""\
[Service]
Type=oneshot
ExecStart=/bin/cat {source}
X-Unitmgr-LogMaxBytes=64M
""")
    manager: ManagerProcess = make_manager(units)
    assert manager.proc is not None
    pid = manager.proc.pid
    paths = paths_module.resolve(manager.env)

    with ExitStack() as stack:
        stalled = []
        for number in range(STALLED):
            client = stack.enter_context(Client.local(paths))
            # Half filter their lines, so that they cannot share the records of the others.
            filters = {"grep": "b"} if number % 2 else {}
            stalled.append((client, client.subscribe(["log"], ["burst"], **filters)))
        reader = stack.enter_context(Client.local(paths))
        reader.subscribe(["log"], ["burst"])
        before = resident_bytes(pid)

        manager.request("start", {"units": ["burst"], "no_block": True})
        highest = before
        received: list[dict] = []
        deadline = time.monotonic() + 120
        for event in reader.iter_events(timeout=60):
            highest = max(highest, resident_bytes(pid))
            received.append(event)
            if event.get("event") == "log" and event["records"][-1]["text"] == "burst done":
                break
            assert time.monotonic() < deadline, "the burst's last line did not arrive within 120 s"
        wait_for(lambda: manager.status("burst")["active_state"] == "inactive", timeout=60,
                 message="burst to finish")
        highest = max(highest, resident_bytes(pid))
        print(f"\nmanager RSS: {before / MB:.0f} MB before, {highest / MB:.0f} MB at most")
        assert highest < RSS_LIMIT, f"manager RSS reached {highest / MB:.0f} MB"
        assert sum(1 for text in log_texts(received) if text == "b" * 4095) > 0

        # A stalled subscriber reads at last: what its window held, then how many it missed.
        client, subscription = stalled[0]
        events = []
        for event in client.iter_events(timeout=10):
            events.append(event)
            if event["event"] == "dropped":
                break
        assert events, "the stalled subscriber received nothing"
        dropped = events[-1]
        assert dropped["event"] == "dropped"
        assert dropped["sub"] == subscription["sub"]
        assert dropped["count"] > 0
        assert dropped["seq"] == len(events) - 1 + dropped["count"]
