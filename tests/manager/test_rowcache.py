"""Pre-encoded results: EncodedRows, protocol.encode() with an EncodedJSON result,
and protocol.expand_table().

The `list` reply is built from cached row texts, so these tests check that it
is byte for byte what encoding the same table gives, and that a row whose
stamp changes is encoded again, also through a running manager.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from unitmgr.manager import protocol
from unitmgr.manager.rowcache import EncodedRows

from tests.support import wait_for, write_unit

COLUMNS = ("name", "active_state", "main_pid", "description")


def encode_rows(table: EncodedRows, rows: list[tuple], keys: list[str] | None = None) -> bytes:
    # The values themselves stand in for the objects a row is read from.
    entries = [(values[0], values) for values in rows]
    if keys is None:
        keys = [values[0] for values in rows]
    result = table.result(entries, lambda index: rows[index], keys)
    return protocol.encode(protocol.reply_ok(7, result))


def encode_plain(rows: list[tuple]) -> bytes:
    result = {"columns": list(COLUMNS), "rows": [list(values) for values in rows]}
    return protocol.encode(protocol.reply_ok(7, result))


class CountingValues:
    """values(i) for EncodedRows.result() that records which rows were encoded."""

    def __init__(self, rows: list[tuple]):
        self.rows = rows
        self.asked: list[int] = []

    def __call__(self, index: int) -> tuple:
        self.asked.append(index)
        return self.rows[index]


ROWS = [
    ("web.service", "active", 1234, "Web server"),
    ("ünï.service", "failed", 0, 'quote " and \\ and \n'),
    ("none.service", "inactive", None, ""),
]
KEYS = [values[0] for values in ROWS]


def test_encoded_rows_match_plain_encoding():
    table = EncodedRows(COLUMNS)

    assert encode_rows(table, ROWS) == encode_plain(ROWS)
    # The second reply comes from the cache and must not differ.
    assert encode_rows(table, ROWS) == encode_plain(ROWS)


def test_encoded_rows_changed_stamp_reencoded():
    table = EncodedRows(COLUMNS)
    encode_rows(table, ROWS)
    changed = [("web.service", "activating", 4321, "Web server"), *ROWS[1:]]

    data = json.loads(encode_rows(table, changed))

    assert data["result"]["rows"][0] == ["web.service", "activating", 4321, "Web server"]
    assert encode_rows(table, changed) == encode_plain(changed)


def test_encoded_rows_only_changed_row_encoded():
    table = EncodedRows(COLUMNS)
    entries = [(values[0], values) for values in ROWS]
    table.result(entries, CountingValues(ROWS), KEYS)
    owner = object()
    changed = [entries[0], (KEYS[1], (owner,)), entries[2]]
    values = CountingValues(ROWS)

    table.result(changed, values, KEYS)
    table.result(list(changed), values, KEYS)  # an equal reply: the whole text is reused

    assert values.asked == [1]


def test_encoded_rows_filtered_reply_keeps_rows():
    table = EncodedRows(COLUMNS)
    encode_rows(table, ROWS)
    encode_rows(table, [], keys=KEYS)  # a reply whose filter matched no row
    values = CountingValues(ROWS)

    table.result([(row[0], row) for row in ROWS], values, KEYS)

    assert values.asked == []


def test_encoded_rows_drop_gone_keys():
    table = EncodedRows(COLUMNS)
    encode_rows(table, ROWS)
    encode_rows(table, [], keys=["web.service"])
    values = CountingValues(ROWS)

    table.result([(row[0], row) for row in ROWS], values, KEYS)

    assert values.asked == [1, 2]


def test_encoded_rows_reject_wrong_value_count():
    table = EncodedRows(COLUMNS)

    with pytest.raises(ValueError, match="2 values for 4 columns"):
        table.result([("web.service", ())], lambda index: ("web.service", "active"), ["web.service"])


def test_expand_table_to_dicts():
    result = json.loads(encode_plain(ROWS))["result"]

    units = protocol.expand_table(result, "units")

    assert units == [dict(zip(COLUMNS, values, strict=True)) for values in ROWS]


def test_expand_table_protocol_one_shape():
    units = [{"name": "web.service", "active_state": "active"}]

    assert protocol.expand_table({"units": units}, "units") is units


@pytest.mark.parametrize("result", [
    {},
    {"columns": ["name"]},
    {"columns": "name", "rows": []},
    {"columns": ["name", "sub_state"], "rows": [["web.service"]]},
    {"columns": ["name"], "rows": [{"name": "web.service"}]},
])
def test_expand_table_rejects_bad_shape(result: dict):
    with pytest.raises(protocol.ProtocolError) as info:
        protocol.expand_table(result, "units")

    assert info.value.code == protocol.BAD_REQUEST


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
    rows = protocol.expand_table(manager.request("list", {"all": True, "table": True}), "units")
    return next(row for row in rows if row["name"] == name)


def sleeper_text(description: str) -> str:
    return f"[Unit]\nDescription={description}\n[Service]\nExecStart=/bin/sleep 1000\n"


def start_sleeper(make_manager, units: Path, description: str):
    """Start a manager with sleeper.service enabled; return it once the sleeper runs."""
    write_unit(units, "sleeper.service", sleeper_text(description), enable=True)
    manager = make_manager(units)
    wait_for(lambda: list_row(manager, "sleeper.service")["sub_state"] == "running")
    return manager


def test_list_reply_is_table(make_manager, tmp_path: Path):
    manager = start_sleeper(make_manager, tmp_path / "units", "")

    result = manager.request("list", {"table": True})

    assert result["columns"] == ["name", "load_state", "active_state", "sub_state", "description",
                                 "main_pid"]
    assert ["sleeper.service", "loaded", "active", "running", ""] in [row[:5] for row in result["rows"]]
    # A client of protocol 1 does not ask for the table and gets one object per unit.
    legacy = manager.request("list", {})
    assert set(legacy) == {"units"}
    assert legacy["units"] == protocol.expand_table(result, "units")
    sleeper = next(unit for unit in legacy["units"] if unit["name"] == "sleeper.service")
    assert sleeper["active_state"] == "active"
    assert sleeper["main_pid"] > 0


def test_list_description_after_daemon_reload(make_manager, tmp_path: Path):
    units = tmp_path / "units"
    manager = start_sleeper(make_manager, units, "before")
    before = list_row(manager, "sleeper.service")
    write_unit(units, "sleeper.service", sleeper_text("after"))

    manager.request("daemon-reload", {})
    after = list_row(manager, "sleeper.service")

    assert before["description"] == "before"
    assert after["description"] == "after"
    assert after["main_pid"] == before["main_pid"]


def test_list_follows_restart_and_stop(make_manager, tmp_path: Path):
    manager = start_sleeper(make_manager, tmp_path / "units", "cached row")
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
