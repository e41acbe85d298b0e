"""The manager's messages about a unit, written into the unit's log in systemd's words.

journalctl -u UNIT shows, next to the unit's output, what systemd did with
the unit: "Started Web server.", "web.service: Main process exited,
code=exited, status=1/FAILURE", "web.service: Scheduled restart job,
restart counter is at 3.". The manager writes the same lines into the
unit's log as the MANAGER stream (logstore.py), so `status` and `logs` show
them. The wording follows systemd 252's unit and service messages.

Differences from systemd: "Scheduled restart job" and the "Stopped" line
after it are written when the restart is scheduled, not when RestartSec=
has passed, and stop jobs write no "Stopping ..." line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from unitmgr.manager.states import ActiveState, status_name

if TYPE_CHECKING:
    from unitmgr.manager.reaper import ExitStatus
    from unitmgr.manager.unitbase import UnitRuntime


def write_unit_message(runtime: UnitRuntime, text: str) -> None:
    """Store one manager line in the log of `runtime`'s unit."""
    logs = getattr(runtime.manager, "logs", None)
    if logs is not None:  # test doubles of the manager have no log store
        logs.write_message(runtime.name, text)


def announce_main_exit(runtime: UnitRuntime, status: ExitStatus, result: str) -> None:
    """Write "Main process exited, ..." when the main process ended with a result other than success.

    systemd logs a successful exit at debug level only, and so does not show it."""
    if result == "success":
        return
    write_unit_message(runtime, f"{runtime.name}: Main process exited, code={status.code}, "
                                f"status={status.status}/{status_name(status) or status.status}")


def announce_state(runtime: UnitRuntime, old_active: ActiveState, old_sub: str) -> None:
    """Write the messages of a state change of `runtime` from (old_active, old_sub), if it has any."""
    # Most changes are between sub-states of one active state and have no message.
    if runtime.active_state is old_active and old_active is not ActiveState.ACTIVATING:
        return
    for text in state_messages(runtime, old_active, old_sub):
        write_unit_message(runtime, text)


def state_messages(runtime: UnitRuntime, old_active: ActiveState, old_sub: str) -> list[str]:
    """Return systemd's messages for the change of `runtime` from (old_active, old_sub) to its state now."""
    name = runtime.name
    kind = name.rpartition(".")[2]
    description = runtime.unit.description or name
    new, sub, result = runtime.active_state, runtime.sub_state, runtime.result

    if new is ActiveState.ACTIVATING and sub == "auto-restart":
        counter = getattr(runtime, "n_restarts", 0)
        return [*_failure_lines(name, result),
                f"{name}: Scheduled restart job, restart counter is at {counter}.",
                f"Stopped {description}."]

    if new is ActiveState.ACTIVATING:
        if old_active is ActiveState.ACTIVATING and old_sub != "auto-restart":
            return []
        return [f"Starting {description}..."] if kind in ("service", "mount", "swap") else []

    if new is ActiveState.RELOADING:
        return [f"Reloading {description}..."]

    if new is ActiveState.ACTIVE:
        if old_active is ActiveState.RELOADING:
            return [f"Reloaded {description}."]
        if sub == "exited" and _oneshot_remain(runtime) is not None:
            # A oneshot service "finishes"; without RemainAfterExit= it goes on to inactive at once.
            return [f"Finished {description}."] if _oneshot_remain(runtime) else []
        if kind == "target":
            return [f"Reached target {description}."]
        if kind == "socket":
            return [f"Listening on {description}."]
        return [f"Started {description}."]

    if new is ActiveState.INACTIVE and result == "success" and old_active is not ActiveState.FAILED:
        if kind == "target":
            return [f"Stopped target {description}."]
        if kind == "socket":
            return [f"Closed {description}."]
        deactivated = [f"{name}: Deactivated successfully."] if kind in ("service", "scope") else []
        verb = "Finished" if _oneshot_remain(runtime) is False else "Stopped"
        return [*deactivated, f"{verb} {description}."]

    if new is ActiveState.FAILED:
        lines = _failure_lines(name, result)
        # TODO: a start that fails through deactivating (ExecStopPost=, a killed oneshot) gets no
        # "Failed to start" line, because the state change does not distinguish it from a stop.
        if old_active is ActiveState.ACTIVATING or result == "start-limit-hit":
            lines.append(f"Failed to start {description}.")
        return lines
    return []


def _oneshot_remain(runtime: UnitRuntime) -> bool | None:
    """Return RemainAfterExit= of a Type=oneshot service, or None for any other unit."""
    if getattr(runtime, "service_type", None) != "oneshot":
        return None
    return bool(runtime.setting("RemainAfterExit"))  # type: ignore[attr-defined]


def _failure_lines(name: str, result: str) -> list[str]:
    if result == "success":
        return []
    lines = []
    if result == "start-limit-hit":
        lines.append(f"{name}: Start request repeated too quickly.")
    elif result == "oom-kill":
        lines.append(f"{name}: A process of this unit has been killed by the OOM killer.")
    lines.append(f"{name}: Failed with result '{result}'.")
    return lines
