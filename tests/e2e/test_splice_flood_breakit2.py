"""Many units writing at once through the shared splice stage: every byte must land in its own unit's log."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from pathlib import Path

from support import stop_process, wait_for, write_unit
from unitmgr.manager.logstore import LogStore

# Writes `total` bytes to stdout and a quarter of that to stderr, interleaved, in
# writes of mixed sizes ("flood", or "endless" to repeat that forever) or of 40
# bytes ("lines"). The bytes are binary (newlines and zeros included) and differ
# per unit and stream.
WRITER = """\
import hashlib, os, sys
name, mode, total = sys.argv[1], sys.argv[2], int(sys.argv[3])

def stream_data(tag, size):
    out = bytearray()
    n = 0
    while len(out) < size:
        out += hashlib.sha256(f"{name}/{tag}/{n}".encode()).digest() * 32
        n += 1
    return bytes(out[:size])

def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]

out, err = stream_data("out", total), stream_data("err", total // 4)
sizes = [40] if mode == "lines" else [1, 17, 4096, 65536, 70000, 300000, 1 << 20]
i = o = e = 0
while o < len(out) or e < len(err) or mode == "endless":
    if mode == "endless" and o >= len(out) and e >= len(err):
        i = o = e = 0
    size = sizes[i % len(sizes)]
    if o < len(out):
        write_all(1, out[o:o + size])
        o += size
    if e < len(err) and i % 3 == 0:
        write_all(2, err[e:e + size])
        e += size
    i += 1
"""


def expected(name: str, tag: str, size: int) -> bytes:
    """Return the bytes WRITER writes for unit `name` on the stream `tag` ("out" or "err")."""
    out = bytearray()
    n = 0
    while len(out) < size:
        out += hashlib.sha256(f"{name}/{tag}/{n}".encode()).digest() * 32
        n += 1
    return bytes(out[:size])


def stream_bytes(store: LogStore, unit: str, stream: str) -> bytes:
    lines = store.query(unit, accept=lambda line: line.stream == stream)
    return b"".join(line.data if line.partial else line.data + b"\n" for line in lines)


UNITS = {f"flood{n}": ("flood", 6 << 20) for n in range(6)} | {f"lines{n}": ("lines", 64 << 10) for n in range(4)}


def test_concurrent_floods_exact_per_unit(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    for name, (mode, total) in UNITS.items():
        write_unit(units, f"{name}.service", f"""\
[Service]
ExecStart={sys.executable} {writer} {name} {mode} {total}
X-Unitmgr-LogMaxBytes=1G
""")
    manager = make_manager(units)

    # Status requests keep coming while the floods run, and each one must be answered.
    answered: list[str] = []
    done = threading.Event()

    def ask_status() -> None:
        while not done.is_set():
            answered.append(manager.status("flood0")["active_state"])

    asker = threading.Thread(target=ask_status)
    asker.start()
    try:
        result = manager.request("start", {"units": list(UNITS)})
        assert all(job["result"] == "done" for job in result["jobs"]), result
        for name in UNITS:
            wait_for(lambda name=name: manager.status(name)["active_state"] == "inactive", 20,
                     message=f"{name} to finish writing")
    finally:
        done.set()
        asker.join(timeout=30)
    assert answered, "no status request was answered during the floods"

    store = LogStore(manager.home / "state" / "logs")
    for name, (_mode, total) in UNITS.items():
        assert manager.status(name)["log_write_errors"] == 0, name
        assert stream_bytes(store, f"{name}.service", "stdout") == expected(name, "out", total), name
        assert stream_bytes(store, f"{name}.service", "stderr") == expected(name, "err", total // 4), name


def write_flood_units(units: Path, tmp_path: Path, names: list[str], total: int, extra: str = "",
                      mode: str = "flood") -> None:
    writer = tmp_path / "writer.py"
    writer.write_text(WRITER)
    for name in names:
        write_unit(units, f"{name}.service", f"""\
[Service]
ExecStart={sys.executable} {writer} {name} {mode} {total}
{extra}""")


def test_stop_mid_flood_keeps_prefixes(make_manager, tmp_path: Path) -> None:
    # Three units flood without end and are stopped while writing: each log must hold a
    # prefix of what its own unit wrote, with nothing from the others.
    units = tmp_path / "units"
    names = ["a", "b", "c"]
    write_flood_units(units, tmp_path, names, 1 << 20, "X-Unitmgr-LogMaxBytes=1G\n", mode="endless")
    manager = make_manager(units)
    manager.request("start", {"units": names})
    log_dir = manager.home / "state" / "logs"
    for name in names:
        wait_for(lambda name=name: (log_dir / f"{name}.service.log").stat().st_size > (8 << 20), 15,
                 message=f"{name} to write 8 MiB")
    result = manager.request("stop", {"units": names})
    assert all(job["result"] == "done" for job in result["jobs"]), result

    store = LogStore(log_dir)
    for name in names:
        out = stream_bytes(store, f"{name}.service", "stdout")
        err = stream_bytes(store, f"{name}.service", "stderr")
        assert len(out) > 0, name
        assert out == (expected(name, "out", 1 << 20) * (len(out) // (1 << 20) + 1))[:len(out)], name
        assert err == (expected(name, "err", 1 << 18) * (len(err) // (1 << 18) + 1))[:len(err)], name


def test_rotation_tiny_max_bytes_with_follower(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    names = ["r0", "r1"]
    total = 4 << 20
    write_flood_units(units, tmp_path, names, total, "X-Unitmgr-LogMaxBytes=4K\nX-Unitmgr-LogKeepFiles=1000\n")
    manager = make_manager(units)
    follower = subprocess.Popen([sys.executable, "-m", "unitmgr.shell.cli", "-c", "logs -f -o raw r0"],
                                env=manager.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        manager.request("start", {"units": names})
        for name in names:
            wait_for(lambda name=name: manager.status(name)["active_state"] == "inactive", 20,
                     message=f"{name} to finish writing")
    finally:
        stop_process(follower)

    store = LogStore(manager.home / "state" / "logs")
    for name in names:
        assert manager.status(name)["log_write_errors"] == 0, name
        assert stream_bytes(store, f"{name}.service", "stdout") == expected(name, "out", total), name
        assert stream_bytes(store, f"{name}.service", "stderr") == expected(name, "err", total // 4), name


def test_log_on_dev_full_counts_errors(make_manager, tmp_path: Path) -> None:
    # UNIT.log is a link to /dev/full: every store fails, but the unit must not stall on a
    # full pipe, the loss must be counted, and the other unit's log must stay exact.
    units = tmp_path / "units"
    total = 2 << 20
    write_flood_units(units, tmp_path, ["full", "fine"], total)
    manager = make_manager(units, start=False)
    log_dir = manager.home / "state" / "logs"
    log_dir.mkdir(parents=True)
    (log_dir / "full.service.log").symlink_to("/dev/full")
    manager.start()

    manager.request("start", {"units": ["full", "fine"]})
    for name in ("full", "fine"):
        wait_for(lambda name=name: manager.status(name)["active_state"] == "inactive", 20,
                 message=f"{name} to finish writing")

    assert manager.status("full")["log_write_errors"] > 0
    store = LogStore(log_dir)
    assert stream_bytes(store, "fine.service", "stdout") == expected("fine", "out", total)
    assert manager.status("fine")["log_write_errors"] == 0
