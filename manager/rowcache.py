"""The JSON text of table rows in replies, encoded again only when a row changes.

A table result is `{"columns": [NAME, ...], "rows": [[VALUE, ...], ...]}`:
the column names once, then one array per row (docs/protocol.md). Encoding
the `list` reply for 100 units with the json module took 58 to 68 µs per
request on CPython 3.11 (2-core machine, bench/notes.md), about a fifth of a
round trip. Rows rarely change between two requests, so each row's text is
kept with a stamp, a tuple of the objects its values are read from, and
reused while the stamp compares equal. When every row of a reply is as in
the reply before, the whole result text is reused.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from unitmgr.manager import protocol

# One row of a reply: its key (such as the unit name) and its stamp.
Entry = tuple[str, tuple[Any, ...]]


class EncodedRows:
    """Row texts of one table, keyed by a name such as the unit name.

    Stamps are compared with ==, which tests identity first, so a stamp may
    hold the objects a row is read from as long as they are not changed in
    place. A value that can change in place belongs in the stamp itself."""

    def __init__(self, columns: tuple[str, ...]):
        self.columns = columns
        self._head = f'{{"columns":{protocol.encode_value(list(columns))},"rows":['
        self._rows: dict[str, tuple[tuple[Any, ...], str]] = {}
        self._last_entries: list[Entry] | None = None
        self._last_result = protocol.EncodedJSON("")

    def result(self, entries: list[Entry], values: Callable[[int], tuple[Any, ...]],
               keys: Sequence[str]) -> protocol.EncodedJSON:
        """Return the table result with one row per entry, in order.

        `values(i)` returns the values of the row of entries[i], in the order
        of `columns`; it is called only for a row whose stamp changed. `keys`
        are every key that still exists, whether or not this reply shows its
        row; the kept rows of other keys are dropped."""
        if entries == self._last_entries:
            return self._last_result
        texts = []
        for index, (key, stamp) in enumerate(entries):
            cached_row = self._rows.get(key)
            if cached_row is not None and cached_row[0] == stamp:
                texts.append(cached_row[1])
            else:
                texts.append(self._store(key, stamp, values(index)))
        if len(self._rows) > len(keys):
            alive = set(keys)
            self._rows = {key: row for key, row in self._rows.items() if key in alive}
        self._last_entries = entries
        self._last_result = protocol.EncodedJSON(f'{self._head}{",".join(texts)}]}}')
        return self._last_result

    def _store(self, key: str, stamp: tuple[Any, ...], values: tuple[Any, ...]) -> str:
        if len(values) != len(self.columns):
            raise ValueError(f"row {key!r} has {len(values)} values for {len(self.columns)} columns")
        text = protocol.encode_value(values)
        self._rows[key] = (stamp, text)
        return text
