"""The limit sampler's timing rules: an early sample after a phase change, fast samples while hot."""

from __future__ import annotations

import asyncio

from unitmgr.manager.limitwatch import FAST_INTERVAL, HOT_PERIOD, INTERVAL, LimitWatcher
from unitmgr.manager.stats import ProcessFigures, UnitSample

UNIT = "limited.service"


class StubManager:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.runtimes: dict = {}


class StubTracker:
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.manager = StubManager(loop)
        self.units: dict = {}


def sample(tasks: int = 1, memory: int = 0) -> UnitSample:
    processes = [ProcessFigures(pid=100 + i, ppid=1, threads=1, cpu_seconds=0.0, rss=0) for i in range(tasks)]
    processes[0].rss = memory
    return UnitSample(time=0.0, processes=processes)


def watcher() -> LimitWatcher:
    return LimitWatcher(StubTracker(asyncio.get_running_loop()))  # type: ignore[arg-type]


def is_hot(limits: LimitWatcher) -> bool:
    return limits._hot_until.get(UNIT, 0.0) > asyncio.get_running_loop().time()


async def test_watch_samples_soon() -> None:
    limits = watcher()
    loop = asyncio.get_running_loop()
    limits.watch(UNIT)
    try:
        assert limits._timer is not None
        assert limits._timer.when() <= loop.time() + FAST_INTERVAL
    finally:
        limits.stop()


async def test_later_tick_never_postpones_earlier() -> None:
    limits = watcher()
    now = asyncio.get_running_loop().time()
    limits.units.add(UNIT)
    try:
        limits._schedule(now + FAST_INTERVAL)
        first = limits._timer
        assert first is not None
        limits._schedule(now + INTERVAL)
        assert limits._timer is first
    finally:
        limits.stop()


async def test_tick_samples_only_due_units() -> None:
    limits = watcher()
    checked: list[str] = []
    limits.check = checked.append  # type: ignore[method-assign]
    now = asyncio.get_running_loop().time()
    limits.units.update({"due.service", "later.service"})
    limits._due.update({"due.service": now, "later.service": now + INTERVAL})
    try:
        limits._tick()
        assert checked == ["due.service"]
        assert limits._due["due.service"] >= now + INTERVAL
        assert limits._timer is not None
    finally:
        limits.stop()


async def test_hot_unit_sampled_fast() -> None:
    limits = watcher()
    limits.check = lambda unit: None  # type: ignore[method-assign]
    loop = asyncio.get_running_loop()
    limits.units.add(UNIT)
    limits._due[UNIT] = loop.time()
    limits._hot_until[UNIT] = loop.time() + HOT_PERIOD
    try:
        limits._tick()
        assert limits._due[UNIT] <= loop.time() + FAST_INTERVAL
    finally:
        limits.stop()


async def test_tasks_near_limit_and_growing_is_hot() -> None:
    limits = watcher()
    limits._update_hot(UNIT, sample(tasks=3), None, 5)
    assert not is_hot(limits)
    limits._update_hot(UNIT, sample(tasks=4), None, 5)
    assert is_hot(limits)
    assert limits._hot_until[UNIT] <= asyncio.get_running_loop().time() + HOT_PERIOD


async def test_steady_unit_near_limit_stays_cold() -> None:
    limits = watcher()
    limits._update_hot(UNIT, sample(tasks=4, memory=90), 100, 5)
    limits._hot_until.clear()
    limits._update_hot(UNIT, sample(tasks=4, memory=90), 100, 5)
    assert not is_hot(limits)


async def test_memory_growth_below_step_stays_cold() -> None:
    limits = watcher()
    limits._update_hot(UNIT, sample(memory=85_000), 100_000, None)
    limits._hot_until.clear()
    limits._update_hot(UNIT, sample(memory=85_500), 100_000, None)
    assert not is_hot(limits)
    limits._update_hot(UNIT, sample(memory=87_000), 100_000, None)
    assert is_hot(limits)


async def test_over_limit_is_hot() -> None:
    limits = watcher()
    limits._update_hot(UNIT, sample(tasks=9), None, 5)
    assert is_hot(limits)


async def test_unwatch_forgets_unit() -> None:
    limits = watcher()
    limits.watch(UNIT)
    limits._update_hot(UNIT, sample(tasks=9), None, 5)
    limits.unwatch(UNIT)
    assert UNIT not in limits._hot_until
    assert UNIT not in limits._previous
    assert limits._timer is None
