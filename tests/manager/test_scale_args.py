"""The scale command's argument forms and the saved counts file."""

from __future__ import annotations

from pathlib import Path

import pytest
from unitmgr.manager.protocol import ProtocolError
from unitmgr.manager.scale import ScaleStore, parse_count, template_prefix


@pytest.mark.parametrize("text", ["web", "web@", "web@.service", "web@3.service", " web "])
def test_template_prefix_forms(text: str) -> None:
    assert template_prefix(text) == "web"


@pytest.mark.parametrize("text", ["", "@", "web.socket", "a/b"])
def test_template_prefix_rejects(text: str) -> None:
    with pytest.raises(ProtocolError):
        template_prefix(text)


@pytest.mark.parametrize(
    ("value", "current", "expected"),
    [(4, 2, 4), ("4", 2, 4), ("+1", 2, 3), ("-1", 2, 1), ("-2", 2, 0), (0, 5, 0), ("+3", 0, 3)],
)
def test_parse_count(value: object, current: int, expected: int) -> None:
    assert parse_count(value, current) == expected


@pytest.mark.parametrize(("value", "current"), [("-1", 0), (1001, 0), ("x", 1), (True, 1), (None, 1), (2.5, 1)])
def test_parse_count_rejects(value: object, current: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_count(value, current)
    assert caught.value.code == "bad-request"


def test_store_round_trip_and_bad_file(tmp_path: Path) -> None:
    store = ScaleStore(tmp_path / "state" / "scale.json")
    assert store.load() == {}
    store.save({"web": 3, "api": 0})
    assert store.load() == {"web": 3, "api": 0}
    store.path.write_text("{not json")
    assert store.load() == {}
    store.path.write_text('{"web": -1, "ok": 2, "bad": "x"}')
    assert store.load() == {"ok": 2}
