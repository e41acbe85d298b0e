"""Resource limits and statistics for every unit: who enforces what, and the figures.

The manager creates one `ResourceTracker` at start-up. It chooses a mode
once and logs it:

- `cgroup`: the manager may create cgroups in a cgroup v2 hierarchy. Each
  unit gets its own cgroup, which every process enters before exec. Limits
  whose controller is enabled are written to it, so the kernel enforces
  them. A stop ends with `cgroup.kill` and removes the cgroup.
- `process`: no usable hierarchy, or `--no-cgroups`. A unit's processes are
  its sessions and their descendants (see processes.py).

In both modes `MemoryMax=` and `TasksMax=` that the kernel does not enforce
are enforced by the manager's sampler (limitwatch.py), and the other limits
are reported as enforced by nobody, with one warning per loaded unit.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unitmgr.manager import cgroups, protocol, stalecgroups
from unitmgr.manager.limitwatch import LimitWatcher
from unitmgr.manager.protocol import ProtocolError
from unitmgr.manager.resourcesettings import ResourceSettings, resource_settings
from unitmgr.manager.states import ActiveState
from unitmgr.manager.stats import UnitSample, cpu_percent, sample_unit, statistics_fields

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager
    from unitmgr.manager.service import ServiceRuntime
    from unitmgr.manager.spawn import SpawnSpec
    from unitmgr.manager.unitbase import UnitRuntime

log = logging.getLogger(__name__)

# The controller each limit needs, and its cgroup v2 file.
KERNEL_FILES = {
    "MemoryMax": ("memory", "memory.max"),
    "MemoryHigh": ("memory", "memory.high"),
    "MemorySwapMax": ("memory", "memory.swap.max"),
    "CPUQuota": ("cpu", "cpu.max"),
    "CPUWeight": ("cpu", "cpu.weight"),
    "TasksMax": ("pids", "pids.max"),
    "IOWeight": ("io", "io.weight"),
}
# The content of each file when the limit is not set.
KERNEL_DEFAULTS = {
    "MemoryMax": "max", "MemoryHigh": "max", "MemorySwapMax": "max", "CPUQuota": "max",
    "CPUWeight": "100", "TasksMax": "max", "IOWeight": "default 100",
}
MANAGER_ENFORCED = ("MemoryMax", "TasksMax")
# CPU % is taken over at least CPU_MIN_WINDOW and at most CPU_WINDOW seconds.
CPU_MIN_WINDOW = 0.25
CPU_WINDOW = 10.0
# How long `top` waits for a second sample when it has no recent first one.
TOP_SAMPLE_DELAY = 0.5


@dataclass(slots=True)
class UnitResources:
    """Per-unit state that the tracker keeps between samples."""

    # None until the first look at the unit, so that "" (never started) also counts as new.
    invocation_id: str | None = None
    settings: ResourceSettings = field(default_factory=ResourceSettings)
    # Limit name -> "kernel", "manager" or "none".
    enforced_by: dict[str, str] = field(default_factory=dict)
    cgroup: str | None = None
    limits_written_for: str | None = None
    memory_peak: int = 0
    last_sample: UnitSample | None = None
    previous_sample: UnitSample | None = None
    limit_hit: dict[str, Any] | None = None
    tasks_killed: int = 0
    # The unit definition that `settings` was parsed from and whose warnings were logged.
    settings_unit: object = None
    # memory.events oom_kill when the invocation began: the counter never resets,
    # and a cgroup kept by KillMode=process carries the count of earlier runs.
    oom_kills_before: int = 0


class ResourceTracker:
    def __init__(self, manager: Manager, use_cgroups: bool = True):
        self.manager = manager
        self.units: dict[str, UnitResources] = {}
        self.tree: cgroups.CgroupTree | None = None
        self.support = cgroups.detect() if use_cgroups else cgroups.CgroupSupport(reason="disabled by --no-cgroups")
        self.watcher = LimitWatcher(self)

    @property
    def mode(self) -> str:
        return "cgroup" if self.tree is not None else "process"

    def start(self) -> None:
        """Set up the cgroup tree when possible and log, once, what each limit will rely on."""
        if self.support.usable:
            tree = cgroups.CgroupTree(self.support)
            try:
                tree.setup()
                self.tree = tree
            except OSError as exc:
                self.support.reason = f"could not create {tree.base}: {exc}"
            else:
                stalecgroups.remove_stale(tree.base.parent, tree.base, cgroups.pid_namespace())
        self.manager.listeners.append(self.state_changed)
        self._log_mode()

    def _log_mode(self) -> None:
        if self.tree is None:
            log.info("resource control: no cgroups (%s); MemoryMax= and TasksMax= are enforced by the "
                     "manager, CPUQuota=, CPUWeight=, MemoryHigh=, MemorySwapMax= and IOWeight= by nobody",
                     self.support.reason)
            return
        enabled = ", ".join(self.tree.enabled) or "none"
        enforcers: dict[str, list[str]] = {"kernel": [], "manager": [], "nobody": []}
        for name, (controller, _file) in KERNEL_FILES.items():
            if controller in self.tree.enabled:
                enforcers["kernel"].append(f"{name}=")
            elif name in MANAGER_ENFORCED:
                enforcers["manager"].append(f"{name}=")
            else:
                enforcers["nobody"].append(f"{name}=")
        from unitmgr.manager.spawn import clone3_enabled

        log.info("resource control: a cgroup per unit under %s; cgroup.kill %s; controllers enabled: %s; "
                 "limits enforced by the kernel: %s; by the manager: %s; by nobody: %s; "
                 "processes start %s",
                 self.tree.base, "available" if self.support.has_kill else "missing", enabled,
                 *(", ".join(names) or "none" for names in enforcers.values()),
                 "inside their cgroup (clone3)" if clone3_enabled() else "outside and then join their cgroup")

    def shutdown(self) -> None:
        self.watcher.stop()
        if self.tree is not None:
            self.tree.cleanup()

    # -- spawning -----------------------------------------------------------

    def _entry(self, runtime: ServiceRuntime) -> UnitResources:
        entry = self.units.get(runtime.name)
        if entry is None:
            entry = self.units[runtime.name] = UnitResources()
        if entry.invocation_id != runtime.invocation_id:
            self._begin_invocation(runtime, entry)
        return entry

    def _begin_invocation(self, runtime: ServiceRuntime, entry: UnitResources) -> None:
        entry.invocation_id = runtime.invocation_id
        new_definition = entry.settings_unit is not runtime.unit
        if new_definition:
            # Parsed once per definition, because only daemon-reload replaces runtime.unit.
            entry.settings = resource_settings(lambda key: runtime.unit.get("Service", key))
        entry.memory_peak = 0
        entry.last_sample = entry.previous_sample = None
        entry.enforced_by = self._decide_enforcement(runtime.name, entry.settings)
        # Only kernel_oom_killed() reads the count, and only where the kernel enforces MemoryMax=.
        kernel_memory = entry.enforced_by.get("MemoryMax") == "kernel"
        entry.oom_kills_before = self._oom_kills(runtime.name) if kernel_memory else 0
        if new_definition:
            entry.settings_unit = runtime.unit
            for warning in self.load_warnings(entry):
                log.warning("%s: %s", runtime.name, warning)

    def _decide_enforcement(self, unit: str, settings: ResourceSettings) -> dict[str, str]:
        enforced = {}
        for name in settings.limits():
            controller, _file = KERNEL_FILES[name]
            if self.tree is not None and controller in self.tree.enabled:
                enforced[name] = "kernel"
            elif name in MANAGER_ENFORCED:
                enforced[name] = "manager"
            else:
                enforced[name] = "none"
        return enforced

    def load_warnings(self, entry: UnitResources) -> list[str]:
        warnings = list(entry.settings.warnings)
        for name, who in entry.enforced_by.items():
            if who == "none":
                controller = KERNEL_FILES[name][0]
                warnings.append(f"{name}= is not enforced: it needs the {controller} controller of a "
                                "delegated cgroup v2 hierarchy, which this manager does not have")
        return warnings

    def prepare_spawn(self, runtime: ServiceRuntime, spec: SpawnSpec) -> None:
        """Add the unit's scheduling attributes and cgroup to a spawn; called for every process."""
        entry = self._entry(runtime)
        settings = entry.settings
        spec.cpu_affinity = list(settings.cpu_affinity)
        spec.io_class = settings.io_class
        spec.io_priority = settings.io_priority
        spec.oom_score_adjust = settings.oom_score_adjust
        if self.tree is not None:
            spec.cgroup = self._unit_cgroup(runtime.name, entry)

    def _unit_cgroup(self, unit: str, entry: UnitResources) -> str | None:
        assert self.tree is not None
        if entry.cgroup is None:
            try:
                entry.cgroup = str(self.tree.create(unit))
            except OSError as exc:
                log.warning("%s: could not create its cgroup, running it without one: %s", unit, exc)
                return None
        if entry.limits_written_for != entry.invocation_id:
            # Once per invocation: a cgroup kept from the previous one may hold old values.
            entry.limits_written_for = entry.invocation_id
            self._write_kernel_limits(unit, entry)
        return entry.cgroup

    def _write_kernel_limits(self, unit: str, entry: UnitResources) -> None:
        """Write every limit whose controller is enabled, and the kernel's default for each unset one."""
        assert self.tree is not None
        settings = entry.settings
        limits = settings.limits()
        for name, (controller, file_name) in KERNEL_FILES.items():
            if controller not in self.tree.enabled:
                continue
            if name not in limits:
                self.tree.write(unit, file_name, KERNEL_DEFAULTS[name])
                continue
            if not self.tree.write(unit, file_name, kernel_value(name, limits[name], settings)):
                entry.enforced_by[name] = "manager" if name in MANAGER_ENFORCED else "none"

    # -- state changes ------------------------------------------------------

    def state_changed(self, runtime: UnitRuntime) -> None:
        if runtime.unit.kind == "service" and runtime.active_state is ActiveState.ACTIVATING \
                and runtime.sub_state != "auto-restart":
            # Read the new invocation's limits before its first spawn, so that sampling covers ExecStartPre=.
            self._entry(runtime)  # type: ignore[arg-type]
        entry = self.units.get(runtime.name)
        if entry is None:
            return
        state = runtime.active_state
        if state in (ActiveState.ACTIVATING, ActiveState.ACTIVE, ActiveState.RELOADING) \
                and runtime.sub_state != "auto-restart":
            if any(who == "manager" for who in entry.enforced_by.values()):
                self.watcher.watch(runtime.name)
            return
        self.watcher.unwatch(runtime.name)
        if self.tree is None:
            return
        # KillMode=process and none leave the other processes running, as systemd does.
        kill_mode = runtime.unit.get("Service", "KillMode")
        kill_all = kill_mode in (None, "control-group", "mixed") \
            and runtime.unit.get("Service", "SendSIGKILL") is not False
        # SendSIGKILL=no leaves what survived the stop signal running, as KillMode=process does.
        final = runtime.unit.get("Service", "FinalKillSignal")
        if runtime.sub_state == "stop-sigkill" and kill_all and final in (None, signal.SIGKILL):
            # cgroup.kill also reaches what forks meanwhile. The stop sends any other FinalKillSignal= itself.
            self.tree.kill(runtime.name)
        elif state in (ActiveState.INACTIVE, ActiveState.FAILED) or runtime.sub_state == "auto-restart":
            if runtime.result in ("signal", "success") and self.kernel_oom_killed(runtime):
                # Only a process other than the main one was killed, or the exit came another way.
                runtime.result = "oom-kill"
            self._release_cgroup(runtime.name, entry, kill=kill_all)

    def _oom_kills(self, unit: str) -> int:
        if self.tree is None:
            return 0
        return self.tree.read_keyed(unit, "memory.events").get("oom_kill", 0)

    def kernel_oom_killed(self, runtime: UnitRuntime) -> bool:
        """Return whether the kernel's OOM killer killed a process of this invocation, and record the limit hit.

        The service calls this before it settles the result of its main
        process's exit, so that the state change already reports `oom-kill`. Covered by
        tests/vm, which boots a kernel whose cgroup v2 hierarchy has the
        memory controller.
        """
        entry = self.units.get(runtime.name)
        if entry is None or self.tree is None or entry.cgroup is None \
                or entry.enforced_by.get("MemoryMax") != "kernel":
            return False
        kills = self._oom_kills(runtime.name) - entry.oom_kills_before
        if kills <= 0:
            return False
        entry.oom_kills_before += kills
        entry.limit_hit = {"name": "MemoryMax", "value": entry.settings.memory_max, "observed": None,
                           "enforced_by": "kernel", "action": f"the kernel killed {kills} process(es)",
                           "time": time.time()}
        log.warning("%s: the kernel's OOM killer killed %d process(es) at MemoryMax=%d (result oom-kill)",
                    runtime.name, kills, entry.settings.memory_max)
        return True

    def _release_cgroup(self, unit: str, entry: UnitResources, attempts: int = 40,
                        invocation: str | None = None, kill: bool = True) -> None:
        """Kill what is left in the unit's cgroup and remove it, retrying while the kernel reports it busy.

        Without `kill`, processes left behind keep the cgroup, which the next
        start reuses and the manager's shutdown removes.
        """
        if invocation is None:
            invocation = entry.invocation_id
        if entry.cgroup is None or self.tree is None or invocation != entry.invocation_id:
            # Gone already, or a new invocation (a restart) has taken the cgroup over.
            return
        left = self.tree.pids(unit)
        if left and not kill:
            log.info("%s: %d process(es) left in its cgroup (KillMode=)", unit, len(left))
            return
        if left:
            log.info("%s: killing %d process(es) left in its cgroup", unit, len(left))
            self.tree.kill(unit)
        if self.tree.remove(unit):
            entry.cgroup = None
            return
        if attempts > 0:
            self.manager.loop.call_later(0.05, self._release_cgroup, unit, entry, attempts - 1, invocation, kill)
        else:
            log.warning("%s: its cgroup %s could not be removed", unit, self.tree.path(unit))

    # -- figures ------------------------------------------------------------

    def cgroup_pids(self, unit: str) -> set[int] | None:
        """Return the pids in the unit's cgroup, or None when the unit has no cgroup.

        Every process of a unit with a cgroup was spawned into it, so
        `cgroup.procs` lists them all, also a daemon that left the unit's
        session and cleared its environment, which process tracking misses.
        """
        entry = self.units.get(unit)
        if self.tree is None or entry is None or entry.cgroup is None:
            return None
        return self.tree.pids(unit)

    def unit_pids(self, runtime: UnitRuntime) -> set[int]:
        return runtime.members()

    def sample(self, runtime: UnitRuntime, detailed: bool = True) -> UnitSample:
        """Sample a unit's processes now and keep the sample for CPU % and the peak."""
        sample = sample_unit(self.unit_pids(runtime), detailed)
        entry = self.units.get(runtime.name)
        if entry is not None:
            last = entry.last_sample
            # Keep the older reference sample when the last one is very recent,
            # so that CPU % is never taken over a few milliseconds.
            if last is None or entry.previous_sample is None or sample.time - last.time >= CPU_MIN_WINDOW:
                entry.previous_sample = last
            entry.last_sample = sample
            entry.memory_peak = max(entry.memory_peak, sample.memory)
        return sample

    def cpu_percent(self, unit: str) -> float | None:
        entry = self.units.get(unit)
        if entry is None or entry.previous_sample is None or entry.last_sample is None:
            return None
        if entry.last_sample.time - entry.previous_sample.time > CPU_WINDOW:
            return None
        return cpu_percent(entry.previous_sample, entry.last_sample)

    def record_hit(self, unit: str, name: str, limit: int, observed: int, action: str) -> None:
        entry = self.units[unit]
        entry.limit_hit = {"name": name, "value": limit, "observed": observed, "enforced_by": "manager",
                           "action": action, "time": time.time()}

    def status_fields(self, runtime: UnitRuntime) -> dict[str, Any]:
        """Return the statistics and limit fields `status` adds for a unit (see docs/protocol.md)."""
        entry = self._entry(runtime) if runtime.unit.kind == "service" else None  # type: ignore[arg-type]
        sample = self.sample(runtime)
        data = statistics_fields(sample)
        data.update(self._kernel_figures(runtime.name, entry, data))
        data["cpu_percent"] = self.cpu_percent(runtime.name)
        data["memory_peak"] = max(entry.memory_peak, data.get("memory_peak") or 0) if entry else None
        data["resource_mode"] = self.mode
        data["cgroup"] = entry.cgroup if entry else None
        data.update(limit_fields(runtime, entry))
        if entry is not None:
            data["warnings"] = [str(d) for d in runtime.unit.diagnostics] + self.load_warnings(entry)
        return data

    def _kernel_figures(self, unit: str, entry: UnitResources | None, data: dict[str, Any]) -> dict[str, Any]:
        """Prefer the cgroup's own counters, which also cover processes that already exited."""
        if self.tree is None or entry is None or entry.cgroup is None:
            return {}
        figures: dict[str, Any] = {}
        usage = self.tree.read_keyed(unit, "cpu.stat").get("usage_usec")
        if usage is not None:
            figures["cpu_seconds"] = usage / 1e6
        current = (self.tree.read(unit, "memory.current") or "").strip()
        if current.isdigit():
            figures["memory_bytes"] = int(current)
        peak = (self.tree.read(unit, "memory.peak") or "").strip()
        if peak.isdigit():
            figures["memory_peak"] = int(peak)
        tasks = (self.tree.read(unit, "pids.current") or "").strip()
        if tasks.isdigit():
            figures["tasks"] = int(tasks)
        return figures

    async def top(self, args: dict[str, Any]) -> dict[str, Any]:
        """Return a table of the running units' figures, sorted by `args["sort"]` (default cpu)."""
        key = args.get("sort") or "cpu"
        if key != "name" and key not in SORT_KEYS:
            raise ProtocolError(protocol.BAD_REQUEST, f"unknown sort key '{key}'; use one of: name, "
                                f"{', '.join(SORT_KEYS)}")
        runtimes = [r for r in self.manager.runtimes.values()
                    if r.unit.kind == "service" and (args.get("all") or r.active_state is not ActiveState.INACTIVE)]
        for runtime in runtimes:
            self._entry(runtime)  # type: ignore[arg-type]
        # CPU % needs two samples: take a first one now where there is no recent one.
        stale = [r for r in runtimes if self.cpu_percent(r.name) is None or self._sample_age(r.name) > 2.0]
        for runtime in stale:
            self.sample(runtime, detailed=False)
        if stale:
            await asyncio.sleep(TOP_SAMPLE_DELAY)
        rows = [self._top_row(runtime) for runtime in runtimes]
        return {"units": sort_rows(rows, key), "sort": key, "mode": self.mode}

    def unit_figures(self) -> dict[str, dict[str, Any]]:
        """Return the `top` row of every service that is not inactive, keyed by name, without waiting.

        Meant for a periodic `stats` event: each call is a sample, so CPU % is
        taken between two calls (null on the first).
        """
        return {runtime.name: self._top_row(runtime) for runtime in list(self.manager.runtimes.values())
                if runtime.unit.kind == "service" and runtime.active_state is not ActiveState.INACTIVE}

    def _sample_age(self, unit: str) -> float:
        entry = self.units.get(unit)
        if entry is None or entry.last_sample is None:
            return float("inf")
        return time.monotonic() - entry.last_sample.time

    def _top_row(self, runtime: UnitRuntime) -> dict[str, Any]:
        fields = self.status_fields(runtime)
        return {
            "name": runtime.name, "active_state": runtime.active_state.value, "sub_state": runtime.sub_state,
            "main_pid": getattr(runtime, "main_pid", 0), "n_restarts": getattr(runtime, "n_restarts", 0),
            **{key: fields.get(key) for key in TOP_FIELDS},
        }


