"""Starting a unit's processes.

Every process starts in a new session, with stdin from /dev/null, stdout and
stderr on the descriptors the caller gives, the default disposition for every
signal (SIGPIPE ignored when IgnoreSIGPIPE=yes, as systemd does) and an empty
signal mask. `os.posix_spawn` is the fast path. When the unit needs an
attribute posix_spawn cannot set (working directory, umask, rlimits, nice,
CPU affinity, I/O priority, OOM score adjustment), the spawn goes through
`exechelper.py`, a Python interpreter (about 10 ms) that applies them and
then execs.
A process with a cgroup is born in it: the C extension `_clone3`
(_clone3.c) creates it with clone3(CLONE_INTO_CGROUP), so no migration
waits on the kernel's cgroup lock. It returns without waiting for the exec,
and a failed exec is reported on a status pipe, as for the helper.
Where the extension is missing (no C compiler at install, an architecture
other than x86-64), the kernel lacks clone3 or a seccomp filter rejects it,
or UNITMGR_NO_CLONE3=1 is set, /bin/sh writes 0 to the unit's
`cgroup.procs`, which moves the shell itself, and then execs the program
(cgroupjoin.py). Either way the program never runs outside its cgroup, so
it cannot fork there either.
No path uses fork() in this multi-threaded process, and none leaves a
Popen object whose cleanup could steal an exit status from the reaper.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from unitmgr.manager import cgroupjoin
from unitmgr.manager.descriptors import seal_inherited

try:
    from unitmgr.manager import _clone3
except ImportError:  # built without a C compiler
    _clone3 = None  # type: ignore[assignment]


class _NeverRaised(Exception):
    pass


# Raised by _start() when the kernel rejects creating a process in its cgroup.
_CloneFailed: type[OSError] = _clone3.CloneFailed if _clone3 is not None else _NeverRaised  # type: ignore[assignment]

log = logging.getLogger(__name__)

HELPER = str(Path(__file__).with_name("exechelper.py"))

# Signals whose disposition is reset to the default in the child. SIGKILL and
# SIGSTOP cannot be changed and posix_spawn rejects them.
_RESETTABLE = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}


class SpawnError(Exception):
    """The program could not be started; `exit_code` is systemd's code for the failed step."""

    def __init__(self, message: str, exit_code: int, errno: int = 0):
        super().__init__(message)
        self.exit_code = exit_code
        self.errno = errno


@dataclass
class SpawnSpec:
    path: str
    argv: list[str]
    env: dict[str, str]
    stdout_fd: int
    stderr_fd: int
    cwd: str | None = None
    cwd_optional: bool = False
    umask: int | None = None
    nice: int | None = None
    # RLIMIT_* attribute name -> (soft, hard); None means infinity.
    rlimits: dict[str, tuple[int | None, int | None]] = field(default_factory=dict)
    ignore_sigpipe: bool = True
    # Descriptors passed as 3, 4, ... (socket activation).
    pass_fds: list[int] = field(default_factory=list)
    cpu_affinity: list[int] = field(default_factory=list)
    # IOPRIO_CLASS_* number (1 realtime, 2 best-effort, 3 idle) and level 0..7.
    io_class: int | None = None
    io_priority: int | None = None
    oom_score_adjust: int | None = None
    # Directory of the unit's cgroup; the process enters it before exec.
    cgroup: str | None = None
    # Socket activation (sockets.py): the helper sets LISTEN_PID to the exec'd pid.
    listen_pid: bool = False
    # WatchdogSec= (service.py): the helper sets WATCHDOG_PID to the exec'd pid.
    watchdog_pid: bool = False
    # StandardInput=socket (sockets.py): this descriptor instead of /dev/null.
    stdin_fd: int | None = None

    def needs_helper(self, manager_cwd: str) -> bool:
        """Return whether an attribute other than the cgroup needs exechelper.py."""
        return bool(
            (self.cwd and self.cwd != manager_cwd)
            or self.umask is not None
            or self.nice is not None
            or self.rlimits
            or self.cpu_affinity
            or self.io_class is not None
            or self.oom_score_adjust is not None
            or self.listen_pid
            or self.watchdog_pid
        )


@dataclass
class Spawned:
    pid: int
    # Read end of the status pipe of exechelper.py, the joining shell or a clone3 child: EOF means the
    # exec succeeded, data means a setup step failed. None on the posix_spawn path, where
    # exec failures raise at once.
    status_fd: int | None


