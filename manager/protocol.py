"""The control endpoint's wire format, shared by the manager and every client.

Transport: ZeroMQ with CurveZMQ. The manager binds one ROUTER socket; a
client connects a DEALER socket and sends one JSON object per message
(a single frame, UTF-8, at most MAX_MESSAGE_BYTES).

    request  {"id": 7, "cmd": "restart", "args": {"units": ["web"]}}
    reply    {"id": 7, "ok": true, "result": {...}}
    error    {"id": 7, "ok": false, "error": {"code": "unit-not-found", "message": "..."}}
    event    {"sub": 3, "seq": 118, "event": "log", ...}

`id` is chosen by the client and echoed in the reply; replies may arrive out
of order because the manager runs requests concurrently. A request that
cannot be parsed gets an error reply with `"id": null`. The first request of
a session should be `hello`, whose result carries PROTOCOL_VERSION.

This module imports nothing else from the manager (only the unit name
rules from units/), so clients can use it without pulling in the daemon.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from unitmgr.units import names

# Version 2: `list` returns a table of columns and rows in place of an object per unit.
PROTOCOL_VERSION = 2

# Requests and replies above this size are rejected; log replies are paged
# to stay below it.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# Error codes. Clients map them to exit statuses; keep the strings stable.
BAD_REQUEST = "bad-request"
UNKNOWN_COMMAND = "unknown-command"
TOO_LARGE = "too-large"
UNIT_NOT_FOUND = "unit-not-found"
UNIT_MASKED = "unit-masked"
UNIT_BAD = "unit-bad-setting"
JOB_FAILED = "job-failed"
NOT_APPLICABLE = "not-applicable"
REFUSED = "refused"
BUSY = "busy"
INTERNAL = "internal"

ERROR_CODES = frozenset(
    {
        BAD_REQUEST,
        UNKNOWN_COMMAND,
        TOO_LARGE,
        UNIT_NOT_FOUND,
        UNIT_MASKED,
        UNIT_BAD,
        JOB_FAILED,
        NOT_APPLICABLE,
        REFUSED,
        BUSY,
        INTERNAL,
    }
)


class ProtocolError(Exception):
    """A request or reply that breaks the wire format, or a command that failed."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}


class Request(NamedTuple):
    # A NamedTuple, not a dataclass, because `unitsh -c` imports this module and
    # importing dataclasses (with inspect and ast) costs milliseconds per run.
    id: int | str | None
    cmd: str
    args: dict[str, Any]


# One encoder for every message, so json.dumps does not build one per call. The
# circular-reference check is off because messages are trees of fresh dicts and
# lists: a cycle raises RecursionError instead of ValueError.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, check_circular=False)


