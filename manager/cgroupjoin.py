"""Entering a unit's cgroup before exec without a Python interpreter.

spawn.py starts `/bin/sh -c SCRIPT unitmgr CGROUP_DIR [PWD] PROGRAM ARGS...`.
The shell writes 0 to `CGROUP_DIR/cgroup.procs`, which moves the writing
process itself, closes the status pipe and execs PROGRAM with ARGS. The
process keeps its pid, so the pid the manager gets from posix_spawn is the
program's. `echo` and the redirection are shell built-ins: nothing forks
before the move. This costs about 1 ms against 10 ms for exechelper.py.

When the write fails, the shell writes `219 cgroup 0 REASON` to the status
pipe, the format exechelper.py uses, and exits with 219 (systemd's CGROUP
exit code). The manager logs the reason and copies it into the unit's log.

A POSIX shell changes what it passes on through exec in ways a unit must not
see, so `can_join()` leaves these spawns to exechelper.py:
- argv[0] other than the program's path, because dash's `exec` has no `-a`;
- environment variables whose names are not shell identifiers, which dash drops;
- IFS, OPTIND and PPID in the environment, which dash resets.
dash also sets PWD, so the script unsets it or restores the unit's value.

A file that is neither ELF nor a `#!` script would run as a shell script
under every POSIX shell's exec (the ENOEXEC fallback), where the kernel's own
exec fails it or hands it to a binfmt_misc handler. `check_executable()`
reads the first bytes and leaves such files to exechelper.py, whose real
exec gets the kernel's result.
"""

from __future__ import annotations

import errno
import functools
import os
import re
import stat
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from unitmgr.manager.spawn import SpawnSpec

SHELL = "/bin/sh"
EXIT_CGROUP = 219
EXIT_EXEC = 203
# Redirections in a POSIX shell take a single digit.
MAX_STATUS_FD = 9
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Variables dash sets at start-up whatever the environment contains.
_SHELL_SETS = frozenset({"IFS", "OPTIND", "PPID"})


def can_join(spec: SpawnSpec) -> bool:
    """Return whether the shell can join the cgroup and exec `spec` exactly as posix_spawn would."""
    if not spec.path.startswith("/") or spec.argv[:1] != [spec.path]:
        return False
    if 3 + len(spec.pass_fds) > MAX_STATUS_FD:
        return False
    return all(_IDENTIFIER.fullmatch(name) and name not in _SHELL_SETS for name in spec.env)


def check_executable(path: str) -> bool:
    """Return whether the shell's exec of `path` behaves as the kernel's; raise SpawnError if exec would fail.

    The shell reports a failed exec only after the status pipe has closed, so
    without this check a Type=exec unit with a missing program would count as
    started.
    """
    from unitmgr.manager.spawn import SpawnError

    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise SpawnError(f"could not execute {path}: {exc.strerror}", EXIT_EXEC, exc.errno) from None
    if not stat.S_ISREG(mode) or not os.access(path, os.X_OK):
        reason = os.strerror(errno.EACCES)
        raise SpawnError(f"could not execute {path}: {reason}", EXIT_EXEC, errno.EACCES)
    try:
        with open(path, "rb") as program:
            magic = program.read(4)
    except OSError:
        # Execute permission without read permission: only the kernel's exec can decide.
        return False
    return magic.startswith((b"#!", b"\x7fELF"))


@functools.lru_cache(maxsize=32)
def _script(status_fd: int, keep_pwd: bool) -> str:
    # The first write sends its error message to /dev/null. Only when it fails
    # does a second write send the message to the status pipe, after the prefix.
    fd = status_fd
    join = (f'echo 0 2>/dev/null >"$1/cgroup.procs" || '
            f'{{ printf "{EXIT_CGROUP} cgroup 0 " >&{fd}; echo 0 2>&{fd} >"$1/cgroup.procs"; exit {EXIT_CGROUP}; }}')
    restore_pwd = 'PWD=$2; shift 2' if keep_pwd else 'unset PWD; shift'
    return f'{join}; exec {fd}>&-; {restore_pwd}; exec "$@"'


def shell_argv(spec: SpawnSpec, status_fd: int) -> list[str]:
    """Return the argv that runs the join script for `spec`, with the status pipe at `status_fd`."""
    assert spec.cgroup is not None
    keep_pwd = "PWD" in spec.env
    argv = [SHELL, "-c", _script(status_fd, keep_pwd), "unitmgr", spec.cgroup]
    if keep_pwd:
        argv.append(spec.env["PWD"])
    return [*argv, *spec.argv]
