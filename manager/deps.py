"""Dependency lists with their implicit entries, and the reactions to a unit's state change.

`dependencies(unit, key)` is the written list plus the implicit entries
systemd adds in a user manager unless DefaultDependencies=no:

- a service gets Requires= and After=basic.target, Conflicts= and Before=shutdown.target;
- a target gets After= on every unit it Wants= or Requires= (unless that unit
  is ordered After= the target itself), and Conflicts= and Before=shutdown.target.

`DependencyReactions` runs on every state change (Manager.state_changed):
OnFailure=, OnSuccess=, BindsTo= (a unit stops when the unit it is bound to
stops or fails), Upholds= (an upheld unit found inactive is started again)
and StopWhenUnneeded=. Each reaction is a new transaction on its own task,
so nothing runs inside set_state().
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from unitmgr.manager.states import ActiveState
from unitmgr.units.model import Unit

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager
    from unitmgr.manager.unitbase import UnitRuntime

log = logging.getLogger(__name__)

BASIC_TARGET = "basic.target"
SHUTDOWN_TARGET = "shutdown.target"
# Keys whose units a unit needs: StopWhenUnneeded= looks for active units with these.
NEEDING_KEYS = ("Wants", "Requires", "Requisite", "BindsTo", "Upholds")
# Old spellings merged into the current key.
ALIASES = {"BindsTo": ("BindTo",)}
_INACTIVE = (ActiveState.INACTIVE, ActiveState.FAILED)
_RUNNING = (ActiveState.ACTIVE, ActiveState.ACTIVATING, ActiveState.RELOADING)
# The key of the dependency lists in Unit.derived.
_LISTS = "dependencies"
# The [Unit] keys that name other units (systemd.unit(5)), computed together for each unit.
DEPENDENCY_KEYS = ("Wants", "Requires", "Requisite", "BindsTo", "PartOf", "Upholds", "Conflicts", "Before",
                   "After", "OnFailure", "OnSuccess", "PropagatesReloadTo", "ReloadPropagatedFrom",
                   "PropagatesStopTo", "StopPropagatedFrom", "JoinsNamespaceOf")
_DEPENDENCY_KEY_SET = frozenset(DEPENDENCY_KEYS)
# The keys _implicit() can add to, by unit type.
_IMPLICIT_KEYS = {"service": ("Requires", "After", "Conflicts", "Before"), "target": ("Conflicts", "Before")}


# Keys whose entries the loader extends (units/model.py, Unit.get()); every other list is empty unless written.
_EXTENDED_KEYS = ("Wants", "Requires")


def _explicit(unit: Unit, key: str) -> list[str]:
    written = unit.settings.get("Unit") or {}
    names: list[str] = []
    for name in [key, *ALIASES.get(key, ())]:
        if name not in written and name not in _EXTENDED_KEYS:
            continue  # skips Unit.get() and its copy of the empty default
        for other in unit.get("Unit", name) or []:
            if other not in names:
                names.append(other)
    return names


def _implicit(unit: Unit, key: str) -> list[str]:
    if unit.kind == "service":
        return {"Requires": [BASIC_TARGET], "After": [BASIC_TARGET],
                "Conflicts": [SHUTDOWN_TARGET], "Before": [SHUTDOWN_TARGET]}.get(key, [])
    if unit.kind == "target" and unit.name != SHUTDOWN_TARGET:
        if key in ("Conflicts", "Before"):
            return [SHUTDOWN_TARGET]
    return []


def _compute(unit: Unit, key: str, default_dependencies: bool) -> tuple[str, ...]:
    names = _explicit(unit, key)
    if default_dependencies:
        for other in _implicit(unit, key):
            if other not in names and other != unit.name:
                names.append(other)
    return tuple(names)


def _all_lists(unit: Unit) -> dict[str, tuple[str, ...]]:
    """Return every list of DEPENDENCY_KEYS that is not empty for `unit`.

    Only the keys that can have entries are computed: those written, those
    the loader extends, and the implicit ones."""
    default_dependencies = unit.get("Unit", "DefaultDependencies") is not False
    # The parser stores old spellings (BindTo=) under the current key.
    keys = set(_DEPENDENCY_KEY_SET.intersection(unit.settings.get("Unit") or ()))
    if unit.extra_wants:
        keys.add("Wants")
    if unit.extra_requires:
        keys.add("Requires")
    if default_dependencies:
        keys.update(_IMPLICIT_KEYS.get(unit.kind, ()))
    lists = {}
    for key in keys:
        names = _compute(unit, key, default_dependencies)
        if names:
            lists[key] = names
    return lists


def dependencies(unit: Unit, key: str) -> tuple[str, ...]:
    """Return the units `unit` names under `key`, with the implicit ones, computed once per unit definition.

    A start of one service reads about 20 of these lists. The first call
    computes every list the unit can have (_all_lists()) and keeps only those
    that are not empty, because a dict entry for every key read took about
    1 KB per unit.
    """
    lists = unit.derived.get(_LISTS)
    if lists is None:
        lists = unit.derived[_LISTS] = _all_lists(unit)
    found = lists.get(key)
    if found is not None:
        return found
    if key in _DEPENDENCY_KEY_SET:
        return ()
    found = lists[key] = _compute(unit, key, unit.get("Unit", "DefaultDependencies") is not False)
    return found


def target_member_order(unit: Unit, lookup: dict[str, Unit]) -> list[str]:
    """Return the implicit After= of a target on its Wants=/Requires= units present in `lookup`."""
    if unit.kind != "target" or unit.get("Unit", "DefaultDependencies") is False:
        return []
    result = []
    for key in ("Wants", "Requires"):
        for member in _explicit(unit, key):
            other = lookup.get(member)
            if other is None or unit.name in dependencies(other, "After"):
                continue
            if member not in result:
                result.append(member)
    return result


class DependencyReactions:
    def __init__(self, manager: Manager):
        self.manager = manager
        self._tasks: set[asyncio.Task] = set()

    def _spawn(self, what: str, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)

        def done(finished: asyncio.Task) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                log.error("%s failed: %s", what, finished.exception())

        task.add_done_callback(done)

    def _start(self, names: list[str], why: str) -> None:
        log.info("starting %s (%s)", ", ".join(names), why)
        self._spawn(f"start of {names}", self.manager.transactions.start(names))

    def _stop(self, names: list[str], why: str) -> None:
        log.info("stopping %s (%s)", ", ".join(names), why)
        self._spawn(f"stop of {names}", self.manager.transactions.stop(names))

    def state_changed(self, runtime: UnitRuntime) -> None:
        if self.manager.shutdown_requested.is_set():
            return
        previous, current = runtime.previous_active_state, runtime.active_state
        if previous is current:
            return
        if current is ActiveState.FAILED:
            self._start_monitors(runtime, "OnFailure")
        if current is ActiveState.INACTIVE and runtime.result == "success" and previous not in _INACTIVE:
            self._start_monitors(runtime, "OnSuccess")
        if current in _INACTIVE:
            self._after_stop(runtime)
        if current is ActiveState.ACTIVE:
            self._upheld_by(runtime)

    def _start_monitors(self, runtime: UnitRuntime, key: str) -> None:
        """Start OnFailure=/OnSuccess= units, passing them $MONITOR_* about `runtime`."""
        targets = dependencies(runtime.unit, key)
        if not targets:
            return
        last_exit = getattr(runtime, "main_exit", None)
        monitor = {
            "MONITOR_SERVICE_RESULT": runtime.result,
            "MONITOR_EXIT_CODE": last_exit.code if last_exit else "",
            "MONITOR_EXIT_STATUS": str(last_exit.status) if last_exit else "",
            "MONITOR_INVOCATION_ID": getattr(runtime, "invocation_id", ""),
            "MONITOR_UNIT": runtime.name,
        }
        for name in targets:
            target = self.manager.runtime(name)
            if target is not None:
                target.monitor_env = monitor
        self._start(targets, f"{key}= of {runtime.name}")

    def _after_stop(self, runtime: UnitRuntime) -> None:
        reverse = self.manager.reverse_deps
        bound = [other.name for other in reverse.dependents(runtime.name, ("BindsTo",))
                 if other.active_state not in _INACTIVE and other.job is None]
        if bound:
            self._stop(bound, f"bound to {runtime.name}, which is {runtime.active_state.value}")
        upholders = [other.name for other in reverse.dependents(runtime.name, ("Upholds",))
                     if other.active_state is ActiveState.ACTIVE]
        stopped_on_request = runtime.job is not None and runtime.job.kind == "stop"
        if upholders and not stopped_on_request and not getattr(runtime, "restart_pending", False):
            self._start([runtime.name], f"upheld by {', '.join(upholders)}")
        for key in NEEDING_KEYS:
            for name in dependencies(runtime.unit, key):
                self._stop_if_unneeded(name)
        self._stop_if_unneeded(runtime.name)

    def _upheld_by(self, runtime: UnitRuntime) -> None:
        for name in dependencies(runtime.unit, "Upholds"):
            other = self.manager.runtimes.get(name)
            if other is None or (other.active_state in _INACTIVE and other.job is None):
                self._start([name], f"upheld by {runtime.name}")

    def _stop_if_unneeded(self, name: str) -> None:
        runtime = self.manager.runtimes.get(name)
        if runtime is None or not runtime.unit.get("Unit", "StopWhenUnneeded"):
            return
        if runtime.active_state in _INACTIVE or runtime.job is not None:
            return
        for other in self.manager.reverse_deps.dependents(name, NEEDING_KEYS):
            starting = other.job is not None and other.job.kind == "start"
            if other.active_state in _RUNNING or starting:
                return
        self._stop([name], "StopWhenUnneeded=yes and no active unit needs it")
