"""Unit states and the restart rules that decide what follows an exit.

ActiveState and SubState carry systemd's names because users read them in
`status` and scripts compare them. The restart decision is systemd's table,
applied in systemd's order of overrides.
"""

from __future__ import annotations

import signal
from enum import StrEnum

from unitmgr.manager.reaper import ExitStatus
from unitmgr.units.model import ExitStatusSet


class ActiveState(StrEnum):
    INACTIVE = "inactive"
    ACTIVATING = "activating"
    ACTIVE = "active"
    RELOADING = "reloading"
    DEACTIVATING = "deactivating"
    FAILED = "failed"


# Why a service's main or control process ended; one column of the Restart= table.
class ExitCause(StrEnum):
    CLEAN = "clean"
    UNCLEAN_CODE = "unclean-code"
    UNCLEAN_SIGNAL = "unclean-signal"
    TIMEOUT = "timeout"
    WATCHDOG = "watchdog"


RESTART_TABLE: dict[str, frozenset[ExitCause]] = {
    "no": frozenset(),
    "always": frozenset(ExitCause),
    "on-success": frozenset({ExitCause.CLEAN}),
    "on-failure": frozenset(
        {ExitCause.UNCLEAN_CODE, ExitCause.UNCLEAN_SIGNAL, ExitCause.TIMEOUT, ExitCause.WATCHDOG}
    ),
    "on-abnormal": frozenset({ExitCause.UNCLEAN_SIGNAL, ExitCause.TIMEOUT, ExitCause.WATCHDOG}),
    "on-abort": frozenset({ExitCause.UNCLEAN_SIGNAL}),
    "on-watchdog": frozenset({ExitCause.WATCHDOG}),
}

# Death by these signals is a clean exit for every type except oneshot.
CLEAN_SIGNALS = frozenset({signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGPIPE})


def in_status_set(status: ExitStatus, statuses: ExitStatusSet | None) -> bool:
    if statuses is None:
        return False
    if status.code == "exited":
        return status.status in statuses.codes
    return status.status in statuses.signals


def classify_exit(status: ExitStatus, service_type: str, success: ExitStatusSet | None) -> ExitCause:
    if in_status_set(status, success):
        return ExitCause.CLEAN
    if status.code == "exited":
        return ExitCause.CLEAN if status.status == 0 else ExitCause.UNCLEAN_CODE
    if service_type != "oneshot" and status.code == "killed" and status.status in CLEAN_SIGNALS:
        return ExitCause.CLEAN
    return ExitCause.UNCLEAN_SIGNAL


def result_for(cause: ExitCause, status: ExitStatus | None) -> str:
    """systemd's Result= for an exit cause."""
    if cause is ExitCause.CLEAN:
        return "success"
    if cause is ExitCause.UNCLEAN_CODE:
        return "exit-code"
    if cause is ExitCause.TIMEOUT:
        return "timeout"
    if cause is ExitCause.WATCHDOG:
        return "watchdog"
    if status is not None and status.code == "dumped":
        return "core-dump"
    return "signal"


def should_restart(
    restart: str,
    cause: ExitCause,
    status: ExitStatus | None,
    prevent: ExitStatusSet | None,
    force: ExitStatusSet | None,
    service_type: str,
) -> bool:
    """Apply systemd's restart rules (a manager-caused stop is handled by the caller)."""
    if status is not None and in_status_set(status, prevent):
        return False
    if status is not None and in_status_set(status, force):
        return not (service_type == "oneshot" and cause is ExitCause.CLEAN)
    return cause in RESTART_TABLE.get(restart, frozenset())


def restart_delay(attempt: int, base: float, steps: int, maximum: float) -> float:
    """Delay before the `attempt`-th consecutive automatic restart (RestartSteps= back-off)."""
    if attempt <= 1 or steps <= 0 or base <= 0 or maximum == float("inf") or base >= maximum:
        return base
    if attempt > steps:
        return maximum
    return base * (maximum / base) ** ((attempt - 1) / steps)


EXIT_STATUS_NAMES = {
    0: "SUCCESS", 1: "FAILURE", 2: "INVALIDARGUMENT", 3: "NOTIMPLEMENTED", 4: "NOPERMISSION",
    5: "NOTINSTALLED", 6: "NOTCONFIGURED", 7: "NOTRUNNING", 64: "USAGE", 65: "DATAERR",
    66: "NOINPUT", 67: "NOUSER", 68: "NOHOST", 69: "UNAVAILABLE", 70: "SOFTWARE", 71: "OSERR",
    72: "OSFILE", 73: "CANTCREAT", 74: "IOERR", 75: "TEMPFAIL", 76: "PROTOCOL", 77: "NOPERM",
    78: "CONFIG", 200: "CHDIR", 201: "NICE", 202: "FDS", 203: "EXEC", 204: "MEMORY",
    205: "LIMITS", 206: "OOM_ADJUST", 207: "SIGNAL_MASK", 208: "STDIN", 209: "STDOUT",
    211: "IOPRIO", 214: "SETSCHEDULER", 215: "CPUAFFINITY", 219: "CGROUP", 220: "SETSID", 222: "STDERR",
}


def status_name(status: ExitStatus) -> str:
    """systemd's name for an exit: 'FAILURE' for exit 1, 'TERM' for SIGTERM."""
    if status.code == "exited":
        return EXIT_STATUS_NAMES.get(status.status, "")
    try:
        return signal.Signals(status.status).name.removeprefix("SIG")
    except ValueError:
        return str(status.status)
