"""The stop half of a service's life: ExecStop=, the kill sequence, ExecStopPost=.

Order, as systemd does it: ExecStop= commands (only when the start had
succeeded), then KillSignal= (RestartKillSignal= during a restart) with
SIGCONT and, with SendSIGHUP=yes, SIGHUP; then a wait of TimeoutStopSec= for
the processes KillMode= names; then FinalKillSignal= to the survivors (when
SendSIGKILL=yes); then ExecStopPost=; then a final kill of anything left
(KillMode=control-group and mixed only). The wait covers every remaining
process of the unit, not only the main one, also when the main process had
already exited before the stop began.

After a start timeout (TimeoutStartFailureMode=) or an ExecStop= timeout
(TimeoutStopFailureMode=), `abort` sends WatchdogSignal= first and waits
TimeoutAbortSec=, and `kill` sends FinalKillSignal= at once.
"""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING, Any

from unitmgr.manager import processes
from unitmgr.manager.killing import ProcessSet
from unitmgr.manager.states import ActiveState, status_name
from unitmgr.manager.timeouts import Deadline

if TYPE_CHECKING:
    from unitmgr.manager.service import ServiceRuntime

log = logging.getLogger(__name__)

# After FinalKillSignal= the kernel removes a process at once, so this only
# bounds the wait for a process stuck in uninterruptible sleep.
FINAL_KILL_WAIT = 5.0


def signal_name(signum: int) -> str:
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)


