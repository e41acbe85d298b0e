"""Fetching `logs` page by page, and the notice for lines left out.

One reply of the manager contains at most about 3 MiB of records, because
a message may have at most 4 MiB. When the selected lines do not fit, the
reply contains the newest of them and counts the ones it left out (`omitted`,
`omitted_bytes`), with `older`: the `until` and `skip` arguments that select
the page before. fetch_logs() follows those cursors until it has every
selected line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from unitmgr.shell import humanize

# A guard against a manager that keeps returning pages: 1000 pages are about 3 GiB.
MAX_PAGES = 1000

Request = Callable[[str, dict[str, Any]], dict[str, Any]]


def fetch_logs(request: Request, args: dict[str, Any], keep_text: bool = True) -> dict[str, Any]:
    """Send `logs` with `args`, then request older pages until nothing is left out.

    Return `{"records": [...]}` oldest first, with `omitted` and
    `omitted_bytes` when lines are still left out (after MAX_PAGES, or from a
    manager that returns no cursor). Without `keep_text`, the records keep
    only their raw bytes, which halves the memory a large raw log takes here."""
    result = request("logs", args)
    pages = [_page_records(result, keep_text)]
    while result.get("omitted") and isinstance(result.get("older"), dict) and len(pages) < MAX_PAGES:
        older = result["older"]
        result = request("logs", {**args, "until": older.get("until"), "skip": older.get("skip", 0),
                                  "lines": result["omitted"]})
        if not result.get("records"):
            break
        pages.append(_page_records(result, keep_text))
    fetched: dict[str, Any] = {"records": [record for page in reversed(pages) for record in page]}
    if result.get("omitted"):
        fetched["omitted"] = result["omitted"]
        fetched["omitted_bytes"] = result.get("omitted_bytes", 0)
    return fetched


def _page_records(result: dict[str, Any], keep_text: bool) -> list[dict[str, Any]]:
    records = result.get("records", [])
    if not keep_text:
        for record in records:
            record.pop("text", None)
    return records


def omitted_notice(result: dict[str, Any], following: bool) -> str | None:
    """Return the notice that counts the earlier lines a reply left out, or None when none were."""
    count = result.get("omitted")
    if not count:
        return None
    size = humanize.size(int(result.get("omitted_bytes", 0)))
    where = "Run logs without -f to page through them" if following else "The manager returned no further page"
    return (f"-- {count} earlier lines ({size}) were left out because they do not fit in one reply. "
            f"{where}, or select fewer with -n, --since or --until --")
