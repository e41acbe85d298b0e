"""Log selection pieces without a manager: time syntax, query arguments, rotation settings."""

from __future__ import annotations

import base64
import datetime as dt
import logging
from pathlib import Path

import pytest
from unitmgr.manager.logconfig import LogDefaults, read_manager_config, unit_options
from unitmgr.manager.logquery import LogQuery, query_records, record_of, select_lines
from unitmgr.manager.logstore import STDERR, STDOUT, LogLine, LogStore
from unitmgr.manager.protocol import ProtocolError
from unitmgr.manager.timesyntax import TimeSyntaxError, parse_time

NOW = dt.datetime(2026, 3, 15, 14, 30, 0).timestamp()


def local(*fields: int) -> float:
    return dt.datetime(*fields).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("today", local(2026, 3, 15)),
        ("yesterday", local(2026, 3, 14)),
        ("tomorrow", local(2026, 3, 16)),
        ("10 min ago", NOW - 600),
        ("1h30m ago", NOW - 5400),
        ("-1h", NOW - 3600),
        ("+2d", NOW + 2 * 86400),
        ("2024-01-03", local(2024, 1, 3)),
        ("2024-01-03 10:00", local(2024, 1, 3, 10, 0)),
        ("2024-01-03 10:00:05", local(2024, 1, 3, 10, 0, 5)),
        ("2024-01-03T10:00:05", local(2024, 1, 3, 10, 0, 5)),
        ("2024-01-03 10:00:05 UTC", dt.datetime(2024, 1, 3, 10, 0, 5, tzinfo=dt.UTC).timestamp()),
        ("9:15", local(2026, 3, 15, 9, 15)),
        ("@1704272400", 1704272400.0),
    ],
)
def test_time_syntax(text: str, expected: float) -> None:
    assert parse_time(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "soon", "10 min", "2024-13-01", "25:00", "xx ago", "@abc"])
def test_time_syntax_errors(text: str) -> None:
    with pytest.raises(TimeSyntaxError) as error:
        parse_time(text, NOW)
    assert repr(text) in str(error.value) or not text
    assert "@" in str(error.value), "the message shows an accepted form"


def line(text: bytes, stamp: float = 1.0, stream: str = "stdout") -> LogLine:
    return LogLine("a.service", stamp, stream, 7, text)


def test_query_from_args() -> None:
    query = LogQuery.from_args({"lines": 5, "since": 100, "until": "@200", "grep": "fail",
                                "stream": "stderr", "raw": True})
    assert (query.lines, query.since, query.until, query.stream, query.raw) == (5, 100.0, 200.0, "stderr", True)
    assert query.accepts(line(b"it FAILED", 150, "stderr"))
    assert not query.accepts(line(b"it FAILED", 150, "stdout"))
    assert not query.accepts(line(b"it FAILED", 99, "stderr"))
    assert not query.accepts(line(b"it FAILED", 201, "stderr"))
    assert not query.accepts(line(b"fine", 150, "stderr"))


def test_manager_stream_selection() -> None:
    message = line(b"Started Web server.", stream="manager")
    assert LogQuery.from_args({}).accepts(message)
    assert LogQuery.from_args({"stream": "manager"}).accepts(message)
    assert not LogQuery.from_args({"stream": "stdout"}).accepts(message)
    # Raw output is the unit's bytes, unless the manager's stream is requested.
    assert not LogQuery.from_args({"raw": True}).accepts(message)
    assert LogQuery.from_args({"raw": True}).accepts(line(b"own output"))
    assert LogQuery.from_args({"raw": True, "stream": "manager"}).accepts(message)


def test_grep_case_follows_pattern() -> None:
    assert LogQuery.from_args({"grep": "error"}).accepts(line(b"ERROR here"))
    assert not LogQuery.from_args({"grep": "Error"}).accepts(line(b"ERROR here"))
    # Invalid UTF-8 is matched in its replaced form, never raises.
    assert LogQuery.from_args({"grep": "x"}).accepts(line(b"\xffx"))


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({"lines": -1}, "'lines'"),
        ({"lines": "5"}, "'lines'"),
        ({"since": "whenever"}, "whenever"),
        ({"until": []}, "'until'"),
        ({"grep": "(unclosed"}, "(unclosed"),
        ({"stream": "stdin"}, "stdin"),
    ],
)
def test_query_rejects_bad_args(args: dict, fragment: str) -> None:
    with pytest.raises(ProtocolError) as error:
        LogQuery.from_args(args)
    assert error.value.code == "bad-request"
    assert fragment in error.value.message


def test_record_shape() -> None:
    record = record_of(LogLine("a.service", 2.5, "stderr", 9, b"\xff\x00end", partial=True,
                               identifier="app"), raw=True)
    assert record == {"unit": "a.service", "time": 2.5, "stream": "stderr", "pid": 9,
                      "text": "\ufffd\x00end", "identifier": "app", "partial": True, "raw": "/wBlbmQ="}


