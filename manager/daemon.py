"""The manager: one asyncio loop that owns every unit's runtime.

Start-up order: lock (one manager per user), subreaper, keys, unit loading,
control endpoint, then default.target and what it wants. SIGTERM and SIGINT
only set an event; the loop then stops every unit in reverse dependency order
and exits. Nothing here polls: exits come from SIGCHLD, output from readable
pipes, timers from the loop's scheduler.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unitmgr.manager import reaper as reaper_module
from unitmgr.manager.config import load_manager_config
from unitmgr.manager.config import log_diagnostics as log_config_diagnostics
from unitmgr.manager.descriptors import descriptors_for, reserve_table
from unitmgr.manager.environment import build_environment, manager_variables
from unitmgr.manager.jobs import Transactions, run_unit_job
from unitmgr.manager.logstore import LogStore
from unitmgr.manager.memtrim import release_free_memory
from unitmgr.manager.paths import Paths, ensure_private_dir
from unitmgr.manager.protocol import PROTOCOL_VERSION
from unitmgr.manager.reversedeps import ReverseDependencies
from unitmgr.manager.service import ServiceRuntime
from unitmgr.manager.spawn import collect_finished_spawns
from unitmgr.manager.unitbase import TargetRuntime, UnitRuntime
from unitmgr.units.loader import UnitLoader
from unitmgr.units.model import Unit
from unitmgr.units.names import complete_name
from unitmgr.units.specifiers import SpecifierContext

if TYPE_CHECKING:
    from unitmgr.manager.preload import Preload

log = logging.getLogger(__name__)

BOOT_TARGET = "default.target"
# Maximum pause of the cyclic garbage collector at start-up (see cli.py).
GC_PAUSE_SECONDS = 5.0


class Manager:
    def __init__(self, paths: Paths, unit_dirs: list[Path], listen: list[str] | None = None,
                 preload: Preload | None = None):
        self.paths = paths
        self.unit_dirs = unit_dirs
        self.listen = list(listen or [])
        # Built inside the running loop (see cli.py), which owns every task and reader.
        self.loop = asyncio.get_running_loop()
        # unitmgr.conf's [Manager] section (config.py): unit defaults, environment, endpoints.
        self.config = load_manager_config(paths.config_file)
        # The units a second process is loading meanwhile (preload.py), taken by boot().
        self.preload = preload
        log_config_diagnostics(self.config)
        self.listen += [e for e in self.config.listen if e not in self.listen]
        self.base_env = {**os.environ, **self.config.environment}
        self.cwd = str(paths.home)
        self.started_at = time.time()
        self.runtimes: dict[str, UnitRuntime] = {}
        # Reverse dependency lists, which runtime() and UnitRuntime.reload_definition() keep up to date.
        self.reverse_deps = ReverseDependencies(self.runtimes)
        # Runtimes created so far, and known_names() with the (loader, listing generation,
        # created, count) it was built for.
        self._created = 0
        self._known_names: tuple[UnitLoader, int, int, int, list[str]] | None = None
        self.context = SpecifierContext.from_environment(self.base_env)
        self.loader = UnitLoader(unit_dirs, self.context, self.config.defaults)
        # Before the log store starts its removal thread (descriptors.py).
        reserve_table(descriptors_for(len(self.loader.names())))
        self.logs = LogStore(paths.log_dir)
        self.reaper: reaper_module.Reaper
        self.transactions = Transactions(self)
        self.cycles: list[list[str]] = []
        self.listeners: list[Callable[[UnitRuntime], None]] = []
        self.shutdown_requested = asyncio.Event()
        # Set by request_shutdown(); the process exit status (see container.py).
        self.exit_code = 0
        self.force_exit = False
        # Set once the shutdown begins: start jobs that have not run yet are canceled (jobs.py).
        self.shutting_down = False
        self.boot_task: asyncio.Future | None = None
        self.server: Any = None
        self._manager_vars: dict[str, str] = {}
        # Limits, cgroups and statistics (manager/resources.py); cli.py clears use_cgroups for --no-cgroups.
        self.use_cgroups = True
        self.resources: Any = None
        # sd_notify socket (notifyrouting.py) and dependency reactions (deps.py): supervision.
        self.notify: Any = None
        self.reactions: Any = None

    # -- unit registry ----------------------------------------------------

    def resolve(self, name: str) -> str:
        return complete_name(name)

    def load(self, name: str) -> Unit:
        return self.loader.load(name)

    def runtime(self, name: str) -> UnitRuntime | None:
        """Return the runtime of a unit, loading it on first use; None for names that cannot exist.

        A name with no runtime yet is loaded through the loader, which lists the
        unit directories again when one changed since its last listing, so a unit
        file added after the last daemon-reload is found here.
        """
        name = self.resolve(name)
        runtime = self.runtimes.get(name)
        if runtime is not None:
            return runtime
        unit = self.load(name)
        if unit.load_state == "not-found" and not unit.diagnostics:
            return None
        if unit.kind == "service":
            runtime = ServiceRuntime(self, unit)
        elif unit.kind == "socket":  # socket units: manager/sockets.py
            from unitmgr.manager.sockets import SocketRuntime

            runtime = SocketRuntime(self, unit)
        else:
            runtime = TargetRuntime(self, unit)
        self.runtimes[name] = runtime
        self._created += 1
        self.reverse_deps.update(runtime, name)
        for diagnostic in unit.diagnostics:
            log.warning("%s", diagnostic)
        return runtime

    def known_names(self) -> list[str]:
        """Return the loaded units and the unit files in the search path, templates left out, sorted.

        The list is rebuilt only when the loader was replaced (daemon-reload), it
        listed the unit directories again, or a runtime was created or removed.
        A runtime is only ever added by runtime(), so a change in the count with
        no new runtime means one was removed. It stats no directory, so a file that
        no lookup has asked for yet appears once a lookup misses or at daemon-reload.
        """
        key = (self.loader.listing_generation, self._created, len(self.runtimes))
        cached = self._known_names
        if cached is not None and cached[0] is self.loader and cached[1:4] == key:
            return list(cached[4])
        names = set(self.runtimes)
        names.update(n for n in self.loader.names() if "@." not in n)
        known = sorted(names)
        # names() may have listed the directories just now, which moved the generation on.
        self._known_names = (self.loader, self.loader.listing_generation, *key[1:], known)
        return list(known)

    def enablement(self, name: str) -> str:
        """systemctl's is-enabled word for `name` (enablement.py reads the links on disk)."""
        from unitmgr.manager.enablement import Enablement

        return Enablement(self.unit_dirs, self.context).state(name)

    # -- hooks used by the runtimes --------------------------------------

    @property
    def notify_address(self) -> str:
        return self.notify.address if self.notify is not None else str(self.paths.notify_socket)

    def state_changed(self, runtime: UnitRuntime) -> None:
        if self.reactions is not None:
            try:
                self.reactions.state_changed(runtime)
            except Exception:
                log.exception("dependency reactions failed for %s", runtime.name)
        for listener in list(self.listeners):
            try:
                listener(runtime)
            except Exception:
                log.exception("state listener failed for %s", runtime.name)

    def report_cycle(self, cycle: list[str]) -> None:
        if cycle not in self.cycles:
            self.cycles.append(cycle)

    async def run_unit_job(self, runtime: UnitRuntime, kind: str, factory: Callable[[], Any]) -> str:
        return await run_unit_job(runtime, kind, factory)

    def environment_for(self, runtime: ServiceRuntime, main: bool) -> dict[str, str]:
        extra = {"INVOCATION_ID": runtime.invocation_id}
        if not main and runtime.main_pid:
            extra["MAINPID"] = str(runtime.main_pid)
        return build_environment(self.base_env, self._manager_vars, runtime.unit, extra)

    def evaluate_conditions(self, unit: Unit) -> tuple[str, list[str]] | None:
        from unitmgr.manager.conditions import evaluate_unit_conditions

        return evaluate_unit_conditions(unit, self.base_env)

    # -- life cycle -------------------------------------------------------

    async def start(self) -> None:
        """Everything before the boot target: subreaper, dirs, keys, endpoint."""
        from unitmgr.manager.commands import CommandHandler
        from unitmgr.manager.keys import ensure_keys
        from unitmgr.manager.server import ControlServer

        reaper_module.set_subreaper()
        self.reaper = reaper_module.Reaper(self.loop)
        self.reaper.install()
        if self.preload is not None:
            self.reaper.watch(self.preload.pid, self.preload.child_exited)
        from unitmgr.manager.deps import DependencyReactions
        from unitmgr.manager.notifyrouting import NotifyRouter, notify_address

        ensure_private_dir(self.paths.runtime)
        self.notify = NotifyRouter(self, notify_address(self.paths, self.base_env))
        self.notify.open()
        self.reactions = DependencyReactions(self)
        from unitmgr.manager.resources import ResourceTracker  # limits and statistics

        self.resources = ResourceTracker(self, self.use_cgroups)
        self.resources.start()
        ensure_private_dir(self.paths.state)
        ensure_private_dir(self.paths.log_dir)
        try:
            os.chdir(self.cwd)
        except OSError as exc:
            log.warning("could not change to the home directory %s: %s", self.cwd, exc)
            self.cwd = os.getcwd()
        self._manager_vars = manager_variables(str(self.paths.home), os.environ.get("XDG_RUNTIME_DIR"))
        # Marks every unit process as this manager's (see leftovers.py).
        self._manager_vars["UNITMGR_MANAGER"] = str(self.paths.runtime)
        keys = ensure_keys(self.paths)
        handler = CommandHandler(self)
        self.server = ControlServer(self.paths, keys, handler.handle, self.listen)
        # Event streams (subscribe/unsubscribe/ack) and the log settings; see events.py.
        from unitmgr.manager.events import attach_events

        self.events = attach_events(self, handler, self.server)
        await self.server.start()
        # SIGQUIT too: as PID 1 in a container a signal without a handler is dropped.
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            self.loop.add_signal_handler(signum, self.shutdown_requested.set)
        log.info("unitmgr started, pid %d, units from %s", os.getpid(),
                 ", ".join(str(d) for d in self.unit_dirs))

    async def boot(self) -> None:
        """Start default.target and everything it wants."""
        if self.preload is not None:
            adopted = self.preload.take(self.loader)
            self.reaper.unwatch(self.preload.pid)
            log.debug("took %d units from the preload (pid %d)", adopted, self.preload.pid)
            self.preload = None
        try:
            results = await self.transactions.start([BOOT_TARGET])
        finally:
            self.loader.drop_adopted()
        failed = sorted(name for name, result in results.items() if result not in ("done", "skipped"))
        if failed:
            log.warning("boot finished; failed to start: %s", ", ".join(failed))
        else:
            log.info("boot finished; %d units started", len(results))
        collect_finished_spawns()
        # Paused during the boot by cli.py: one collection frees the boot's cycles before the trim.
        gc.enable()
        gc.collect()
        release_free_memory()

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        await self.start()
        # The modules, the configuration and the endpoint live as long as the manager, so the
        # cyclic collector stops visiting them. Visiting them took 20 to 35 ms of a boot of 500 units.
        gc.freeze()
        # A boot that waits long for a unit (ExecStartPre=, Type=notify) collects cycles again after a while.
        self.loop.call_later(GC_PAUSE_SECONDS, gc.enable)
        boot = asyncio.ensure_future(self.boot())
        self.boot_task = boot
        if ready is not None:
            ready()
        await self.shutdown_requested.wait()
        log.info("shutting down: stopping all units")
        self.shutting_down = True
        boot.cancel()
        await self.shutdown()

    async def shutdown(self) -> None:
        if self.force_exit:
            self._kill_all_units()
        await self.transactions.stop_all()
        if self.resources is not None:  # removes the units' cgroups (resources.py)
            self.resources.shutdown()
        if self.server is not None:
            await self.server.stop()
        self.logs.close()
        if self.notify is not None:
            self.notify.close()
        self.reaper.uninstall()
        log.info("unitmgr stopped")

    def _kill_all_units(self) -> None:
        for runtime in self.runtimes.values():
            for pid in runtime.members():
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def request_shutdown(self, exit_code: int | None = None, force: bool = False) -> None:
        """Stop every unit and exit; `exit_code` becomes the manager's exit status.

        With `force` (FailureAction=exit-force), units get SIGKILL instead of
        their stop sequence."""
        if exit_code is not None:
            self.exit_code = exit_code
        self.force_exit = self.force_exit or force
        self.shutdown_requested.set()

    # -- identity ---------------------------------------------------------

    def hello(self) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL_VERSION,
            "version": _package_version(),
            "pid": os.getpid(),
            "user": self._manager_vars.get("USER", ""),
            "host": socket.gethostname(),
            "started": self.started_at,
        }


@functools.cache
def _package_version() -> str:
    """Return the version of the running code, read once: an upgrade on disk does not change what runs."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unitmgr")
    except PackageNotFoundError:
        return "unknown"
