"""The life of one service unit: start sequence, readiness per Type=, exits, restarts.

States follow systemd (see states.py). One coroutine runs each job. `start`
goes: Condition*= -> start limit -> ExecCondition= -> ExecStartPre= ->
ExecStart= (readiness per Type=) -> ExecStartPost= -> running, all bounded by
TimeoutStartSec=. `stop` is servicestop.StopSequence. An exit of the main
process that the manager did not ask for goes through the same stop sequence
and then the Restart= rules. sd_notify messages, the watchdog and `reload`
are in servicenotify.py.

When a service counts as started:

| Type | started when |
|---|---|
| simple, idle, dbus | the process was spawned (an exec failure is an exit right after) |
| exec | the exec of the main program succeeded |
| forking | the first process exited cleanly; the main PID then comes from PIDFile= or a guess |
| oneshot | every ExecStart= exited cleanly |
| notify, notify-reload | the service sent READY=1 |
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from unitmgr.manager import processes
from unitmgr.manager.crashloop import CrashLoopCounter
from unitmgr.manager.environment import EnvironmentFileError
from unitmgr.manager.killing import ProcessSet
from unitmgr.manager.mainpid import ExitWatch, PIDFileError, guess_main_pid, pid_file_path, wait_pid_file
from unitmgr.manager.output import StdioTargets, open_stdio
from unitmgr.manager.reaper import ExitStatus
from unitmgr.manager.servicenotify import NOTIFY_TYPES, Watchdog, notify_access
from unitmgr.manager.servicestop import StopSequence, kill_leftovers
from unitmgr.manager.spawn import SpawnError, SpawnSpec, parse_helper_status, spawn
from unitmgr.manager.states import (
    EXIT_STATUS_NAMES,
    ActiveState,
    ExitCause,
    classify_exit,
    restart_delay,
    result_for,
    should_restart,
    status_name,
)
from unitmgr.manager.statuspipe import StatusPipe
from unitmgr.manager.timeouts import Deadline
from unitmgr.manager.unitbase import UnitRuntime
from unitmgr.manager.unitmessages import announce_main_exit, write_unit_message
from unitmgr.units.model import ExecCommand, Unit

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager

log = logging.getLogger(__name__)

# The key of the unit's rlimits in Unit.derived (ServiceRuntime._rlimits()).
_RLIMITS_KEY = "rlimits"
_NO_RLIMITS: dict[str, tuple[int, int]] = {}
# The control_pids of every service without control processes.
NO_PIDS: frozenset[int] = frozenset()
RLIMIT_NAMES = {
    "LimitCPU": "RLIMIT_CPU", "LimitFSIZE": "RLIMIT_FSIZE", "LimitDATA": "RLIMIT_DATA",
    "LimitSTACK": "RLIMIT_STACK", "LimitCORE": "RLIMIT_CORE", "LimitRSS": "RLIMIT_RSS",
    "LimitNOFILE": "RLIMIT_NOFILE", "LimitAS": "RLIMIT_AS", "LimitNPROC": "RLIMIT_NPROC",
    "LimitMEMLOCK": "RLIMIT_MEMLOCK", "LimitLOCKS": "RLIMIT_LOCKS",
    "LimitSIGPENDING": "RLIMIT_SIGPENDING", "LimitMSGQUEUE": "RLIMIT_MSGQUEUE",
    "LimitNICE": "RLIMIT_NICE", "LimitRTPRIO": "RLIMIT_RTPRIO", "LimitRTTIME": "RLIMIT_RTTIME",
}


class StartFailed(Exception):
    """The start sequence ended early, with systemd's Result= in `result`."""

    def __init__(self, result: str, cause: ExitCause, status: ExitStatus | None = None):
        super().__init__(result)
        self.result = result
        self.cause = cause
        self.status = status


class ConditionNotMet(StartFailed):
    """ExecCondition= exited 1..254: the start is skipped and the unit is not failed."""

    def __init__(self, status: ExitStatus):
        super().__init__("exec-condition", ExitCause.CLEAN, status)


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
    """At most `burst` starts within any `interval` seconds (a sliding window).

    Every start counts: manual ones, automatic restarts and starts pulled in
    by dependencies, also the first start after a long run. `interval` 0 or
    `burst` 0 turns the limit off, as in systemd.
    """

    interval: float
    burst: int
    # A list, not a deque, because it contains at most `burst` times and an empty deque costs about 600 bytes per unit.
    starts: list[float] = field(default_factory=list)

    def allow(self, now: float) -> bool:
        if not self.interval or self.interval <= 0 or not self.burst or self.burst <= 0:
            return True
        expired = 0
        while expired < len(self.starts) and now - self.starts[expired] >= self.interval:
            expired += 1
        del self.starts[:expired]
        if len(self.starts) >= self.burst:
            return False
        self.starts.append(now)
        return True

    def reset(self) -> None:
        self.starts.clear()


