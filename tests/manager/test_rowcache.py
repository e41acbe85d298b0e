"""Pre-encoded results: EncodedRows and protocol.encode() with an EncodedJSON result.

The `list` reply is built from cached row texts, so these tests check that it
is byte for byte what encoding the same dicts gives, and that a row whose
values change is encoded again, also through a running manager.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from unitmgr.manager import protocol
from unitmgr.manager.rowcache import EncodedRows

from tests.support import wait_for, write_unit

FIELDS = ("name", "active_state", "main_pid", "description")


def encode_rows(rows: EncodedRows, table: list[tuple]) -> bytes:
    texts = [rows.row(values[0], values) for values in table]
    return protocol.encode(protocol.reply_ok(7, rows.result("units", texts)))


def encode_dicts(table: list[tuple]) -> bytes:
    units = [dict(zip(FIELDS, values, strict=True)) for values in table]
    return protocol.encode(protocol.reply_ok(7, {"units": units}))


TABLE = [
    ("web.service", "active", 1234, "Web server"),
    ("ünï.service", "failed", 0, 'quote " and \\ and \n'),
    ("none.service", "inactive", None, ""),
]


def test_encoded_rows_match_dict_encoding():
    rows = EncodedRows(FIELDS)

    assert encode_rows(rows, TABLE) == encode_dicts(TABLE)
    # The second reply comes from the cache and must not differ.
    assert encode_rows(rows, TABLE) == encode_dicts(TABLE)


def test_encoded_rows_changed_value_reencoded():
    rows = EncodedRows(FIELDS)
    encode_rows(rows, TABLE)
    changed = [("web.service", "activating", 4321, "Web server"), *TABLE[1:]]

    data = json.loads(encode_rows(rows, changed))

    assert data["result"]["units"][0]["active_state"] == "activating"
    assert data["result"]["units"][0]["main_pid"] == 4321
    assert encode_rows(rows, changed) == encode_dicts(changed)


def test_encoded_rows_keep_only_last_reply():
    rows = EncodedRows(FIELDS)
    encode_rows(rows, TABLE)
    encode_rows(rows, TABLE[:1])

    assert set(rows._previous) == {"web.service"}
    assert encode_rows(rows, []) == encode_dicts([])


def test_encoded_rows_reject_wrong_value_count():
    rows = EncodedRows(FIELDS)

    with pytest.raises(ValueError):
        rows.row("web.service", ("web.service", "active"))


def test_encoded_result_without_other_keys():
    message = {"result": protocol.EncodedJSON('{"a":1}')}

    assert protocol.encode(message) == b'{"result":{"a":1}}'


def test_encoded_result_size_limit(monkeypatch):
    monkeypatch.setattr(protocol, "MAX_MESSAGE_BYTES", 64)
    result = protocol.EncodedJSON('{"text":"' + "x" * 100 + '"}')

    with pytest.raises(protocol.ProtocolError) as info:
        protocol.encode(protocol.reply_ok(1, result))

    assert info.value.code == protocol.TOO_LARGE


def test_encode_circular_raises_recursion_error():
    message: dict = {"id": 1}
    message["self"] = message

    with pytest.raises(RecursionError):
        protocol.encode(message)


def list_row(manager, name: str) -> dict:
    rows = manager.request("list", {"all": True})["units"]
    return next(row for row in rows if row["name"] == name)


def test_list_follows_restart_and_stop(make_manager, tmp_path: Path):
    units = tmp_path / "units"
    write_unit(units, "sleeper.service",
               "[Unit]\nDescription=cached row\n[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    manager = make_manager(units)
    wait_for(lambda: list_row(manager, "sleeper.service")["sub_state"] == "running")
    first = list_row(manager, "sleeper.service")

    manager.request("restart", {"units": ["sleeper"]})
    wait_for(lambda: list_row(manager, "sleeper.service")["sub_state"] == "running")
    restarted = list_row(manager, "sleeper.service")
    manager.request("stop", {"units": ["sleeper"]})
    stopped = list_row(manager, "sleeper.service")

    assert first["description"] == "cached row"
    assert first["main_pid"] > 0
    assert restarted["main_pid"] > 0
    assert restarted["main_pid"] != first["main_pid"]
    assert stopped["active_state"] == "inactive"
    assert stopped["main_pid"] == 0
