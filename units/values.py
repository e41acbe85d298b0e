"""Value parsers for unit-file settings, following systemd 252's syntax.

Each parser takes the text of one assignment (after specifier expansion) and
returns the typed value stored in `Unit.settings`, or raises `UnitValueError`
with a message that names the value and the fix. The caller turns that error
into a warning and drops the assignment, which is what systemd does.
"""

from __future__ import annotations

import math
import re
import signal

from unitmgr.units.cinteger import INT_MAX, UINT64_MAX, parse_c_integer
from unitmgr.units.model import ExitStatusSet, RLimit


class UnitValueError(ValueError):
    """An assignment whose value cannot be parsed; the message is user-facing.

    `fatal` marks the errors that make systemd refuse the whole unit
    (load state "bad-setting") instead of ignoring the assignment.
    """

    def __init__(self, message: str, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


# -- Booleans ---------------------------------------------------------------

_TRUE = frozenset({"1", "yes", "y", "true", "t", "on"})
_FALSE = frozenset({"0", "no", "n", "false", "f", "off"})


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise UnitValueError(
        f"Failed to parse boolean value '{text}', ignoring; use yes/no, true/false, on/off or 1/0"
    )


# -- Time spans -------------------------------------------------------------

_TIME_UNITS: dict[str, float] = {
    "us": 1e-6, "usec": 1e-6, "µs": 1e-6, "μs": 1e-6,
    "ms": 1e-3, "msec": 1e-3,
    "s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0,
    "m": 60.0, "min": 60.0, "minute": 60.0, "minutes": 60.0,
    "h": 3600.0, "hr": 3600.0, "hour": 3600.0, "hours": 3600.0,
    "d": 86400.0, "day": 86400.0, "days": 86400.0,
    "w": 604800.0, "week": 604800.0, "weeks": 604800.0,
    "M": 2629800.0, "month": 2629800.0, "months": 2629800.0,
    "y": 31557600.0, "year": 31557600.0, "years": 31557600.0,
}  # fmt: skip
_LLONG_MAX = 2**63 - 1
_TIME_TERM = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-zµμ]*)")


def parse_timespan(text: str, default_unit: float = 1.0) -> float:
    """Parse `1min 30s`, `1h30m`, `5`, `infinity` into seconds (`math.inf` for infinity).

    `default_unit` is the length in seconds of a number without a unit
    (1e-6 for `LimitRTTIME=`, which counts microseconds).
    """
    stripped = text.strip()
    if stripped == "infinity":
        return math.inf
    total = 0.0
    whole_usec = 0
    position = 0
    while position < len(stripped):
        match = _TIME_TERM.match(stripped, position)
        if not match:
            raise _bad_timespan(text)
        number, unit = match.groups()
        if unit and unit not in _TIME_UNITS:
            raise _bad_timespan(text)
        seconds = _TIME_UNITS[unit] if unit else default_unit
        # systemd counts microseconds in 64 bits and reads each number with strtoll.
        whole = int(number.split(".")[0] or "0")
        unit_usec = round(seconds * 1_000_000)
        whole_usec += whole * unit_usec
        if whole > _LLONG_MAX or whole >= UINT64_MAX // unit_usec or whole_usec >= UINT64_MAX:
            raise _bad_timespan(text)
        total += float(number) * seconds
        position = match.end()
        while position < len(stripped) and stripped[position].isspace():
            position += 1
    if not stripped:
        raise _bad_timespan(text)
    return total


def _bad_timespan(text: str) -> UnitValueError:
    return UnitValueError(
        f"Failed to parse sec value '{text}', ignoring; write a time span such as "
        "'90', '1min 30s', '500ms' or 'infinity'"
    )


# -- Sizes ------------------------------------------------------------------

# Suffixes from the largest down: in `1G 512M` each term must use a smaller one.
_SIZE_FACTORS = (("E", 1 << 60), ("P", 1 << 50), ("T", 1 << 40), ("G", 1 << 30), ("M", 1 << 20),
                 ("K", 1 << 10), ("B", 1), ("", 1))  # fmt: skip
_SIZE_TERM = re.compile(r"\s*\+?(\d+)(?:\.(\d*))?\s*")


