"""Adversarial long lines: lengths at the cut, split characters, CR and NUL, rotation inside a line.

The pieces of `logs -o json`, of a follower's events and the bytes of
`logs -o raw` must all agree with what the unit wrote."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from pathlib import Path

from support import ManagerProcess, wait_for, write_unit
from unitmgr.manager import paths as paths_module
from unitmgr.manager.linecut import LINE_MAX
from unitmgr.shell.client import Client
from unitmgr.shell.logpages import fetch_logs

EURO = "€".encode()  # three bytes


def payload() -> bytes:
    lines = [
        b"a" * (LINE_MAX - 1),
        b"b" * LINE_MAX,
        b"c" * (LINE_MAX + 1),
        b"d" * (2 * LINE_MAX),
        b"e" * (LINE_MAX - 1) + EURO + b"tail",  # the character straddles the cut
        b"carriage\r\nreturn\r",
        b"nul\x00inside" + b"\x00" * LINE_MAX,
        b"",
        b"last",
    ]
    return b"\n".join(lines) + b"\n" + b"unfinished" + b"u" * LINE_MAX


def unitsh_bytes(manager: ManagerProcess, command: str) -> bytes:
    done = subprocess.run([sys.executable, "-m", "unitmgr.shell.cli", "-c", command],
                          env=manager.env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def pieces_of(records: list[dict]) -> list[tuple[bytes, bool]]:
    return [(base64.b64decode(record["raw"]), bool(record.get("partial"))) for record in records]


def joined(pieces: list[tuple[bytes, bool]]) -> bytes:
    return b"".join(data + (b"" if partial else b"\n") for data, partial in pieces)


def follow_and_start(manager: ManagerProcess, unit: str, expected: bytes) -> list[tuple[bytes, bool]]:
    """Subscribe to the log of `unit`, start it, and return the pieces its events carry."""
    with Client.local(paths_module.resolve(manager.env)) as client:
        client.subscribe(["log"], [unit], raw=True, queue=10_000, queue_bytes=32 * 1024 * 1024)
        manager.request("start", {"units": [unit], "no_block": True})
        pieces: list[tuple[bytes, bool]] = []
        deadline = time.monotonic() + 60
        for event in client.iter_events(timeout=30):
            assert event.get("event") != "dropped", event
            if event.get("event") == "log":
                pieces.extend(pieces_of(event["records"]))
            if joined(pieces) == expected or time.monotonic() > deadline:
                break
    return pieces


def log_bytes(logs: Path, unit: str) -> int:
    """Return the size of the unit's log files; a file that rotation renames meanwhile counts as 0."""
    total = 0
    for path in logs.glob(f"{unit}.log*"):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            pass
    return total


def stored_pieces(manager: ManagerProcess, unit: str, lines: int) -> list[tuple[bytes, bool]]:
    """Return the pieces `logs` returns, every page of them."""
    return pieces_of(fetch_logs(manager.request, {"units": [unit], "lines": lines, "raw": True})["records"])


def check_unit(manager: ManagerProcess, unit: str, data: bytes) -> None:
    followed = follow_and_start(manager, unit, data)
    assert joined(followed) == data, "the follower's pieces do not rebuild the output"
    wait_for(lambda: manager.status(unit)["active_state"] == "inactive", timeout=30, message=f"{unit} to end")

    assert unitsh_bytes(manager, f"logs -o raw {unit}") == data
    stored = stored_pieces(manager, unit, 0)
    assert joined(stored) == data
    assert [len(piece) for piece, _ in stored] == [len(piece) for piece, _ in followed]
    assert stored == followed
    assert all(len(piece) <= LINE_MAX for piece, _ in stored)

    for count in (1, 2, 3):
        assert stored_pieces(manager, unit, count) == stored[-count:]
        shown = [json.loads(line) for line in unitsh_bytes(manager, f"logs -n {count} -o json {unit}").splitlines()]
        assert len(shown) == count
    everything = unitsh_bytes(manager, f"logs -n 0 -o raw {unit}")
    assert everything == data
    huge = unitsh_bytes(manager, f"logs -n 99999999 -o raw {unit}")
    assert huge == data