TOP_FIELDS = ("tasks", "cpu_percent", "cpu_seconds", "memory_bytes", "memory_peak", "memory_max",
              "tasks_max", "open_files", "io_read_bytes", "io_write_bytes")
SORT_KEYS = {"cpu": "cpu_percent", "memory": "memory_bytes", "tasks": "tasks", "time": "cpu_seconds",
             "io": "io_write_bytes", "files": "open_files", "restarts": "n_restarts"}


def sort_rows(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Sort `top` rows, largest first (by name for `name`); raise ValueError for an unknown key."""
    if key == "name":
        return sorted(rows, key=lambda row: row["name"])
    if key not in SORT_KEYS:
        raise ValueError(f"unknown sort key '{key}'; use one of: name, {', '.join(SORT_KEYS)}")
    field_name = SORT_KEYS[key]
    return sorted(rows, key=lambda row: (-(row.get(field_name) or 0), row["name"]))


def kernel_value(name: str, value: int | float, settings: ResourceSettings) -> str:
    """Return the text a cgroup v2 control file expects for a limit."""
    if name == "CPUQuota":
        period = round(settings.cpu_quota_period * 1_000_000)
        return f"{max(round(value * period), 1000)} {period}"
    if name == "CPUWeight" and value == 0:
        # `CPUWeight=idle` is cpu.idle=1 in the kernel; the lowest weight is the nearest cpu.weight.
        return "1"
    return str(value)


def limit_fields(runtime: UnitRuntime, entry: UnitResources | None) -> dict[str, Any]:
    """Return `limits`, `memory_max`, `tasks_max`, `limit_hit` for `status`."""
    from unitmgr.manager.service import RLIMIT_NAMES

    limits: list[dict[str, Any]] = []
    if entry is not None:
        for name, value in entry.settings.limits().items():
            limits.append({"name": name, "value": value, "enforced_by": entry.enforced_by.get(name, "none")})
    for key in RLIMIT_NAMES:
        value = runtime.unit.get("Service", key) if runtime.unit.kind == "service" else None
        if value is not None:
            limits.append({"name": key, "value": {"soft": value.soft, "hard": value.hard}, "enforced_by": "kernel"})
    settings = entry.settings if entry else None
    return {
        "limits": limits,
        "memory_max": settings.memory_max if settings else None,
        "tasks_max": settings.tasks_max if settings else None,
        "limit_hit": entry.limit_hit if entry else None,
        "tasks_killed": entry.tasks_killed if entry else 0,
    }
