"""Running as a container's init (PID 1), and the exit policy of SuccessAction=/FailureAction=.

As PID 1 the kernel drops every signal that has no handler, so the manager
installs handlers for the ones an orchestrator sends (SIGTERM, SIGINT,
SIGQUIT); it already reaps every orphan through its SIGCHLD reaper. A
container often has no writable home: the runtime and state directories
then fall back to /run/unitmgr or /tmp/unitmgr-UID, and the manager logs
which it chose.

SuccessAction= and FailureAction= (none, exit, exit-force) make the manager
exit when a unit succeeds or fails, with the exit status systemd uses:
SuccessActionExitStatus=/FailureActionExitStatus= when set, else the exit
status of the unit's main process, else the manager's --exit-code. Starting
exit.target stops everything and exits the same way.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from unitmgr.manager.paths import Paths
from unitmgr.manager.states import ActiveState

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager
    from unitmgr.manager.unitbase import UnitRuntime

log = logging.getLogger(__name__)

EXIT_TARGET = "exit.target"
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)


def is_pid1() -> bool:
    return os.getpid() == 1


def _writable(path: Path) -> bool:
    probe = path
    while not probe.exists():
        probe = probe.parent
    return os.access(probe, os.W_OK | os.X_OK)


def container_paths(paths: Paths) -> tuple[Paths, list[str]]:
    """Replace directories that cannot be written with ones under /run or /tmp; return the
    paths and a note for each replacement."""
    fallback_root = Path("/run/unitmgr") if _writable(Path("/run")) else Path(f"/tmp/unitmgr-{os.getuid()}")
    notes: list[str] = []
    changes: dict[str, Path] = {}
    for field in ("config", "state", "runtime", "data"):
        current = getattr(paths, field)
        if _writable(current):
            continue
        replacement = fallback_root / field
        changes[field] = replacement
        notes.append(f"{field} directory {current} is not writable; using {replacement}")
    return paths._replace(**changes), notes


class ExitPolicy:
    """Watches state changes for SuccessAction=/FailureAction= and exit.target."""

    def __init__(self, manager: Manager, default_exit_code: int):
        self.manager = manager
        self.default_exit_code = default_exit_code

    def __call__(self, runtime: UnitRuntime) -> None:
        if runtime.name == EXIT_TARGET and runtime.active_state is ActiveState.ACTIVE:
            log.info("%s reached: stopping all units and exiting", EXIT_TARGET)
            self.manager.request_shutdown(self.default_exit_code)
            return
        if runtime.active_state is ActiveState.FAILED:
            self._act(runtime, "FailureAction", "FailureActionExitStatus")
        elif runtime.active_state is ActiveState.INACTIVE and runtime.result == "success" \
                and runtime.active_enter_time is not None:
            self._act(runtime, "SuccessAction", "SuccessActionExitStatus")

    def _exit_status(self, runtime: UnitRuntime, status_key: str) -> int:
        configured = runtime.unit.get("Unit", status_key)
        if isinstance(configured, int) and 0 <= configured <= 255:
            return configured
        main_exit = getattr(runtime, "main_exit", None)
        if main_exit is not None and main_exit.code == "exited":
            return main_exit.status
        if main_exit is not None:
            return 128 + main_exit.status
        return self.default_exit_code

    def _act(self, runtime: UnitRuntime, action_key: str, status_key: str) -> None:
        action = runtime.unit.get("Unit", action_key) or "none"
        if action == "none":
            return
        code = self._exit_status(runtime, status_key)
        log.warning("%s: %s=%s, the manager exits with status %d", runtime.name, action_key, action, code)
        self.manager.request_shutdown(code, force=(action == "exit-force"))


class LineTee:
    """Copies every unit's output to the manager's stdout/stderr, one prefixed line at a time.

    What `docker logs` shows. Partial lines wait for their newline (or EOF);
    colour only when the stream is a terminal.
    """

    COLORS = ("\033[36m", "\033[33m", "\033[35m", "\033[32m", "\033[34m", "\033[31m")
    RESET = "\033[0m"

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], bytes] = {}
        self._colors: dict[str, str] = {}

    def _prefix(self, unit: str, stream) -> bytes:
        label = unit.removesuffix(".service")
        if stream.isatty():
            color = self._colors.setdefault(unit, self.COLORS[len(self._colors) % len(self.COLORS)])
            return f"{color}{label}{self.RESET}: ".encode()
        return f"{label}: ".encode()

    def __call__(self, unit: str, data: bytes, stream_id: int, eof: bool) -> None:
        if stream_id not in (1, 2):
            return  # The manager's own lines about a unit are already in its log on stderr.
        stream = sys.stderr if stream_id == 2 else sys.stdout
        key = (unit, stream_id)
        buffer = self._pending.pop(key, b"") + data
        *lines, rest = buffer.split(b"\n")
        if eof and rest:
            lines.append(rest)
            rest = b""
        if rest:
            self._pending[key] = rest
        if not lines:
            return
        prefix = self._prefix(unit, stream)
        out = b"".join(prefix + line + b"\n" for line in lines)
        try:
            stream.buffer.write(out)
            stream.buffer.flush()
        except (OSError, ValueError):
            # A closed or full stdout must never stop the log store behind it.
            pass


def system_state(manager: Manager) -> str:
    """systemctl is-system-running's word for this manager."""
    if manager.shutdown_requested.is_set():
        return "stopping"
    boot = getattr(manager, "boot_task", None)
    if boot is None or not boot.done():
        return "starting"
    if any(r.active_state is ActiveState.FAILED for r in manager.runtimes.values()):
        return "degraded"
    return "running"


def attach_stdout_copy(manager: Manager) -> None:
    """Copy every unit's output to the manager's stdout and stderr as well as the log store.

    Setting `on_data` turns the log's splice path off for every unit, which
    costs throughput. It is the default only in container mode."""
    tee = LineTee()

    def on_writer(writer) -> None:
        def on_data(data: bytes, stream: int, pid: int, stamp: float, eof: bool) -> None:
            tee(writer.unit, data, stream, eof)

        writer.on_data = on_data

    manager.logs.writer_callbacks.append(on_writer)
