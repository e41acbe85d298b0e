"""Hostile cases for the background removal of rotated-out log files: long unit names, users' own files."""

from __future__ import annotations

import os
from pathlib import Path

from unitmgr.manager import logremoval
from unitmgr.manager.logstore import STDOUT, LogStore
from unitmgr.units import names

# A valid unit name near the 255-character limit, as an escaped path instance can be.
LONG_NAME = "backup@" + "home-user-" * 23 + "x.service"


def _write_entries(store: LogStore, unit: str, count: int) -> None:
    writer = store.writer(unit)
    for number in range(count):
        writer.write(f"entry {number:05d}\n".encode(), STDOUT, 1)


def test_long_unit_name_rotates(tmp_path: Path) -> None:
    assert names.is_valid_name(LONG_NAME)
    assert len(f"{LONG_NAME}.log.1") <= logremoval.NAME_MAX
    store = LogStore(tmp_path, max_bytes=4096, keep_files=2)

    _write_entries(store, LONG_NAME, 2000)

    assert store.dropped_bytes(LONG_NAME) == 0, store.status_fields(LONG_NAME)["log_last_error"]
    assert logremoval.wait_idle(10)
    lines = store.query(LONG_NAME)
    assert lines[-1].data == b"entry 01999"
    assert [name for name in os.listdir(tmp_path) if logremoval.MARKER in name] == []


def test_hidden_name_within_name_max() -> None:
    for name in (f"{LONG_NAME}.log", f"{LONG_NAME}.idx.999", "a" * 250 + ".log.12", "my.logger.service.idx.1"):
        hidden = logremoval._hidden_name(name)

        assert len(os.fsencode(hidden)) <= logremoval.NAME_MAX, hidden
        assert logremoval.HIDDEN_NAME.fullmatch(hidden), hidden
        assert hidden.startswith("." + name[:10])


def test_sweep_keeps_users_files(tmp_path: Path) -> None:
    own_files = [".notes.removed-by-hand", ".backup.removed-2024-01", ".removed-7-7", ".x.service.log.removed-old"]
    for name in own_files:
        (tmp_path / name).write_text("a user's file")
    leftover = tmp_path / f".x.service.log.2{logremoval.MARKER}123-4"
    leftover.write_text("left by a manager that was killed")
    store = LogStore(tmp_path, max_bytes=4096, keep_files=2)

    _write_entries(store, "x.service", 1000)

    assert logremoval.wait_idle(10)
    assert not leftover.exists()
    for name in own_files:
        assert (tmp_path / name).read_text() == "a user's file", name


def test_sweep_retried_after_missing_directory(tmp_path: Path) -> None:
    directory = tmp_path / "logs"
    assert not logremoval.remove_later(str(directory / "y.service.log.1"))
    assert logremoval.wait_idle(10)  # the sweep of the missing directory has failed
    directory.mkdir()
    leftover = directory / f".y.service.idx.1{logremoval.MARKER}55-1"
    leftover.write_text("left by a manager that was killed")
    (directory / "y.service.log.1").write_text("rotated out\n")

    assert logremoval.remove_later(str(directory / "y.service.log.1"))

    assert logremoval.wait_idle(10)
    assert not leftover.exists()