def _file_actions(spec: SpawnSpec, devnull: int, extra: list[int]) -> list[tuple]:
    stdio = [devnull if spec.stdin_fd is None else spec.stdin_fd, spec.stdout_fd, spec.stderr_fd]
    passed = [*spec.pass_fds, *extra]
    # Passed descriptors (sockets.py), and stdio sources that are 0, 1 or 2
    # (a manager started with a closed stdin or stdout gets its pipes and
    # sockets there), go through numbers above every source and target first.
    # A plain dup2 onto 0, 1, 2, 3, ... could overwrite a source still to be
    # copied, and dup2 of an fd onto itself would keep FD_CLOEXEC.
    staged = [(fd, target) for target, fd in enumerate(stdio) if fd < 3]
    staged += [(fd, 3 + index) for index, fd in enumerate(passed)]
    base = max([*stdio, *passed, 2 + len(passed)]) + 1
    actions: list[tuple] = [(os.POSIX_SPAWN_DUP2, fd, base + index) for index, (fd, _target) in enumerate(staged)]
    actions += [(os.POSIX_SPAWN_DUP2, fd, target) for target, fd in enumerate(stdio) if fd >= 3]
    for index, (_fd, target) in enumerate(staged):
        actions.append((os.POSIX_SPAWN_DUP2, base + index, target))
        actions.append((os.POSIX_SPAWN_CLOSE, base + index))
    return actions


def _sigdef(spec: SpawnSpec) -> frozenset[int]:
    if spec.ignore_sigpipe:
        return _RESETTABLE - {signal.SIGPIPE}
    return _RESETTABLE


def _ensure_sigpipe_ignored() -> None:
    # A signal that is ignored in the parent stays ignored across exec unless
    # reset; Python ignores SIGPIPE at start-up, and IgnoreSIGPIPE=yes relies on that.
    if signal.getsignal(signal.SIGPIPE) != signal.SIG_IGN:
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)


def spawn(spec: SpawnSpec, manager_cwd: str) -> Spawned:
    """Start `spec`'s program and return its pid; raise SpawnError if it cannot run at all."""
    _ensure_sigpipe_ignored()
    _seal_once()
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    cgroup_fd = _open_cgroup(spec.cgroup) if spec.cgroup else None
    try:
        if spec.needs_helper(manager_cwd):
            return _spawn_with_helper(spec, devnull, cgroup_fd)
        if spec.cgroup and cgroup_fd is None:
            return _join_after_spawn(spec, devnull)
        if cgroup_fd is not None:
            return _spawn_born_in_cgroup(spec, devnull, cgroup_fd)
        try:
            pid = _start(spec.path, spec.argv, spec.env, _file_actions(spec, devnull, []), _sigdef(spec), None)
        except OSError as exc:
            raise SpawnError(f"could not execute {spec.path}: {exc.strerror}", 203, exc.errno) from None
        return Spawned(pid, None)
    finally:
        os.close(devnull)
        if cgroup_fd is not None:
            os.close(cgroup_fd)


def _spawn_born_in_cgroup(spec: SpawnSpec, devnull: int, cgroup_fd: int) -> Spawned:
    """Start a program that needs no helper with clone3, which returns before the exec.

    A failed exec reaches the caller on the status pipe, as a failure of the
    helper does, and the process exits with 203.
    """
    status_read, status_write = os.pipe()
    try:
        pid = _start(spec.path, spec.argv, spec.env, _file_actions(spec, devnull, []), _sigdef(spec), cgroup_fd,
                     status_write)
    except _CloneFailed:
        # TODO: EAGAIN from the cgroup's pids.max also lands here, and joining after the spawn bypasses TasksMax=.
        os.close(status_read)
        return _join_after_spawn(spec, devnull)
    except BaseException:
        os.close(status_read)
        raise
    finally:
        os.close(status_write)
    return Spawned(pid, status_read)


def _join_after_spawn(spec: SpawnSpec, devnull: int) -> Spawned:
    """Start a program that needs no helper through the shell that joins its cgroup, or the helper where it cannot."""
    if cgroupjoin.can_join(spec) and cgroupjoin.check_executable(spec.path):
        return _spawn_with_shell(spec, devnull)
    return _spawn_with_helper(spec, devnull, None)


_clone3_enabled = _clone3 is not None and os.environ.get("UNITMGR_NO_CLONE3", "") not in ("1", "yes", "true")


def clone3_enabled() -> bool:
    """Return whether processes are created in their cgroup by clone3 (until the kernel rejects it)."""
    return _clone3_enabled


def _open_cgroup(path: str) -> int | None:
    """Return a descriptor of the cgroup directory for clone3, or None to join it after the spawn instead.

    When the directory cannot be opened, the join after the spawn reports
    why in systemd's terms (exit code 219).
    """
    if not _clone3_enabled:
        return None
    try:
        return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None


def _start(path: str, argv: list[str], env: dict[str, str], actions: list[tuple], sigdef: frozenset[int],
           cgroup_fd: int | None, status_fd: int = -1) -> int:
    """Start `path` in a new session with `actions` applied, inside the cgroup open at `cgroup_fd` if given.

    Without a cgroup, posix_spawn raises when the exec fails. With one, the
    process is created by clone3 and a failed exec is written to `status_fd`
    (see _clone3.c). Raise _clone3.CloneFailed when the kernel rejects
    creating the process in that cgroup; the caller then joins it the slower way.
    """
    if cgroup_fd is None:
        return os.posix_spawn(path, argv, env, file_actions=actions, setsid=True, setsigmask=(), setsigdef=sigdef)
    for name in env:
        if not name or "=" in name:
            raise ValueError(f"illegal environment variable name {name!r}")
    try:
        return _clone3.spawn(path, argv, [f"{name}={value}" for name, value in env.items()], actions, sigdef,
                             cgroup_fd, status_fd)
    except _clone3.CloneUnavailable as exc:
        _disable_clone3(exc)
        raise
    except _clone3.CloneFailed as exc:
        log.debug("clone3 into cgroup failed (%s); joining the cgroup after the spawn", exc.strerror)
        raise


