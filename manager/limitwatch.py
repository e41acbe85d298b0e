"""The manager's own enforcement of `MemoryMax=` and `TasksMax=`, by sampling.

Where the kernel does not enforce these limits (no cgroup, or no memory or
pids controller), a timer samples the processes of each unit that sets one,
from the start of its activation (ExecCondition=, ExecStartPre=, a
Type=notify process before READY=1) until it stops:

- over `MemoryMax=`: the unit is killed with result `oom-kill`, which
  `Restart=on-failure` treats like a kill by signal, as systemd does after
  the kernel's OOM killer ends a unit. A unit still activating fails its
  start with that result;
- over `TasksMax=`: the kernel would make fork() fail, which the manager
  cannot do, so it kills the newest processes beyond the limit, never the
  main or a control process, and the unit keeps running.

A sample is a snapshot, so a unit can exceed a limit until the next one.
Samples come every `INTERVAL` seconds, `FAST_INTERVAL` after a unit enters a
new phase (a fork bomb or an allocation at start-up is caught early), and
every `FAST_INTERVAL` while a unit is "hot": at `HOT_FRACTION` of a limit or
more and still growing, or just over it. A unit stays hot for `HOT_PERIOD`
after the last such sample. fork() sends the manager no signal, and SIGCHLD
arrives only when a direct child or an orphan exits, which a process that
keeps forking need not cause. So the interval is what bounds the overshoot.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING

from unitmgr.manager.states import ActiveState, ExitCause
from unitmgr.manager.stats import UnitSample

if TYPE_CHECKING:
    import asyncio

    from unitmgr.manager.resources import ResourceTracker
    from unitmgr.manager.service import ServiceRuntime

log = logging.getLogger(__name__)

INTERVAL = 0.5
FAST_INTERVAL = 0.05
HOT_FRACTION = 0.8
HOT_PERIOD = 1.0
# Memory growth smaller than this share of MemoryMax= does not keep a unit hot (RSS jitters by pages).
MEMORY_GROWTH_FRACTION = 0.01


def read_start_time(pid: int) -> int:
    """Return the process's start time in clock ticks after boot (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return 0
    fields = data[data.rfind(b")") + 2 :].split()
    return int(fields[19]) if len(fields) > 19 else 0


