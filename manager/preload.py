"""Read and parse the unit files in a second process while the manager starts.

Before its first spawn the manager runs on one core: about 110 ms to import
its modules and open the endpoint, then about 30 ms to read and parse 500
unit files (bench/notes.md, S1), while the other cores idle. `start()`
forks a child once the manager's configuration is read. The child loads
every unit file of the search path, with the same search path, specifier
context and defaults the manager's loader gets, and sends the units back
pickled (about 4 ms to unpickle 500). `take()` gives the manager's loader
the units whose files have not changed since; it loads any other unit
itself, as without a preload.

A preload is only a shortcut. Whatever goes wrong (no second CPU, few unit
files, a child that fails or takes longer than CHILD_SECONDS, a different
context or directory listing, a changed file) leaves the manager loading
that unit, or every unit, the usual way.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

# Only light modules here: start() forks before the manager imports the rest, so that the
# child's imports and loading run beside the manager's imports.
if TYPE_CHECKING:
    from unitmgr.manager.reaper import ExitStatus
    from unitmgr.units.loader import UnitLoader
    from unitmgr.units.model import Unit

log = logging.getLogger(__name__)

# Below this many entries in the unit directories, loading costs less than the fork.
MIN_ENTRIES = 64
# The child is killed (SIGALRM) after this long; the manager then loads the units itself.
CHILD_SECONDS = 30
# Linux's fcntl to resize a pipe, and the size asked for the result pipe (500 units take about 170 kB).
F_SETPIPE_SZ = 1031
PIPE_BYTES = 1 << 20


def _entry_count(unit_dirs: list[Path]) -> int:
    count = 0
    for directory in unit_dirs:
        try:
            count += len(os.listdir(directory))
        except OSError:
            continue
    return count


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except OSError:
        return os.cpu_count() or 1


class Preload:
    """A running preload child and the read end of the pipe its result comes through."""

    def __init__(self, pid: int, read_fd: int, unit_dirs: list[Path]) -> None:
        self.pid = pid
        self.read_fd = read_fd
        self.unit_dirs = unit_dirs
        # The child's exit code once known: from the manager's reaper (child_exited) or from _finish().
        self.exit_code: int | None = None

    def child_exited(self, status: ExitStatus) -> None:
        """Record the child's exit, reaped by the manager's reaper (reaper.py)."""
        self.exit_code = status.status if status.code == "exited" else -1

    def _finish(self) -> None:
        """Close the pipe and reap the child unless the manager's reaper did."""
        if self.read_fd >= 0:
            os.close(self.read_fd)
            self.read_fd = -1
        if self.exit_code is None:
            try:
                _pid, status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                self.exit_code = -1
            else:
                self.exit_code = os.waitstatus_to_exitcode(status)

    def discard(self) -> None:
        """End a child whose result is never taken (a manager that stops before its boot)."""
        if self.exit_code is None and self.read_fd >= 0:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._finish()

    def _receive(self) -> Any:
        chunks = []
        try:
            while True:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            self._finish()
        if self.exit_code != 0 or not chunks:
            log.debug("unit preload (pid %d) ended with %s; loading the units here", self.pid, self.exit_code)
            return None
        import pickle

        return pickle.loads(b"".join(chunks))

    def take(self, loader: UnitLoader) -> int:
        """Wait for the child and give `loader` the units still current; return how many."""
        import pickle

        from unitmgr.units.loader import CHECKED_STAMPS, file_stamps

        try:
            payload = self._receive()
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
            log.debug("unit preload (pid %d) unusable: %s; loading the units here", self.pid, exc)
            return 0
        if payload is None:
            return 0
        context, defaults, listing, units, stamps = payload
        if context != loader.context or defaults != loader.defaults or listing != loader.listing():
            log.debug("unit preload (pid %d) read another context or listing; loading the units here", self.pid)
            return 0
        current: dict[str, Unit] = {}
        checked: dict[int, bool] = {}
        for name, unit in units.items():
            valid = checked.get(id(unit))
            if valid is None:
                valid = checked[id(unit)] = stamps[name] == file_stamps(unit, self.unit_dirs)
                if valid:
                    # The runtime made for this unit takes these rather than stat the files again.
                    unit.derived[CHECKED_STAMPS] = stamps[name]
            if valid:
                current[name] = unit
        loader.adopt(current)
        return len(current)


def start(unit_dirs: list[Path], config_file: Path) -> Preload | None:
    """Fork a child that loads every unit of `unit_dirs`; None where a preload does not pay.

    Call it before the manager starts threads; `config_file` is unitmgr.conf."""
    if _cpus() < 2 or _entry_count(unit_dirs) < MIN_ENTRIES:
        return None
    try:
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    except OSError as exc:
        log.debug("no unit preload: %s", exc)
        return None
    try:
        pid = os.fork()
    except OSError as exc:
        log.debug("no unit preload: %s", exc)
        os.close(read_fd)
        os.close(write_fd)
        return None
    if pid == 0:
        _run_child(write_fd, unit_dirs, config_file)
    os.close(write_fd)
    return Preload(pid, read_fd, unit_dirs)


def _run_child(write_fd: int, unit_dirs: list[Path], config_file: Path) -> NoReturn:
    code = 1
    try:
        # Nothing of the manager's but stdio and the pipe.
        os.closerange(3, write_fd)
        os.closerange(write_fd + 1, 1 << 16)
        signal.alarm(CHILD_SECONDS)
        try:
            # Room for the whole result, so the child can exit before the manager reads it.
            fcntl.fcntl(write_fd, F_SETPIPE_SZ, PIPE_BYTES)
        except OSError:
            pass  # over the user's pipe-user-pages limit: the manager's reads make room
        import pickle

        from unitmgr.manager.config import load_manager_config
        from unitmgr.units.loader import UnitLoader, file_stamps
        from unitmgr.units.specifiers import SpecifierContext

        config = load_manager_config(config_file)
        # The context and defaults Manager.__init__ gives its loader; take() compares them.
        context = SpecifierContext.from_environment({**os.environ, **config.environment})
        loader = UnitLoader(unit_dirs, context, config.defaults)
        units: dict[str, Unit] = {}
        stamps: dict[str, tuple[int, ...]] = {}
        for name in loader.names():
            unit = loader.load(name)
            if unit.load_state == "not-found":
                continue
            units[name] = unit
            stamps[name] = file_stamps(unit, unit_dirs)
        payload = pickle.dumps((loader.context, loader.defaults, loader.listing(), units, stamps),
                               protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(payload)
        while view:
            view = view[os.write(write_fd, view):]
        code = 0
    except BaseException:  # noqa: BLE001 - any failure means "no preload"; the manager loads the units
        code = 1
    finally:
        os._exit(code)
