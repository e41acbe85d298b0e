"""Many units writing at once through the shared splice stage: every byte must land in its own unit's log."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import floodwriter
from floodwriter import stream_data
from support import stop_process, wait_for, write_unit
from unitmgr.manager.logstore import LogStore

WRITER = Path(floodwriter.__file__)


def stream_bytes(store: LogStore, unit: str, stream: str) -> bytes:
    lines = store.query(unit, accept=lambda line: line.stream == stream)
    return b"".join(line.data if line.partial else line.data + b"\n" for line in lines)


UNITS = {f"flood{n}": ("flood", 6 << 20) for n in range(6)} | {f"lines{n}": ("lines", 64 << 10) for n in range(4)}


def test_concurrent_floods_exact_per_unit(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    for name, (mode, total) in UNITS.items():
        write_unit(units, f"{name}.service", f"""\
[Service]
ExecStart={sys.executable} {WRITER} {name} {mode} {total}
X-Unitmgr-LogMaxBytes=1G
""")
    manager = make_manager(units)

    # Status requests keep coming while the floods run, and each one must get a reply.
    replies: list[str] = []
    done = threading.Event()

    def ask_status() -> None:
        while not done.is_set():
            replies.append(manager.status("flood0")["active_state"])

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
    assert replies, "no status request got a reply during the floods"

    store = LogStore(manager.home / "state" / "logs")
    for name, (_mode, total) in UNITS.items():
        assert manager.status(name)["log_write_errors"] == 0, name
        assert stream_bytes(store, f"{name}.service", "stdout") == stream_data(name, "out", total), name
        assert stream_bytes(store, f"{name}.service", "stderr") == stream_data(name, "err", total // 4), name


def write_flood_units(units: Path, names: list[str], total: int, extra: str = "",
                      mode: str = "flood") -> None:
    for name in names:
        write_unit(units, f"{name}.service", f"""\
[Service]
ExecStart={sys.executable} {WRITER} {name} {mode} {total}
{extra}""")


def test_stop_mid_flood_keeps_prefixes(make_manager, tmp_path: Path) -> None:
    # Three units flood without end and are stopped while writing: each log must hold a
    # prefix of what its own unit wrote, with nothing from the others.
    units = tmp_path / "units"
    names = ["a", "b", "c"]
    write_flood_units(units, names, 1 << 20, "X-Unitmgr-LogMaxBytes=1G\n", mode="endless")
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
        assert out == (stream_data(name, "out", 1 << 20) * (len(out) // (1 << 20) + 1))[:len(out)], name
        assert err == (stream_data(name, "err", 1 << 18) * (len(err) // (1 << 18) + 1))[:len(err)], name


def test_rotation_tiny_max_bytes_with_follower(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    names = ["r0", "r1"]
    total = 4 << 20
    write_flood_units(units, names, total, "X-Unitmgr-LogMaxBytes=4K\nX-Unitmgr-LogKeepFiles=1000\n")
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
        assert stream_bytes(store, f"{name}.service", "stdout") == stream_data(name, "out", total), name
        assert stream_bytes(store, f"{name}.service", "stderr") == stream_data(name, "err", total // 4), name


def test_log_on_dev_full_counts_errors(make_manager, tmp_path: Path) -> None:
    # UNIT.log is a link to /dev/full: every store fails, but the unit must not stall on a
    # full pipe, the loss must be counted, and the other unit's log must stay exact.
    units = tmp_path / "units"
    total = 2 << 20
    write_flood_units(units, ["full", "fine"], total)
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
    assert stream_bytes(store, "fine.service", "stdout") == stream_data("fine", "out", total)
    assert manager.status("fine")["log_write_errors"] == 0
