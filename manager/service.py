"""The life of one service unit: start and stop sequences, exits, restarts.

States follow systemd (see states.py). One coroutine runs each job: `start()`
goes condition check -> start limit -> ExecStartPre -> ExecStart (readiness
per Type=) -> ExecStartPost -> running; `stop()` goes ExecStop -> KillSignal to
the unit's processes -> wait TimeoutStopSec= -> SIGKILL to the survivors ->
ExecStopPost. An exit of the main process that the manager did not ask for
goes through the same stop sequence and then the Restart= rules.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unitmgr.manager import processes
from unitmgr.manager.killing import ProcessSet
from unitmgr.manager.output import StdioTargets, open_stdio
from unitmgr.manager.reaper import ExitStatus
from unitmgr.manager.spawn import SpawnError, SpawnSpec, parse_helper_status, spawn
from unitmgr.manager.states import (
    ActiveState,
    ExitCause,
    classify_exit,
    restart_delay,
    result_for,
    should_restart,
    status_name,
)
from unitmgr.manager.unitbase import UnitRuntime
from unitmgr.units.model import ExecCommand, Unit

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager

log = logging.getLogger(__name__)

RLIMIT_NAMES = {
    "LimitCPU": "RLIMIT_CPU", "LimitFSIZE": "RLIMIT_FSIZE", "LimitDATA": "RLIMIT_DATA",
    "LimitSTACK": "RLIMIT_STACK", "LimitCORE": "RLIMIT_CORE", "LimitRSS": "RLIMIT_RSS",
    "LimitNOFILE": "RLIMIT_NOFILE", "LimitAS": "RLIMIT_AS", "LimitNPROC": "RLIMIT_NPROC",
    "LimitMEMLOCK": "RLIMIT_MEMLOCK", "LimitLOCKS": "RLIMIT_LOCKS",
    "LimitSIGPENDING": "RLIMIT_SIGPENDING", "LimitMSGQUEUE": "RLIMIT_MSGQUEUE",
    "LimitNICE": "RLIMIT_NICE", "LimitRTPRIO": "RLIMIT_RTPRIO", "LimitRTTIME": "RLIMIT_RTTIME",
}


class StartFailed(Exception):
    """The start sequence ended early; `result` is systemd's Result=."""

    def __init__(self, result: str, cause: ExitCause, status: ExitStatus | None = None):
        super().__init__(result)
        self.result = result
        self.cause = cause
        self.status = status


@dataclass
class ControlRecord:
    """A finished control process, shown as a `Process:` line in status."""

    pid: int
    setting: str
    command: str
    status: ExitStatus | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"pid": self.pid, "setting": self.setting, "command": self.command}
        if self.status:
            data.update(code=self.status.code, status=self.status.status,
                        status_name=status_name(self.status))
        return data


@dataclass
class StartLimit:
    """systemd's start rate limit: `burst` starts per `interval` seconds."""

    interval: float
    burst: int
    begin: float = 0.0
    count: int = 0
    spawn_times: list[float] = field(default_factory=list)

    def allow(self, now: float) -> bool:
        if self.interval <= 0 or self.interval == float("inf") and self.burst <= 0:
            return True
        if now - self.begin > self.interval:
            self.begin, self.count = now, 0
        if self.count < self.burst:
            self.count += 1
            return True
        return False

    def reset(self) -> None:
        self.begin, self.count = 0.0, 0


