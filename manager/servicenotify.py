"""The effects of a service's sd_notify messages, its watchdog, and `reload`.

Access: `NotifyAccess=` decides which of the unit's processes may send
(none, main, exec = main or a control process, all = any process of the
unit). Unset, it is `main` for Type=notify and notify-reload and whenever
WatchdogSec= is set, else `none`, as in systemd.

Watchdog: with WatchdogSec= > 0 the main process gets WATCHDOG_USEC (and
WATCHDOG_PID); the deadline starts when the service becomes active and every
`WATCHDOG=1` moves it. When it passes, or on `WATCHDOG=trigger`, the main
process gets WatchdogSignal= (SIGABRT), then after TimeoutAbortSec= (else
TimeoutStopSec=) every process of the unit gets FinalKillSignal=; the
result is `watchdog`.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from typing import TYPE_CHECKING

from unitmgr.manager.notify import NotifyMessage
from unitmgr.manager.states import ActiveState, ExitCause
from unitmgr.manager.timeouts import Deadline, effective_timeout

if TYPE_CHECKING:
    from unitmgr.manager.service import ServiceRuntime

log = logging.getLogger(__name__)

NOTIFY_TYPES = ("notify", "notify-reload")


def notify_access(service: ServiceRuntime) -> str:
    if service.notify_access_override:
        return service.notify_access_override
    configured = service.setting("NotifyAccess")
    if configured:
        return configured
    if service.service_type in NOTIFY_TYPES or _watchdog_seconds(service) > 0:
        return "main"
    return "none"


def _watchdog_seconds(service: ServiceRuntime) -> float:
    if service.watchdog_override is not None:
        return service.watchdog_override
    return service.setting("WatchdogSec") or 0.0


def sender_allowed(service: ServiceRuntime, pid: int) -> bool:
    access = notify_access(service)
    if access == "all":
        return True
    if access == "exec":
        return pid == service.main_pid or pid in service.control_pids
    if access == "main":
        return pid == service.main_pid
    return False


def _parse_usec(service: ServiceRuntime, key: str, value: str) -> float | None:
    try:
        usec = int(value)
    except ValueError:
        log.warning("%s: ignoring %s=%r: not a number of microseconds", service.name, key, value)
        return None
    if usec < 0:
        log.warning("%s: ignoring negative %s=%s", service.name, key, value)
        return None
    return usec / 1_000_000


class Watchdog:
    """The watchdog timer of one invocation of a service."""

    def __init__(self, service: ServiceRuntime):
        self.service = service
        self._handle: asyncio.TimerHandle | None = None
        self.fired = False
        # WATCHDOG=trigger that arrived while the start was still finishing.
        self._pending = ""

    def arm(self) -> None:
        self.disarm()
        if self._pending:
            self.expire(self._pending)
            return
        seconds = _watchdog_seconds(self.service)
        if seconds <= 0 or seconds == float("inf"):
            return
        self._handle = self.service.manager.loop.call_later(seconds, self.expire, "timeout")

    def disarm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def expire(self, why: str) -> None:
        service = self.service
        self._handle = None
        if service.active_state is ActiveState.ACTIVATING and why == "trigger":
            # READY=1 was seen but the unit is not marked running yet: fire once it is.
            self._pending = why
            return
        self._pending = ""
        if self.fired or service.active_state not in (ActiveState.ACTIVE, ActiveState.RELOADING):
            return
        self.fired = True
        if why == "timeout":
            log.error("%s: watchdog timeout (limit %gs)!", service.name, _watchdog_seconds(service))
        else:
            log.error("%s: watchdog triggered by the service (WATCHDOG=trigger)", service.name)
        service.forced_result = ("watchdog", ExitCause.WATCHDOG)
        signum = service.setting("WatchdogSignal") or signal.SIGABRT
        asyncio.ensure_future(self._abort(signum))

    async def _abort(self, signum: int) -> None:
        from unitmgr.manager.servicestop import send_signal

        service = self.service
        exited = service.main_exited
        if not service.main_pid or exited is None:
            send_signal(service, signal.SIGKILL, "all")
            return
        send_signal(service, signum, "main")
        abort = service.setting("TimeoutAbortSec")
        if abort is None:
            abort = service.setting("TimeoutStopSec")
        deadline = Deadline(abort)
        service.deadline = deadline
        try:
            await deadline.run(asyncio.shield(exited))
        except TimeoutError:
            final = service.setting("FinalKillSignal") or signal.SIGKILL
            log.warning("%s: main process still running after TimeoutAbortSec=, killing the unit", service.name)
            send_signal(service, final, "all")
        finally:
            if service.deadline is deadline:
                service.deadline = None


def handle_message(service: ServiceRuntime, message: NotifyMessage) -> None:
    """Apply one accepted message's fields, in systemd's order."""
    fields = message.fields
    pid = message.sender.pid
    if "MAINPID" in fields:
        _set_main_pid(service, pid, fields["MAINPID"])
    if "STATUS" in fields:
        service.status_text = fields["STATUS"]
    if "ERRNO" in fields:
        try:
            service.status_errno = int(fields["ERRNO"])
        except ValueError:
            log.warning("%s: ignoring ERRNO=%r: not a number", service.name, fields["ERRNO"])
    if "NOTIFYACCESS" in fields and fields["NOTIFYACCESS"] in ("none", "main", "exec", "all"):
        service.notify_access_override = fields["NOTIFYACCESS"]
    if "EXTEND_TIMEOUT_USEC" in fields:
        seconds = _parse_usec(service, "EXTEND_TIMEOUT_USEC", fields["EXTEND_TIMEOUT_USEC"])
        if seconds is not None and service.deadline is not None:
            service.deadline.extend(seconds)
    if "WATCHDOG_USEC" in fields:
        seconds = _parse_usec(service, "WATCHDOG_USEC", fields["WATCHDOG_USEC"])
        if seconds is not None:
            service.watchdog_override = seconds
            service.watchdog.arm()
    _handle_state_fields(service, fields)
    watchdog = fields.get("WATCHDOG")
    if watchdog == "1":
        if service.active_state in (ActiveState.ACTIVE, ActiveState.RELOADING):
            service.watchdog.arm()
    elif watchdog == "trigger":
        service.watchdog.expire("trigger")


def _handle_state_fields(service: ServiceRuntime, fields: dict[str, str]) -> None:
    if fields.get("RELOADING") == "1":
        _on_reloading(service, fields.get("MONOTONIC_USEC", ""))
    if fields.get("STOPPING") == "1" and service.active_state is ActiveState.ACTIVE:
        log.info("%s: the service announced that it is stopping (STOPPING=1)", service.name)
        service.self_stopping = True
        service.set_state(ActiveState.DEACTIVATING, "stop")
    if fields.get("READY") == "1":
        _on_ready(service)


def _on_ready(service: ServiceRuntime) -> None:
    ready = service.ready
    if ready is not None and not ready.done():
        ready.set_result(None)
    if service.active_state is ActiveState.RELOADING and service.job is None:
        # A reload the service started itself (RELOADING=1 without a reload job).
        service.set_state(ActiveState.ACTIVE, "running")


def _on_reloading(service: ServiceRuntime, monotonic_usec: str) -> None:
    if monotonic_usec.isdigit() and service.reload_requested_at is not None:
        if int(monotonic_usec) / 1_000_000 < service.reload_requested_at:
            log.debug("%s: ignoring RELOADING=1 older than the reload request", service.name)
            return
    if service.active_state is ActiveState.ACTIVE:
        service.set_state(ActiveState.RELOADING, "reload-notify")
    # A following READY=1 finishes the reload.
    if service.ready is None or service.ready.done():
        service.ready = service.manager.loop.create_future()


def _set_main_pid(service: ServiceRuntime, sender: int, value: str) -> None:
    if not value.isdigit() or int(value) <= 1:
        log.warning("%s: ignoring MAINPID=%r: not a valid PID", service.name, value)
        return
    pid = int(value)
    if pid == service.main_pid:
        return
    if sender != service.main_pid and notify_access(service) != "all":
        log.warning("%s: ignoring MAINPID=%d from pid %d: only the main process may change it "
                    "unless NotifyAccess=all", service.name, pid, sender)
        return
    if pid not in service.members():
        log.warning("%s: ignoring MAINPID=%d: the process does not belong to the service", service.name, pid)
        return
    log.info("%s: main PID is now %d (MAINPID=)", service.name, pid)
    service.adopt_main(pid)


async def run_reload(service: ServiceRuntime) -> str:
    """Run the `reload` job: ExecReload= commands, or ReloadSignal= for Type=notify-reload."""
    if service.active_state is not ActiveState.ACTIVE:
        log.warning("%s: reload ignored: the unit is %s", service.name, service.active_state.value)
        return "failed"
    previous = service.sub_state
    try:
        if service.service_type == "notify-reload":
            await _reload_by_signal(service)
        else:
            service.set_state(ActiveState.RELOADING, "reload")
            for command in service.setting("ExecReload"):
                await Deadline(service.setting("TimeoutStartSec")).run(
                    service.run_control("ExecReload", command))
    except Exception as exc:  # noqa: BLE001 - a failed reload leaves the service running
        log.warning("%s: reload failed: %s", service.name, exc or type(exc).__name__)
        if service.active_state is ActiveState.RELOADING:
            service.set_state(ActiveState.ACTIVE, previous)
        return "failed"
    if service.active_state is ActiveState.RELOADING:
        service.set_state(ActiveState.ACTIVE, previous)
    return "done"


def can_reload(service: ServiceRuntime) -> bool:
    return service.service_type == "notify-reload" or bool(service.setting("ExecReload"))


async def _reload_by_signal(service: ServiceRuntime) -> None:
    from unitmgr.manager.servicestop import send_signal

    service.reload_requested_at = time.monotonic()
    service.ready = service.manager.loop.create_future()
    service.set_state(ActiveState.RELOADING, "reload-signal")
    send_signal(service, service.setting("ReloadSignal") or signal.SIGHUP, "main")
    timeout = effective_timeout(service.setting("TimeoutStartSec"))
    await Deadline(timeout).run(asyncio.shield(service.ready))
