"""The reverse of the dependency lists: which loaded units name a unit under a key.

Stopping a unit must find the units that are BindsTo=, Requires= or PartOf=
it, and StopWhenUnneeded= must find the running units that still need it.
Scanning every runtime for that made each state change cost O(N) and
stopping N units O(N^2). `ReverseDependencies` keeps, per key and per named
unit, the runtimes whose `dependencies(unit, key)` list that name. It is
updated when a runtime is created and when `daemon-reload` gives a runtime a
new definition. A runtime removed from the manager is dropped by the next
lookup that meets it, or by a sweep once removed runtimes could outnumber
the live ones.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, NamedTuple

from unitmgr.manager.deps import dependencies

if TYPE_CHECKING:
    from unitmgr.manager.unitbase import UnitRuntime
    from unitmgr.units.model import Unit

# Every key some reverse lookup needs: stop propagation (jobs.py), reload
# propagation, Conflicts=, and the reactions in deps.py.
INDEXED_KEYS = ("Requires", "Requisite", "Wants", "BindsTo", "PartOf", "Upholds", "Conflicts",
                "StopPropagatedFrom", "ReloadPropagatedFrom")
# Removed runtimes kept beyond the live ones before a sweep drops them (socket
# instances with Accept=yes come and go with each connection).
SWEEP_SLACK = 64


class _Indexed(NamedTuple):
    """The index entry of one runtime: its key in the manager's dict, the definition indexed, and its rank."""

    key: str
    unit: Unit
    order: int


class ReverseDependencies:
    """Runtimes by the names their dependency lists contain, kept in step with `runtimes`."""

    def __init__(self, runtimes: dict[str, UnitRuntime]) -> None:
        # The manager's own dict: lookups check against it, so a removed runtime is never returned.
        self._runtimes = runtimes
        # dependency key -> named unit -> the runtimes that list it (a dict as an ordered set).
        self._entries: dict[str, dict[str, dict[UnitRuntime, None]]] = {key: {} for key in INDEXED_KEYS}
        self._indexed: dict[UnitRuntime, _Indexed] = {}
        # Results come in the order the runtimes were created, as a scan of the manager's dict gives.
        self._counter = itertools.count()

    def update(self, runtime: UnitRuntime, key: str | None = None) -> None:
        """Index `runtime` under its current definition, replacing what it contributed before.

        `key` is the name the manager stores the runtime under; by default the
        one given before, or else the runtime's name.
        """
        previous = self._forget(runtime)
        if key is None:
            key = previous.key if previous is not None else runtime.name
        order = previous.order if previous is not None else next(self._counter)
        for dep_key in INDEXED_KEYS:
            for target in dependencies(runtime.unit, dep_key):
                self._entries[dep_key].setdefault(target, {})[runtime] = None
        self._indexed[runtime] = _Indexed(key, runtime.unit, order)
        if len(self._indexed) > 2 * len(self._runtimes) + SWEEP_SLACK:
            self._sweep()

    def dependents(self, name: str, keys: tuple[str, ...]) -> list[UnitRuntime]:
        """Return the runtimes in the manager that list `name` under any of `keys`, each once."""
        found: dict[UnitRuntime, int] = {}
        stale: dict[UnitRuntime, str] = {}
        for dep_key in keys:
            for runtime in self._entries[dep_key].get(name, ()):
                indexed = self._indexed[runtime]
                if self._runtimes.get(indexed.key) is not runtime:
                    # Removed from the manager (daemon-reload, a collected socket instance).
                    stale[runtime] = indexed.key
                elif runtime.unit is not indexed.unit:
                    # Given another definition without update(): index it again below.
                    stale[runtime] = indexed.key
                else:
                    found[runtime] = indexed.order
        for runtime, key in stale.items():
            self._forget(runtime)
            if self._runtimes.get(key) is not runtime:
                continue
            self.update(runtime, key)
            if any(name in dependencies(runtime.unit, dep_key) for dep_key in keys):
                found[runtime] = self._indexed[runtime].order
        return sorted(found, key=found.__getitem__)

    def _sweep(self) -> None:
        """Drop every runtime the manager no longer has (each sweep follows N new entries)."""
        for runtime, indexed in list(self._indexed.items()):
            if self._runtimes.get(indexed.key) is not runtime:
                self._forget(runtime)

    def _forget(self, runtime: UnitRuntime) -> _Indexed | None:
        indexed = self._indexed.pop(runtime, None)
        if indexed is None:
            return None
        # The lists are computed again from the indexed definition rather than stored: less memory per unit.
        for dep_key in INDEXED_KEYS:
            for target in dependencies(indexed.unit, dep_key):
                runtimes = self._entries[dep_key].get(target)
                if runtimes is None:
                    continue
                runtimes.pop(runtime, None)
                if not runtimes:
                    del self._entries[dep_key][target]
        return indexed
