"""State shared by every kind of unit at run time, and the runtime of targets.

A runtime holds one unit's ActiveState/SubState/Result and its current job.
Every state change goes through `set_state`, which stamps the time, logs the
transition and tells the manager's listeners (the event streams).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unitmgr.manager.states import ActiveState
from unitmgr.manager.unitmessages import announce_state
from unitmgr.units.loader import file_stamps, stamps_on_load
from unitmgr.units.model import Unit

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager

log = logging.getLogger(__name__)


@dataclass
class Job:
    kind: str  # "start", "stop" or "exit"
    task: asyncio.Task


class UnitRuntime:
    # Slots keep these out of the subclasses' __dict__: CPython 3.11 shares the keys
    # of instance dicts only up to 30 attributes, and ServiceRuntime has more than
    # that in all, which made each service's __dict__ about 1.6 KB.
    __slots__ = ("manager", "unit", "name", "active_state", "previous_active_state", "sub_state",
                 "result", "state_change_time", "active_enter_time", "job", "condition_failures",
                 "changed_on_disk", "restarting", "stop_requests", "monitor_env", "file_stamps")

    def __init__(self, manager: Manager, unit: Unit):
        self.manager = manager
        self.unit = unit
        self.name = unit.name
        self.active_state = ActiveState.INACTIVE
        # The state before the last change, for the dependency reactions (deps.py).
        self.previous_active_state = ActiveState.INACTIVE
        self.sub_state = "dead"
        self.result = "success"
        self.state_change_time = time.time()
        self.active_enter_time: float | None = None
        self.job: Job | None = None
        self.condition_failures: list[str] = []
        self.changed_on_disk = False
        # Set by a restart for the stop half (RestartKillSignal=); the stop clears it.
        self.restarting = False
        # How many stop jobs were requested; a start waiting for its ordering checks it (jobs.py).
        self.stop_requests = 0
        # $MONITOR_* for the next start, set when OnFailure=/OnSuccess= starts this unit (deps.py).
        self.monitor_env: dict[str, str] = {}
        self.file_stamps = stamps_on_load(unit, manager.unit_dirs)

    def reload_definition(self, unit: Unit) -> None:
        """Take the definition `daemon-reload` read; running processes are not touched."""
        self.unit = unit
        self.changed_on_disk = False
        self.file_stamps = file_stamps(unit, self.manager.unit_dirs)
        self.manager.reverse_deps.update(self)

    def check_changed_on_disk(self) -> bool:
        """Whether the unit's files changed since they were loaded (then `daemon-reload` is due)."""
        if not self.changed_on_disk:
            self.changed_on_disk = file_stamps(self.unit, self.manager.unit_dirs) != self.file_stamps
        return self.changed_on_disk

    def set_state(self, active: ActiveState, sub: str, result: str | None = None) -> None:
        if result is not None:
            self.result = result
        if active is not self.active_state:
            self.state_change_time = time.time()
            if active is ActiveState.ACTIVE:
                self.active_enter_time = self.state_change_time
        changed = (active, sub) != (self.active_state, self.sub_state)
        previous_sub = self.sub_state
        self.previous_active_state = self.active_state
        self.active_state, self.sub_state = active, sub
        if changed:
            log.debug("%s: %s (%s) result=%s", self.name, active.value, sub, self.result)
            announce_state(self, self.previous_active_state, previous_sub)
            self.manager.state_changed(self)

    def check_conditions(self) -> str | None:
        """Evaluate Condition*=/Assert*=; return a job result when the start must not go on."""
        verdict = self.manager.evaluate_conditions(self.unit)
        if verdict is None:
            self.condition_failures = []
            return None
        kind, failures = verdict
        self.condition_failures = failures
        if kind == "assert":
            log.warning("%s: assertion failed: %s", self.name, "; ".join(failures))
            self.set_state(ActiveState.FAILED, "failed", result="assert")
            return "failed"
        log.info("%s: start condition not met: %s", self.name, "; ".join(failures))
        return "skipped"

    async def run_start(self, automatic: bool = False) -> str:
        raise NotImplementedError

    async def run_stop(self) -> str:
        raise NotImplementedError

    async def run_reload(self) -> str:
        return "failed"

    def can_reload(self) -> bool:
        return False

    def reset_failed(self) -> None:
        if self.active_state is ActiveState.FAILED:
            self.set_state(ActiveState.INACTIVE, "dead", result="success")

    def members(self) -> set[int]:
        return set()

    def status(self) -> dict[str, Any]:
        unit = self.unit
        return {
            "name": self.name,
            "description": unit.description,
            "documentation": list(unit.get("Unit", "Documentation") or []),
            "load_state": unit.load_state,
            "load_error": unit.load_error,
            "fragment_path": unit.fragment_path,
            "dropin_paths": list(unit.dropin_paths),
            "active_state": self.active_state.value,
            "sub_state": self.sub_state,
            "result": self.result,
            "state_change_time": self.state_change_time,
            "active_enter_time": self.active_enter_time,
            "main_pid": 0,
            "condition_failures": list(self.condition_failures),
            "changed_on_disk": self.check_changed_on_disk(),
            "warnings": [str(d) for d in unit.diagnostics],
        }


class TargetRuntime(UnitRuntime):
    """A target has no processes: it is active once started, as a sync point."""

    async def run_start(self, automatic: bool = False) -> str:
        skipped = self.check_conditions()
        if skipped:
            return skipped
        self.set_state(ActiveState.ACTIVE, "active")
        return "done"

    async def run_stop(self) -> str:
        self.set_state(ActiveState.INACTIVE, "dead")
        return "done"
