"""The control commands for supervision: kill, reload, daemon-reload, is-active, and the
conditional jobs try-restart, reload-or-restart and try-reload-or-restart.

Result shapes are in docs/protocol.md. `daemon-reload` re-reads every unit
file with a fresh loader: a running unit keeps its processes and uses the
new definition from its next start on; a unit whose file is gone keeps
running on its old definition until it is stopped on request.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import TYPE_CHECKING, Any

from unitmgr.manager import protocol
from unitmgr.manager.protocol import ProtocolError
from unitmgr.manager.states import ActiveState
from unitmgr.units.loader import UnitLoader

if TYPE_CHECKING:
    from unitmgr.manager.commands import CommandHandler
    from unitmgr.manager.daemon import Manager
    from unitmgr.manager.unitbase import UnitRuntime

log = logging.getLogger(__name__)

KILL_WHOM = ("main", "control", "all")


def parse_signal(value: Any) -> int:
    """Return the number for 15, "15", "TERM" or "SIGTERM", or raise a ProtocolError naming the value."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isdigit():
        number = int(value)
    elif isinstance(value, str):
        name = value.upper()
        name = name if name.startswith("SIG") else "SIG" + name
        try:
            return int(signal.Signals[name])
        except KeyError:
            raise ProtocolError(protocol.BAD_REQUEST,
                                f"unknown signal {value!r}; use a name such as TERM or HUP, or a number") from None
    else:
        raise ProtocolError(protocol.BAD_REQUEST, f"'signal' must be a signal name or number, not {value!r}")
    if number not in {int(s) for s in signal.valid_signals()} or number == 0:
        raise ProtocolError(protocol.BAD_REQUEST, f"invalid signal number {number}")
    return number


def refuse_manual(runtime: UnitRuntime, kind: str) -> None:
    """Reject a request that names a unit with RefuseManualStart=/RefuseManualStop= for that job."""
    keys = {"start": ("RefuseManualStart",), "stop": ("RefuseManualStop",),
            "restart": ("RefuseManualStart", "RefuseManualStop")}.get(kind, ())
    for key in keys:
        if runtime.unit.get("Unit", key):
            verb = "start" if key == "RefuseManualStart" else "stop"
            raise ProtocolError(
                protocol.REFUSED,
                f"Operation refused, unit {runtime.name} may be requested by dependency only "
                f"(it is configured to refuse manual {verb}).",
                {"unit": runtime.name},
            )


async def kill(handler: CommandHandler, args: dict[str, Any]) -> dict[str, Any]:
    from unitmgr.manager.service import ServiceRuntime
    from unitmgr.manager.servicestop import send_signal

    signum = parse_signal(args.get("signal", "SIGTERM"))
    whom = args.get("whom", "all")
    if whom not in KILL_WHOM:
        raise ProtocolError(protocol.BAD_REQUEST, f"'whom' must be one of {', '.join(KILL_WHOM)}, not {whom!r}")
    results = []
    for name in protocol.arg_units(args):
        runtime = handler._runtime_for_job(name)
        if not isinstance(runtime, ServiceRuntime):
            raise ProtocolError(protocol.NOT_APPLICABLE, f"Unit {runtime.name} has no processes to signal.")
        if whom == "main" and not runtime.main_pid:
            raise ProtocolError(protocol.NOT_APPLICABLE, f"No main process to kill for {runtime.name}.",
                                {"unit": runtime.name})
        pids = send_signal(runtime, signum, whom)
        results.append({"unit": runtime.name, "signal": signal.Signals(signum).name, "pids": pids})
    return {"units": results}


async def reload(handler: CommandHandler, args: dict[str, Any]) -> dict[str, Any]:
    runtimes = [handler._runtime_for_job(name) for name in protocol.arg_units(args)]
    for runtime in runtimes:
        if not runtime.can_reload():
            raise ProtocolError(protocol.NOT_APPLICABLE,
                                f"Job type reload is not applicable for unit {runtime.name}.",
                                {"unit": runtime.name})
        if runtime.active_state not in (ActiveState.ACTIVE, ActiveState.RELOADING) and runtime.job is None:
            raise ProtocolError(protocol.REFUSED, f"Unit {runtime.name} is not active, cannot reload.",
                                {"unit": runtime.name})
    names = [runtime.name for runtime in runtimes]
    changed = {runtime.name for runtime in runtimes if runtime.check_changed_on_disk()}
    results = await handler.manager.transactions.reload(names)
    return {"jobs": [job_entry(n, "reload", results.get(n, "done"), changed) for n in names]}


