"""Rotated-out log files: renamed at once, unlinked by the background thread, leftovers swept."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest
from unitmgr.manager import logremoval
from unitmgr.manager.logstore import STDOUT, LogStore


def _hidden(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if logremoval.MARKER in name)


def test_rotation_unlinks_in_background(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    unlinked: list[tuple[str, str]] = []
    real_unlink = os.unlink

    def recording_unlink(path: str) -> None:
        unlinked.append((os.path.basename(path), threading.current_thread().name))
        real_unlink(path)

    monkeypatch.setattr(logremoval.os, "unlink", recording_unlink)
    store = LogStore(tmp_path, max_bytes=4096, keep_files=2)
    writer = store.writer("a.service")
    for number in range(2000):
        writer.write(f"entry {number:05d}\n".encode(), STDOUT, 1)

    assert logremoval.wait_idle(10)
    assert unlinked, "no rotation dropped a file"
    assert {thread for _name, thread in unlinked} == {"unitmgr-log-removal"}
    assert all(name.startswith(".a.service.") for name, _thread in unlinked)
    assert _hidden(tmp_path) == []
    assert sorted(p.name for p in tmp_path.glob("a.service.*")) == [
        "a.service.idx", "a.service.idx.1", "a.service.log", "a.service.log.1"]


def test_leftover_gone_after_rotation(tmp_path: Path) -> None:
    leftover = tmp_path / f".b.service.log.3{logremoval.MARKER}1-1"
    leftover.write_bytes(b"from a manager that stopped before removing it")
    store = LogStore(tmp_path, max_bytes=4096, keep_files=2)
    writer = store.writer("b.service")
    for number in range(1000):
        writer.write(f"entry {number:05d}\n".encode(), STDOUT, 1)

    assert logremoval.wait_idle(10)
    assert not leftover.exists()
    assert _hidden(tmp_path) == []


def test_failed_unlink_logged_and_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stuck = tmp_path / f".c.service.log.5{logremoval.MARKER}1-2"
    stuck.mkdir()  # unlink() fails on a directory
    (tmp_path / "c.service.log").write_bytes(b"old\n")

    with caplog.at_level(logging.WARNING, logger="unitmgr.manager.logremoval"):
        assert logremoval.remove_later(str(tmp_path / "c.service.log"))
        assert logremoval.wait_idle(10)

    assert stuck.is_dir()
    assert not (tmp_path / "c.service.log").exists()
    assert _hidden(tmp_path) == [stuck.name]
    assert str(stuck) in caplog.text
    assert "remove it by hand" in caplog.text


def test_missing_file_not_queued(tmp_path: Path) -> None:
    assert not logremoval.remove_later(str(tmp_path / "gone.service.log.2"))
    assert _hidden(tmp_path) == []


def test_store_sweeps_leftovers_when_opened(tmp_path: Path) -> None:
    leftover = tmp_path / f".d.service.idx.2{logremoval.MARKER}9-9"
    leftover.write_bytes(b"left by a manager that was killed")

    LogStore(tmp_path)

    assert logremoval.wait_idle(10)
    assert not leftover.exists()


def test_close_waits_for_removals(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=4096, keep_files=1)
    writer = store.writer("e.service")
    for number in range(2000):
        writer.write(f"entry {number:05d}\n".encode(), STDOUT, 1)

    store.close()

    assert _hidden(tmp_path) == []
