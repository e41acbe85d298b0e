"""Starting a unit's processes.

Every process starts in a new session, with stdin from /dev/null, stdout and
stderr on the descriptors the caller gives, the default disposition for every
signal (SIGPIPE ignored when IgnoreSIGPIPE=yes, as systemd does) and an empty
signal mask. `os.posix_spawn` is the fast path. When the unit needs an
attribute posix_spawn cannot set (working directory, umask, rlimits, nice,
CPU affinity, I/O priority, OOM score adjustment), the spawn goes through
`exechelper.py`, a Python interpreter (about 10 ms) that applies them and
then execs.
A cgroup alone does not need the helper: /bin/sh writes 0 to the unit's
`cgroup.procs`, which moves the shell itself, and then execs the program
(cgroupjoin.py). The program never runs outside its cgroup, so it cannot
fork there either.
No path uses fork() in this multi-threaded process, and none leaves a
Popen object whose cleanup could steal an exit status from the reaper.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from unitmgr.manager import cgroupjoin
from unitmgr.manager.descriptors import seal_inherited

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
    # Read end of the status pipe of exechelper.py or the joining shell: EOF means the exec succeeded,
    # data means a setup step failed. None on the posix_spawn path, where
    # exec failures raise at once.
    status_fd: int | None


def _file_actions(spec: SpawnSpec, devnull: int, extra: list[int]) -> list[tuple]:
    actions: list[tuple] = [
        (os.POSIX_SPAWN_DUP2, devnull if spec.stdin_fd is None else spec.stdin_fd, 0),
        (os.POSIX_SPAWN_DUP2, spec.stdout_fd, 1),
        (os.POSIX_SPAWN_DUP2, spec.stderr_fd, 2),
    ]
    # Passed descriptors go through numbers above every source and target
    # first (sockets.py): a plain dup2 onto 3, 4, ... could overwrite a source
    # still to be passed, and dup2 of an fd onto itself would keep FD_CLOEXEC.
    passed = [*spec.pass_fds, *extra]
    base = max([*passed, 2 + len(passed)]) + 1 if passed else 0
    for index, fd in enumerate(passed):
        actions.append((os.POSIX_SPAWN_DUP2, fd, base + index))
    for index in range(len(passed)):
        actions.append((os.POSIX_SPAWN_DUP2, base + index, 3 + index))
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
    try:
        needs_helper = spec.needs_helper(manager_cwd)
        if spec.cgroup and not needs_helper and cgroupjoin.can_join(spec) \
                and cgroupjoin.check_executable(spec.path):
            return _spawn_with_shell(spec, devnull)
        if needs_helper or spec.cgroup:
            return _spawn_with_helper(spec, devnull)
        try:
            pid = os.posix_spawn(
                spec.path,
                spec.argv,
                spec.env,
                file_actions=_file_actions(spec, devnull, []),
                setsid=True,
                setsigmask=(),
                setsigdef=_sigdef(spec),
            )
        except OSError as exc:
            raise SpawnError(f"could not execute {spec.path}: {exc.strerror}", 203, exc.errno) from None
        return Spawned(pid, None)
    finally:
        os.close(devnull)


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
        pid = os.posix_spawn(
            cgroupjoin.SHELL,
            cgroupjoin.shell_argv(spec, status_fd_in_child),
            spec.env,
            file_actions=_file_actions(spec, devnull, [status_write]),
            setsid=True,
            setsigmask=(),
            setsigdef=_sigdef(spec),
        )
    except OSError as exc:
        os.close(status_read)
        raise SpawnError(f"could not start {cgroupjoin.SHELL} to join the cgroup: {exc.strerror}",
                         cgroupjoin.EXIT_CGROUP, exc.errno) from None
    finally:
        os.close(status_write)
    return Spawned(pid, status_read)


def _spawn_with_helper(spec: SpawnSpec, devnull: int) -> Spawned:
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
        "cgroup": spec.cgroup,
        "listen_pid": spec.listen_pid,
        "watchdog_pid": spec.watchdog_pid,
        "status_fd": status_fd_in_child,
    }
    spec_fd = _spec_file(helper_spec)
    try:
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-I", "-S", HELPER, "--spec-fd", str(status_fd_in_child + 1)],
            {},
            file_actions=_file_actions(spec, devnull, [status_write, spec_fd]),
            setsid=True,
            setsigmask=(),
            setsigdef=_sigdef(spec),
        )
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
    if step == "chdir":
        # systemd's wording; the helper puts the directory before the error.
        return int(code), f"Changing to the requested working directory failed: {reason.strip()}"
    return int(code), f"{step} failed: {reason.strip()}"
