"""Child reaping: the manager is a subreaper and collects every exit from SIGCHLD.

Orphaned descendants of units are re-parented to the manager (PR_SET_CHILD_SUBREAPER),
so one `waitid(P_ALL)` loop reaps direct children and orphans alike. Nothing
else in the manager may wait for children (no subprocess.Popen.wait, no
asyncio subprocesses): an exit status read by the wrong party is lost.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only for annotations: states.py imports this module, and the manager's command line
    # imports states.py before it forks the unit preload (preload.py), without asyncio.
    import asyncio

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class ExitStatus:
    """How a process ended, in systemd's terms."""

    pid: int
    code: str  # "exited", "killed" or "dumped"
    status: int  # exit code, or signal number for killed/dumped

    @property
    def clean_exit(self) -> bool:
        return self.code == "exited" and self.status == 0


def set_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants; return False where the
    kernel refuses."""
    try:
        _set_child_subreaper()
    except OSError as exc:
        log.warning("could not become a child subreaper: %s", exc.strerror)
        return False
    return True


def _set_child_subreaper() -> None:
    try:
        from unitmgr.manager import _linuxcalls
    except ImportError:  # built without a C compiler
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            error = ctypes.get_errno()
            raise OSError(error, os.strerror(error)) from None
        return
    _linuxcalls.set_child_subreaper()


def exit_status_from_siginfo(info: os.waitid_result) -> ExitStatus:
    if info.si_code == os.CLD_EXITED:
        return ExitStatus(info.si_pid, "exited", info.si_status)
    if info.si_code == os.CLD_DUMPED:
        return ExitStatus(info.si_pid, "dumped", info.si_status)
    return ExitStatus(info.si_pid, "killed", info.si_status)


class Reaper:
    """Collects child exits on SIGCHLD and hands each to the callback registered for its pid.

    Exits of pids nobody watches (orphans re-parented to the manager) go to
    `orphan_callback`. Callbacks run in the event loop, never in signal context.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self._loop = loop
        self._watchers: dict[int, Callable[[ExitStatus], None]] = {}
        self.orphan_callback: Callable[[ExitStatus], None] | None = None

    def install(self) -> None:
        self._loop.add_signal_handler(signal.SIGCHLD, self.reap)

    def uninstall(self) -> None:
        self._loop.remove_signal_handler(signal.SIGCHLD)

    def watch(self, pid: int, callback: Callable[[ExitStatus], None]) -> None:
        """Call `callback` when `pid` exits. Register right after spawning, in the same
        loop iteration, so the exit cannot be reaped first."""
        self._watchers[pid] = callback

    def unwatch(self, pid: int) -> None:
        """Stop watching `pid`, which the caller has reaped itself."""
        self._watchers.pop(pid, None)

    def is_watched(self, pid: int) -> bool:
        return pid in self._watchers

    def reap(self) -> None:
        while True:
            try:
                info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if info is None or info.si_pid == 0:
                return
            status = exit_status_from_siginfo(info)
            callback = self._watchers.pop(status.pid, None)
            target = callback or self.orphan_callback
            if target is None:
                continue
            try:
                target(status)
            except Exception:
                log.exception("exit handler failed for pid %d", status.pid)
