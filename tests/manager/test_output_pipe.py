"""Reading a unit's output pipe into its log: through the splice stage, with fallbacks, and growing busy pipes."""

from __future__ import annotations

import asyncio
import errno
import fcntl
import os
import time
from pathlib import Path

import pytest
from unitmgr.manager.logstore import STDOUT, LogStore
from unitmgr.manager.output import GROW_AT, PIPE_SIZE, PipeReader
from unitmgr.manager.splicestage import F_GETPIPE_SZ, SpliceStage


async def _read_until_eof(reader: PipeReader, deadline_seconds: float = 20.0) -> None:
    deadline = time.monotonic() + deadline_seconds
    while reader.read_fd >= 0:
        assert time.monotonic() < deadline, "the reader did not reach EOF"
        await asyncio.sleep(0.005)


async def test_reader_stores_output_through_the_stage(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer("s.service")
    writer.write_message("Started s.service.")
    reader = PipeReader(asyncio.get_running_loop(), writer, STDOUT)
    payload = b"".join(b"%09d\n" % number for number in range(60_000))  # 600 000 bytes, more than one pipe
    write_fd = os.dup(reader.write_fd)
    try:
        reader.start(os.getpid())
        view = memoryview(payload)
        while view:
            # Blocking writes from a thread, so the loop can drain the pipe meanwhile.
            written = await asyncio.to_thread(os.write, write_fd, view[:65536])
            view = view[written:]
    finally:
        os.close(write_fd)
    await _read_until_eof(reader)
    lines = store.tail("s.service", 0)
    assert lines[0].data == b"Started s.service."
    assert b"".join(line.data + b"\n" for line in lines[1:]) == payload
    assert writer.stored_bytes == len(payload)
    store.close()


async def test_reader_counts_bytes_a_full_disk_refuses(tmp_path: Path) -> None:
    (tmp_path / "f.service.log").symlink_to("/dev/full")
    store = LogStore(tmp_path)
    writer = store.writer("f.service")
    reader = PipeReader(asyncio.get_running_loop(), writer, STDOUT)
    os.write(reader.write_fd, b"z" * 30_000)
    reader.start(os.getpid())
    await _read_until_eof(reader)
    fields = store.status_fields("f.service")
    assert fields["log_write_errors"] == 30_000
    store.close()


async def test_rejected_splice_falls_back_to_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Stands in for a file system without splice support (EINVAL), which this machine does not have:
    # the bytes already in the stage and all later output still reach the log, through read and write.
    def refuse(self: SpliceStage, target_fd: int, offset: int, count: int) -> int:
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(SpliceStage, "put", refuse)
    store = LogStore(tmp_path)
    writer = store.writer("e.service")
    reader = PipeReader(asyncio.get_running_loop(), writer, STDOUT)
    write_fd = os.dup(reader.write_fd)
    try:
        os.write(write_fd, b"before the refusal\n")
        reader.start(os.getpid())
        deadline = time.monotonic() + 20
        while reader.splice:
            assert time.monotonic() < deadline, "the reader never tried to splice"
            await asyncio.sleep(0.005)
        os.write(write_fd, b"after it\n")
    finally:
        os.close(write_fd)
    await _read_until_eof(reader)
    assert [line.data for line in store.tail("e.service", 0)] == [b"before the refusal", b"after it"]
    assert store.status_fields("e.service")["log_write_errors"] == 0
    store.close()


async def test_busy_pipe_grows_and_quiet_pipe_stays_small(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    loop = asyncio.get_running_loop()
    quiet = PipeReader(loop, store.writer("q.service"), STDOUT)
    busy = PipeReader(loop, store.writer("b.service"), STDOUT)
    default_size = fcntl.fcntl(busy.read_fd, F_GETPIPE_SZ)
    assert default_size <= GROW_AT
    os.write(quiet.write_fd, b"one line\n")
    os.write(busy.write_fd, b"x" * default_size)  # the whole pipe, as a fast writer leaves it
    quiet_fd, busy_fd = os.dup(quiet.write_fd), os.dup(busy.write_fd)
    try:
        quiet.start(os.getpid())
        busy.start(os.getpid())
        deadline = time.monotonic() + 20
        while store.writer("b.service").stored_bytes < default_size or not store.writer("q.service").stored_bytes:
            assert time.monotonic() < deadline, "the readers stored nothing"
            await asyncio.sleep(0.005)
        assert fcntl.fcntl(busy.read_fd, F_GETPIPE_SZ) == PIPE_SIZE
        assert fcntl.fcntl(quiet.read_fd, F_GETPIPE_SZ) == default_size
    finally:
        os.close(quiet_fd)
        os.close(busy_fd)
    await _read_until_eof(quiet)
    await _read_until_eof(busy)
    store.close()
