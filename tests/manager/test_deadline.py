"""Deadline: a phase time limit that runs in the calling task and can be extended or expired."""

from __future__ import annotations

import asyncio

import pytest
from unitmgr.manager.timeouts import Deadline


async def test_run_returns_result() -> None:
    async def work() -> str:
        await asyncio.sleep(0)
        return "done"

    assert await Deadline(5).run(work()) == "done"


async def test_run_times_out() -> None:
    cancelled = asyncio.Event()

    async def hang() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError, match="timed out after 0.05s"):
        await Deadline(0.05).run(hang())
    assert cancelled.is_set()


async def test_run_creates_no_task() -> None:
    before = len(asyncio.all_tasks())
    seen: list[int] = []

    async def count() -> None:
        seen.append(len(asyncio.all_tasks()))

    await Deadline(5).run(count())
    assert seen == [before]


async def test_zero_means_no_limit() -> None:
    deadline = Deadline(0)
    assert not deadline.expired()
    assert await deadline.run(asyncio.sleep(0.01, result=1)) == 1


async def test_extend_moves_limit_later() -> None:
    deadline = Deadline(0.05)

    async def extend_then_finish() -> str:
        deadline.extend(5)
        await asyncio.sleep(0.2)
        return "finished"

    assert await deadline.run(extend_then_finish()) == "finished"


async def test_extend_never_shortens() -> None:
    deadline = Deadline(5)
    limit = deadline.limit
    deadline.extend(0.01)
    assert deadline.limit == limit


async def start_hanging(deadline: Deadline) -> asyncio.Future[None]:
    """Run a coroutine that never ends under `deadline` in a task, and return once it awaits."""
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.Event().wait()

    runner = asyncio.ensure_future(deadline.run(hang()))
    await started.wait()
    return runner


async def test_expire_from_other_task() -> None:
    deadline = Deadline(None)
    runner = await start_hanging(deadline)
    deadline.expire()
    with pytest.raises(TimeoutError):
        await runner
    assert deadline.expired()


async def test_expired_before_run() -> None:
    deadline = Deadline(5)
    deadline.expire()
    with pytest.raises(TimeoutError):
        await deadline.run(asyncio.sleep(5))


async def test_inner_timeout_propagates() -> None:
    async def fail() -> None:
        raise TimeoutError("inner step timed out")

    with pytest.raises(TimeoutError, match="inner step timed out"):
        await Deadline(5).run(fail())


async def test_outer_cancel_propagates() -> None:
    runner = await start_hanging(Deadline(5))
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner


async def test_run_awaits_future() -> None:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[int] = loop.create_future()
    loop.call_soon(future.set_result, 7)
    assert await Deadline(5).run(asyncio.shield(future)) == 7