def daemon_reload(manager: Manager) -> dict[str, Any]:
    manager.loader = UnitLoader(manager.unit_dirs, manager.context, manager.loader.defaults)
    reloaded, removed, kept = [], [], []
    for name, runtime in list(manager.runtimes.items()):
        unit = manager.loader.load(name)
        if unit.load_state == "not-found" and not unit.diagnostics:
            if runtime.active_state in (ActiveState.INACTIVE, ActiveState.FAILED) and runtime.job is None:
                del manager.runtimes[name]
                removed.append(name)
            else:
                # It keeps running on the old definition until a stop is requested.
                runtime.changed_on_disk = True
                kept.append(name)
            continue
        runtime.reload_definition(unit)
        reloaded.append(name)
        for diagnostic in unit.diagnostics:
            log.warning("%s", diagnostic)
    log.info("reloaded %d unit(s); %d removed; %d running without a unit file: %s",
             len(reloaded), len(removed), len(kept), ", ".join(kept) or "none")
    return {"reloaded": sorted(reloaded), "removed": sorted(removed), "running_without_file": sorted(kept)}


async def daemon_reload_command(handler: CommandHandler, args: dict[str, Any]) -> dict[str, Any]:
    return daemon_reload(handler.manager)


async def is_active(handler: CommandHandler, args: dict[str, Any]) -> dict[str, Any]:
    states = []
    for name in protocol.arg_units(args):
        full = handler.manager.resolve(name)
        runtime = handler.manager.runtime(full)
        state = runtime.active_state.value if runtime is not None else "inactive"
        states.append({"unit": full, "active_state": state})
    return {"units": states}


# The conditional job verbs of systemctl, served without a transaction kind of their own:
# each unit gets a plain restart or reload job, or none.
CONDITIONAL_JOBS = ("try-restart", "reload-or-restart", "try-reload-or-restart")

_RUNNING_STATES = (ActiveState.ACTIVE, ActiveState.RELOADING, ActiveState.ACTIVATING)


def job_entry(unit: str, job: str, result: str, changed: set[str]) -> dict[str, Any]:
    """Return one entry of a job reply; `changed_on_disk` is set only for units in `changed`."""
    entry: dict[str, Any] = {"unit": unit, "job": job, "result": result}
    if unit in changed:
        entry["changed_on_disk"] = True
    return entry


def plan_conditional_job(runtime: UnitRuntime, kind: str) -> str:
    """Return the job `kind` means for `runtime`: "restart", "reload", or "" for no job.

    As systemctl: the try- verbs leave a unit that is not running alone, and
    reload-or-restart reloads a running unit that supports reloading and
    restarts (or starts) any other."""
    running = runtime.active_state in _RUNNING_STATES or runtime.job is not None
    if kind.startswith("try-") and not running:
        return ""
    if kind.endswith("reload-or-restart") and running and runtime.can_reload():
        return "reload"
    return "restart"


async def conditional_jobs(handler: CommandHandler, kind: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run try-restart, reload-or-restart or try-reload-or-restart on the named units."""
    runtimes = [handler._runtime_for_job(name) for name in protocol.arg_units(args)]
    plan = {runtime.name: plan_conditional_job(runtime, kind) for runtime in runtimes}
    for runtime in runtimes:
        if plan[runtime.name]:
            refuse_manual(runtime, plan[runtime.name])
    changed = {runtime.name for runtime in runtimes if plan[runtime.name] and runtime.check_changed_on_disk()}
    restarts = [name for name, job in plan.items() if job == "restart"]
    reloads = [name for name, job in plan.items() if job == "reload"]
    results = {name: "skipped" for name, job in plan.items() if not job}

    async def run_all() -> dict[str, str]:
        done: dict[str, str] = {}
        cycles: list[list[str]] = []
        if reloads:
            done.update(await handler.manager.transactions.reload(reloads))
        if restarts:
            done.update(await handler.manager.transactions.restart(restarts, cycles))
        return done

    task = asyncio.ensure_future(run_all())
    if args.get("no_block"):
        results.update({name: "queued" for name in [*reloads, *restarts]})
    else:
        results.update(await asyncio.shield(task))
    log.info("%s: restart %s, reload %s, skipped (not running) %s", kind, restarts or "none",
             reloads or "none", [name for name, job in plan.items() if not job] or "none")
    return {"jobs": [job_entry(name, plan[name] or kind, results.get(name, "done"), changed) for name in plan]}