class EncodedJSON:
    """A command result that is already the JSON text of one object.

    A handler returns one to skip encoding the result for every request: the
    server puts `text` into the reply unchanged as the value of "result", so it
    must be a valid JSON object written with encode_value()."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text


def encode_value(value: Any) -> str:
    """Return the JSON text of `value` as it appears inside a message."""
    return _ENCODER.encode(value)


def encode(obj: dict[str, Any]) -> bytes:
    """Serialise one message; raise ProtocolError(TOO_LARGE) past the size cap.

    A "result" that is an EncodedJSON goes in as its text, after the other keys."""
    result = obj.get("result")
    if isinstance(result, EncodedJSON):
        head = _ENCODER.encode({key: value for key, value in obj.items() if key != "result"})
        separator = "," if len(head) > 2 else ""
        text = f'{head[:-1]}{separator}"result":{result.text}}}'
    else:
        text = _ENCODER.encode(obj)
    data = text.encode("utf-8")
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            TOO_LARGE, f"message of {len(data)} bytes exceeds the {MAX_MESSAGE_BYTES} byte limit"
        )
    return data


def encode_request(request_id: int | str, cmd: str, args: dict[str, Any] | None = None) -> bytes:
    return encode({"id": request_id, "cmd": cmd, "args": args or {}})


def decode_request(data: bytes) -> Request:
    """Parse a request, raising ProtocolError with the reason for anything malformed."""
    if len(data) > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            TOO_LARGE,
            f"request of {len(data)} bytes exceeds the {MAX_MESSAGE_BYTES} byte limit",
        )
    try:
        obj = json.loads(data.decode("utf-8"))
    except RecursionError:
        raise ProtocolError(BAD_REQUEST, "request JSON is nested too deeply; "
                            "send arguments of a few levels at most") from None
    except ValueError as exc:
        # JSONDecodeError and UnicodeDecodeError are ValueErrors, and so is an
        # integer literal longer than Python's 4300-digit conversion limit.
        raise ProtocolError(BAD_REQUEST, f"request is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(BAD_REQUEST, "request must be a JSON object")
    request_id = obj.get("id")
    if request_id is not None and not isinstance(request_id, (int, str)):
        raise ProtocolError(BAD_REQUEST, "request 'id' must be an integer or a string")
    cmd = obj.get("cmd")
    if not isinstance(cmd, str) or not cmd:
        raise ProtocolError(BAD_REQUEST, "request needs a 'cmd' string", {"id": request_id})
    args = obj.get("args", {})
    if args is None:
        args = {}
    if not isinstance(args, dict):
        raise ProtocolError(BAD_REQUEST, "request 'args' must be a JSON object", {"id": request_id})
    return Request(request_id, cmd, args)


def reply_ok(request_id: Any, result: dict[str, Any] | EncodedJSON) -> dict[str, Any]:
    return {"id": request_id, "ok": True, "result": result}


def reply_error(request_id: Any, code: str, message: str, **details: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"id": request_id, "ok": False, "error": error}


def decode_reply(data: bytes) -> dict[str, Any]:
    """Parse a reply or event from the manager; raise ProtocolError if it is malformed."""
    try:
        obj = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProtocolError(BAD_REQUEST, f"reply is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(BAD_REQUEST, "reply must be a JSON object")
    return obj


def expand_table(result: dict[str, Any], legacy_key: str) -> list[dict[str, Any]]:
    """Return the rows of a table result as dicts keyed by column name.

    A table is {"columns": [NAME, ...], "rows": [[VALUE, ...], ...]}. A manager
    of protocol 1 sent the dicts themselves under `legacy_key` (e.g. "units"),
    which are returned as they are. Raise ProtocolError for any other shape."""
    columns = result.get("columns")
    rows = result.get("rows")
    if columns is None and rows is None and isinstance(result.get(legacy_key), list):
        return result[legacy_key]
    if not isinstance(columns, list) or not isinstance(rows, list):
        raise ProtocolError(BAD_REQUEST, f"reply has no table: expected 'columns' and 'rows' "
                            f"lists or a '{legacy_key}' list, got keys {sorted(result)}")
    width = len(columns)
    for row in rows:
        if not isinstance(row, list) or len(row) != width:
            raise ProtocolError(BAD_REQUEST, f"reply table row {row!r} does not have the "
                                f"{width} values of columns {columns}")
    return [dict(zip(columns, row, strict=True)) for row in rows]


def arg_units(args: dict[str, Any], required: bool = True) -> list[str]:
    """Return the `units` argument as a list of names, checking their type and syntax."""
    units = args.get("units", [])
    if isinstance(units, str):
        units = [units]
    if not isinstance(units, list) or not all(isinstance(u, str) and u for u in units):
        raise ProtocolError(BAD_REQUEST, "'units' must be a list of unit names")
    if required and not units:
        raise ProtocolError(BAD_REQUEST, "this command needs at least one unit name")
    for unit in units:
        check_unit_name(unit)
    return units


def check_unit_name(text: str) -> None:
    """Raise ProtocolError unless `text`, with `.service` added when it has no type, is a valid unit name."""
    if names.is_valid_name(names.complete_name(text)):
        return
    printable = text if text.isprintable() else repr(text)
    raise ProtocolError(
        BAD_REQUEST,
        f"Unit name {printable} is not valid; write NAME.TYPE or NAME@INSTANCE.TYPE using letters, "
        "digits and ':_.\\-', such as web.service or worker@1 (.service is added when no type is "
        "given)",
        {"unit": text},
    )
