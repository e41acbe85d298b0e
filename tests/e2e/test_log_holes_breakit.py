"""Hostile log output through a real manager: page-aligned holes, restarts, rotation, leftovers, odd links."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from support import wait_for, write_unit
from unitmgr.manager.logformat import RECORD
from unitmgr.manager.logremoval import MARKER
from unitmgr.manager.logstore import LogStore

RUNS = 3
# Each run writes small pieces and bulk writes of 64 KiB or more in turn. The writer
# waits until the manager has read each piece (FIONREAD on its own pipe), so an
# unfinished line is stored alone and the next bulk read starts after a hole.
WRITER = f"""\
import fcntl, os, sys, termios, time
counter = sys.argv[1]
run = int(open(counter).read()) if os.path.exists(counter) else 0
open(counter, "w").write(str(run + 1))

def emit(fd, data):
    os.write(fd, data)
    deadline = time.monotonic() + 10
    while fcntl.ioctl(fd, termios.FIONREAD, b"\\0\\0\\0\\0") != b"\\0\\0\\0\\0" and time.monotonic() < deadline:
        pass

for part in range(3):
    emit(1, b"head %d %d:" % (run, part))
    emit(2, b"err %d %d\\n" % (run, part))
    body = b"".join(b"line %d %d %06d\\n" % (run, part, n) for n in range(12000))
    emit(1, b"tail-of-head\\n" + body + b"long:" + b"L" * (100 * 1024))
    emit(1, b"Z" * (70 * 1024) + b"\\n")
    emit(2, bytes(range(256)) * 300 + b"\\n")
sys.exit(1 if run + 1 < {RUNS} else 0)
"""


def expected_output() -> tuple[bytes, bytes]:
    """Return the stdout and stderr bytes of RUNS runs of WRITER."""
    out, err = b"", b""
    for run in range(RUNS):
        for part in range(3):
            out += b"head %d %d:" % (run, part)
            err += b"err %d %d\n" % (run, part)
            body = b"".join(b"line %d %d %06d\n" % (run, part, n) for n in range(12000))
            out += b"tail-of-head\n" + body + b"long:" + b"L" * (100 * 1024)
            out += b"Z" * (70 * 1024) + b"\n"
            err += bytes(range(256)) * 300 + b"\n"
    return out, err


def stream_bytes(store: LogStore, unit: str, stream: str) -> bytes:
    lines = store.query(unit, accept=lambda line: line.stream == stream)
    return b"".join(line.data if line.partial else line.data + b"\n" for line in lines)


def count_holes(index_path: Path) -> int:
    """Return how many records do not start where the one before ended."""
    holes = 0
    end = 0
    for offset, _time, length, _pid, _flags in RECORD.iter_unpack(index_path.read_bytes()):
        holes += offset != end
        end = offset + length
    return holes


@pytest.mark.parametrize("max_bytes", ["16M", "64K"])
def test_holes_restarts_rotation_exact(make_manager, tmp_path: Path, max_bytes: str) -> None:
    units = tmp_path / "units"
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    counter = tmp_path / "runs"
    write_unit(units, "burst.service", f"""\
[Service]
ExecStart={sys.executable} {writer} {counter}
Restart=on-failure
RestartSec=0
X-Unitmgr-LogMaxBytes={max_bytes}
X-Unitmgr-LogKeepFiles=1000
""")
    manager = make_manager(units)

    manager.request("start", {"units": ["burst"]})
    wait_for(lambda: counter.exists() and counter.read_text() == str(RUNS), 60, message="the last run")
    wait_for(lambda: manager.status("burst")["active_state"] == "inactive", 60, message="the last exit")

    log_dir = manager.home / "state" / "logs"
    if max_bytes == "16M":
        assert count_holes(log_dir / "burst.service.idx") > 0, "no read started on a page boundary"
    else:
        assert (log_dir / "burst.service.log.3").exists(), "the log should have rotated"
    store = LogStore(log_dir)
    out, err = expected_output()
    assert stream_bytes(store, "burst.service", "stdout") == out
    assert stream_bytes(store, "burst.service", "stderr") == err
    every_line = store.query("burst.service")
    for count in (1, 3, 40, 1000):
        assert store.query("burst.service", count) == every_line[-count:], count
    found = manager.request("logs", {"units": ["burst"], "lines": 0, "grep": "tail-of-head"})["records"]
    assert len(found) == 3 * RUNS
    assert all(record["text"].startswith("head ") for record in found)


def test_leftovers_swept_users_files_kept(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "chatty.service", """\
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'i=0; while [ $i -lt 2000 ]; do echo "line $i"; i=$((i+1)); done'
X-Unitmgr-LogMaxBytes=4K
X-Unitmgr-LogKeepFiles=1
""")
    manager = make_manager(units, start=False)
    log_dir = manager.home / "state" / "logs"
    log_dir.mkdir(parents=True)
    # What a manager killed with SIGKILL right after a rotation leaves behind.
    leftover = log_dir / f".chatty.service.log.1{MARKER}4242-7"
    leftover.write_bytes(b"x" * 8192)
    own = log_dir / ".notes.removed-by-hand"
    own.write_text("a user's file")
    manager.start()

    assert manager.request("start", {"units": ["chatty"]})["jobs"][0]["result"] == "done"

    wait_for(lambda: not leftover.exists(), 10, message="the sweep of the leftover")
    assert own.read_text() == "a user's file"
    wait_for(lambda: [p.name for p in log_dir.iterdir() if MARKER in p.name] == [own.name], 10,
             message="the removal of the rotated-out files")
    assert manager.status("chatty")["log_write_errors"] == 0


def test_instance_link_to_template_listed(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "u@.service", "[Service]\nExecStart=/bin/sleep 100\n[Install]\nWantedBy=default.target\n")
    (units / "u@2.service").symlink_to("u@.service")
    manager = make_manager(units)

    listed = manager.unitsh("-c", "list-unit-files")
    enabled = manager.unitsh("-c", "is-enabled u@2")
    started = manager.unitsh("-c", "start u@2")

    assert listed.returncode == 0, listed.stderr
    assert "u@2.service" in listed.stdout
    assert enabled.stdout.strip() == "disabled", enabled.stderr
    assert started.returncode == 0, started.stderr
    assert manager.status("u@2")["active_state"] == "active"
