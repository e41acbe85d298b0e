"""The splice stage between a unit's output pipe and its log file."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path

import pytest
from unitmgr.manager.splicestage import F_SETPIPE_SZ, SpliceStage


@pytest.fixture
def stage() -> SpliceStage:
    created = SpliceStage()
    yield created
    created.close()


@pytest.fixture
def pipe() -> tuple[int, int]:
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    ends = [read_fd, write_fd]
    yield read_fd, write_fd
    for fd in ends:
        try:
            os.close(fd)
        except OSError:
            pass


def test_fill_and_put_move_exact_bytes(stage: SpliceStage, pipe: tuple[int, int], tmp_path: Path) -> None:
    read_fd, write_fd = pipe
    os.write(write_fd, b"first line\nsecond")
    assert stage.fill(read_fd) == 17
    assert stage.staged_bytes == 17
    target = os.open(tmp_path / "out", os.O_WRONLY | os.O_CREAT)
    try:
        assert stage.put(target, 100, 6) == 6
        assert stage.put(target, 106, 100) == 11
    finally:
        os.close(target)
    assert stage.staged_bytes == 0
    assert (tmp_path / "out").read_bytes() == b"\0" * 100 + b"first line\nsecond"


def test_empty_pipe_blocks_and_closed_pipe_ends(stage: SpliceStage, pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    with pytest.raises(BlockingIOError):
        stage.fill(read_fd)
    os.close(write_fd)
    assert stage.fill(read_fd) == 0
    assert stage.staged_bytes == 0


def test_take_back_returns_staged_bytes(stage: SpliceStage, pipe: tuple[int, int]) -> None:
    read_fd, write_fd = pipe
    os.write(write_fd, b"x" * 5000)
    stage.fill(read_fd)
    assert stage.take_back() == b"x" * 5000
    assert stage.staged_bytes == 0
    assert stage.take_back() == b""


def test_bytes_left_behind_never_reach_the_next_fill(
    stage: SpliceStage, pipe: tuple[int, int], caplog: pytest.LogCaptureFixture
) -> None:
    read_fd, write_fd = pipe
    os.write(write_fd, b"from unit a")
    stage.fill(read_fd)
    os.write(write_fd, b"from unit b")
    with caplog.at_level(logging.ERROR):
        assert stage.fill(read_fd) == len(b"from unit b")
    assert "contained 11 bytes" in caplog.text
    assert stage.take_back() == b"from unit b"


def test_fill_moves_at_most_capacity(stage: SpliceStage) -> None:
    read_fd, write_fd = os.pipe()
    try:
        os.set_blocking(read_fd, False)
        os.set_blocking(write_fd, False)
        # A source pipe as large as the stage, filled to the brim.
        fcntl.fcntl(write_fd, F_SETPIPE_SZ, stage.capacity)
        written = 0
        try:
            while True:
                written += os.write(write_fd, b"y" * 65536)
        except BlockingIOError:
            pass
        moved = stage.fill(read_fd)
        assert 0 < moved <= min(written, stage.capacity)
        assert stage.take_back() == b"y" * moved
    finally:
        os.close(read_fd)
        os.close(write_fd)
