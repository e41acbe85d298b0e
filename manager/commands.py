"""The control commands the manager serves; result shapes are in docs/protocol.md."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from unitmgr.manager import protocol, supervisecommands
from unitmgr.manager.logquery import LogQuery, query_records
from unitmgr.manager.protocol import ProtocolError, Request
from unitmgr.manager.rowcache import EncodedRows
from unitmgr.manager.states import ActiveState
from unitmgr.manager.stats import unit_statistics
from unitmgr.manager.unitbase import UnitRuntime

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager
    from unitmgr.manager.server import Peer, Result

log = logging.getLogger(__name__)

MAX_LOG_LINES = 100_000


def _int_arg(args: dict[str, Any], key: str, default: int, minimum: int = 0) -> int:
    value = args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ProtocolError(protocol.BAD_REQUEST, f"'{key}' must be an integer >= {minimum}, not {value!r}")
    return value


def _scaler(manager: Manager) -> Any:  # scale.py: persisted instance counts, applied at boot
    from unitmgr.manager.scale import Scaler

    return Scaler(manager)


async def _list_sockets(manager: Manager, args: dict[str, Any]) -> dict[str, Any]:  # sockets.py
    from unitmgr.manager.sockets import list_sockets

    return await list_sockets(manager, args)


# The unit-file commands, by request name and UnitFileCommands method.
UNIT_FILE_COMMANDS = {"verify": "verify", "cat": "cat", "show": "show", "enable": "enable",
                      "disable": "disable", "is-enabled": "is_enabled", "list-unit-files": "list_unit_files"}


def _unit_file_commands(manager: Manager) -> dict[str, Any]:  # unitinfo.py
    """Return the unit-file commands; unitinfo.py and its imports load on the first such request, not at boot."""
    implementation: list[Any] = []

    def command(method: str) -> Callable[[dict[str, Any]], Any]:
        def run(args: dict[str, Any]) -> Any:
            if not implementation:
                from unitmgr.manager.unitinfo import UnitFileCommands

                implementation.append(UnitFileCommands(manager))
            return getattr(implementation[0], method)(args)

        return run

    return {name: command(method) for name, method in UNIT_FILE_COMMANDS.items()}


def _list_values(name: str, runtime: UnitRuntime) -> tuple[Any, ...]:
    """Return the `list` row of the unit listed as `name`, in the order of the list columns."""
    unit = runtime.unit
    return (name, unit.load_state, runtime.active_state.value, runtime.sub_state,
            unit.description, getattr(runtime, "main_pid", 0))


class CommandHandler:
    def __init__(self, manager: Manager):
        self.manager = manager
        self._list_rows = EncodedRows(
            ("name", "load_state", "active_state", "sub_state", "description", "main_pid"))
        # A command returns a coroutine, or the result itself when it needs no I/O (server.py).
        self.commands: dict[str, Callable[[dict[str, Any]], Awaitable[Result] | Result]] = {
            "hello": self.hello,
            "list": self.list_units,
            "status": self.status,
            "start": self.start,
            "stop": self.stop,
            "restart": self.restart,
            # try-restart, reload-or-restart, try-reload-or-restart: supervisecommands.py
            **{kind: (lambda args, kind=kind: supervisecommands.conditional_jobs(self, kind, args))
               for kind in supervisecommands.CONDITIONAL_JOBS},
            "reset-failed": self.reset_failed,
            "logs": self.logs,
            "exit": self.exit,
            "scale": _scaler(manager).scale,  # scale.py
            "list-sockets": lambda args: _list_sockets(self.manager, args),  # sockets.py
            "top": lambda args: self.manager.resources.top(args),  # resources.py
            "is-system-running": self.is_system_running,  # container.py
            "kill": lambda args: supervisecommands.kill(self, args),
            "reload": lambda args: supervisecommands.reload(self, args),
            "daemon-reload": lambda args: supervisecommands.daemon_reload_command(self, args),
            "is-active": lambda args: supervisecommands.is_active(self, args),
            **_unit_file_commands(manager),  # unitinfo.py: verify, cat, show, enable, ...
        }

    def handle(self, request: Request, peer: Peer) -> Awaitable[Result] | Result:
        command = self.commands.get(request.cmd)
        if command is None:
            known = ", ".join(sorted(self.commands))
            raise ProtocolError(protocol.UNKNOWN_COMMAND, f"unknown command '{request.cmd}'; known commands: {known}")
        log.debug("command %s from client %s", request.cmd, peer.key[:8])
        return command(request.args)

    # -- helpers ----------------------------------------------------------

    def _runtime_for_job(self, name: str) -> UnitRuntime:
        full = self.manager.resolve(name)
        if full.split("@", 1)[-1].startswith(".") and "@" in full:
            raise ProtocolError(
                protocol.REFUSED,
                f"Unit {full} is a template; name an instance such as {full.replace('@.', '@NAME.')}",
            )
        runtime = self.manager.runtime(full)
        if runtime is None or runtime.unit.load_state == "not-found":
            raise ProtocolError(protocol.UNIT_NOT_FOUND, f"Unit {full} not found.", {"unit": full})
        if runtime.unit.load_state == "masked":
            raise ProtocolError(protocol.UNIT_MASKED, f"Unit {full} is masked.", {"unit": full})
        if runtime.unit.load_state != "loaded":
            reason = runtime.unit.load_error or "see 'unitmgr verify'"
            raise ProtocolError(
                protocol.UNIT_BAD, f"Unit {full} has a bad unit file setting: {reason}", {"unit": full}
            )
        return runtime

    async def _jobs(self, kind: str, args: dict[str, Any]) -> dict[str, Any]:
        runtimes = [self._runtime_for_job(n) for n in protocol.arg_units(args)]
        for runtime in runtimes:
            supervisecommands.refuse_manual(runtime, kind)
        names = [runtime.name for runtime in runtimes]
        # Checked before the job runs, as systemctl warns about the definition the job used.
        changed = {runtime.name for runtime in runtimes if runtime.check_changed_on_disk()}
        cycles: list[list[str]] = []
        if kind == "stop":
            task = asyncio.ensure_future(self.manager.transactions.stop(names))
        else:
            task = asyncio.ensure_future(getattr(self.manager.transactions, kind)(names, cycles))
        if args.get("no_block"):
            return {"jobs": [supervisecommands.job_entry(n, kind, "queued", changed) for n in names]}
        results = await asyncio.shield(task)
        reply: dict[str, Any] = {
            "jobs": [supervisecommands.job_entry(n, kind, results.get(n, "done"), changed) for n in names]}
        if cycles:
            # Ordering cycles found and broken in this transaction, each naming every unit in it.
            reply["cycles"] = cycles
        return reply

    # -- commands ---------------------------------------------------------

    async def hello(self, args: dict[str, Any]) -> dict[str, Any]:
        return self.manager.hello()

    def list_units(self, args: dict[str, Any]) -> protocol.EncodedJSON | dict[str, Any]:
        show_all = bool(args.get("all"))
        states = args.get("states") or []
        types = args.get("types") or []
        entries = []
        listed_runtimes: list[UnitRuntime] = []
        loaded = self.manager.runtimes
        names = self.manager.known_names()
        for name in names:
            # known_names() returns full names, so a loaded unit needs no name resolution.
            runtime = loaded.get(name) or self.manager.runtime(name)
            if runtime is None:
                continue
            active = runtime.active_state
            if not show_all and active is ActiveState.INACTIVE and runtime.job is None and not states:
                continue
            if states and active.value not in states and runtime.sub_state not in states:
                continue
            unit = runtime.unit
            if types and unit.kind not in types:
                continue
            # The description comes from `unit`, which daemon-reload replaces and nothing edits.
            entries.append((name, (unit, unit.load_state, active, runtime.sub_state,
                                   getattr(runtime, "main_pid", 0))))
            listed_runtimes.append(runtime)
        if not args.get("table"):
            # A client of protocol 1 neither requests the table nor reads one.
            columns = self._list_rows.columns
            return {"units": [dict(zip(columns, _list_values(name, runtime), strict=True))
                              for (name, _stamp), runtime in zip(entries, listed_runtimes, strict=True)]}
        return self._list_rows.result(
            entries, lambda index: _list_values(entries[index][0], listed_runtimes[index]), names)

    async def status(self, args: dict[str, Any]) -> dict[str, Any]:
        names = protocol.arg_units(args)
        lines = _int_arg(args, "lines", 10)
        result = []
        for name in names:
            full = self.manager.resolve(name)
            runtime = self.manager.runtime(full)
            if runtime is None:
                result.append({"name": full, "load_state": "not-found", "active_state": "inactive",
                               "sub_state": "dead", "description": "", "log": []})
                continue
            data = runtime.status()
            if self.manager.resources is not None:  # statistics and limits: resources.py
                data.update(self.manager.resources.status_fields(runtime))
            else:
                data.update(unit_statistics(runtime.members()))
            data["enablement"] = self.manager.enablement(full)
            # In status, -n 0 means no log lines, as with systemctl.
            data["log"] = self._log_records([full], lines, raw=False) if lines else []
            data.update(self.manager.logs.status_fields(full))  # log_write_errors, log_reopened
            result.append(data)
        return {"units": result}

    async def start(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self._jobs("start", args)

    async def stop(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self._jobs("stop", args)

    async def restart(self, args: dict[str, Any]) -> dict[str, Any]:
        return await self._jobs("restart", args)

    async def reset_failed(self, args: dict[str, Any]) -> dict[str, Any]:
        names = protocol.arg_units(args, required=False)
        if not names:
            targets = list(self.manager.runtimes.values())
        else:
            targets = []
            for name in names:
                full = self.manager.resolve(name)
                runtime = self.manager.runtime(full)
                if runtime is None:
                    # systemctl's wording for a unit that is not loaded; no unit is reset.
                    raise ProtocolError(
                        protocol.UNIT_NOT_FOUND,
                        f"Failed to reset failed state of unit {full}: Unit {full} not loaded.",
                        {"unit": full})
                targets.append(runtime)
        for runtime in targets:
            runtime.reset_failed()
        return {}

    async def logs(self, args: dict[str, Any]) -> dict[str, Any]:
        # Arguments and result: manager/logquery.py and docs/logs.md.
        names = [self.manager.resolve(n) for n in protocol.arg_units(args)]
        query = LogQuery.from_args(args, default_lines=10)
        return query_records(self.manager.logs, names, query)

    async def is_system_running(self, args: dict[str, Any]) -> dict[str, Any]:
        from unitmgr.manager.container import system_state

        failed = sorted(r.name for r in self.manager.runtimes.values() if r.active_state.value == "failed")
        return {"state": system_state(self.manager), "failed_units": failed}

    async def exit(self, args: dict[str, Any]) -> dict[str, Any]:
        # Reply first, then stop: the client is waiting for this answer.
        self.manager.loop.call_later(0.05, self.manager.request_shutdown)
        return {"stopping": True}

    def _log_records(self, names: list[str], lines: int, raw: bool) -> list[dict[str, Any]]:
        # As with `systemctl status -n 0`, 0 means no lines (for `logs` it means all).
        if lines == 0:
            return []
        # Limited in size like `logs`, so a status reply stays below the message cap.
        return query_records(self.manager.logs, names, LogQuery(lines=lines, raw=raw))["records"]