def page_through(store: LogStore, names: list[str], args: dict) -> tuple[list[dict], int]:
    """Follow the `older` cursors as the shell does; return the records oldest first and the pages."""
    result = query_records(store, names, LogQuery.from_args(args))
    pages = [result["records"]]
    while result.get("omitted"):
        cursor = result["older"]
        page_args = {**args, "until": cursor["until"], "skip": cursor["skip"], "lines": result["omitted"]}
        result = query_records(store, names, LogQuery.from_args(page_args))
        pages.append(result["records"])
    return [record for page in reversed(pages) for record in page], len(pages)


def test_large_reply_leaves_out_oldest(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=1 << 30)
    writer = store.writer("big.service")
    chunk = b"y" * 40_000 + b"\n"
    for _ in range(100):
        writer.write(chunk, STDOUT, 1)
    writer.write(b"last\n", STDERR, 1)
    result = query_records(store, ["big.service"], LogQuery(lines=0))
    assert result["omitted"] > 0
    assert result["records"][-1]["text"] == "last"
    assert len(result["records"]) + result["omitted"] == 101
    assert result["omitted_bytes"] == 40_000 * result["omitted"]
    assert result["older"]["until"] == result["records"][0]["time"]


def test_pages_give_every_line_once(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=1 << 30)
    writer = store.writer("paged.service")
    # Many lines in one read share its time, so the cursor has to count them.
    writer.write(b"".join(b"%06d" % number + b"z" * 30_000 + b"\n" for number in range(300)), STDOUT, 1)
    other = store.writer("other.service")
    for number in range(50):
        other.write(b"other %d " % number + b"q" * 60_000 + b"\n", STDERR, 2)
    names = ["paged.service", "other.service"]
    expected = [record_of(line, True) for line in select_lines(store, names, LogQuery(lines=0, raw=True))]

    found, pages = page_through(store, names, {"lines": 0, "raw": True})
    assert pages > 2
    assert found == expected
    found, _ = page_through(store, names, {"lines": 250, "raw": True})
    assert found == expected[-250:]


def test_raw_pages_rebuild_long_line(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=1 << 30)
    writer = store.writer("long.service")
    long_line = b"\xff\x00" + b"w" * (5 * 1024 * 1024) + b"\x1b"
    for start in range(0, len(long_line), 200_000):
        writer.write(long_line[start:start + 200_000], STDOUT, 1)
    writer.write(b"", STDOUT, 1, eof=True)

    found, pages = page_through(store, ["long.service"], {"lines": 0, "raw": True})
    assert pages > 1
    assert b"".join(base64.b64decode(record["raw"]) for record in found) == long_line
    assert all(record["partial"] for record in found)
    [last] = query_records(store, ["long.service"], LogQuery(lines=1))["records"]
    assert last["text"] == found[-1]["text"]


def test_skip_rejects_bad_value() -> None:
    with pytest.raises(ProtocolError) as bad:
        LogQuery.from_args({"skip": -1})
    assert "'skip'" in bad.value.message


def test_manager_config(tmp_path: Path) -> None:
    config = tmp_path / "unitmgr.conf"
    assert read_manager_config(config) == LogDefaults()
    config.write_text("# comment\n[Other]\nLogMaxBytes=1\n[Manager]\nLogMaxBytes=2M\nLogKeepFiles=7\n")
    assert read_manager_config(config) == LogDefaults(2 * 1024 * 1024, 7)


def test_manager_config_bad_value_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config = tmp_path / "unitmgr.conf"
    config.write_text("[Manager]\nLogMaxBytes=lots\n")
    with caplog.at_level(logging.WARNING):
        assert read_manager_config(config) == LogDefaults()
    assert "LogMaxBytes=lots" in caplog.text


def test_unit_options(caplog: pytest.LogCaptureFixture) -> None:
    defaults = LogDefaults(1 << 20, 3)
    options = unit_options("u.service", {"X-Unitmgr-LogMaxBytes": ["64K"], "SyslogIdentifier": "tag"}, defaults)
    assert (options.max_bytes, options.keep_files, options.identifier) == (65536, 3, "tag")
    with caplog.at_level(logging.WARNING):
        options = unit_options("v.service", {"X-Unitmgr-LogKeepFile": ["2"],
                                             "X-Unitmgr-LogKeepFiles": ["zero"]}, defaults)
    assert (options.max_bytes, options.keep_files) == (1 << 20, 3)
    assert "X-Unitmgr-LogKeepFile=" in caplog.text
    assert "X-Unitmgr-LogKeepFiles=zero" in caplog.text


def test_store_applies_unit_options(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.unit_options = lambda unit: unit_options(unit, {"X-Unitmgr-LogMaxBytes": ["8K"],
                                                          "X-Unitmgr-LogKeepFiles": ["2"]}, LogDefaults())
    writer = store.writer("w.service")
    assert (writer.max_bytes, writer.keep_files) == (8192, 2)
    for number in range(3000):
        writer.write(f"entry {number}\n".encode(), STDOUT, 1)
    assert (tmp_path / "w.service.log.1").exists()
    assert not (tmp_path / "w.service.log.2").exists()