class ServiceRuntime(UnitRuntime):
    def __init__(self, manager: Manager, unit: Unit):
        super().__init__(manager, unit)
        self.main_pid = 0
        self.main_exit: ExitStatus | None = None
        self.main_exited: asyncio.Future[ExitStatus] | None = None
        self.control_records: list[ControlRecord] = []
        self.n_restarts = 0
        self.invocation_id = ""
        self.roots: set[int] = set()
        self.status_text = ""
        self.start_limit = StartLimit(
            unit.get("Unit", "StartLimitIntervalSec"), unit.get("Unit", "StartLimitBurst")
        )
        self.start_times: list[float] = []
        self._restart_task: asyncio.Task | None = None
        self._stopping = False
        self._started_ok = False
        self._main_watch_task: asyncio.Task | None = None
        self._forced_result: tuple[str, ExitCause] | None = None

    # -- settings ---------------------------------------------------------

    def setting(self, key: str) -> Any:
        return self.unit.get("Service", key)

    @property
    def service_type(self) -> str:
        return self.setting("Type") or "simple"

    def reload_definition(self, unit: Unit) -> None:
        super().reload_definition(unit)
        self.start_limit.interval = unit.get("Unit", "StartLimitIntervalSec")
        self.start_limit.burst = unit.get("Unit", "StartLimitBurst")

    # -- jobs -------------------------------------------------------------

    async def run_start(self, automatic: bool = False) -> str:
        if self.active_state in (ActiveState.ACTIVE, ActiveState.RELOADING):
            return "done"
        self._cancel_restart()
        if not automatic:
            self.n_restarts = 0
        skipped = self.check_conditions()
        if skipped:
            return skipped
        now = time.monotonic()
        if not self.start_limit.allow(now):
            log.warning("start request repeated too quickly: %s (StartLimitBurst=%d within %gs)",
                        self.name, self.start_limit.burst, self.start_limit.interval)
            self.set_state(ActiveState.FAILED, "failed", result="start-limit-hit")
            return "failed"
        self.start_times.append(time.time())
        self._begin_invocation()
        try:
            timeout = self.setting("TimeoutStartSec")
            await self._with_timeout(self._start_sequence(), timeout)
        except StartFailed as failure:
            await self._after_failed_start(failure)
            return "failed"
        except asyncio.CancelledError:
            # A stop job took over; it cleans up.
            raise
        return "done"

    async def run_stop(self) -> str:
        self._cancel_restart()
        if self.active_state in (ActiveState.INACTIVE, ActiveState.FAILED):
            if self.sub_state == "auto-restart":
                self.set_state(ActiveState.INACTIVE, "dead")
            return "done"
        self._stopping = True
        try:
            result = await self._stop_sequence(self.result if self.result != "success" else "success")
        finally:
            self._stopping = False
        self._finish(result, restart_allowed=False)
        return "done"

    # -- start sequence ---------------------------------------------------

    def _begin_invocation(self) -> None:
        self.invocation_id = uuid.uuid4().hex
        self.roots = set()
        self.control_records = []
        self.main_pid = 0
        self.main_exited = None
        self._started_ok = False
        self.result = "success"

    async def _with_timeout(self, coro: Any, timeout: float) -> Any:
        if timeout == float("inf") or timeout <= 0:
            return await coro
        try:
            return await asyncio.wait_for(coro, timeout)
        except TimeoutError:
            log.warning("start of %s timed out after %gs (TimeoutStartSec=)", self.name, timeout)
            raise StartFailed("timeout", ExitCause.TIMEOUT) from None

    async def _start_sequence(self) -> None:
        self.set_state(ActiveState.ACTIVATING, "start-pre")
        for command in self.setting("ExecStartPre"):
            await self._run_control("ExecStartPre", command)
        self.set_state(ActiveState.ACTIVATING, "start")
        if self.service_type == "oneshot":
            await self._start_oneshot()
        else:
            await self._start_main()
        self.set_state(ActiveState.ACTIVATING, "start-post")
        for command in self.setting("ExecStartPost"):
            await self._run_control("ExecStartPost", command)
        self._started_ok = True
        if self.service_type == "oneshot":
            if self.setting("RemainAfterExit"):
                self.set_state(ActiveState.ACTIVE, "exited")
            else:
                self.set_state(ActiveState.ACTIVE, "exited")
                result = await self._stop_sequence("success", run_exec_stop=True)
                self._finish(result, restart_allowed=True, cause=ExitCause.CLEAN)
            return
        if self.main_exit is not None and self.main_exited is not None and self.main_exited.done():
            # The main process ended during ExecStartPost: handle it as an exit now.
            self.set_state(ActiveState.ACTIVE, "running")
            self._watch_main()
            return
        self.set_state(ActiveState.ACTIVE, "running")
        self._watch_main()

    async def _start_main(self) -> None:
        commands = self.setting("ExecStart")
        if not commands:
            raise StartFailed("resources", ExitCause.UNCLEAN_CODE)
        pid, helper_fd = self._spawn("ExecStart", commands[0], main=True)
        self.main_pid = pid
        if helper_fd is not None and self.service_type == "exec":
            failure = await self._read_helper_status(helper_fd)
            if failure is not None:
                status = await self.main_exited
                raise StartFailed("exit-code", ExitCause.UNCLEAN_CODE, status)
        elif helper_fd is not None:
            asyncio.ensure_future(self._read_helper_status(helper_fd))

    async def _start_oneshot(self) -> None:
        for command in self.setting("ExecStart"):
            pid, helper_fd = self._spawn("ExecStart", command, main=True)
            self.main_pid = pid
            if helper_fd is not None:
                asyncio.ensure_future(self._read_helper_status(helper_fd))
            status = await self.main_exited
            cause = classify_exit(status, "oneshot", self.setting("SuccessExitStatus"))
            if cause is not ExitCause.CLEAN and not command.ignore_failure:
                raise StartFailed(result_for(cause, status), cause, status)
        self.main_pid = 0

    async def _read_helper_status(self, fd: int) -> str | None:
        """Wait for the exec helper's verdict: None once the exec succeeded."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bytes] = loop.create_future()
        chunks: list[bytes] = []

        def on_readable() -> None:
            data = os.read(fd, 4096)
            if data:
                chunks.append(data)
                return
            loop.remove_reader(fd)
            future.set_result(b"".join(chunks))

        loop.add_reader(fd, on_readable)
        try:
            data = await future
        finally:
            os.close(fd)
        if not data:
            return None
        code, reason = parse_helper_status(data)
        log.error("%s: could not start: %s (status=%d)", self.name, reason, code)
        return reason

    async def _run_control(
        self, setting: str, command: ExecCommand, extra_env: dict[str, str] | None = None
    ) -> ExitStatus | None:
        """Run one control command to its end; raise StartFailed when it fails and counts."""
        try:
            pid, helper_fd = self._spawn(setting, command, main=False, extra_env=extra_env)
        except StartFailed:
            if command.ignore_failure:
                return None
            raise
        if helper_fd is not None:
            asyncio.ensure_future(self._read_helper_status(helper_fd))
        record = ControlRecord(pid, setting, command.source or " ".join(command.words))
        self.control_records.append(record)
        future = self.manager.loop.create_future()
        self.manager.reaper.watch(pid, lambda status: future.done() or future.set_result(status))
        self.roots.add(pid)
        status = await future
        record.status = status
        await self._kill_leftovers(exclude={self.main_pid} if self.main_pid else set())
        cause = classify_exit(status, self.service_type, self.setting("SuccessExitStatus"))
        if cause is not ExitCause.CLEAN and not command.ignore_failure:
            log.warning("%s: %s= process %d failed (%s=%d)", self.name, setting, pid, status.code, status.status)
            raise StartFailed(result_for(cause, status), cause, status)
        return status

    # -- spawning ---------------------------------------------------------

    def _spawn(self, setting: str, command: ExecCommand, main: bool,
               extra_env: dict[str, str] | None = None) -> tuple[int, int | None]:
        env = self.manager.environment_for(self, main=main)
        if extra_env:
            env.update(extra_env)
        from unitmgr.units.execline import expand_command

        path, argv = expand_command(command, env, env.get("PATH", os.defpath))
        writer = self.manager.logs.writer(self.name)
        try:
            stdio: StdioTargets = open_stdio(
                self.manager.loop, writer,
                self.setting("StandardOutput") or "journal",
                self.setting("StandardError") or "inherit",
            )
        except OSError as exc:
            log.error("%s: could not open the output file: %s", self.name, exc)
            raise StartFailed("resources", ExitCause.UNCLEAN_CODE) from None
        spec = self._spawn_spec(path, argv, env, stdio)
        try:
            spawned = spawn(spec, self.manager.cwd)
        except SpawnError as exc:
            stdio.failed()
            log.error("%s: %s= could not start %s: %s", self.name, setting, path, exc)
            status = ExitStatus(0, "exited", exc.exit_code)
            if main:
                self.main_exit = status
                self.main_exited = self.manager.loop.create_future()
                self.main_exited.set_result(status)
                if self.service_type in ("simple",):
                    # Type=simple counts as started at fork, so the failure
                    # appears as an exit right after the start.
                    return 0, None
            raise StartFailed("exit-code", ExitCause.UNCLEAN_CODE, status) from None
        stdio.started(spawned.pid)
        self.roots.add(spawned.pid)
        log.info("%s: started %s= process, pid %d: %s", self.name, setting, spawned.pid, " ".join(argv))
        if main:
            self._track_main(spawned.pid)
        return spawned.pid, spawned.status_fd

    def _spawn_spec(self, path: str, argv: list[str], env: dict[str, str], stdio: StdioTargets) -> SpawnSpec:
        cwd, cwd_optional = self._working_directory()
        rlimits = {}
        for key, name in RLIMIT_NAMES.items():
            value = self.setting(key)
            if value is not None:
                rlimits[name] = (value.soft, value.hard)
        return SpawnSpec(
            path=path, argv=argv, env=env,
            stdout_fd=stdio.stdout_fd, stderr_fd=stdio.stderr_fd,
            cwd=cwd, cwd_optional=cwd_optional,
            umask=self.setting("UMask"), nice=self.setting("Nice"), rlimits=rlimits,
            ignore_sigpipe=self.setting("IgnoreSIGPIPE") is not False,
        )

    def _working_directory(self) -> tuple[str | None, bool]:
        value = self.setting("WorkingDirectory") or ""
        optional = value.startswith("-")
        value = value.removeprefix("-")
        if value == "~":
            value = str(self.manager.paths.home)
        return (value or None), optional

    def _track_main(self, pid: int) -> None:
        future: asyncio.Future[ExitStatus] = self.manager.loop.create_future()
        self.main_exited = future

        def on_exit(status: ExitStatus) -> None:
            self.main_exit = status
            log.info("%s: main process %d exited, code=%s, status=%d", self.name, pid, status.code, status.status)
            if not future.done():
                future.set_result(status)

        self.manager.reaper.watch(pid, on_exit)

    def _watch_main(self) -> None:
        if self.main_exited is None:
            return
        self._main_watch_task = asyncio.ensure_future(self._on_main_exit(self.main_exited, self.invocation_id))

    async def _on_main_exit(self, exited: asyncio.Future[ExitStatus], invocation: str) -> None:
        status = await exited
        if self._stopping or invocation != self.invocation_id:
            return
        if self.active_state is not ActiveState.ACTIVE:
            return
        cause = classify_exit(status, self.service_type, self.setting("SuccessExitStatus"))
        result = result_for(cause, status)
        if self._forced_result is not None:
            result, cause = self._forced_result
            self._forced_result = None
        self.main_pid = 0
        await self.manager.run_unit_job(self, "exit", lambda: self._handle_exit(result, cause, status))

    def kill_for_result(self, result: str, cause: ExitCause, signum: int = signal.SIGKILL) -> None:
        """End a running service on the manager's own decision (a limit, a watchdog).

        Every process of the unit gets `signum`; the main process's exit is
        then handled with `result` and `cause` instead of its exit status, so
        Restart= applies as systemd's table says for that cause.
        """
        if self.active_state is not ActiveState.ACTIVE or not self.main_pid:
            return
        log.warning("%s: killing main process %d and the rest of the unit (result %s)",
                    self.name, self.main_pid, result)
        self._forced_result = (result, cause)
        procs = ProcessSet(self.manager.loop, self.name)
        procs.add(self.members())
        procs.signal(signum)
        procs.close()

    async def _handle_exit(self, result: str, cause: ExitCause, status: ExitStatus) -> str:
        final = await self._stop_sequence(result, run_exec_stop=True)
        self._finish(final, restart_allowed=True, cause=cause, status=status)
        return "done"

    # -- stop sequence ----------------------------------------------------

    async def _stop_sequence(self, result: str, run_exec_stop: bool = True) -> str:
        self.set_state(ActiveState.DEACTIVATING, "stop")
        env = self._stop_env(result)
        if run_exec_stop and self._started_ok:
            for command in self.setting("ExecStop"):
                try:
                    await self._with_stop_timeout(self._run_control("ExecStop", command, env))
                except StartFailed:
                    break
        result = await self._kill_all(result)
        self.set_state(ActiveState.DEACTIVATING, "stop-post")
        for command in self.setting("ExecStopPost"):
            try:
                await self._with_stop_timeout(self._run_control("ExecStopPost", command, self._stop_env(result)))
            except StartFailed:
                pass
        await self._kill_leftovers()
        return result

    def _stop_env(self, result: str) -> dict[str, str]:
        env = {"SERVICE_RESULT": result}
        if self.main_pid:
            env["MAINPID"] = str(self.main_pid)
        if self.main_exit is not None:
            env["EXIT_CODE"] = self.main_exit.code
            env["EXIT_STATUS"] = (str(self.main_exit.status) if self.main_exit.code == "exited"
                                  else status_name(self.main_exit))
        return env

    async def _with_stop_timeout(self, coro: Any) -> Any:
        timeout = self.setting("TimeoutStopSec")
        if timeout == float("inf") or timeout <= 0:
            return await coro
        try:
            return await asyncio.wait_for(coro, timeout)
        except TimeoutError:
            raise StartFailed("timeout", ExitCause.TIMEOUT) from None

    def members(self) -> set[int]:
        table = processes.process_table()
        return processes.unit_members(table, self.roots, self.roots, self.invocation_id, os.getpid())

    async def _kill_all(self, result: str) -> str:
        mode = self.setting("KillMode") or "control-group"
        if mode == "none":
            return result
        procs = ProcessSet(self.manager.loop, self.name)
        procs.add(self.members())
        if not procs.pids:
            return result
        kill_signal = self.setting("KillSignal") or signal.SIGTERM
        if mode in ("process", "mixed"):
            first_targets = [self.main_pid] if self.main_pid in procs.pids else []
        else:
            first_targets = procs.pids
        self.set_state(ActiveState.DEACTIVATING, "stop-sigterm")
        log.info("%s: sending %s to %d process(es)", self.name, signal.Signals(kill_signal).name, len(first_targets))
        procs.signal(kill_signal, first_targets)
        procs.signal(signal.SIGCONT, first_targets)
        if self.setting("SendSIGHUP"):
            procs.signal(signal.SIGHUP, first_targets)
        timeout = self.setting("TimeoutStopSec")
        if mode == "mixed":
            await self._wait_main_gone(procs, timeout)
        gone = await procs.wait_empty(timeout) if mode != "process" else await self._wait_main_gone(procs, timeout)
        if not gone and self.setting("SendSIGKILL"):
            final = self.setting("FinalKillSignal") or signal.SIGKILL
            targets = procs.pids if mode != "process" else [p for p in procs.pids if p == self.main_pid]
            log.warning("%s: %d process(es) still running after TimeoutStopSec=%gs, sending %s",
                        self.name, len(targets), timeout, signal.Signals(final).name)
            self.set_state(ActiveState.DEACTIVATING, "stop-sigkill")
            procs.signal(final, targets)
            await procs.wait_empty(5.0)
            result = "timeout" if result == "success" and not self._stopping else result
        procs.close()
        return result

    async def _wait_main_gone(self, procs: ProcessSet, timeout: float) -> bool:
        if not self.main_pid or self.main_exited is None:
            return True
        try:
            if timeout == float("inf"):
                await asyncio.shield(self.main_exited)
            else:
                await asyncio.wait_for(asyncio.shield(self.main_exited), timeout)
        except TimeoutError:
            return False
        return True

    async def _kill_leftovers(self, exclude: set[int] | None = None) -> None:
        """SIGKILL processes a finished control command left behind."""
        members = self.members() - (exclude or set())
        if self.main_pid and self.active_state is ActiveState.ACTIVE:
            return
        if not members:
            return
        procs = ProcessSet(self.manager.loop, self.name)
        procs.add(members)
        procs.signal(signal.SIGKILL)
        await procs.wait_empty(5.0)
        procs.close()

    # -- after a stop -----------------------------------------------------

    async def _after_failed_start(self, failure: StartFailed) -> None:
        result = await self._stop_sequence(failure.result, run_exec_stop=False)
        self._finish(result, restart_allowed=True, cause=failure.cause, status=failure.status)

    def _finish(self, result: str, restart_allowed: bool, cause: ExitCause | None = None,
                status: ExitStatus | None = None) -> None:
        self.main_pid = 0
        if restart_allowed and cause is not None and should_restart(
            self.setting("Restart"), cause, status,
            self.setting("RestartPreventExitStatus"), self.setting("RestartForceExitStatus"),
            self.service_type,
        ):
            self._schedule_restart(result)
            return
        if result == "success":
            self.set_state(ActiveState.INACTIVE, "dead", result=result)
        else:
            self.set_state(ActiveState.FAILED, "failed", result=result)

    def _schedule_restart(self, result: str) -> None:
        self.n_restarts += 1
        delay = restart_delay(self.n_restarts, self.setting("RestartSec"),
                              self.setting("RestartSteps") or 0, self.setting("RestartMaxDelaySec"))
        self.set_state(ActiveState.ACTIVATING, "auto-restart", result=result)
        log.info("%s: scheduled restart job in %gs, restart counter is at %d", self.name, delay, self.n_restarts)
        self._restart_task = asyncio.ensure_future(self._restart_after(delay))

    async def _restart_after(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        self._restart_task = None
        self.set_state(ActiveState.INACTIVE, "dead", result=self.result)
        await self.manager.run_unit_job(self, "start", lambda: self.run_start(automatic=True))

    def _cancel_restart(self) -> None:
        task, self._restart_task = self._restart_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def reset_failed(self) -> None:
        self.start_limit.reset()
        if self.active_state is ActiveState.FAILED:
            self.set_state(ActiveState.INACTIVE, "dead", result="success")

    # -- status -----------------------------------------------------------

    def status(self, callback: Callable[[set[int]], dict[str, Any]] | None = None) -> dict[str, Any]:
        data = super().status()
        main_info = processes.read_stat(self.main_pid) if self.main_pid else None
        data.update(
            main_pid=self.main_pid,
            main_comm=main_info.comm if main_info else "",
            exec_main=None,
            control_processes=[r.to_json() for r in self.control_records if r.status is not None],
            status_text=self.status_text,
            n_restarts=self.n_restarts,
            invocation_id=self.invocation_id,
            start_times=self.start_times[-50:],
        )
        if self.main_exit is not None:
            data["exec_main"] = {
                "pid": self.main_exit.pid, "code": self.main_exit.code,
                "status": self.main_exit.status, "status_name": status_name(self.main_exit),
            }
        return data