def parse_size(text: str, allow_percent: bool = False, allow_infinity: bool = True) -> int | None:
    """Parse a 1024-based size such as `1.5G` or `1G 512M` into bytes, or None for infinity.

    Follows systemd 252's parse_size(): terms add up, suffixes are case-sensitive and
    must shrink from term to term, and the sum must fit in 64 bits.
    """
    stripped = text.strip()
    if allow_infinity and stripped == "infinity":
        return None
    total = _sum_size_terms(stripped)
    if total is None:
        raise UnitValueError(
            f"Invalid size '{text}', ignoring; write bytes with an optional K, M, G, T, P or E "
            "suffix (1024-based)" + (", a percentage" if allow_percent else "")
            + (" or 'infinity'" if allow_infinity else "")
        )
    return total


def _sum_size_terms(text: str) -> int | None:
    total = 0
    position = 0
    first_suffix = 0
    while True:
        match = _SIZE_TERM.match(text, position)
        if match is None:
            return None
        whole = int(match.group(1))
        fraction = float("0." + match.group(2)) if match.group(2) else 0.0
        position = match.end()
        for index in range(first_suffix, len(_SIZE_FACTORS)):
            suffix, factor = _SIZE_FACTORS[index]
            if text.startswith(suffix, position):
                break
        else:
            return None
        if whole + (fraction > 0) > UINT64_MAX // factor:
            return None
        total += whole * factor + int(fraction * factor)
        if total > UINT64_MAX:
            return None
        position += len(suffix)
        first_suffix = index + 1
        if position >= len(text):
            return total


def parse_size_or_percent(text: str) -> int | float | None:
    """Parse a memory size: bytes (int), `N%` (float fraction 0..1) or infinity (None)."""
    stripped = text.strip()
    if stripped.endswith("%"):
        try:
            percent = float(stripped[:-1])
        except ValueError:
            percent = -1.0
        if not 0 <= percent <= 100:
            raise UnitValueError(f"Invalid percentage '{text}', ignoring; use 0% to 100%")
        return percent / 100
    return parse_size(stripped, allow_percent=True)


# -- Numbers ----------------------------------------------------------------


