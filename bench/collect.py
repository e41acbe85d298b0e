"""Run every scenario for every manager and collect the raw figures.

A scenario that fails for one manager (a timeout, a crash) is recorded as
an error for that cell and the run goes on, so one broken manager never
hides the others' figures.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import scenarios
from managers import ManagerUnderTest, Unitmgr
from settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Figures:
    """Raw results, keyed by scenario, then by variant (N or profile), then by manager label."""

    cells: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def put(self, scenario: str, variant: str, label: str, value: Any) -> None:
        self.cells.setdefault(scenario, {}).setdefault(variant, {})[label] = value

    def get(self, scenario: str, variant: str, label: str) -> Any:
        return self.cells.get(scenario, {}).get(variant, {}).get(label)


def attempt(figures: Figures, what: str, label: str, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `action(*args, **kwargs)` as one measurement; on failure log it, record the error and return None."""
    started = time.monotonic()
    log.info("%s: %s", label, what)
    try:
        value = action(*args, **kwargs)
    except (RuntimeError, TimeoutError, OSError, ValueError, KeyError) as exc:
        message = f"{what}, {label}: {type(exc).__name__}: {exc}"
        log.error("%s", message)
        figures.errors.append(message)
        return None
    log.info("%s: %s done in %.1fs", label, what, time.monotonic() - started)
    return value


def run_startup(figures: Figures, settings: Settings, managers: list[ManagerUnderTest]) -> None:
    sizes = list(settings.startup_sizes)
    if settings.growth_size:
        sizes.append(settings.growth_size)
    idle = (settings.idle_settle, settings.idle_window)
    for count in sizes:
        growth = count == settings.growth_size
        for manager in managers:
            if growth and not isinstance(manager, Unitmgr) and not settings.growth_anchors:
                continue
            runs = settings.growth_runs if growth and isinstance(manager, Unitmgr) else 1 if growth \
                else settings.startup_runs
            measure_idle = count in settings.idle_sizes or growth
            seconds = []
            for run in range(runs):
                last = run == runs - 1
                result = attempt(figures, f"S1 N={count} run {run + 1}/{runs}", manager.label,
                                 scenarios.startup, manager, count, idle if measure_idle and last else None)
                if result is None:
                    break
                seconds.append(result[0])
                if result[1] is not None:
                    figures.put("S2", str(count), manager.label, result[1])
            figures.put("S1", str(count), manager.label, seconds or None)


def run_fast_idle(figures: Figures, settings: Settings, managers: list[ManagerUnderTest]) -> None:
    idle = (settings.idle_settle, settings.idle_window)
    for manager in managers:
        result = attempt(figures, f"S2 fast N={settings.fast_idle_size}", manager.label,
                         scenarios.startup, manager, settings.fast_idle_size, idle, profile="fast")
        figures.put("S2", "fast", manager.label, result[1] if result else None)


def run_respawn(figures: Figures, settings: Settings, managers: list[ManagerUnderTest]) -> None:
    for profile, kills, gap in (("fast", settings.kills_fast, 0.3), ("default", settings.kills_default, 1.5)):
        for manager in managers:
            result = attempt(figures, f"S3 {profile} x{kills}", manager.label,
                             scenarios.respawn, manager, kills, profile, gap)
            figures.put("S3", profile, manager.label, result)


def run_control(figures: Figures, settings: Settings, managers: list[ManagerUnderTest]) -> None:
    for manager in managers:
        result = attempt(figures, f"S4 N={settings.control_size}", manager.label, scenarios.control,
                         manager, settings.control_size, settings.control_runs, settings.round_trips)
        if result:
            figures.put("S4", "process", manager.label, result[0])
            figures.put("S4", "client", manager.label, result[1])


def run_capture(figures: Figures, settings: Settings, managers: list[ManagerUnderTest], workdir: Path) -> None:
    total = settings.capture_bytes
    runs = settings.capture_runs
    ceilings = [attempt(figures, "S5 ceiling", "direct", scenarios.ceiling, workdir / "ceiling", total)
                for _ in range(runs)]
    figures.put("S5", "ceiling", "direct", [c for c in ceilings if c] or None)
    for manager in managers:
        captures = [attempt(figures, f"S5 {total // 1_000_000} MB run {run + 1}/{runs}", manager.label,
                            scenarios.log_capture, manager, total) for run in range(runs)]
        figures.put("S5", "capture", manager.label, [c for c in captures if c] or None)


def run_crash(figures: Figures, settings: Settings, managers: list[ManagerUnderTest]) -> None:
    for manager in managers:
        loops = [attempt(figures, f"S6 limited run {run + 1}/{settings.crash_runs}", manager.label,
                         scenarios.crash_limited, manager, settings.crash_window)
                 for run in range(settings.crash_runs)]
        figures.put("S6", "limited", manager.label, [loop for loop in loops if loop] or None)
    for manager in managers:
        loop = attempt(figures, "S6 fast", manager.label,
                       scenarios.crash_fast, manager, 1.0, settings.crash_fast_window)
        figures.put("S6", "fast", manager.label, loop)


def run_all(settings: Settings, managers: list[ManagerUnderTest], workdir: Path) -> Figures:
    figures = Figures()
    run_startup(figures, settings, managers)
    run_fast_idle(figures, settings, managers)
    run_respawn(figures, settings, managers)
    run_control(figures, settings, managers)
    run_capture(figures, settings, managers, workdir)
    run_crash(figures, settings, managers)
    return figures
