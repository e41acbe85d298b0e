"""Sizes, repetitions and windows of one benchmark run, for each mode."""

from __future__ import annotations

from dataclasses import dataclass

# S6 with a limit: unitmgr's StartLimitBurst= and StartLimitIntervalSec= (seconds).
START_LIMIT = (5, 10.0)


@dataclass(frozen=True)
class Settings:
    mode: str
    startup_sizes: tuple[int, ...]   # S1: N values
    startup_runs: int                 # S1: runs per N and manager
    idle_sizes: tuple[int, ...]      # S2: N values, measured after the last S1 run of that N
    idle_settle: float               # S2: seconds between "all running" and the window
    idle_window: float               # S2: seconds of the CPU window
    fast_idle_size: int              # S2 with the fast respawn settings
    kills_fast: int                  # S3: kills with the fast settings
    kills_default: int               # S3: kills with the default settings
    control_size: int                # S4: N
    control_runs: int                # S4: one-shot commands per manager
    round_trips: int                 # S4: round trips inside one client
    capture_bytes: int               # S5: bytes the writer produces
    capture_runs: int                # S5: runs per manager
    crash_window: float              # S6 with a start limit: seconds watched per run
    crash_runs: int                  # S6 with a start limit: runs per manager
    crash_fast_window: float         # S6 without a limit: seconds of the CPU window
    growth_size: int                 # S1 and S2 at this N; 0 skips the growth rows
    growth_runs: int                 # S1 runs at growth_size for unitmgr
    growth_anchors: bool             # also run the anchors at growth_size (once each)


FULL = Settings(
    mode="full", startup_sizes=(10, 100, 500), startup_runs=5, idle_sizes=(100, 500), idle_settle=2.0,
    idle_window=10.0, fast_idle_size=100, kills_fast=20, kills_default=5, control_size=100, control_runs=5,
    round_trips=200, capture_bytes=200 * 1_000_000, capture_runs=3, crash_window=20.0, crash_runs=3,
    crash_fast_window=10.0, growth_size=2000, growth_runs=2, growth_anchors=True,
)

QUICK = Settings(
    mode="quick", startup_sizes=(10, 100), startup_runs=2, idle_sizes=(100,), idle_settle=1.0,
    idle_window=3.0, fast_idle_size=100, kills_fast=5, kills_default=1, control_size=100, control_runs=3,
    round_trips=50, capture_bytes=50 * 1_000_000, capture_runs=1, crash_window=4.0, crash_runs=1,
    crash_fast_window=3.0, growth_size=0, growth_runs=0, growth_anchors=False,
)

# For the test suite: every scenario and every table row, in well under a minute of measuring.
SMOKE = Settings(
    mode="smoke", startup_sizes=(5,), startup_runs=1, idle_sizes=(5,), idle_settle=0.2, idle_window=1.0,
    fast_idle_size=5, kills_fast=1, kills_default=1, control_size=5, control_runs=1, round_trips=5,
    capture_bytes=2 * 1_000_000, capture_runs=1, crash_window=3.0, crash_runs=1, crash_fast_window=1.0,
    growth_size=0, growth_runs=0, growth_anchors=False,
)

MODES = {"full": FULL, "quick": QUICK, "smoke": SMOKE}
