"""`unitmgr --user --daemon`: start the manager in the background and wait until it serves.

The parent spawns the manager in a new session with stdin from /dev/null and
stdout/stderr appended to the manager's log, hands it the write end of a pipe
as fd 3 (named by UNITMGR_READY_FD), and returns only when the manager writes
"ready" there, that is once its control endpoint accepts requests. So
`unitmgr --user --daemon && unitsh -c status` works.
"""

from __future__ import annotations

import os
import select
import sys
import time
from pathlib import Path

READY_FD_ENV = "UNITMGR_READY_FD"
READY_TIMEOUT = 60.0


def take_ready_fd() -> int | None:
    """In the spawned manager: the readiness pipe, kept out of the units' descriptors."""
    value = os.environ.pop(READY_FD_ENV, "")
    if not value.isdigit():
        return None
    fd = int(value)
    try:
        os.set_inheritable(fd, False)
    except OSError:
        return None
    return fd


def signal_ready(fd: int) -> None:
    try:
        os.write(fd, b"ready\n")
    except OSError:
        pass
    os.close(fd)


def _wait_ready(read_fd: int, pid: int) -> bool | int:
    """True once ready; the exit status if the manager exited first; False on timeout."""
    deadline = time.monotonic() + READY_TIMEOUT
    data = b""
    while time.monotonic() < deadline:
        readable, _, _ = select.select([read_fd], [], [], 0.5)
        if readable:
            chunk = os.read(read_fd, 64)
            if not chunk:
                break
            data += chunk
            if b"ready" in data:
                return True
    waited, status = os.waitpid(pid, os.WNOHANG)
    if waited == 0:
        return False
    return os.waitstatus_to_exitcode(status)


def start_detached(argv: list[str], log_path: Path) -> int:
    """Spawn `unitmgr ARGV` detached; return this command's exit status."""
    log_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    read_fd, write_fd = os.pipe()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    devnull = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    env = dict(os.environ)
    env[READY_FD_ENV] = "3"
    try:
        pid = os.posix_spawn(
            sys.executable,
            [sys.executable, "-m", "unitmgr.manager.cli", *argv],
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
                (os.POSIX_SPAWN_DUP2, write_fd, 3),
            ],
            setsid=True,
        )
    finally:
        for fd in (write_fd, log_fd, devnull):
            os.close(fd)
    try:
        outcome = _wait_ready(read_fd, pid)
    finally:
        os.close(read_fd)
    if outcome is True:
        print(f"unitmgr started in the background (pid {pid}); log: {log_path}", file=sys.stderr)
        return 0
    if outcome is False:
        print(f"unitmgr: the manager (pid {pid}) did not become ready within {READY_TIMEOUT:g}s; "
              f"see {log_path}", file=sys.stderr)
        return 1
    if outcome == 0:
        # The manager found another one running and logged that.
        print("unitmgr is already running for this user; nothing to do", file=sys.stderr)
        return 0
    print(f"unitmgr: the manager exited with status {outcome} during start-up; see {log_path}",
          file=sys.stderr)
    return 1