def cat_unit(units: Path, tmp_path: Path, name: str, data: bytes, extra: str = "") -> None:
    source = tmp_path / f"{name}.bin"
    source.write_bytes(data)
    write_unit(units, f"{name}.service", f"[Service]\nType=oneshot\nExecStart=/bin/cat {source}\n{extra}")


def test_lines_around_cut(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    data = payload()
    cat_unit(units, tmp_path, "edges", data)
    manager = make_manager(units)
    check_unit(manager, "edges", data)


def test_rotation_inside_long_line(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    # Written in small reads, so the 16 KiB files rotate many times inside each line.
    data = b"x" * (3 * LINE_MAX + 5) + b"\n" + b"y" * (LINE_MAX + 7) + b"\nend\n"
    source = tmp_path / "slow.bin"
    source.write_bytes(data)
    writer = tmp_path / "slow_writer.py"
    writer.write_text(f"""\
import sys, time
data = open({str(source)!r}, "rb").read()
for start in range(0, len(data), 3000):
    sys.stdout.buffer.write(data[start:start + 3000])
    sys.stdout.flush()
    time.sleep(0.005)
""")
    write_unit(units, "rotating.service", f"""\
[Service]
Type=oneshot
ExecStart=/usr/bin/python3 {writer}
X-Unitmgr-LogMaxBytes=16K
X-Unitmgr-LogKeepFiles=1000
""")
    manager = make_manager(units)
    check_unit(manager, "rotating", data)
    assert len(list((manager.home / "state" / "logs").glob("rotating.service.log.*"))) > 5


def test_follow_resumes_line_split_by_rotation(make_manager, tmp_path: Path) -> None:
    """A follower that subscribes in the middle of a long line gets the pieces `logs` returns."""
    units = tmp_path / "units"
    go = tmp_path / "go"
    writer = tmp_path / "pausing_writer.py"
    writer.write_text(f"""\
import os, sys, time
for _ in range(40):
    sys.stdout.buffer.write(b"p" * 3000)
    sys.stdout.flush()
    time.sleep(0.005)
while not os.path.exists({str(go)!r}):
    time.sleep(0.01)
sys.stdout.buffer.write(b"q" * 70000 + b"\\ndone\\n")
""")
    write_unit(units, "pausing.service", f"""\
[Service]
Type=oneshot
ExecStart=/usr/bin/python3 {writer}
X-Unitmgr-LogMaxBytes=16K
X-Unitmgr-LogKeepFiles=1000
""")
    manager = make_manager(units)
    manager.request("start", {"units": ["pausing"], "no_block": True})
    logs = manager.home / "state" / "logs"
    wait_for(lambda: log_bytes(logs, "pausing.service") >= 120_000, timeout=30,
             message="the first 120000 bytes in the log")

    with Client.local(paths_module.resolve(manager.env)) as client:
        client.subscribe(["log"], ["pausing"], raw=True)
        go.touch()
        followed: list[tuple[bytes, bool]] = []
        for event in client.iter_events(timeout=30):
            if event.get("event") == "log":
                followed.extend(pieces_of(event["records"]))
            if followed and followed[-1][0] == b"done":
                break
    wait_for(lambda: manager.status("pausing")["active_state"] == "inactive", timeout=30,
             message="pausing to end")

    stored = stored_pieces(manager, "pausing", 0)
    assert joined(stored) == b"p" * 120_000 + b"q" * 70_000 + b"\ndone\n"
    assert followed == stored[-len(followed):]
    assert [len(piece) for piece, _ in stored] == [LINE_MAX, LINE_MAX, LINE_MAX, 190_000 - 3 * LINE_MAX, 4]
