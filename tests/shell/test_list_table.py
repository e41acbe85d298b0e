"""`list` from the table that managers of protocol 2 send: the same text and
--json output as from the object per unit of protocol 1, and a clear error for a
reply that is neither."""

from __future__ import annotations

import json

import pytest
from shellfixtures import make_context
from unitmgr.shell import runner

COLUMNS = ["name", "load_state", "active_state", "sub_state", "description", "main_pid"]
ROWS = [
    ["flaky.service", "loaded", "failed", "failed", "Exits", 0],
    ["web.service", "loaded", "active", "running", "Web", 1234],
]
TABLE_REPLY = {"columns": COLUMNS, "rows": ROWS}
OBJECT_REPLY = {"units": [dict(zip(COLUMNS, row, strict=True)) for row in ROWS]}


def run_text(text: str, reply: dict, json_mode: bool = False) -> tuple[int, str, str]:
    ctx, stdout, stderr = make_context({"list": reply}, json_mode)
    status = runner.run_text(ctx, text)
    return status, stdout.getvalue(), stderr.getvalue()


@pytest.mark.parametrize("text", ["list", "list --all", "list --plain", "list --no-legend"])
def test_table_renders_as_objects(text: str):
    from_table = run_text(text, TABLE_REPLY)
    from_objects = run_text(text, OBJECT_REPLY)

    assert from_table[0] == 0
    assert from_table == from_objects


def test_table_json_is_object_per_unit():
    status, stdout, _ = run_text("list --json", TABLE_REPLY)

    assert status == 0
    assert json.loads(stdout) == OBJECT_REPLY


def test_table_empty_lists_nothing():
    status, stdout, _ = run_text("list", {"columns": COLUMNS, "rows": []})

    assert status == 0
    assert stdout.startswith("0 loaded units listed.")


@pytest.mark.parametrize("reply", [{}, {"columns": COLUMNS, "rows": [["web.service"]]}])
def test_malformed_reply_error(reply: dict):
    status, stdout, stderr = run_text("list", reply)

    assert status == 1
    assert stdout == ""
    assert stderr.startswith("list: invalid reply from the manager: reply ")


def test_malformed_reply_json_error():
    status, stdout, _ = run_text("list --json", {})

    assert status == 1
    assert json.loads(stdout)["error"]["code"] == "bad-request"
