"""Adversarial log queries: replies of escaped or invalid UTF-8 text, odd time values."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from unitmgr.manager import protocol
from unitmgr.manager.linecut import LINE_MAX
from unitmgr.manager.logquery import LogQuery, query_records
from unitmgr.manager.logstore import STDOUT, LogStore
from unitmgr.manager.protocol import ProtocolError

# Each payload is about 2.6 MB, and JSON encodes its text to 3 to 6 times that.
HARD_TO_ENCODE = {
    "control": b"\x01" * 1000,  # \u0001: 6 bytes each
    "invalid-utf8": b"\xff" * 1000,  # U+FFFD: 3 bytes each
    "quotes": b'"\\' * 500,  # 2 bytes each
}


@pytest.mark.parametrize("name", sorted(HARD_TO_ENCODE))
@pytest.mark.parametrize("raw", [False, True])
def test_reply_fits_message_limit(tmp_path: Path, name: str, raw: bool) -> None:
    store = LogStore(tmp_path, max_bytes=1 << 30)
    writer = store.writer("hard.service")
    line = HARD_TO_ENCODE[name] + b"\n"
    lines = 2600
    writer.write(line * lines, STDOUT, 1)

    result = query_records(store, ["hard.service"], LogQuery(lines=0, raw=raw))
    encoded = protocol.encode({"id": 1, "ok": True, "result": result})
    assert len(encoded) <= protocol.MAX_MESSAGE_BYTES
    assert len(result["records"]) + result.get("omitted", 0) == lines
    if raw:
        assert base64.b64decode(result["records"][-1]["raw"]) == HARD_TO_ENCODE[name]


@pytest.mark.parametrize("key", ["since", "until"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_time_rejects_non_finite(key: str, value: float) -> None:
    with pytest.raises(ProtocolError) as bad:
        LogQuery.from_args({key: value})
    assert key in str(bad.value)


def test_line_split_by_rotation_keeps_pieces(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=16 * 1024, keep_files=1000)
    writer = store.writer("split.service")
    long_line = bytes(range(256)).replace(b"\n", b"N") * (5 * LINE_MAX // 256) + b"end"
    data = b"first\n" + long_line + b"\nlast\n" + b"unfinished"
    for start in range(0, len(data), 1000):
        writer.write(data[start:start + 1000], STDOUT, 1)
    assert len(list(tmp_path.glob("split.service.log.*"))) > 10

    lines = store.query("split.service", 0)
    expected = [b"first"] + [long_line[start:start + LINE_MAX] for start in range(0, len(long_line), LINE_MAX)]
    expected += [b"last", b"unfinished"]
    assert [line.data for line in lines] == expected
    assert [line.pending for line in lines] == [False] * (len(expected) - 1) + [True]
    for count in range(1, len(expected) + 1):
        assert [line.data for line in store.query("split.service", count)] == expected[-count:]
