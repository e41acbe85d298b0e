"""Apply a unit's process attributes, then exec its command.

Run as `python -I -S exechelper.py --spec-fd N` by the manager (or with the
JSON spec as its argument, by hand) when a unit needs something
`os.posix_spawn` cannot set before exec (cgroup, working directory, umask,
rlimits, nice level, CPU affinity, I/O priority, OOM score adjustment).
Only the standard library is imported, and the interpreter starts without
site-packages, so this costs about 10 ms per spawn.

Steps run in systemd's order: cgroup, rlimits, working directory, nice,
CPU affinity, I/O priority, umask, OOM score adjustment. A failed step
exits with systemd's exit code for it (200 CHDIR, 201 NICE, 203 EXEC,
205 LIMITS, 206 OOM_ADJUST, 211 IOPRIO, 215 CPUAFFINITY, 219 CGROUP).
Before exiting it writes the code, the step's name, the errno and a reason
to the status pipe, so the manager can tell "could not start" from "ran and
exited". The manager then logs the reason and copies it into the unit's log.
Without a status pipe (run by hand) the reason goes to stderr instead.
After a successful exec the pipe is closed by O_CLOEXEC and the manager
reads EOF. A spawn whose only extra attribute is the cgroup joins it through
/bin/sh instead (cgroupjoin.py).
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
EXIT_OOM_ADJUST = 206
EXIT_IOPRIO = 211
EXIT_CPUAFFINITY = 215
EXIT_CGROUP = 219

# ioprio_set(2): the syscall has no libc wrapper.
SYS_IOPRIO_SET = {"x86_64": 251, "i686": 289, "i386": 289, "aarch64": 30, "armv7l": 314,
                  "ppc64le": 273, "s390x": 282, "riscv64": 30}  # fmt: skip
IOPRIO_WHO_PROCESS = 1
# Linux's RLIMIT_* numbers, for names Python's resource module lacks (RLIMIT_LOCKS).
LINUX_RLIMITS = {"RLIMIT_CPU": 0, "RLIMIT_FSIZE": 1, "RLIMIT_DATA": 2, "RLIMIT_STACK": 3,
                 "RLIMIT_CORE": 4, "RLIMIT_RSS": 5, "RLIMIT_NPROC": 6, "RLIMIT_NOFILE": 7,
                 "RLIMIT_MEMLOCK": 8, "RLIMIT_AS": 9, "RLIMIT_LOCKS": 10, "RLIMIT_SIGPENDING": 11,
                 "RLIMIT_MSGQUEUE": 12, "RLIMIT_NICE": 13, "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15}  # fmt: skip
IOPRIO_CLASS_SHIFT = 13


def fail(status_fd: int, code: int, step: str, err: OSError, subject: str = "") -> None:
    """Report a failed step to the manager, or on stderr without a status pipe, then exit with `code`.

    `subject` is what the step worked on (the working directory of chdir),
    put before the error so the message names it."""
    reason = f"{subject}: {err.strerror or err}" if subject else f"{err.strerror or err}"
    message = f"{code} {step} {err.errno or 0} {reason}"
    try:
        if status_fd >= 0:
            os.write(status_fd, message.encode("utf-8", "replace"))
        else:
            os.write(2, f"unitmgr: {step} failed: {reason}\n".encode("utf-8", "replace"))
    except OSError:
        pass
    os._exit(code)


def rlimit_number(name: str) -> int:
    number = getattr(resource, name, None)
    return LINUX_RLIMITS[name] if number is None else number


def limit_value(value: int | None) -> int:
    return resource.RLIM_INFINITY if value is None else value


def check_hard_limit(name: str, hard: int) -> OSError | None:
    """Return an error when `hard` is above the hard limit this process inherited from the manager.

    Raising a hard limit needs CAP_SYS_RESOURCE, which an unprivileged user
    manager lacks. Checking here makes the start fail the same way whether or
    not the manager runs as root.
    """
    _soft, own_hard = resource.getrlimit(rlimit_number(name))
    if own_hard == resource.RLIM_INFINITY or (hard != resource.RLIM_INFINITY and hard <= own_hard):
        return None
    wanted = "infinity" if hard == resource.RLIM_INFINITY else str(hard)
    directive = "Limit" + name.removeprefix("RLIMIT_")
    return OSError(1, f"{directive}=: hard limit {wanted} is above the manager's own hard limit {own_hard}; "
                      f"set it to at most {own_hard}")


def apply_rlimits(spec: dict, status_fd: int) -> None:
    for name, (soft, hard) in spec.get("rlimits", {}).items():
        wanted = (limit_value(soft), limit_value(hard))
        error = check_hard_limit(name, wanted[1])
        if error is not None:
            fail(status_fd, EXIT_LIMITS, "setrlimit", error)
        try:
            resource.setrlimit(rlimit_number(name), wanted)
        except (OSError, ValueError) as exc:
            err = exc if isinstance(exc, OSError) else OSError(1, f"{name}: {exc}")
            fail(status_fd, EXIT_LIMITS, "setrlimit", err)


def join_cgroup(path: str, status_fd: int) -> None:
    try:
        with open(os.path.join(path, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))
    except OSError as exc:
        fail(status_fd, EXIT_CGROUP, "cgroup", exc)


def set_io_priority(io_class: int, level: int, status_fd: int) -> None:
    import ctypes
    import platform

    number = SYS_IOPRIO_SET.get(platform.machine())
    if number is None:
        fail(status_fd, EXIT_IOPRIO, "ioprio_set", OSError(38, f"no ioprio_set number known for {platform.machine()}"))
    libc = ctypes.CDLL(None, use_errno=True)
    value = (io_class << IOPRIO_CLASS_SHIFT) | level
    if libc.syscall(number, IOPRIO_WHO_PROCESS, 0, value) != 0:
        errno = ctypes.get_errno()
        fail(status_fd, EXIT_IOPRIO, "ioprio_set", OSError(errno, os.strerror(errno)))


def set_oom_score_adjust(value: int, status_fd: int) -> None:
    try:
        with open("/proc/self/oom_score_adj", "w") as adj:
            adj.write(str(value))
    except OSError as exc:
        fail(status_fd, EXIT_OOM_ADJUST, "oom_score_adj", exc)


def apply_scheduling(spec: dict, status_fd: int) -> None:
    if spec.get("nice") is not None:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, spec["nice"])
        except OSError as exc:
            fail(status_fd, EXIT_NICE, "setpriority", exc)
    if spec.get("cpu_affinity"):
        try:
            os.sched_setaffinity(0, spec["cpu_affinity"])
        except OSError as exc:
            fail(status_fd, EXIT_CPUAFFINITY, "sched_setaffinity", exc)
    if spec.get("io_class") is not None:
        set_io_priority(spec["io_class"], spec.get("io_priority") or 0, status_fd)


def apply(spec: dict, status_fd: int) -> None:
    if spec.get("cgroup"):
        join_cgroup(spec["cgroup"], status_fd)
    apply_rlimits(spec, status_fd)
    cwd = spec.get("cwd")
    if cwd:
        try:
            os.chdir(cwd)
        except OSError as exc:
            if not spec.get("cwd_optional"):
                fail(status_fd, EXIT_CHDIR, "chdir", exc, cwd)
    apply_scheduling(spec, status_fd)
    if spec.get("umask") is not None:
        os.umask(spec["umask"])
    if spec.get("oom_score_adjust") is not None:
        set_oom_score_adjust(spec["oom_score_adjust"], status_fd)
    # Python ignores SIGXFSZ and SIGPIPE at start-up, and ignored signals
    # survive exec: give the program the dispositions the unit asks for.
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN if spec.get("ignore_sigpipe", True) else signal.SIG_DFL)


def read_spec(args: list[str]) -> dict:
    """Return the spec from `--spec-fd N` (what the manager passes) or from a JSON argument."""
    if args[:1] == ["--spec-fd"]:
        fd = int(args[1])
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        os.close(fd)
        return json.loads(b"".join(chunks))
    return json.loads(args[0])


def main() -> None:
    spec = read_spec(sys.argv[1:])
    status_fd = spec.get("status_fd", -1)
    if status_fd >= 0:
        # The status pipe must close when the unit's program is exec'd.
        os.set_inheritable(status_fd, False)
    apply(spec, status_fd)
    env = spec["env"]
    if spec.get("listen_pid"):
        # Socket activation: LISTEN_PID names the process that execs (sockets.py).
        env["LISTEN_PID"] = str(os.getpid())
    if spec.get("watchdog_pid"):
        # WatchdogSec=: WATCHDOG_PID names the process that execs (service.py).
        env["WATCHDOG_PID"] = str(os.getpid())
    try:
        os.execve(spec["path"], spec["argv"], env)
    except OSError as exc:
        fail(status_fd, EXIT_EXEC, "execve", exc, spec["path"])


if __name__ == "__main__":
    main()
