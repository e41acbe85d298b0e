"""Paging through `logs` replies and the notice for lines left out, against a fake manager."""

from __future__ import annotations

from unitmgr.shell.logpages import fetch_logs, omitted_notice


def record(number: int) -> dict:
    return {"unit": "a.service", "time": float(number), "text": f"line {number}", "raw": "eA=="}


def test_pages_joined_oldest_first() -> None:
    sent: list[dict] = []

    def request(cmd: str, args: dict) -> dict:
        sent.append(args)
        if "until" not in args:
            return {"records": [record(4), record(5)], "omitted": 4, "omitted_bytes": 24,
                    "older": {"until": 4.0, "skip": 1}}
        if args["until"] == 4.0:
            return {"records": [record(2), record(3)], "omitted": 2, "omitted_bytes": 12,
                    "older": {"until": 2.0, "skip": 1}}
        return {"records": [record(0), record(1)]}

    fetched = fetch_logs(request, {"units": ["a"], "lines": 0})
    assert [r["text"] for r in fetched["records"]] == [f"line {n}" for n in range(6)]
    assert "omitted" not in fetched
    assert sent[1] == {"units": ["a"], "lines": 4, "until": 4.0, "skip": 1}
    assert sent[2] == {"units": ["a"], "lines": 2, "until": 2.0, "skip": 1}


def test_raw_pages_drop_text() -> None:
    fetched = fetch_logs(lambda cmd, args: {"records": [record(1)]}, {"units": ["a"]}, keep_text=False)
    assert fetched["records"] == [{"unit": "a.service", "time": 1.0, "raw": "eA=="}]


def test_no_cursor_keeps_omitted() -> None:
    reply = {"records": [record(9)], "omitted": 3, "omitted_bytes": 5 * 1024 * 1024}
    fetched = fetch_logs(lambda cmd, args: dict(reply), {"units": ["a"]})
    assert fetched["omitted"] == 3
    notice = omitted_notice(fetched, following=False)
    assert notice is not None
    assert notice.startswith("-- 3 earlier lines (5.0M) were left out")
    assert "-n, --since or --until" in notice
    assert "without -f" in (omitted_notice(fetched, following=True) or "")
    assert omitted_notice({"records": []}, following=False) is None
