"""Names of exit statuses and signals as systemd displays them (`status=1/FAILURE`).

The manager sends `status_name` with every exit; these tables are the fallback
for a result that lacks it.
"""

from __future__ import annotations

# systemd's names for exit statuses: LSB, BSD sysexits, and the codes its
# service setup uses when a step before exec fails.
EXIT_STATUS_NAMES: dict[int, str] = {
    0: "SUCCESS", 1: "FAILURE", 2: "INVALIDARGUMENT", 3: "NOTIMPLEMENTED",
    4: "NOPERMISSION", 5: "NOTINSTALLED", 6: "NOTCONFIGURED", 7: "NOTRUNNING",
    64: "USAGE", 65: "DATAERR", 66: "NOINPUT", 67: "NOUSER", 68: "NOHOST",
    69: "UNAVAILABLE", 70: "SOFTWARE", 71: "OSERR", 72: "OSFILE", 73: "CANTCREAT",
    74: "IOERR", 75: "TEMPFAIL", 76: "PROTOCOL", 77: "NOPERM", 78: "CONFIG",
    200: "CHDIR", 201: "NICE", 202: "FDS", 203: "EXEC", 204: "MEMORY", 205: "LIMITS",
    206: "OOM_ADJUST", 207: "SIGNAL_MASK", 208: "STDIN", 209: "STDOUT", 210: "CHROOT",
    211: "IOPRIO", 212: "TIMERSLACK", 213: "SECUREBITS", 214: "SETSCHEDULER",
    215: "CPUAFFINITY", 216: "GROUP", 217: "USER", 218: "CAPABILITIES", 219: "CGROUP",
    220: "SETSID", 221: "CONFIRM", 222: "STDERR", 224: "PAM", 225: "NETWORK",
    226: "NAMESPACE", 227: "NO_NEW_PRIVILEGES", 228: "SECCOMP", 229: "SELINUX_CONTEXT",
    230: "PERSONALITY", 231: "APPARMOR_PROFILE", 232: "ADDRESS_FAMILIES",
    233: "RUNTIME_DIRECTORY", 235: "CHOWN", 236: "SMACK_PROCESS_LABEL", 237: "KEYRING",
    238: "STATE_DIRECTORY", 239: "CACHE_DIRECTORY", 240: "LOGS_DIRECTORY",
    241: "CONFIGURATION_DIRECTORY", 242: "NUMA_POLICY", 243: "CREDENTIALS", 245: "BPF",
}


def exit_status_name(status: int) -> str:
    return EXIT_STATUS_NAMES.get(status, "")


def signal_name(number: int) -> str:
    """Return a signal's name without `SIG` (`TERM`), or the number as text."""
    import signal  # its enums take a while to build, and most output names no signal

    try:
        return signal.Signals(number).name.removeprefix("SIG")
    except ValueError:
        return str(number)


def signal_names() -> list[str]:
    """Return this system's signal names with `SIG` (`SIGTERM`), sorted: the names
    that the manager's `kill` accepts, with or without `SIG`."""
    import signal

    return sorted(sig.name for sig in signal.Signals)


def describe_exit(code: str, status: int | None, status_name: str = "") -> str:
    """Format one exit as systemd does: `code=exited, status=1/FAILURE` or
    `code=killed, signal=TERM`."""
    if status is None:
        return f"code={code}"
    if code == "exited":
        # The manager may send "203/EXEC" or just "EXEC"; show "203/EXEC" either way.
        name = status_name.rpartition("/")[2] or exit_status_name(status)
        return f"code=exited, status={status}/{name}" if name else f"code=exited, status={status}"
    name = status_name or signal_name(status)
    return f"code={code}, signal={name}"
