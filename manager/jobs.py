"""Jobs and transactions: what `start`, `stop` and `restart` do across dependencies.

A start pulls in Requires=, Wants= and BindsTo= (recursively) and runs each
unit's start once the units it is ordered After= have finished theirs. A
stop also stops the units that Requires=, BindsTo= or PartOf= it, in reverse
order. Each unit has at most one job at a time: a second start joins the
running one, a stop cancels a running start and takes over. Jobs on
different units run concurrently; there is no global lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from unitmgr.manager.states import ActiveState
from unitmgr.manager.unitbase import Job, UnitRuntime

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager

log = logging.getLogger(__name__)

PULL_IN = ("Requires", "Wants", "BindsTo")
HARD_DEPS = ("Requires", "BindsTo", "Requisite")
STOP_PROPAGATION = ("Requires", "BindsTo", "PartOf")


def _deps(runtime: UnitRuntime, keys: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for key in keys:
        for name in runtime.unit.get("Unit", key) or []:
            if name not in names:
                names.append(name)
    return names


async def run_unit_job(runtime: UnitRuntime, kind: str, factory: Callable[[], Awaitable[str]]) -> str:
    """Run one job on one unit, merging with or replacing the job already running there."""
    while runtime.job is not None:
        current = runtime.job
        if current.kind == kind and kind in ("start", "stop"):
            return await asyncio.shield(current.task)
        if kind == "exit":
            # A stop or start already in progress handles the exit itself.
            return "done"
        if kind == "stop" and current.kind == "start":
            current.task.cancel()
        try:
            await asyncio.shield(current.task)
        except asyncio.CancelledError:
            if not current.task.cancelled():
                raise
        except Exception:
            pass
        if runtime.job is current:
            runtime.job = None
    task = asyncio.ensure_future(factory())
    job = Job(kind, task)
    runtime.job = job
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        if task.cancelled():
            return "canceled"
        raise
    finally:
        if runtime.job is job and task.done():
            runtime.job = None


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Return the ordering cycles in `edges` (unit -> units it must wait for)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for succ in edges.get(node, ()):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.append(item)
                if item == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                cycles.append(sorted(component))

    for node in list(edges):
        if node not in index:
            visit(node)
    return cycles


class Transactions:
    def __init__(self, manager: Manager):
        self.manager = manager

    def _closure(self, names: list[str]) -> dict[str, UnitRuntime]:
        found: dict[str, UnitRuntime] = {}
        queue = list(names)
        while queue:
            name = queue.pop(0)
            if name in found:
                continue
            runtime = self.manager.runtime(name)
            if runtime is None or runtime.unit.load_state != "loaded":
                continue
            found[name] = runtime
            queue.extend(_deps(runtime, PULL_IN))
        return found

    def _order_edges(self, units: dict[str, UnitRuntime]) -> dict[str, set[str]]:
        """unit -> the units in the set it must wait for (After= and the other's Before=)."""
        edges: dict[str, set[str]] = {name: set() for name in units}
        for name, runtime in units.items():
            for other in runtime.unit.get("Unit", "After") or []:
                if other in units and other != name:
                    edges[name].add(other)
            for other in runtime.unit.get("Unit", "Before") or []:
                if other in units and other != name:
                    edges[other].add(name)
        for cycle in find_cycles(edges):
            log.error("ordering cycle between %s; ignoring the ordering of %s after %s to break it",
                      ", ".join(cycle), cycle[0], cycle[-1])
            self.manager.report_cycle(cycle)
            for member in cycle:
                edges[member] -= set(cycle)
        return edges

    async def start(self, names: list[str]) -> dict[str, str]:
        units = self._closure(names)
        edges = self._order_edges(units)
        futures: dict[str, asyncio.Future[str]] = {
            name: self.manager.loop.create_future() for name in units
        }

        async def start_one(name: str) -> None:
            runtime = units[name]
            result = "done"
            for before in edges[name]:
                dep_result = await asyncio.shield(futures[before])
                hard = before in _deps(runtime, HARD_DEPS)
                if hard and dep_result not in ("done", "skipped"):
                    result = "dependency"
            for requisite in runtime.unit.get("Unit", "Requisite") or []:
                other = self.manager.runtime(requisite)
                if requisite not in units and (other is None or other.active_state is not ActiveState.ACTIVE):
                    result = "dependency"
            if result == "done":
                result = await run_unit_job(runtime, "start", runtime.run_start)
            else:
                log.warning("%s: start canceled because a required unit failed", name)
            futures[name].set_result(result)

        await asyncio.gather(*(start_one(name) for name in units))
        return {name: futures[name].result() for name in units}

    def _dependents(self, names: list[str]) -> dict[str, UnitRuntime]:
        found: dict[str, UnitRuntime] = {}
        queue = list(names)
        while queue:
            name = queue.pop(0)
            if name in found:
                continue
            runtime = self.manager.runtime(name)
            if runtime is None:
                continue
            found[name] = runtime
            for other in self.manager.runtimes.values():
                if other.name not in found and name in _deps(other, STOP_PROPAGATION):
                    if other.active_state is not ActiveState.INACTIVE or other.job is not None:
                        queue.append(other.name)
        return found

    async def stop_set(self, units: dict[str, UnitRuntime]) -> dict[str, str]:
        edges = self._order_edges(units)
        # Stops run in reverse: a unit waits for the units ordered after it.
        reverse: dict[str, set[str]] = {name: set() for name in units}
        for name, befores in edges.items():
            for before in befores:
                reverse[before].add(name)
        futures = {name: self.manager.loop.create_future() for name in units}

        async def stop_one(name: str) -> None:
            for after in reverse[name]:
                await asyncio.shield(futures[after])
            runtime = units[name]
            result = await run_unit_job(runtime, "stop", runtime.run_stop)
            futures[name].set_result(result)

        await asyncio.gather(*(stop_one(name) for name in units))
        return {name: futures[name].result() for name in units}

    async def stop(self, names: list[str]) -> dict[str, str]:
        return await self.stop_set(self._dependents(names))

    async def restart(self, names: list[str]) -> dict[str, str]:
        units = self._dependents(names)
        await self.stop_set(units)
        return await self.start(list(units))

    async def stop_all(self) -> None:
        running = {
            name: runtime
            for name, runtime in self.manager.runtimes.items()
            if runtime.active_state is not ActiveState.INACTIVE or runtime.job is not None
        }
        await self.stop_set(running)