class StopSequence:
    """One stop of `service`, starting with Result=`result`."""

    def __init__(self, service: ServiceRuntime, result: str, run_exec_stop: bool,
                 failure_mode: str = "terminate"):
        self.service = service
        self.result = result
        self.run_exec_stop = run_exec_stop
        # TimeoutStartFailureMode= or TimeoutStopFailureMode= when a time limit led to this
        # stop: terminate (KillSignal=), abort (WatchdogSignal=, TimeoutAbortSec=) or kill.
        self.failure_mode = failure_mode

    @property
    def mode(self) -> str:
        return self.service.setting("KillMode") or "control-group"

    async def run(self) -> str:
        service = self.service
        service.set_state(ActiveState.DEACTIVATING, "stop")
        if self.run_exec_stop and service.started_ok:
            await self._exec_stop()
        await self._kill()
        # A pidfd reports an exit one loop iteration before the SIGCHLD handler runs, so reap
        # here: ExecStopPost= must see the main process's exit status.
        service.manager.reaper.reap()
        service.set_state(ActiveState.DEACTIVATING, "stop-post")
        for command in service.setting("ExecStopPost"):
            try:
                await self._bounded(service.run_control("ExecStopPost", command, self.stop_env()))
            except Exception as exc:  # noqa: BLE001 - a failed ExecStopPost= is logged, the stop goes on
                log.warning("%s: ExecStopPost= failed: %s", service.name, exc)
        await self._final_kill()
        return self.result

    def stop_env(self) -> dict[str, str]:
        """$SERVICE_RESULT, $EXIT_CODE and $EXIT_STATUS for ExecStop= and ExecStopPost=."""
        service = self.service
        env = {"SERVICE_RESULT": self.result}
        if service.main_pid:
            env["MAINPID"] = str(service.main_pid)
        last = service.main_exit
        if last is not None:
            env["EXIT_CODE"] = last.code
            env["EXIT_STATUS"] = str(last.status) if last.code == "exited" else status_name(last)
        return env

    async def _bounded(self, awaitable: Any) -> Any:
        deadline = Deadline(self.service.setting("TimeoutStopSec"))
        self.service.deadline = deadline
        try:
            return await deadline.run(awaitable)
        finally:
            self.service.deadline = None

    async def _exec_stop(self) -> None:
        service = self.service
        for command in service.setting("ExecStop"):
            try:
                await self._bounded(service.run_control("ExecStop", command, self.stop_env()))
            except TimeoutError:
                log.warning("%s: ExecStop= timed out after TimeoutStopSec=", service.name)
                self._set_failure("timeout")
                self.failure_mode = service.setting("TimeoutStopFailureMode") or "terminate"
                break
            except Exception as exc:  # noqa: BLE001 - the remaining ExecStop= are skipped, killing goes on
                log.warning("%s: ExecStop= failed (%s); skipping the remaining ExecStop= commands",
                            service.name, exc)
                break

    def _set_failure(self, result: str) -> None:
        if self.result == "success":
            self.result = result

    def _first_signal(self) -> int:
        service = self.service
        if self.failure_mode == "kill":
            return service.setting("FinalKillSignal") or signal.SIGKILL
        if self.failure_mode == "abort":
            return service.setting("WatchdogSignal") or signal.SIGABRT
        if service.restarting and service.setting("RestartKillSignal"):
            return service.setting("RestartKillSignal")
        return service.setting("KillSignal") or signal.SIGTERM

    async def _kill(self) -> None:
        service = self.service
        mode = self.mode
        if mode == "none":
            return
        procs = ProcessSet(service.manager.loop, service.name)
        try:
            procs.add(service.members())
            if not procs.pids:
                return
            main = service.main_pid
            first = procs.pids if mode == "control-group" else [p for p in procs.pids if p == main]
            signum = self._first_signal()
            service.set_state(ActiveState.DEACTIVATING, "stop-sigterm")
            log.info("%s: sending %s to %d process(es) (KillMode=%s)", service.name, signal_name(signum),
                     len(first), mode)
            self._send(procs, signum, first)
            gone = await self._wait(procs, first, mode)
            if not gone:
                await self._escalate(procs, mode)
        finally:
            procs.close()

    def _send(self, procs: ProcessSet, signum: int, pids: list[int]) -> None:
        procs.signal(signum, pids)
        if signum not in (signal.SIGKILL, signal.SIGCONT):
            procs.signal(signal.SIGCONT, pids)
        if self.service.setting("SendSIGHUP"):
            procs.signal(signal.SIGHUP, pids)

    async def _wait(self, procs: ProcessSet, first: list[int], mode: str) -> bool:
        """Wait TimeoutStopSec= for the processes KillMode= waits for, and return False when some are left."""
        timeout = self.service.setting("TimeoutStopSec")
        if self.failure_mode == "abort" and self.service.setting("TimeoutAbortSec") is not None:
            timeout = self.service.setting("TimeoutAbortSec")
        deadline = Deadline(timeout)
        self.service.deadline = deadline
        try:
            if mode == "process":
                waited = ProcessSet(self.service.manager.loop, self.service.name)
                waited.add(first)
                try:
                    await deadline.run(waited.wait_empty(float("inf")))
                finally:
                    waited.close()
                return True
            if mode == "mixed":
                waited = ProcessSet(self.service.manager.loop, self.service.name)
                waited.add(first)
                try:
                    await deadline.run(waited.wait_empty(float("inf")))
                finally:
                    waited.close()
                # The main process is gone: the rest gets the final signal at once.
                return not procs.pids
            await deadline.run(procs.wait_empty(float("inf")))
            return True
        except TimeoutError:
            return False
        finally:
            self.service.deadline = None

    async def _escalate(self, procs: ProcessSet, mode: str) -> None:
        service = self.service
        if mode != "process":
            procs.add(service.members())
        targets = procs.pids if mode != "process" else [p for p in procs.pids if p == service.main_pid]
        if not targets:
            return
        if not service.setting("SendSIGKILL"):
            log.warning("%s: %d process(es) left running after TimeoutStopSec= (SendSIGKILL=no)",
                        service.name, len(targets))
            return
        final = service.setting("FinalKillSignal") or signal.SIGKILL
        if mode != "mixed" or service.main_pid in targets:
            log.warning("%s: processes %s still running after TimeoutStopSec=%gs, sending %s", service.name,
                        sorted(targets), service.setting("TimeoutStopSec"), signal_name(final))
            # systemd's result even for a requested stop: the unit ends failed (Result: timeout).
            self._set_failure("timeout")
        service.set_state(ActiveState.DEACTIVATING, "stop-sigkill")
        procs.signal(final, targets)
        await procs.wait_empty(FINAL_KILL_WAIT)

    async def _final_kill(self) -> None:
        """Kill what ExecStopPost= or a detached process left behind (final-sigterm/final-sigkill)."""
        service = self.service
        if self.mode not in ("control-group", "mixed"):
            return
        members = service.members()
        if not members:
            return
        procs = ProcessSet(service.manager.loop, service.name)
        try:
            procs.add(members)
            service.set_state(ActiveState.DEACTIVATING, "final-sigterm")
            self._send(procs, service.setting("KillSignal") or signal.SIGTERM, procs.pids)
            try:
                await Deadline(service.setting("TimeoutStopSec")).run(procs.wait_empty(float("inf")))
            except TimeoutError:
                if service.setting("SendSIGKILL"):
                    service.set_state(ActiveState.DEACTIVATING, "final-sigkill")
                    procs.signal(service.setting("FinalKillSignal") or signal.SIGKILL)
                    await procs.wait_empty(FINAL_KILL_WAIT)
        finally:
            procs.close()


async def kill_leftovers(service: ServiceRuntime, session: int) -> None:
    """SIGKILL what a finished control command left running in its session."""
    if service.setting("KillMode") in ("process", "none"):
        return
    leftovers = []
    for pid in service.members():
        info = processes.read_stat(pid)
        if info is not None and info.sid == session and pid != service.main_pid:
            leftovers.append(pid)
    if not leftovers:
        return
    procs = ProcessSet(service.manager.loop, service.name)
    try:
        procs.add(leftovers)
        procs.signal(signal.SIGKILL)
        await procs.wait_empty(FINAL_KILL_WAIT)
    finally:
        procs.close()


def send_signal(service: ServiceRuntime, signum: int, whom: str) -> list[int]:
    """The `kill` command: signal the main process, the control process or every process."""
    if whom == "main":
        pids = [service.main_pid] if service.main_pid else []
    elif whom == "control":
        pids = sorted(service.control_pids)
    else:
        pids = sorted(service.members())
    procs = ProcessSet(service.manager.loop, service.name)
    try:
        procs.add(pids)
        procs.signal(signum)
        sent = procs.pids
    finally:
        procs.close()
    log.info("%s: sent %s to %s", service.name, signal_name(signum), sent)
    return sent