def collect_finished_spawns() -> None:
    """Free what the clone3 spawner kept for children that have exec'd or exited since its last spawn."""
    if _clone3 is not None:
        _clone3.collect()


def _disable_clone3(exc: OSError) -> None:
    global _clone3_enabled
    _clone3_enabled = False
    log.info("processes join their cgroup after the spawn: %s", exc)


_sealed = False


def _seal_once() -> None:
    """Make inherited descriptors close-on-exec before the first spawn (descriptors.py).

    Once is enough: every descriptor Python, libzmq and the manager open later
    is close-on-exec already (PEP 446), so only those inherited at start-up
    lack the flag.
    """
    global _sealed
    if not _sealed:
        seal_inherited()
        _sealed = True


def _spawn_with_shell(spec: SpawnSpec, devnull: int) -> Spawned:
    assert spec.cgroup is not None
    status_read, status_write = os.pipe()
    status_fd_in_child = 3 + len(spec.pass_fds)
    try:
        pid = _start(cgroupjoin.SHELL, cgroupjoin.shell_argv(spec, status_fd_in_child), spec.env,
                     _file_actions(spec, devnull, [status_write]), _sigdef(spec), None)
    except OSError as exc:
        os.close(status_read)
        raise SpawnError(f"could not start {cgroupjoin.SHELL} to join the cgroup: {exc.strerror}",
                         cgroupjoin.EXIT_CGROUP, exc.errno) from None
    finally:
        os.close(status_write)
    return Spawned(pid, status_read)


def _spawn_with_helper(spec: SpawnSpec, devnull: int, cgroup_fd: int | None) -> Spawned:
    """Start exechelper.py, born in the unit's cgroup when `cgroup_fd` is given and joining it itself otherwise."""
    status_read, status_write = os.pipe()
    status_fd_in_child = 3 + len(spec.pass_fds)
    helper_spec = {
        "path": spec.path,
        "argv": spec.argv,
        "env": spec.env,
        "cwd": spec.cwd,
        "cwd_optional": spec.cwd_optional,
        "umask": spec.umask,
        "nice": spec.nice,
        "rlimits": spec.rlimits,
        "ignore_sigpipe": spec.ignore_sigpipe,
        "cpu_affinity": spec.cpu_affinity,
        "io_class": spec.io_class,
        "io_priority": spec.io_priority,
        "oom_score_adjust": spec.oom_score_adjust,
        "cgroup": spec.cgroup if cgroup_fd is None else None,
        "listen_pid": spec.listen_pid,
        "watchdog_pid": spec.watchdog_pid,
        "status_fd": status_fd_in_child,
    }
    spec_fd = _spec_file(helper_spec)
    try:
        pid = _start(sys.executable, [sys.executable, "-I", "-S", HELPER, "--spec-fd", str(status_fd_in_child + 1)],
                     {}, _file_actions(spec, devnull, [status_write, spec_fd]), _sigdef(spec), cgroup_fd, status_write)
    except _CloneFailed:
        os.close(status_read)
        return _spawn_with_helper(spec, devnull, None)
    except OSError as exc:
        os.close(status_read)
        raise SpawnError(f"could not start the exec helper: {exc.strerror}", 203, exc.errno) from None
    finally:
        os.close(status_write)
        os.close(spec_fd)
    return Spawned(pid, status_read)


def _spec_file(helper_spec: dict) -> int:
    """Return a memfd holding the helper's spec as JSON, read from its start.

    A file rather than an argument keeps the unit's environment out of
    /proc/PID/cmdline, which every user can read, and keeps the unit's
    command line from showing up in the helper's before it execs.
    """
    fd = os.memfd_create("unitmgr-spawn-spec", os.MFD_CLOEXEC)
    os.write(fd, json.dumps(helper_spec).encode())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def parse_helper_status(data: bytes) -> tuple[int, str]:
    """Turn the helper's status message into (systemd exit code, readable reason)."""
    text = data.decode("utf-8", "replace")
    parts = text.split(" ", 3)
    if len(parts) < 4 or not parts[0].isdigit():
        return 203, text or "unknown failure"
    code, step, _errno, reason = parts
    if step == "execve":
        # The reason starts with the program's path (exechelper.py, _clone3.c).
        return int(code), f"could not execute {reason.strip()}"
    if step == "chdir":
        # systemd's wording; the helper puts the directory before the error.
        return int(code), f"Changing to the requested working directory failed: {reason.strip()}"
    return int(code), f"{step} failed: {reason.strip()}"
