"""The shared epoll set for output pipes: callbacks per ready pipe, and closing with the last pipe."""

from __future__ import annotations

import asyncio
import os

from unitmgr.manager import pipepoller
from unitmgr.manager.pipepoller import pipe_poller


async def test_ready_pipe_calls_back() -> None:
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    received: list[bytes] = []
    got_data = loop.create_future()

    def on_readable() -> None:
        received.append(os.read(read_fd, 100))
        if not got_data.done():
            got_data.set_result(None)

    poller = pipe_poller(loop)
    poller.add(read_fd, on_readable)
    try:
        os.write(write_fd, b"hello")
        await asyncio.wait_for(got_data, 10)
    finally:
        poller.remove(read_fd)
        os.close(read_fd)
        os.close(write_fd)

    assert received == [b"hello"]


async def test_last_pipe_closes_poller() -> None:
    loop = asyncio.get_running_loop()
    first = os.pipe()
    second = os.pipe()
    poller = pipe_poller(loop)
    poller.add(first[0], lambda: None)
    poller.add(second[0], lambda: None)
    try:
        assert pipe_poller(loop) is poller

        poller.remove(first[0])
        assert pipepoller._pollers.get(loop) is poller

        poller.remove(second[0])
        assert pipepoller._pollers.get(loop) is None
        assert pipe_poller(loop) is not poller
    finally:
        pipe_poller(loop).close()
        for fd in (*first, *second):
            os.close(fd)


async def test_failing_callback_keeps_others() -> None:
    loop = asyncio.get_running_loop()
    bad_read, bad_write = os.pipe()
    good_read, good_write = os.pipe()
    os.set_blocking(good_read, False)
    got_data = loop.create_future()

    def fail() -> None:
        raise RuntimeError("callback broke")

    def on_readable() -> None:
        os.read(good_read, 100)
        if not got_data.done():
            got_data.set_result(None)

    poller = pipe_poller(loop)
    poller.add(bad_read, fail)
    poller.add(good_read, on_readable)
    try:
        os.write(bad_write, b"x")
        os.write(good_write, b"y")
        await asyncio.wait_for(got_data, 10)
    finally:
        poller.remove(bad_read)
        poller.remove(good_read)
        for fd in (bad_read, bad_write, good_read, good_write):
            os.close(fd)

    assert got_data.done()