def parse_int(text: str, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        value = int(text.strip(), 0) if text.strip().startswith("0x") else int(text.strip())
    except ValueError:
        raise UnitValueError(f"Failed to parse integer '{text}', ignoring") from None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        if maximum is None:
            allowed = f"{minimum} or more"
        elif minimum is None:
            allowed = f"{maximum} or less"
        else:
            allowed = f"{minimum}..{maximum}"
        raise UnitValueError(f"Value '{text}' out of range, ignoring; use {allowed}")
    return value


def parse_ranged_int(name: str, text: str, low: int, high: int, signed: bool = True) -> int:
    """Parse the value of directive `name` as a C integer (see units.cinteger) from `low` to `high`."""
    value = parse_c_integer(text, signed)
    if value is None or not low <= value <= high:
        raise UnitValueError(f"Invalid {name}= value '{text}', ignoring; use an integer from {low} to {high}")
    return value


def parse_nice(text: str) -> int:
    value = parse_c_integer(text)
    if value is None or not -INT_MAX - 1 <= value <= INT_MAX:
        raise UnitValueError(f"Failed to parse nice priority '{text}', ignoring; use an integer from -20 to 19")
    if not -20 <= value <= 19:
        raise UnitValueError(f"Nice priority out of range '{text}', ignoring; use -20..19")
    return value


def parse_mode(text: str) -> int:
    """Parse an octal file mode or umask such as `0077` (at most 07777, no sign)."""
    stripped = text.strip()
    if not re.fullmatch(r"[0-7]+", stripped) or int(stripped, 8) > 0o7777:
        raise UnitValueError(
            f"Failed to parse mode '{text}', ignoring; write octal digits from 0 to 07777, like 0022"
        )
    return int(stripped, 8)


# -- Signals and exit statuses ---------------------------------------------

_SIGNALS: dict[str, int] = {
    s.name: int(s) for s in signal.Signals if not s.name.startswith("SIGRT")
}
_RTMIN = signal.SIGRTMIN
_RTMAX = signal.SIGRTMAX


def parse_signal(text: str) -> int:
    """Parse `SIGTERM`, `TERM`, `15`, `SIGRTMIN+3` or `RTMIN+3` into a signal number."""
    word = text.strip()
    if word.isdigit():
        number = int(word)
        if 1 <= number <= _RTMAX:
            return number
    name = word if word.startswith("SIG") else "SIG" + word
    if name in _SIGNALS:
        return _SIGNALS[name]
    match = re.fullmatch(r"SIGRT(MIN|MAX)(?:([+-])(\d+))?", name)
    if match:
        base = _RTMIN if match.group(1) == "MIN" else _RTMAX
        offset = int(match.group(3) or 0) * (-1 if match.group(2) == "-" else 1)
        if _RTMIN <= base + offset <= _RTMAX:
            return base + offset
    raise UnitValueError(
        f"Failed to parse signal name '{text}', ignoring; use a name like SIGTERM or TERM, "
        "a number, or SIGRTMIN+n"
    )


def signal_name(number: int) -> str:
    for name, value in _SIGNALS.items():
        if value == number:
            return name
    if _RTMIN <= number <= _RTMAX:
        return f"SIGRTMIN+{number - _RTMIN}"
    return str(number)


EXIT_STATUS_NAMES: dict[str, int] = {
    "SUCCESS": 0, "FAILURE": 1, "INVALIDARGUMENT": 2, "NOTIMPLEMENTED": 3, "NOPERMISSION": 4,
    "NOTINSTALLED": 5, "NOTCONFIGURED": 6, "NOTRUNNING": 7, "USAGE": 64, "DATAERR": 65,
    "NOINPUT": 66, "NOUSER": 67, "NOHOST": 68, "UNAVAILABLE": 69, "SOFTWARE": 70, "OSERR": 71,
    "OSFILE": 72, "CANTCREAT": 73, "IOERR": 74, "TEMPFAIL": 75, "PROTOCOL": 76, "NOPERM": 77,
    "CONFIG": 78, "CHDIR": 200, "NICE": 201, "FDS": 202, "EXEC": 203, "MEMORY": 204,
    "LIMITS": 205, "OOM_ADJUST": 206, "SIGNAL_MASK": 207, "STDIN": 208, "STDOUT": 209,
    "CHROOT": 210, "IOPRIO": 211, "TIMERSLACK": 212, "SECUREBITS": 213, "SETSCHEDULER": 214,
    "CPUAFFINITY": 215, "GROUP": 216, "USER": 217, "CAPABILITIES": 218, "CGROUP": 219,
    "SETSID": 220, "CONFIRM": 221, "STDERR": 222, "PAM": 224, "NETWORK": 225, "NAMESPACE": 226,
    "NO_NEW_PRIVILEGES": 227, "SECCOMP": 228, "SELINUX_CONTEXT": 229, "PERSONALITY": 230,
    "APPARMOR_PROFILE": 231, "ADDRESS_FAMILIES": 232, "RUNTIME_DIRECTORY": 233, "CHOWN": 235,
    "SMACK_PROCESS_LABEL": 236, "KEYRING": 237, "STATE_DIRECTORY": 238, "CACHE_DIRECTORY": 239,
    "LOGS_DIRECTORY": 240, "CONFIGURATION_DIRECTORY": 241, "NUMA_POLICY": 242,
    "CREDENTIALS": 243, "BPF": 245,
}  # fmt: skip


def parse_exit_status_word(word: str) -> tuple[str, int]:
    """Parse one word of `SuccessExitStatus=`: ("code", n) or ("signal", n)."""
    if word.isdigit():
        number = int(word)
        if number <= 255:
            return "code", number
    elif word in EXIT_STATUS_NAMES:
        return "code", EXIT_STATUS_NAMES[word]
    else:
        try:
            return "signal", parse_signal(word)
        except UnitValueError:
            pass
    raise UnitValueError(
        f"Failed to parse value '{word}', ignoring; use exit codes 0..255, names such as "
        "TEMPFAIL, or signal names such as SIGKILL"
    )


def parse_exit_status_set(text: str) -> ExitStatusSet:
    """Parse a whitespace-separated exit status list; every word must be valid."""
    codes: set[int] = set()
    signals: set[int] = set()
    for word in text.split():
        family, number = parse_exit_status_word(word)
        (codes if family == "code" else signals).add(number)
    return ExitStatusSet(frozenset(codes), frozenset(signals))


def merge_exit_status(old: ExitStatusSet, new: ExitStatusSet) -> ExitStatusSet:
    return ExitStatusSet(old.codes | new.codes, old.signals | new.signals)


# -- Resource limits --------------------------------------------------------

# Unit of a plain number for each Limit*= directive.
RLIMIT_UNITS: dict[str, str] = {
    "LimitCPU": "sec", "LimitFSIZE": "bytes", "LimitDATA": "bytes", "LimitSTACK": "bytes",
    "LimitCORE": "bytes", "LimitRSS": "bytes", "LimitNOFILE": "count", "LimitAS": "bytes",
    "LimitNPROC": "count", "LimitMEMLOCK": "bytes", "LimitLOCKS": "count",
    "LimitSIGPENDING": "count", "LimitMSGQUEUE": "bytes", "LimitNICE": "nice",
    "LimitRTPRIO": "count", "LimitRTTIME": "usec",
}  # fmt: skip


def _parse_rlimit_side(text: str, unit: str) -> int | None:
    """Parse one side of a `Limit*=` value; raise UnitValueError, or ValueError for a bad count."""
    if text == "infinity" and unit != "nice":
        return None
    if unit == "sec":
        # setrlimit(RLIMIT_CPU) counts whole seconds; systemd rounds up.
        return math.ceil(parse_timespan(text))
    if unit == "usec":
        return round(parse_timespan(text, default_unit=1e-6) * 1_000_000)
    if unit == "nice" and text[:1] in "+-":
        # LimitNICE= "+N"/"-N" is a nice value, stored as 20 - nice.
        return 20 - parse_nice(text)
    # systemd reads counts with safe_atou64 and sizes with parse_size(); the all-ones value
    # is RLIM_INFINITY, which only the word infinity may set.
    value = parse_size(text, allow_infinity=False) if unit == "bytes" else parse_c_integer(text, signed=False)
    if value is None or value >= UINT64_MAX or (unit == "nice" and value > 40):
        raise ValueError(text)
    return value


def parse_rlimit(key: str, text: str) -> RLimit:
    """Parse `value` or `soft:hard` for a `Limit*=` directive."""
    unit = RLIMIT_UNITS[key]
    parts = text.strip().split(":")
    if len(parts) > 2 or not all(parts):
        raise UnitValueError(f"Invalid resource limit '{text}', ignoring; write VALUE or SOFT:HARD")
    try:
        soft = _parse_rlimit_side(parts[0], unit)
        hard = _parse_rlimit_side(parts[-1], unit)
    except ValueError:
        raise UnitValueError(
            f"Failed to parse resource value '{text}', ignoring; write a {unit} value, "
            "'infinity', or SOFT:HARD"
        ) from None
    if hard is not None and (soft is None or soft > hard):
        raise UnitValueError(
            f"Soft resource limit chosen higher than hard limit '{text}', ignoring; "
            "make the first number the smaller one"
        )
    return RLimit(soft, hard)


# -- Dispatch by declared kind ----------------------------------------------


def _parse_enum(name: str, text: str, choices: tuple[str, ...]) -> str:
    word = text.strip()
    if word not in choices:
        raise UnitValueError(
            f"Failed to parse {name}= value '{text}', ignoring; use one of: {', '.join(choices)}"
        )
    return word


def _parse_timeout(text: str) -> float:
    seconds = parse_timespan(text)
    # systemd keeps the historic meaning of 0 for timeouts: no limit.
    return math.inf if seconds == 0 else seconds


def parse_scalar(kind: str, name: str, text: str, choices: tuple[str, ...] = ()) -> object:
    """Parse `text` as a value of the declared `kind` of directive `name`."""
    if kind == "bool":
        return parse_bool(text)
    if kind in ("sec", "seclist"):
        return parse_timespan(text)
    if kind == "timeout":
        return _parse_timeout(text)
    if kind == "int":
        return parse_int(text, 0)
    if kind == "mode":
        return parse_mode(text)
    if kind == "nice":
        return parse_nice(text)
    if kind == "signal":
        return parse_signal(text)
    if kind == "enum":
        return _parse_enum(name, text, choices)
    if kind == "rlimit":
        return parse_rlimit(name, text)
    if kind == "exitstatus":
        return parse_exit_status_set(text)
    if kind == "size":
        return parse_size(text)
    raise ValueError(f"no scalar parser for kind {kind!r} of {name}=")