class ServiceRuntime(UnitRuntime):
    def __init__(self, manager: Manager, unit: Unit):
        super().__init__(manager, unit)
        self.main_pid = 0
        self.main_exit: ExitStatus | None = None
        self.main_exited: asyncio.Future[ExitStatus] | None = None
        # Replaced, never changed in place, so services without control processes share one
        # empty frozenset (CPython 3.11 allocates 216 bytes for each frozenset(), measured).
        self.control_pids: frozenset[int] = NO_PIDS
        self.control_records: list[ControlRecord] = []
        self.n_restarts = 0
        self.crash_loop = CrashLoopCounter()
        # The crash-loop floor that lengthened the pending restart's delay (0: none).
        self.crash_loop_delay = 0.0
        self.invocation_id = ""
        # The processes the manager started in this invocation, usually one: a tuple takes
        # 48 bytes where a set takes 216.
        self.roots: tuple[int, ...] = ()
        self.status_text = ""
        self.status_errno = 0
        self.start_limit = StartLimit(*self._start_limit_settings(unit))
        self.start_times: list[float] = []
        # The running phase's time limit, which EXTEND_TIMEOUT_USEC= extends.
        self.deadline: Deadline | None = None
        # Resolved by READY=1 while a start or reload waits for it.
        self.ready: asyncio.Future[None] | None = None
        self.watchdog = Watchdog(self)
        self.watchdog_override: float | None = None
        self.notify_access_override = ""
        self.reload_requested_at: float | None = None
        # Set by the watchdog or a resource limit: how the next main exit is judged.
        self.forced_result: tuple[str, ExitCause] | None = None
        self.stopping = False  # a stop job is running
        self.restarting = False  # that stop is part of a restart (RestartKillSignal=)
        self.self_stopping = False  # the service sent STOPPING=1
        self.started_ok = False
        self._restart_task: asyncio.Task | None = None
        self._watches: list[ExitWatch] = []
        self._monitor_env: dict[str, str] = {}
        self._runtime_limit: asyncio.Task | None = None

    # -- settings ---------------------------------------------------------

    def setting(self, key: str) -> Any:
        return self.unit.get("Service", key)

    @property
    def service_type(self) -> str:
        return self.setting("Type") or "simple"

    @staticmethod
    def _start_limit_settings(unit: Unit) -> tuple[float, int]:
        interval = unit.get("Unit", "StartLimitIntervalSec")
        burst = unit.get("Unit", "StartLimitBurst")
        # The old spellings, also accepted in [Service], win when they are set.
        for section, key in (("Unit", "StartLimitInterval"), ("Service", "StartLimitInterval")):
            if unit.is_set(section, key):
                interval = unit.get(section, key)
        if unit.is_set("Service", "StartLimitBurst"):
            burst = unit.get("Service", "StartLimitBurst")
        return interval, burst

    def reload_definition(self, unit: Unit) -> None:
        super().reload_definition(unit)
        self.start_limit.interval, self.start_limit.burst = self._start_limit_settings(unit)

    # -- jobs -------------------------------------------------------------

    async def run_start(self, automatic: bool = False) -> str:
        if self.active_state in (ActiveState.ACTIVE, ActiveState.RELOADING):
            return "done"
        self._cancel_restart()
        if not automatic:
            self.n_restarts = 0
            self.crash_loop.reset()
        skipped = self.check_conditions()
        if skipped:
            return skipped
        if not self.start_limit.allow(time.monotonic()):
            log.warning("%s: start request repeated too quickly (StartLimitBurst=%d within %gs); "
                        "run reset-failed to allow starts again",
                        self.name, self.start_limit.burst, self.start_limit.interval)
            self.set_state(ActiveState.FAILED, "failed", result="start-limit-hit")
            return "failed"
        self.start_times.append(time.time())
        self.crash_loop.run_started(time.monotonic())
        self._begin_invocation()
        self._monitor_env, self.monitor_env = self.monitor_env, {}
        deadline = Deadline(self.setting("TimeoutStartSec"))
        self.deadline = deadline
        try:
            await deadline.run(self._start_sequence())
        except TimeoutError:
            if self.forced_result is None:
                log.warning("%s: start timed out after TimeoutStartSec=%gs", self.name, deadline.seconds)
            # Otherwise kill_for_result() ended the start, and _after_failed_start() reports its result.
            failure = StartFailed("timeout", ExitCause.TIMEOUT)
        except StartFailed as exc:
            failure = exc
        else:
            await self._enter_running()
            return "done"
        finally:
            if self.deadline is deadline:
                self.deadline = None
        return await self._after_failed_start(failure)

    async def run_stop(self) -> str:
        self._cancel_restart()
        if self.active_state in (ActiveState.INACTIVE, ActiveState.FAILED):
            return "done"
        self.stopping = True
        try:
            result = await StopSequence(self, "success", run_exec_stop=True).run()
        finally:
            self.stopping = False
            self.restarting = False
        self._finish(result, restart_allowed=False)
        return "done"

    async def run_reload(self) -> str:
        from unitmgr.manager.servicenotify import run_reload

        return await run_reload(self)

    def can_reload(self) -> bool:
        from unitmgr.manager.servicenotify import can_reload

        return can_reload(self)

    # -- start sequence ---------------------------------------------------

    def _begin_invocation(self) -> None:
        self.invocation_id = uuid.uuid4().hex
        self.roots = ()
        self.control_pids = NO_PIDS
        self.control_records = []
        self.main_pid = 0
        self.main_exit = None
        self.main_exited = None
        self.started_ok = False
        self.self_stopping = False
        self.forced_result = None
        self.watchdog_override = None
        self.notify_access_override = ""
        self.status_text = ""
        self.status_errno = 0
        self.ready = None
        self.watchdog = Watchdog(self)
        self.result = "success"

    async def _start_sequence(self) -> None:
        if self.setting("ExecCondition"):
            self.set_state(ActiveState.ACTIVATING, "condition")
            for command in self.setting("ExecCondition"):
                await self._run_condition(command)
        # As in systemd, a phase without commands is skipped, not entered: its sub-state never shows.
        start_pre = self.setting("ExecStartPre")
        if start_pre:
            self.set_state(ActiveState.ACTIVATING, "start-pre")
            for command in start_pre:
                await self.run_control("ExecStartPre", command)
        self.set_state(ActiveState.ACTIVATING, "start")
        kind = self.service_type
        if kind == "dbus":
            # TODO: watch the bus for BusName=. Until then Type=dbus starts like Type=simple.
            log.warning("%s: Type=dbus is not supported; starting it as Type=simple", self.name)
        if kind == "oneshot":
            await self._start_oneshot()
        elif kind == "forking":
            await self._start_forking()
        else:
            await self._start_main(wait_exec=kind in ("exec", *NOTIFY_TYPES))
            if kind in NOTIFY_TYPES:
                await self._wait_ready()
        start_post = self.setting("ExecStartPost")
        if start_post:
            self.set_state(ActiveState.ACTIVATING, "start-post")
            for command in start_post:
                await self.run_control("ExecStartPost", command)
        self.started_ok = True

    async def _run_condition(self, command: ExecCommand) -> None:
        try:
            await self.run_control("ExecCondition", command)
        except StartFailed as failure:
            status = failure.status
            if status is not None and status.code == "exited" and 1 <= status.status <= 254:
                raise ConditionNotMet(status) from None
            raise

    async def _enter_running(self) -> None:
        if self.service_type == "oneshot":
            self.main_pid = 0
            self.set_state(ActiveState.ACTIVE, "exited")
            if not self.setting("RemainAfterExit"):
                result = await StopSequence(self, "success", run_exec_stop=True).run()
                self._finish(result, restart_allowed=True, cause=ExitCause.CLEAN)
            return
        self.set_state(ActiveState.ACTIVE, "running")
        self.watchdog.arm()
        self._limit_runtime()
        exited = self.main_exited
        if exited is not None and exited.done() and not exited.cancelled():
            # The main process ended during ExecStartPost= (or could not be
            # spawned, for Type=simple): handle it as an exit now.
            self._on_main_exit(exited.result())
        elif exited is None:
            self._supervise_without_main()

    async def _start_main(self, wait_exec: bool) -> None:
        commands = self.setting("ExecStart")
        if not commands:
            raise StartFailed("resources", ExitCause.UNCLEAN_CODE)
        if self.service_type in NOTIFY_TYPES:
            # Created before the spawn so that an early READY=1 is not lost.
            self.ready = self.manager.loop.create_future()
        pid, helper_fd = self._spawn("ExecStart", commands[0], main=True)
        if helper_fd is None:
            return
        if wait_exec:
            failure = await self._read_helper_status(helper_fd, pid)
            if failure is not None and self.main_exited is not None:
                status = await self.main_exited
                raise StartFailed("exit-code", ExitCause.UNCLEAN_CODE, status)
        else:
            self._watch_helper_status(helper_fd, pid)

    async def _wait_ready(self) -> None:
        """Wait for READY=1. An exit before it fails the start, with Result=protocol if the exit was clean."""
        ready = self.ready
        assert ready is not None
        while True:
            exited = self.main_exited
            waiters: set[asyncio.Future[Any]] = {ready}
            if exited is not None:
                waiters.add(exited)
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            if ready.done():
                return
            if exited is self.main_exited:
                break
            # MAINPID= named a new main process before the old one exited: wait for that one.
        assert exited is not None
        status = exited.result()
        cause = classify_exit(status, self.service_type, self.setting("SuccessExitStatus"))
        if cause is ExitCause.CLEAN:
            log.warning("%s: main process exited before sending READY=1", self.name)
            raise StartFailed("protocol", ExitCause.UNCLEAN_CODE, status)
        raise StartFailed(result_for(cause, status), cause, status)

    async def _start_oneshot(self) -> None:
        for command in self.setting("ExecStart"):
            pid, helper_fd = self._spawn("ExecStart", command, main=True)
            if helper_fd is not None:
                self._watch_helper_status(helper_fd, pid)
            assert self.main_exited is not None
            status = await self.main_exited
            cause = classify_exit(status, "oneshot", self.setting("SuccessExitStatus"))
            if cause is not ExitCause.CLEAN and not command.ignore_failure:
                raise StartFailed(result_for(cause, status), cause, status)
        self.main_pid = 0

    async def _start_forking(self) -> None:
        commands = self.setting("ExecStart")
        if not commands:
            raise StartFailed("resources", ExitCause.UNCLEAN_CODE)
        pid, helper_fd = self._spawn("ExecStart", commands[0], main=True)
        if helper_fd is not None:
            self._watch_helper_status(helper_fd, pid)
        assert self.main_exited is not None
        status = await self.main_exited
        cause = classify_exit(status, self.service_type, self.setting("SuccessExitStatus"))
        if cause is not ExitCause.CLEAN:
            raise StartFailed(result_for(cause, status), cause, status)
        self.main_pid = 0
        self.main_exited = None
        main = await self._find_forking_main()
        if main:
            self.adopt_main(main)

    async def _find_forking_main(self) -> int:
        pid_file = self.setting("PIDFile")
        if pid_file:
            path = pid_file_path(pid_file, self.manager.paths.runtime)
            try:
                return await wait_pid_file(path, self.members)
            except PIDFileError as exc:
                log.error("%s: %s", self.name, exc)
                raise StartFailed("protocol", ExitCause.UNCLEAN_CODE) from None
        if self.setting("GuessMainPID") is False:
            return 0
        main = guess_main_pid(self.members(), os.getpid())
        if not main:
            log.warning("%s: could not guess the main PID; supervising the unit's processes instead",
                        self.name)
        return main

    def _add_root(self, pid: int) -> None:
        if pid not in self.roots:
            self.roots += (pid,)

    def adopt_main(self, pid: int) -> None:
        """Make `pid` the main process (forking PID file, MAINPID=)."""
        self.main_pid = pid
        self._add_root(pid)
        self._track_main(pid)

    async def _read_helper_status(self, fd: int, pid: int) -> str | None:
        """Wait for the verdict of process `pid` on its status pipe: None once the exec succeeded."""
        future: asyncio.Future[str | None] = self.manager.loop.create_future()

        def done(failure: str | None) -> None:
            if not future.done():
                future.set_result(failure)

        self._watch_helper_status(fd, pid, done)
        return await future

    def _watch_helper_status(self, fd: int, pid: int,
                             done: Callable[[str | None], None] | None = None) -> None:
        """Read the status pipe of process `pid` until EOF, log a failure it reports, then call `done`."""
        StatusPipe(self.manager.loop, fd, pid, functools.partial(self._helper_status_ended, pid, done))

    def _helper_status_ended(self, pid: int, done: Callable[[str | None], None] | None, data: bytes) -> None:
        failure = None
        if data:
            code, failure = parse_helper_status(data)
            self._log_start_failure(f"process {pid} could not start: {failure}", code)
        if done is not None:
            done(failure)

    def _log_start_failure(self, message: str, code: int) -> None:
        """Log why a process could not start, in the manager's log and in the unit's own log.

        The unit's log is where `logs` and `status` look, and the process
        itself may have had no way to write there.
        """
        name = EXIT_STATUS_NAMES.get(code, "")
        text = f"{message} (status={code}/{name})"
        log.error("%s: %s", self.name, text)
        write_unit_message(self, f"{self.name}: {text}")

    async def run_control(
        self, setting: str, command: ExecCommand, extra_env: dict[str, str] | None = None
    ) -> ExitStatus | None:
        """Run one control command to its end, and raise StartFailed when it fails without the `-` prefix."""
        try:
            pid, helper_fd = self._spawn(setting, command, main=False, extra_env=extra_env)
        except StartFailed:
            if command.ignore_failure:
                return None
            raise
        if helper_fd is not None:
            self._watch_helper_status(helper_fd, pid)
        record = ControlRecord(pid, setting, command.source or " ".join(command.words))
        self.control_records.append(record)
        self.control_pids = self.control_pids | {pid}
        watch = ExitWatch(self.manager.loop, self.manager.reaper, pid, own_child=True)
        try:
            status = await watch.future
        finally:
            self.control_pids = self.control_pids - {pid}
            if not watch.future.done():
                # Canceled by a timeout: the process is killed with the rest of the unit.
                watch.cancel()
        record.status = status
        await kill_leftovers(self, session=pid)
        cause = classify_exit(status, self.service_type, self.setting("SuccessExitStatus"))
        if cause is not ExitCause.CLEAN and not command.ignore_failure:
            log.warning("%s: %s= process %d failed (%s, status=%d/%s)", self.name, setting, pid,
                        status.code, status.status, status_name(status))
            raise StartFailed(result_for(cause, status), cause, status)
        return status

    # -- spawning ---------------------------------------------------------

    def _unit_env(self, main: bool) -> dict[str, str]:
        """Variables this service adds: NOTIFY_SOCKET, WATCHDOG_USEC, PIDFILE."""
        env: dict[str, str] = {}
        access = notify_access(self)
        if access != "none" and (main or access in ("exec", "all")):
            env["NOTIFY_SOCKET"] = self.manager.notify_address
        watchdog = self.setting("WatchdogSec") or 0
        if main and 0 < watchdog < float("inf"):
            env["WATCHDOG_USEC"] = str(int(watchdog * 1_000_000))
        pid_file = self.setting("PIDFile")
        if pid_file:
            env["PIDFILE"] = str(pid_file_path(pid_file, self.manager.paths.runtime))
        if self.active_state is ActiveState.ACTIVATING:
            # Started by OnFailure=/OnSuccess=: systemd passes these to the start commands.
            env.update(self._monitor_env)
        return env

    def _spawn(self, setting: str, command: ExecCommand, main: bool,
               extra_env: dict[str, str] | None = None) -> tuple[int, int | None]:
        from unitmgr.units.execline import expand_command

        try:
            env = self.manager.environment_for(self, main=main)
        except EnvironmentFileError as exc:
            log.error("%s: %s", self.name, exc)
            raise StartFailed("resources", ExitCause.UNCLEAN_CODE) from None
        env.update(self._unit_env(main))
        if extra_env:
            env.update(extra_env)
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
        if main and "WATCHDOG_USEC" in env:
            spec.watchdog_pid = True
        if main:  # socket activation: LISTEN_FDS and the sockets from fd 3 on (sockets.py)
            from unitmgr.manager.sockets import attach_sockets

            attach_sockets(self, spec)
        try:
            spawned = spawn(spec, self.manager.cwd)
        except SpawnError as exc:
            stdio.failed()
            self._log_start_failure(f"{setting}= {exc}", exc.exit_code)
            return self._spawn_failed(main, ExitStatus(0, "exited", exc.exit_code))
        writer.name_process(spawned.pid, path)
        stdio.started(spawned.pid)
        self._add_root(spawned.pid)
        log.info("%s: started %s= process, pid %d: %s", self.name, setting, spawned.pid, " ".join(argv))
        if main:
            self.main_pid = spawned.pid
            self._track_main(spawned.pid, own_child=True)
        return spawned.pid, spawned.status_fd

    def _spawn_failed(self, main: bool, status: ExitStatus) -> tuple[int, int | None]:
        if main:
            self.main_exit = status
            self.main_exited = self.manager.loop.create_future()
            self.main_exited.set_result(status)
            if self.service_type in ("simple", "idle", "dbus"):
                # Type=simple counts as started at fork, so the failure
                # appears as an exit right after the start.
                self.main_pid = 0
                return 0, None
        raise StartFailed("exit-code", ExitCause.UNCLEAN_CODE, status)

    def _spawn_spec(self, path: str, argv: list[str], env: dict[str, str], stdio: StdioTargets) -> SpawnSpec:
        cwd, cwd_optional = self._working_directory()
        spec = SpawnSpec(
            path=path, argv=argv, env=env,
            stdout_fd=stdio.stdout_fd, stderr_fd=stdio.stderr_fd,
            cwd=cwd, cwd_optional=cwd_optional,
            umask=self.setting("UMask"), nice=self.setting("Nice"), rlimits=self._rlimits(),
            ignore_sigpipe=self.setting("IgnoreSIGPIPE") is not False,
        )
        # CPU affinity, I/O priority, OOM score and the unit's cgroup: manager/resources.py
        if getattr(self.manager, "resources", None) is not None:
            self.manager.resources.prepare_spawn(self, spec)
        return spec

    def _rlimits(self) -> dict[str, tuple[int, int]]:
        """Return the unit's Limit*= settings as RLIMIT_* names with (soft, hard), read once per definition."""
        derived = self.unit.derived
        rlimits = derived.get(_RLIMITS_KEY)
        if rlimits is None:
            rlimits = {}
            for key, name in RLIMIT_NAMES.items():
                value = self.setting(key)
                if value is not None:
                    rlimits[name] = (value.soft, value.hard)
            # Most units set no limit: they share one empty dict.
            rlimits = derived[_RLIMITS_KEY] = rlimits or _NO_RLIMITS
        # Shared by every spawn of this definition: spawn.py only reads it.
        return rlimits

    def _working_directory(self) -> tuple[str | None, bool]:
        value = self.setting("WorkingDirectory") or ""
        optional = value.startswith("-")
        value = value.removeprefix("-")
        if value == "~":
            value = str(self.manager.paths.home)
        return (value or None), optional

    # -- the main process ---------------------------------------------------

    def _track_main(self, pid: int, own_child: bool = False) -> None:
        invocation = self.invocation_id

        def on_exit(status: ExitStatus) -> None:
            if pid != self.main_pid or invocation != self.invocation_id:
                return
            self.main_exit = status
            self.main_pid = 0
            log.info("%s: main process %d exited, code=%s, status=%d/%s", self.name, pid, status.code,
                     status.status, status_name(status))
            if self.stopping:
                return  # the stop job is waiting for it
            if self.active_state is ActiveState.ACTIVE or self.active_state is ActiveState.RELOADING or (
                    self.active_state is ActiveState.DEACTIVATING and self.self_stopping):
                self._on_main_exit(status)

        watch = ExitWatch(self.manager.loop, self.manager.reaper, pid, on_exit, own_child=own_child)
        self._watches.append(watch)
        self.main_exited = watch.future

    def _on_main_exit(self, status: ExitStatus) -> None:
        cause = classify_exit(status, self.service_type, self.setting("SuccessExitStatus"))
        result = result_for(cause, status)
        if self.forced_result is not None:
            result, cause = self.forced_result
            self.forced_result = None
        elif result in ("signal", "success") and self.manager.resources is not None \
                and self.manager.resources.kernel_oom_killed(self):
            result = "oom-kill"
        announce_main_exit(self, status, result)
        self.main_pid = 0
        self.watchdog.disarm()
        if self.setting("ExitType") == "cgroup" and self.forced_result is None and self.members():
            # ExitType=cgroup: the service runs on until its last process is gone.
            asyncio.ensure_future(self._exit_when_empty(result, cause, status))
            return
        asyncio.ensure_future(
            self.manager.run_unit_job(self, "exit", lambda: self._handle_exit(result, cause, status)))

    async def _exit_when_empty(self, result: str, cause: ExitCause, status: ExitStatus) -> None:
        invocation = self.invocation_id
        procs = ProcessSet(self.manager.loop, self.name)
        try:
            procs.add(self.members())
            await procs.wait_empty(float("inf"))
        finally:
            procs.close()
        if invocation != self.invocation_id or self.stopping or self.active_state is not ActiveState.ACTIVE:
            return
        await self.manager.run_unit_job(self, "exit", lambda: self._handle_exit(result, cause, status))

    def _limit_runtime(self) -> None:
        """RuntimeMaxSec=: stop the service with result `timeout` once it ran that long."""
        deadline = Deadline(self.setting("RuntimeMaxSec"))
        if deadline.seconds == float("inf"):
            return
        invocation = self.invocation_id

        async def expire() -> None:
            self.deadline = deadline
            try:
                await deadline.run(asyncio.Event().wait())
            except TimeoutError:
                pass
            finally:
                if self.deadline is deadline:
                    self.deadline = None
            if invocation != self.invocation_id or self.active_state is not ActiveState.ACTIVE:
                return
            log.warning("%s: RuntimeMaxSec=%gs exceeded, stopping the service", self.name, deadline.seconds)
            self.watchdog.disarm()
            await self.manager.run_unit_job(
                self, "exit", lambda: self._handle_exit("timeout", ExitCause.TIMEOUT, None))

        self._runtime_limit = asyncio.ensure_future(expire())

    def _supervise_without_main(self) -> None:
        """A forking service without a known main PID runs until its last process is gone."""
        invocation = self.invocation_id
        procs = ProcessSet(self.manager.loop, self.name)
        procs.add(self.members())

        async def wait() -> None:
            await procs.wait_empty(float("inf"))
            procs.close()
            if invocation == self.invocation_id and not self.stopping and self.active_state is ActiveState.ACTIVE:
                self._on_main_exit(ExitStatus(0, "exited", 0))

        asyncio.ensure_future(wait())

    def kill_for_result(self, result: str, cause: ExitCause, signum: int = signal.SIGKILL) -> None:
        """End a running or activating service on the manager's own decision (a limit, a watchdog).

        Every process of the unit gets `signum`; the main process's exit is
        then handled with `result` and `cause` instead of its exit status, so
        Restart= applies as systemd's table says for that cause. A start in
        progress ends at once and fails with `result`.
        """
        activating = self.active_state is ActiveState.ACTIVATING and self.sub_state != "auto-restart"
        running = self.active_state in (ActiveState.ACTIVE, ActiveState.RELOADING) and self.main_pid
        if not activating and not running:
            return
        log.warning("%s: killing main process %d and the rest of the unit (result %s)",
                    self.name, self.main_pid, result)
        self.forced_result = (result, cause)
        procs = ProcessSet(self.manager.loop, self.name)
        procs.add(self.members())
        procs.signal(signum)
        procs.close()
        if activating and self.deadline is not None:
            self.deadline.expire()

    async def _handle_exit(self, result: str, cause: ExitCause, status: ExitStatus | None) -> str:
        if self.active_state in (ActiveState.INACTIVE, ActiveState.FAILED) or self.sub_state == "auto-restart":
            return "done"  # another job has already dealt with this invocation's end
        final = await StopSequence(self, result, run_exec_stop=True).run()
        self._finish(final, restart_allowed=True, cause=cause, status=status)
        return "done"

    def members(self) -> set[int]:
        """Return the unit's live pids: its cgroup's where it has one, else those processes.py finds."""
        resources = getattr(self.manager, "resources", None)
        in_cgroup = resources.cgroup_pids(self.name) if resources is not None else None
        if in_cgroup is not None:
            # A process spawned a moment ago may still be on its way into the cgroup (cgroupjoin.py).
            return in_cgroup | {pid for pid in self.roots if processes.is_running(pid)}
        return processes.find_members(self.roots, self.invocation_id, os.getpid(), self.manager.reaper.is_watched)

    # -- after a stop -----------------------------------------------------

    async def _after_failed_start(self, failure: StartFailed) -> str:
        if self.forced_result is not None:
            result, cause = self.forced_result
            self.forced_result = None
            failure = StartFailed(result, cause, failure.status)
        mode = "terminate"
        if failure.cause is ExitCause.TIMEOUT:
            mode = self.setting("TimeoutStartFailureMode") or "terminate"
        result = await StopSequence(self, failure.result, run_exec_stop=False, failure_mode=mode).run()
        if isinstance(failure, ConditionNotMet):
            log.info("%s: skipped because ExecCondition= exited %d", self.name, failure.status.status)
            self._release_watches()
            self.set_state(ActiveState.INACTIVE, "dead", result="exec-condition")
            return "skipped"
        self._finish(result, restart_allowed=True, cause=failure.cause, status=failure.status)
        return "failed"

    def _release_watches(self) -> None:
        for watch in self._watches:
            watch.cancel()
        self._watches = []

    def _finish(self, result: str, restart_allowed: bool, cause: ExitCause | None = None,
                status: ExitStatus | None = None) -> None:
        self.main_pid = 0
        limit, self._runtime_limit = self._runtime_limit, None
        if limit is not None and limit is not asyncio.current_task():
            limit.cancel()
        self.watchdog.disarm()
        self._release_watches()
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
        delay = self._damp_crash_loop(self._unit_restart_delay())
        self.set_state(ActiveState.ACTIVATING, "auto-restart", result=result)
        log.info("%s: scheduled restart job in %gs, restart counter is at %d", self.name, delay, self.n_restarts)
        self._restart_task = asyncio.ensure_future(self._restart_after(delay))

    def _unit_restart_delay(self) -> float:
        """Return the delay RestartSec=, RestartSteps= and RestartMaxDelaySec= give the next automatic restart."""
        return restart_delay(self.n_restarts, self.setting("RestartSec"),
                             self.setting("RestartSteps") or 0, self.setting("RestartMaxDelaySec") or float("inf"))

    def _damp_crash_loop(self, delay: float) -> float:
        """Count the run that just ended and return `delay` raised to the crash-loop floor (crashloop.py)."""
        policy = self.manager.config.crash_loop
        previous = self.crash_loop.quick_exits
        self.crash_loop.run_ended(time.monotonic(), policy)
        quick_exits = self.crash_loop.quick_exits
        floor = policy.floor(quick_exits)
        pid = self.main_exit.pid if self.main_exit is not None else self._last_control_pid()
        if quick_exits == 0 and policy.floor(previous) > 0:
            log.info("%s: process %d ran for %gs or longer, so crash-loop damping ends after %d quick exits",
                     self.name, pid, policy.quick_exit_sec, previous)
        elif quick_exits == policy.burst + 1 and floor > 0:
            log.warning("%s: process %d exited within %gs of the start, %d runs in a row, so restarts wait "
                        "at least %gs, doubling up to CrashLoopMaxDelaySec=%gs (crash-loop damping)",
                        self.name, pid, policy.quick_exit_sec, quick_exits, floor, policy.max_delay)
        self.crash_loop_delay = floor if floor > delay else 0.0
        return max(delay, floor)

    async def _restart_after(self, delay: float) -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        self._restart_task = None
        await self.manager.run_unit_job(self, "start", lambda: self.run_start(automatic=True))

    def _cancel_restart(self) -> None:
        task, self._restart_task = self._restart_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    @property
    def restart_pending(self) -> bool:
        return self._restart_task is not None

    def _last_control_pid(self) -> int:
        return self.control_records[-1].pid if self.control_records else 0

    def _crash_loop_status(self) -> dict[str, Any] | None:
        """Return the `crash_loop` field of status, which is set while crash-loop damping delays the pending restart."""
        if not self.restart_pending or not self.crash_loop_delay:
            return None
        return {"delay": self.crash_loop_delay, "quick_exits": self.crash_loop.quick_exits}

    def reset_failed(self) -> None:
        self.start_limit.reset()
        self.crash_loop.reset()
        if self.restart_pending and self.crash_loop_delay:
            # The damped delay came from the quick exits just cleared, so restart after the unit's own delay.
            self.crash_loop_delay = 0.0
            self._cancel_restart()
            self._restart_task = asyncio.ensure_future(self._restart_after(self._unit_restart_delay()))
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
            status_errno=self.status_errno,
            n_restarts=self.n_restarts,
            crash_loop=self._crash_loop_status(),
            invocation_id=self.invocation_id,
            start_times=self.start_times[-50:],
            service_type=self.service_type,
            notify_access=notify_access(self),
        )
        if self.main_exit is not None:
            data["exec_main"] = {
                "pid": self.main_exit.pid, "code": self.main_exit.code,
                "status": self.main_exit.status, "status_name": status_name(self.main_exit),
            }
        return data
