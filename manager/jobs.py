"""Jobs and transactions: what `start`, `stop`, `restart` and `reload` do across dependencies.

A start pulls in Requires=, Wants=, BindsTo= and Upholds= (recursively),
checks Requisite=, stops the units it Conflicts= with (and those that
conflict with it) before anything starts, and runs each unit's start once
the units it is ordered After= have finished theirs, also when their start
job belongs to another request. A stop also stops the units that
Requires=, BindsTo= or PartOf= it and those linked by PropagatesStopTo=/
StopPropagatedFrom=, in reverse order. A reload also reloads the active
units linked by PropagatesReloadTo=/ReloadPropagatedFrom=. An ordering
cycle is logged naming every unit in it and broken by dropping the
ordering between its members, and the start goes on.

Each unit has at most one job at a time, merged as systemd does: a second
start or stop joins the one running, a stop cancels a start (running, or
still waiting for its ordering) and takes over, anything else waits for the
running job and then runs. The stop of a restart is the exception: it waits
for a start in progress instead of canceling it, so two restarts that meet
(two shells, two hosts of a fan-out) both succeed, as systemd merges them.
Jobs on different units run concurrently, and there is no global lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from unitmgr.manager import logstore
from unitmgr.manager.deps import dependencies, target_member_order
from unitmgr.manager.states import ActiveState
from unitmgr.manager.unitbase import Job, UnitRuntime

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager

log = logging.getLogger(__name__)

PULL_IN = ("Requires", "Wants", "BindsTo", "Upholds")
HARD_DEPS = ("Requires", "BindsTo", "Requisite")
STOP_PROPAGATION = ("Requires", "BindsTo", "PartOf", "StopPropagatedFrom")
_INACTIVE = (ActiveState.INACTIVE, ActiveState.FAILED)


def _deps(runtime: UnitRuntime, keys: tuple[str, ...]) -> list[str]:
    names: list[str] = []
    for key in keys:
        for name in dependencies(runtime.unit, key):
            if name not in names:
                names.append(name)
    return names


async def run_unit_job(runtime: UnitRuntime, kind: str, factory: Callable[[], Awaitable[str]],
                       replace_start: bool = True) -> str:
    """Run one job on one unit, merging with or replacing the job already running there.

    A stop with `replace_start` false (a restart's) waits for a start in progress instead of canceling it."""
    if kind == "stop" and replace_start:
        # Start jobs still waiting for their ordering see this and give up (see _start_one).
        runtime.stop_requests += 1
    elif kind == "start" and getattr(runtime.manager, "shutting_down", False):
        # The shutdown's stop of every unit has already chosen its units, so a start now
        # would leave a process running after the manager exits.
        log.info("%s: start canceled: the manager is shutting down", runtime.name)
        return "canceled"
    while runtime.job is not None:
        current = runtime.job
        if current.kind == kind and kind in ("start", "stop", "reload"):
            try:
                return await asyncio.shield(current.task)
            except asyncio.CancelledError:
                # The merged job was canceled (a stop replaced a start): report that
                # to this waiter too, instead of canceling its request.
                if current.task.cancelled():
                    return "canceled"
                raise
        if kind == "exit" and current.kind == "stop":
            # The stop in progress handles the main process's exit itself. A start
            # job is only finishing when an exit is reported, so the exit waits for it.
            return "done"
        if kind == "stop" and current.kind == "start" and replace_start:
            current.task.cancel()
        try:
            await asyncio.shield(current.task)
        except asyncio.CancelledError:
            if not current.task.cancelled():
                raise
        except Exception:  # noqa: BLE001 - the failed job logged its error, and this one runs next
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


# A start transaction of this many units holds back the manager's log lines until it is done,
# for logstore.HOLD_SECONDS at most.
BULK_START_UNITS = 32


class Transactions:
    def __init__(self, manager: Manager):
        self.manager = manager
        # Transactions whose requested jobs are done but whose pulled-in jobs still run.
        self._background: set[asyncio.Future] = set()

    def _closure(self, names: list[str]) -> dict[str, UnitRuntime]:
        found: dict[str, UnitRuntime] = {}
        queue = list(names)
        while queue:
            name = queue.pop(0)
            if name in found:
                continue
            runtime = self.manager.runtime(name)
            if runtime is None or runtime.unit.load_state != "loaded":
                if name in names:
                    log.warning("cannot start %s: the unit is not loaded", name)
                continue
            found[name] = runtime
            queue.extend(_deps(runtime, PULL_IN))
        return found

    def _order_edges(self, units: dict[str, UnitRuntime],
                     cycles_out: list[list[str]] | None = None) -> dict[str, set[str]]:
        """unit -> the units in the set it must wait for (After= and the other's Before=)."""
        edges: dict[str, set[str]] = {name: set() for name in units}
        lookup = {name: runtime.unit for name, runtime in units.items()}
        for name, runtime in units.items():
            after = [*dependencies(runtime.unit, "After"), *target_member_order(runtime.unit, lookup)]
            for other in after:
                if other in units and other != name:
                    edges[name].add(other)
            for other in dependencies(runtime.unit, "Before"):
                if other in units and other != name:
                    edges[other].add(name)
        for cycle in find_cycles(edges):
            log.error("found an ordering cycle between %s; ignoring the ordering between them to break it",
                      ", ".join(cycle))
            self.manager.report_cycle(cycle)
            if cycles_out is not None:
                cycles_out.append(cycle)
            for member in cycle:
                edges[member] -= set(cycle)
        return edges

    def _conflicting(self, units: dict[str, UnitRuntime]) -> dict[str, UnitRuntime]:
        """Units outside `units` that must stop first: Conflicts= in either direction."""
        names: set[str] = set()
        for name, runtime in units.items():
            names.update(dependencies(runtime.unit, "Conflicts"))
            names.update(other.name for other in self.manager.reverse_deps.dependents(name, ("Conflicts",)))
        found = {}
        for name in names - set(units):
            runtime = self.manager.runtimes.get(name)
            if runtime is not None and (runtime.active_state not in _INACTIVE or runtime.job is not None):
                found[name] = runtime
        return found

    async def start(self, names: list[str], cycles_out: list[list[str]] | None = None,
                    stops_seen: dict[str, int] | None = None) -> dict[str, str]:
        """Start `names` and the units they pull in.

        A stop requested for a unit after `stops_seen` counted its stop requests
        (by default: now) cancels that unit's start."""
        units = self._closure(names)
        conflicting = self._conflicting(units)
        if conflicting:
            log.info("stopping %s: conflicts with the units being started", ", ".join(sorted(conflicting)))
            await self.stop_set(conflicting)
        edges = self._order_edges(units, cycles_out)
        futures: dict[str, asyncio.Future[str]] = {
            name: self.manager.loop.create_future() for name in units
        }
        counted_before = stops_seen or {}
        stops_seen = {name: counted_before.get(name, runtime.stop_requests) for name, runtime in units.items()}

        async def start_one(name: str) -> None:
            try:
                result = await self._start_one(units[name], edges[name], futures, units, stops_seen[name])
            except Exception:
                log.exception("start of %s failed", name)
                result = "failed"
            futures[name].set_result(result)

        everything = asyncio.ensure_future(asyncio.gather(*(start_one(name) for name in units)))
        self._background.add(everything)
        everything.add_done_callback(self._background.discard)
        if len(units) >= BULK_START_UNITS:
            # Spawning comes first; the units' MANAGER lines are stored after (logstore.py).
            self._hold_manager_lines(everything, len(units))
        # Reply once the requested units' jobs are done. Pulled-in units may still be starting.
        requested = [futures[name] for name in names if name in futures]
        if requested:
            await asyncio.wait(requested)
        else:
            await asyncio.shield(everything)
        return {name: future.result() for name, future in futures.items() if future.done()}

    def _hold_manager_lines(self, everything: asyncio.Future, count: int) -> None:
        """Hold the manager's log lines until `everything` is done, or for logstore.HOLD_SECONDS if that comes first.

        A start that never finishes (Type=notify without READY=1 and with
        TimeoutStartSec=infinity) would otherwise hold every later line of
        every unit for as long as the manager runs."""
        logs = self.manager.logs
        logs.hold_messages()
        released = False

        def release(_done: object = None) -> None:
            nonlocal released
            if released:
                return
            released = True
            timer.cancel()
            everything.remove_done_callback(release)
            if not everything.done():
                log.debug("storing the manager's held lines: the start of %d units still runs after %g s",
                          count, logstore.HOLD_SECONDS)
            logs.release_messages()

        timer = self.manager.loop.call_later(logstore.HOLD_SECONDS, release)
        everything.add_done_callback(release)

    async def _start_one(self, runtime: UnitRuntime, befores: set[str], futures: dict[str, asyncio.Future[str]],
                         units: dict[str, UnitRuntime], stops_seen: int) -> str:
        result = "done"
        hard = _deps(runtime, HARD_DEPS)
        for before in befores:
            dep_result = await asyncio.shield(futures[before])
            if before in hard and dep_result not in ("done", "skipped"):
                result = "dependency"
        await self._wait_outside_jobs(runtime, units)
        for requisite in dependencies(runtime.unit, "Requisite"):
            other = self.manager.runtimes.get(requisite)
            if requisite not in units and (other is None or other.active_state is not ActiveState.ACTIVE):
                log.warning("%s: Requisite=%s is not active", runtime.name, requisite)
                result = "dependency"
        if result != "done":
            log.warning("%s: start canceled because a required unit failed", runtime.name)
            return result
        if runtime.stop_requests != stops_seen:
            # A stop arrived while this start waited for its ordering: the stop wins.
            log.info("%s: start canceled by a stop request", runtime.name)
            return "canceled"
        return await run_unit_job(runtime, "start", runtime.run_start)

    async def _wait_outside_jobs(self, runtime: UnitRuntime, units: dict[str, UnitRuntime]) -> None:
        """Honour After= on units that another request is starting or stopping right now."""
        for name in dependencies(runtime.unit, "After"):
            if name in units:
                continue
            other = self.manager.runtimes.get(name)
            job = other.job if other is not None else None
            if job is not None and job.kind in ("start", "stop"):
                try:
                    await asyncio.shield(job.task)
                except (asyncio.CancelledError, Exception):  # noqa: BLE001 - only the ordering matters here
                    pass

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
            queue.extend(dependencies(runtime.unit, "PropagatesStopTo"))
            for other in self.manager.reverse_deps.dependents(name, STOP_PROPAGATION):
                if other.name not in found:
                    if other.active_state is not ActiveState.INACTIVE or other.job is not None:
                        queue.append(other.name)
        return found

    async def stop_set(self, units: dict[str, UnitRuntime], replace_start: bool = True) -> dict[str, str]:
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
            try:
                result = await run_unit_job(runtime, "stop", runtime.run_stop, replace_start)
            except Exception:
                log.exception("stop of %s failed", name)
                result = "failed"
            futures[name].set_result(result)

        await asyncio.gather(*(stop_one(name) for name in units))
        return {name: futures[name].result() for name in units}

    async def stop(self, names: list[str]) -> dict[str, str]:
        return await self.stop_set(self._dependents(names))

    async def restart(self, names: list[str], cycles_out: list[list[str]] | None = None) -> dict[str, str]:
        units = self._dependents(names)
        for runtime in units.values():
            runtime.restarting = True
        # A plain stop that arrives during the stop phase merges into it. The stop requests
        # are counted first, so the start phase detects that stop and gives way to it.
        stops_seen = {name: runtime.stop_requests for name, runtime in units.items()}
        await self.stop_set(units, replace_start=False)
        return await self.start(list(units), cycles_out, stops_seen)

    async def reload(self, names: list[str]) -> dict[str, str]:
        """Reload `names`, then the active units their reload propagates to, in that order."""
        results = {}
        queue = list(names)
        while queue:
            name = queue.pop(0)
            runtime = self.manager.runtimes.get(name)
            if name in results or runtime is None:
                continue
            if name not in names and (runtime.active_state is not ActiveState.ACTIVE or not runtime.can_reload()):
                continue
            results[name] = await run_unit_job(runtime, "reload", runtime.run_reload)
            queue.extend(dependencies(runtime.unit, "PropagatesReloadTo"))
            queue.extend(other.name for other in
                         self.manager.reverse_deps.dependents(name, ("ReloadPropagatedFrom",)))
        return results

    async def stop_all(self) -> None:
        running = {
            name: runtime
            for name, runtime in self.manager.runtimes.items()
            if runtime.active_state is not ActiveState.INACTIVE or runtime.job is not None
        }
        await self.stop_set(running)
