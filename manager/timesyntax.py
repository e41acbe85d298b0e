"""Points in time written the way journalctl's --since and --until take them.

Accepted forms (local time of the manager):

- `now`, `today`, `yesterday`, `tomorrow` (the last three at 00:00:00);
- `-1h`, `+30min`, `10 min ago`, `2 days ago`, `1h30m ago`: relative to now;
- `2024-01-03`, `2024-01-03 10:00`, `2024-01-03 10:00:00.5`, with `T` in
  place of the space, and an optional trailing `UTC` or `Z`;
- `10:00`, `10:00:30`: that time today;
- `@1704272400`: seconds since the Unix epoch.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from unitmgr.units.values import UnitValueError, parse_timespan


class TimeSyntaxError(ValueError):
    """A point in time that cannot be parsed; the message names it and the accepted forms."""


FORMS = ("'now', 'today', 'yesterday', '10 min ago', '-1h', '2024-01-03 10:00:00', "
         "'10:00' or '@EPOCH'")

_DATE_TIME = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})?(?:[ T]?(?P<time>\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?))?"
    r"\s*(?P<utc>UTC|Z)?"
)


def parse_time(text: str, now: float | None = None) -> float:
    """Return the Unix time that `text` names; raise TimeSyntaxError."""
    now = time.time() if now is None else now
    word = text.strip()
    if not word:
        raise TimeSyntaxError(f"empty time; use one of {FORMS}")
    lowered = word.lower()
    midnight = _local_midnight(now)
    days = {"today": 0, "yesterday": -1, "tomorrow": 1}
    if lowered == "now":
        return now
    if lowered in days:
        return _shift_days(midnight, days[lowered])
    if word.startswith("@"):
        return _epoch(word)
    if word[0] in "+-":
        return now + _sign(word[0]) * _span(word[1:], word)
    if lowered.endswith(" ago"):
        return now - _span(word[:-4], word)
    return _absolute(word, midnight)


def _epoch(word: str) -> float:
    try:
        return float(word[1:])
    except ValueError:
        raise TimeSyntaxError(f"invalid epoch time '{word}'; write e.g. @1704272400") from None


def _sign(char: str) -> int:
    return 1 if char == "+" else -1


def _span(text: str, word: str) -> float:
    try:
        return parse_timespan(text)
    except UnitValueError:
        raise TimeSyntaxError(f"invalid time span in '{word}'; use one of {FORMS}") from None


def _local_midnight(now: float) -> dt.datetime:
    local = dt.datetime.fromtimestamp(now).astimezone()
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def _shift_days(midnight: dt.datetime, days: int) -> float:
    # Adding days to a naive local date and asking mktime keeps 00:00 across DST changes.
    day = midnight.date() + dt.timedelta(days=days)
    return time.mktime((day.year, day.month, day.day, 0, 0, 0, 0, 0, -1))


def _absolute(word: str, midnight: dt.datetime) -> float:
    match = _DATE_TIME.fullmatch(word)
    if not match or not (match["date"] or match["time"]):
        raise TimeSyntaxError(f"invalid time '{word}'; use one of {FORMS}")
    date = midnight.date()
    try:
        if match["date"]:
            date = dt.date.fromisoformat(match["date"])
        clock = dt.time.fromisoformat(_pad(match["time"])) if match["time"] else dt.time()
    except ValueError as exc:
        raise TimeSyntaxError(f"invalid time '{word}' ({exc}); use one of {FORMS}") from None
    moment = dt.datetime.combine(date, clock)
    if match["utc"]:
        return moment.replace(tzinfo=dt.UTC).timestamp()
    return moment.timestamp()  # a naive datetime is local time


def _pad(clock: str) -> str:
    hours, _, rest = clock.partition(":")
    return f"{int(hours):02d}:{rest}"