class LimitWatcher:
    def __init__(self, tracker: ResourceTracker):
        self.tracker = tracker
        self.units: set[str] = set()
        self._timer: asyncio.TimerHandle | None = None
        # Per unit: (tasks, memory) of its previous sample, the loop time until which it is hot,
        # and the loop time of its next sample.
        self._previous: dict[str, tuple[int, int]] = {}
        self._hot_until: dict[str, float] = {}
        self._due: dict[str, float] = {}

    def watch(self, unit: str) -> None:
        """Sample `unit` from now on. Called at each state change of an activating or running unit."""
        self.units.add(unit)
        soon = self.tracker.manager.loop.time() + FAST_INTERVAL
        self._due[unit] = min(self._due.get(unit, soon), soon)
        self._schedule(soon)

    def unwatch(self, unit: str) -> None:
        self.units.discard(unit)
        self._previous.pop(unit, None)
        self._hot_until.pop(unit, None)
        self._due.pop(unit, None)
        if not self.units:
            self.stop()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self, when: float) -> None:
        """Run the next tick at loop time `when`, keeping an earlier one already scheduled."""
        if self._timer is not None:
            if self._timer.when() <= when:
                return
            self._timer.cancel()
        self._timer = self.tracker.manager.loop.call_at(when, self._tick)

    def _tick(self) -> None:
        self._timer = None
        loop = self.tracker.manager.loop
        # Units due within FAST_INTERVAL are sampled now too, so that one wakeup serves them all.
        horizon = loop.time() + FAST_INTERVAL
        for unit in sorted(self.units):
            if self._due.get(unit, 0.0) > horizon:
                continue
            try:
                self.check(unit)
            except Exception:
                log.exception("%s: checking its resource limits failed", unit)
            if unit in self.units:
                now = loop.time()
                self._due[unit] = now + (FAST_INTERVAL if self._hot_until.get(unit, 0.0) > now else INTERVAL)
        if self.units:
            self._schedule(min(self._due.get(unit, 0.0) for unit in self.units))

    def check(self, unit: str) -> None:
        runtime = self.tracker.manager.runtimes.get(unit)
        entry = self.tracker.units.get(unit)
        if runtime is None or entry is None:
            return
        if runtime.active_state not in (ActiveState.ACTIVE, ActiveState.ACTIVATING, ActiveState.RELOADING) \
                or runtime.sub_state == "auto-restart":
            return
        sample = self.tracker.sample(runtime, detailed=False)
        settings = entry.settings
        memory_max = settings.memory_max if entry.enforced_by.get("MemoryMax") == "manager" else None
        tasks_max = settings.tasks_max if entry.enforced_by.get("TasksMax") == "manager" else None
        self._update_hot(unit, sample, memory_max, tasks_max)
        if memory_max is not None and sample.memory > memory_max:
            self._memory_exceeded(runtime, sample, memory_max)
            return
        if tasks_max is not None and sample.tasks > tasks_max:
            self._tasks_exceeded(runtime, sample, tasks_max)

    def _update_hot(self, unit: str, sample: UnitSample, memory_max: int | None, tasks_max: int | None) -> None:
        """Mark `unit` hot when a figure is over its limit, or at HOT_FRACTION of it and growing."""
        tasks_before, memory_before = self._previous.get(unit, (0, 0))
        self._previous[unit] = (sample.tasks, sample.memory)
        hot = False
        if tasks_max is not None:
            hot |= sample.tasks > tasks_max or (
                sample.tasks >= HOT_FRACTION * tasks_max and sample.tasks > tasks_before)
        if memory_max is not None:
            hot |= sample.memory > memory_max or (
                sample.memory >= HOT_FRACTION * memory_max
                and sample.memory - memory_before >= MEMORY_GROWTH_FRACTION * memory_max)
        if hot:
            self._hot_until[unit] = self.tracker.manager.loop.time() + HOT_PERIOD

    def _memory_exceeded(self, runtime: ServiceRuntime, sample: UnitSample, limit: int) -> None:
        name = runtime.name
        log.warning("%s: memory use %d bytes is above MemoryMax=%d; killing the unit (result oom-kill)",
                    name, sample.memory, limit)
        self.tracker.record_hit(name, "MemoryMax", limit, sample.memory, "killed the unit")
        self.unwatch(name)
        runtime.kill_for_result("oom-kill", ExitCause.UNCLEAN_SIGNAL, signal.SIGKILL)

    def _tasks_exceeded(self, runtime: ServiceRuntime, sample: UnitSample, limit: int) -> None:
        name = runtime.name
        excess = sample.tasks - limit
        started = {p.pid: read_start_time(p.pid) for p in sample.processes}
        victims = []
        for process in sorted(sample.processes, key=lambda p: started[p.pid], reverse=True):
            if excess <= 0:
                break
            if process.pid == runtime.main_pid or process.pid in runtime.control_pids:
                continue
            victims.append(process.pid)
            excess -= process.threads
        if not victims:
            # Only the main and control processes' own threads are over the limit, and killing them would be a stop.
            if self.tracker.units[name].limit_hit is None:
                log.warning("%s: %d tasks is above TasksMax=%d, all in the main or a control process, "
                            "so the limit is not enforced", name, sample.tasks, limit)
                self.tracker.record_hit(name, "TasksMax", limit, sample.tasks,
                                        "none: the main or a control process's threads")
            return
        log.warning("%s: %d tasks is above TasksMax=%d; killing the %d newest process(es): %s",
                    name, sample.tasks, limit, len(victims), " ".join(map(str, victims)))
        for pid in victims:
            kill_process(pid, started[pid])
        entry = self.tracker.units[name]
        entry.tasks_killed += len(victims)
        self.tracker.record_hit(name, "TasksMax", limit, sample.tasks,
                                f"killed {len(victims)} newest process(es)")


def kill_process(pid: int, start_time: int) -> None:
    """SIGKILL `pid` if it is still the process that started at `start_time`.

    The pidfd pins the process, and the start time read after opening it
    tells whether the pid was reused since the sample.
    """
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if read_start_time(pid) == start_time:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
    except ProcessLookupError:
        pass
    finally:
        os.close(fd)
