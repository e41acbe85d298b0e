"""The JSON text of table rows in replies, encoded again only when a row changes.

Encoding the `list` reply for 100 units with the json module took 58 to 68 µs
per request on CPython 3.11 (2-core machine, bench/notes.md), about a fifth of
a round trip. Rows rarely change between two requests, so each row's text is
kept with the values it was built from and reused while they compare equal.
"""

from __future__ import annotations

from typing import Any

from unitmgr.manager import protocol


class EncodedRows:
    """Row texts of one kind of table, keyed by a name such as the unit name.

    Call row() for every row of one reply, then result(). Only the rows of the
    last reply are kept, so a unit that is gone drops out after one request.
    Values are compared with ==, so a field must keep one JSON type: 1 and True
    compare equal but encode differently."""

    def __init__(self, fields: tuple[str, ...]):
        self.fields = fields
        self._previous: dict[str, tuple[tuple[Any, ...], str]] = {}
        self._current: dict[str, tuple[tuple[Any, ...], str]] = {}

    def row(self, key: str, values: tuple[Any, ...]) -> str:
        """Return the JSON object text of one row, with `values` in the order of `fields`."""
        cached = self._previous.get(key)
        if cached is not None and cached[0] == values:
            text = cached[1]
        else:
            text = protocol.encode_value(dict(zip(self.fields, values, strict=True)))
        self._current[key] = (values, text)
        return text

    def result(self, name: str, rows: list[str]) -> protocol.EncodedJSON:
        """Return the result object {name: [rows]} and keep this reply's rows for the next one."""
        self._previous = self._current
        self._current = {}
        return protocol.EncodedJSON(f'{{{protocol.encode_value(name)}:[{",".join(rows)}]}}')
