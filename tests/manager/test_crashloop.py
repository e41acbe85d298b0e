"""Crash-loop damping as pure rules: which runs count as quick exits and the floor they set."""

from __future__ import annotations

import pytest
from unitmgr.manager.crashloop import FIRST_DELAY, CrashLoopCounter, CrashLoopPolicy


def test_floor_starts_after_burst_and_doubles_to_cap() -> None:
    policy = CrashLoopPolicy(quick_exit_sec=1.0, burst=5, max_delay=2.0)
    floors = [policy.floor(count) for count in range(0, 13)]
    assert floors[:6] == [0.0] * 6
    assert floors[6:11] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6])
    assert floors[11:] == [2.0, 2.0]


def test_zero_cap_or_threshold_turns_damping_off() -> None:
    assert CrashLoopPolicy(max_delay=0).floor(100) == 0.0
    assert CrashLoopPolicy(quick_exit_sec=0).floor(100) == 0.0
    assert not CrashLoopPolicy(max_delay=0).enabled


def test_cap_below_first_delay_wins() -> None:
    assert CrashLoopPolicy(burst=0, max_delay=0.05).floor(1) == 0.05
    assert CrashLoopPolicy(burst=0).floor(1) == FIRST_DELAY


def test_infinite_cap_stays_finite() -> None:
    floor = CrashLoopPolicy(burst=0, max_delay=float("inf")).floor(10_000)
    assert floor < float("inf")


def test_counter_resets_after_long_run() -> None:
    policy = CrashLoopPolicy(quick_exit_sec=1.0)
    counter = CrashLoopCounter()
    for start in (0.0, 10.0, 20.0):
        counter.run_started(start)
        assert counter.run_ended(start + 0.5, policy)
    assert counter.quick_exits == 3
    counter.run_started(30.0)
    assert not counter.run_ended(31.0, policy)
    assert counter.quick_exits == 0


def test_counter_reset() -> None:
    counter = CrashLoopCounter()
    counter.run_started(0.0)
    counter.run_ended(0.1, CrashLoopPolicy())
    counter.reset()
    assert counter.quick_exits == 0
