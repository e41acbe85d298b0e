"""Crash-loop damping: a growing minimum delay between restarts of a service that keeps dying young.

A run that ends within `quick_exit_sec` of its start is a quick exit. The
first `burst` quick exits in a row restart on `RestartSec=` and
`RestartSteps=` alone. From the next one on, the restart waits at least
`FIRST_DELAY`, doubled for every further quick exit and capped at
`max_delay`. The larger of this floor and the unit's own delay applies. A
run that lasts `quick_exit_sec` or longer, a manual start and `reset-failed`
set the count back to 0. Kubernetes (CrashLoopBackOff) and PM2
(`--exp-backoff-restart-delay`) damp crash loops the same way. systemd has
no such rule, so it is a manager setting and not a unit directive.
"""

from __future__ import annotations

from dataclasses import dataclass

# The floor after `burst` + 1 quick exits in a row, which doubles with each further one.
FIRST_DELAY = 0.1
# Doublings stop here so that the float stays finite, because 2**40 * 0.1 s is far above any useful cap.
_MAX_DOUBLINGS = 40


@dataclass(frozen=True)
class CrashLoopPolicy:
    """The `[Manager] CrashLoop*=` settings. `max_delay` 0 or `quick_exit_sec` 0 turns damping off."""

    quick_exit_sec: float = 1.0
    burst: int = 5
    max_delay: float = 2.0

    @property
    def enabled(self) -> bool:
        return self.max_delay > 0 and self.quick_exit_sec > 0

    def floor(self, quick_exits: int) -> float:
        """Return the minimum delay before the restart that follows `quick_exits` quick exits in a row."""
        if not self.enabled or quick_exits <= self.burst:
            return 0.0
        doublings = min(quick_exits - self.burst - 1, _MAX_DOUBLINGS)
        return min(FIRST_DELAY * 2**doublings, self.max_delay)


@dataclass
class CrashLoopCounter:
    """One service's consecutive quick exits, counted from the start time of each run."""

    quick_exits: int = 0
    started_at: float | None = None

    def run_started(self, now: float) -> None:
        self.started_at = now

    def run_ended(self, now: float, policy: CrashLoopPolicy) -> bool:
        """Count the run that ends at `now` and return whether it was a quick exit."""
        quick = self.started_at is not None and now - self.started_at < policy.quick_exit_sec
        self.quick_exits = self.quick_exits + 1 if quick else 0
        return quick

    def reset(self) -> None:
        self.quick_exits = 0
