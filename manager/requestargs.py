"""Type checks for the arguments of control requests, run before a command's handler.

Each command declares the JSON type of every argument it reads. A request
whose argument has another type gets a `bad-request` error that names the
argument and the expected type, so a handler never meets a value of a type it
does not expect. Ranges and allowed words stay with the handlers. An argument
set to `null` counts as absent. Arguments a command does not declare are left
alone, so a newer client can send an option an older manager ignores.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from unitmgr.manager import protocol

# Values longer than this are cut in error messages.
SHOWN_VALUE_CHARS = 60


@dataclass(frozen=True)
class ArgumentType:
    """The JSON type an argument must have, with its wording for error messages."""

    description: str
    accepts: Callable[[Any], bool]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return _is_int(value) or isinstance(value, float)


def _is_string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


BOOLEAN = ArgumentType("true or false", lambda value: isinstance(value, bool))
INTEGER = ArgumentType("an integer", _is_int)
NUMBER = ArgumentType("a number", _is_number)
STRING = ArgumentType("a string", lambda value: isinstance(value, str))
STRINGS = ArgumentType("a list of strings", _is_string_list)
STRING_OR_STRINGS = ArgumentType(
    "a string or a list of strings", lambda value: isinstance(value, str) or _is_string_list(value))
STRING_OR_NUMBER = ArgumentType(
    "a string or a number", lambda value: isinstance(value, str) or _is_number(value))
STRING_OR_INTEGER = ArgumentType(
    "a string or an integer", lambda value: isinstance(value, str) or _is_int(value))

_UNITS = {"units": STRING_OR_STRINGS}
_LOG_QUERY = {"lines": INTEGER, "raw": BOOLEAN, "since": STRING_OR_NUMBER,
              "until": STRING_OR_NUMBER, "grep": STRING, "stream": STRING, "skip": INTEGER}
_JOB = {**_UNITS, "no_block": BOOLEAN}

# The arguments of every command the manager serves (docs/protocol.md).
COMMAND_ARGUMENTS: dict[str, dict[str, ArgumentType]] = {
    "hello": {},
    "list": {"all": BOOLEAN, "states": STRINGS, "types": STRINGS, "table": BOOLEAN},
    "status": {**_UNITS, "lines": INTEGER},
    "start": _JOB,
    "stop": _JOB,
    "restart": _JOB,
    "try-restart": _JOB,
    "reload-or-restart": _JOB,
    "try-reload-or-restart": _JOB,
    "reset-failed": _UNITS,
    "logs": {**_UNITS, **_LOG_QUERY},
    "exit": {},
    "scale": {"unit": STRING, "template": STRING, "count": STRING_OR_INTEGER, "delta": INTEGER},
    "list-sockets": {"all": BOOLEAN},
    "top": {"sort": STRING, "all": BOOLEAN},
    "is-system-running": {},
    "kill": {**_UNITS, "signal": STRING_OR_INTEGER, "whom": STRING},
    "reload": _UNITS,
    "daemon-reload": {},
    "is-active": _UNITS,
    "verify": {"files": STRINGS},
    "cat": _UNITS,
    "show": {**_UNITS, "properties": STRINGS, "all": BOOLEAN},
    "enable": {**_UNITS, "now": BOOLEAN},
    "disable": {**_UNITS, "now": BOOLEAN},
    "is-enabled": _UNITS,
    "list-unit-files": {"states": STRINGS},
    "subscribe": {**_UNITS, **_LOG_QUERY, "streams": STRING_OR_STRINGS, "queue": INTEGER,
                  "queue_bytes": INTEGER, "interval": NUMBER},
    "ack": {"sub": INTEGER, "seq": INTEGER},
    "unsubscribe": {"sub": INTEGER},
}


def describe_value(value: Any) -> str:
    """Return a short JSON rendering of `value` for an error message."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError, RecursionError):
        text = type(value).__name__
    if len(text) > SHOWN_VALUE_CHARS:
        text = text[:SHOWN_VALUE_CHARS] + "..."
    return text


def _contains_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\0" in value
    return isinstance(value, list) and any(isinstance(item, str) and "\0" in item for item in value)


def check_arguments(request: protocol.Request) -> protocol.Request:
    """Return `request` without its null arguments; raise ProtocolError for a mistyped one."""
    declared = COMMAND_ARGUMENTS.get(request.cmd)
    if declared is None:
        return request
    args = {name: value for name, value in request.args.items() if value is not None}
    for name, value in args.items():
        expected = declared.get(name)
        if expected is None:
            continue
        if not expected.accepts(value):
            raise protocol.ProtocolError(
                protocol.BAD_REQUEST,
                f"argument '{name}' of {request.cmd} must be {expected.description}, "
                f"not {describe_value(value)}",
                {"argument": name},
            )
        if _contains_nul(value):
            raise protocol.ProtocolError(
                protocol.BAD_REQUEST,
                f"argument '{name}' of {request.cmd} contains a NUL character: "
                f"{describe_value(value)}; remove it",
                {"argument": name},
            )
    return request._replace(args=args)
