"""The manager's own enforcement of `MemoryMax=` and `TasksMax=`, by sampling.

Where the kernel does not enforce these limits (no cgroup, or no memory or
pids controller), a timer samples the processes of each running unit that
sets one, every `INTERVAL` seconds, and only while such a unit runs:

- over `MemoryMax=`: the unit is killed with result `oom-kill`, which
  `Restart=on-failure` treats like a kill by signal, as systemd does after
  the kernel's OOM killer ends a unit;
- over `TasksMax=`: the kernel would make fork() fail, which the manager
  cannot do, so it kills the newest processes beyond the limit, never the
  main process, and the unit keeps running.

A sample is a snapshot: a unit can exceed a limit for up to one interval
before the manager acts.
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

    def watch(self, unit: str) -> None:
        self.units.add(unit)
        if self._timer is None:
            self._schedule()

    def unwatch(self, unit: str) -> None:
        self.units.discard(unit)
        if not self.units:
            self.stop()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        self._timer = self.tracker.manager.loop.call_later(INTERVAL, self._tick)

    def _tick(self) -> None:
        self._timer = None
        for unit in sorted(self.units):
            try:
                self.check(unit)
            except Exception:
                log.exception("%s: checking its resource limits failed", unit)
        if self.units:
            self._schedule()

    def check(self, unit: str) -> None:
        runtime = self.tracker.manager.runtimes.get(unit)
        entry = self.tracker.units.get(unit)
        if runtime is None or entry is None:
            return
        if runtime.active_state not in (ActiveState.ACTIVE, ActiveState.ACTIVATING):
            return
        sample = self.tracker.sample(runtime, detailed=False)
        settings = entry.settings
        if entry.enforced_by.get("MemoryMax") == "manager" and settings.memory_max is not None \
                and sample.memory > settings.memory_max:
            # TODO: a unit still activating (a running Type=oneshot) is not killed:
            # kill_for_result() only ends active units.
            if runtime.active_state is ActiveState.ACTIVE:
                self._memory_exceeded(runtime, sample, settings.memory_max)
                return
        if entry.enforced_by.get("TasksMax") == "manager" and settings.tasks_max is not None \
                and sample.tasks > settings.tasks_max:
            self._tasks_exceeded(runtime, sample, settings.tasks_max)

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
            if process.pid == runtime.main_pid:
                continue
            victims.append(process.pid)
            excess -= process.threads
        if not victims:
            # Only the main process's own threads are over the limit; killing it is a stop.
            if self.tracker.units[name].limit_hit is None:
                log.warning("%s: %d tasks is above TasksMax=%d, all in the main process; not enforced",
                            name, sample.tasks, limit)
                self.tracker.record_hit(name, "TasksMax", limit, sample.tasks, "none: the main process's threads")
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
