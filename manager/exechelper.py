"""Apply a unit's process attributes, then exec its command.

Run as `python -I -S exechelper.py SPEC_JSON` by the manager when a unit
needs something `os.posix_spawn` cannot set before exec (working directory,
umask, rlimits, nice level). Only the standard library is imported, and the
interpreter starts without site-packages, so this costs about 10 ms per spawn.

On a failed step the helper exits with systemd's exit code for that step
(200 CHDIR, 201 NICE, 203 EXEC, 205 LIMITS) after writing the errno and the
step's name to the status pipe, so the manager can tell "could not start"
from "ran and exited". After a successful exec the pipe is closed by
O_CLOEXEC and the manager reads EOF.
"""

import json
import os
import resource
import signal
import sys

EXIT_CHDIR = 200
EXIT_NICE = 201
EXIT_EXEC = 203
EXIT_LIMITS = 205


def fail(status_fd: int, code: int, step: str, err: OSError) -> None:
    message = f"{code} {step} {err.errno or 0} {err.strerror or err}"
    if status_fd >= 0:
        try:
            os.write(status_fd, message.encode("utf-8", "replace"))
        except OSError:
            pass
    else:
        os.write(2, f"unitmgr: {step} failed: {err}\n".encode("utf-8", "replace"))
    os._exit(code)


def limit_value(value: int | None) -> int:
    return resource.RLIM_INFINITY if value is None else value


def apply(spec: dict, status_fd: int) -> None:
    for name, (soft, hard) in spec.get("rlimits", {}).items():
        try:
            resource.setrlimit(getattr(resource, name), (limit_value(soft), limit_value(hard)))
        except (OSError, ValueError) as exc:
            err = exc if isinstance(exc, OSError) else OSError(1, f"{name}: {exc}")
            fail(status_fd, EXIT_LIMITS, "setrlimit", err)
    cwd = spec.get("cwd")
    if cwd:
        try:
            os.chdir(cwd)
        except OSError as exc:
            if not spec.get("cwd_optional"):
                fail(status_fd, EXIT_CHDIR, "chdir", exc)
    if spec.get("nice") is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, spec["nice"])
        except OSError as exc:
            fail(status_fd, EXIT_NICE, "setpriority", exc)
    if spec.get("umask") is not None:
        os.umask(spec["umask"])
    # Python ignores SIGXFSZ and SIGPIPE at start-up, and ignored signals
    # survive exec: give the program the dispositions the unit asks for.
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN if spec.get("ignore_sigpipe", True) else signal.SIG_DFL)


def main() -> None:
    spec = json.loads(sys.argv[1])
    status_fd = spec.get("status_fd", -1)
    if status_fd >= 0:
        # The status pipe must close when the unit's program is exec'd.
        os.set_inheritable(status_fd, False)
    apply(spec, status_fd)
    env = spec["env"]
    try:
        os.execve(spec["path"], spec["argv"], env)
    except OSError as exc:
        fail(status_fd, EXIT_EXEC, "execve", exc)


if __name__ == "__main__":
    main()
