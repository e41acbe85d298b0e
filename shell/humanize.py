"""Times, durations and sizes formatted the way systemctl and journalctl print them."""

from __future__ import annotations

import time

# Units in microseconds, as systemd counts; its month and year are averages.
_SECOND = 1_000_000
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR
_WEEK = 7 * _DAY
_MONTH = 2_629_800 * _SECOND  # 30.44 days
_YEAR = 31_557_600 * _SECOND  # 365.25 days

_BYTE_UNITS = (("E", 1024**6), ("P", 1024**5), ("T", 1024**4), ("G", 1024**3),
               ("M", 1024**2), ("K", 1024))


def timestamp(when: float) -> str:
    """Format a Unix time in local time with its zone: `Fri 2026-12-04 20:00:01 UTC`."""
    return time.strftime("%a %Y-%m-%d %H:%M:%S %Z", time.localtime(when))


def journal_time(when: float, precise: bool = False) -> str:
    """Format a Unix time as journalctl's short modes do: `Dec 04 20:00:01`, with
    microseconds (`Dec 04 20:00:01.123456`) when `precise`."""
    text = time.strftime("%b %d %H:%M:%S", time.localtime(when))
    if precise:
        micros = int(round((when % 1) * 1_000_000)) % 1_000_000
        text += f".{micros:06d}"
    return text


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def relative(when: float, now: float) -> str:
    """Format the distance between `when` and `now` as systemd does: `5s ago`,
    `2min 3s ago`, `1h 5min ago`, `2 days ago`, or `... left` for a future time."""
    # Whole microseconds, so that float noise in epoch times does not show.
    delta = round((now - when) * _SECOND)
    suffix = "ago"
    if delta < 0:
        delta, suffix = -delta, "left"
    if delta >= _YEAR:
        years, rest = divmod(delta, _YEAR)
        text = f"{_plural(years, 'year')} {_plural(rest // _MONTH, 'month')}"
    elif delta >= _MONTH:
        months, rest = divmod(delta, _MONTH)
        text = f"{_plural(months, 'month')} {_plural(rest // _DAY, 'day')}"
    elif delta >= _WEEK:
        weeks, rest = divmod(delta, _WEEK)
        text = f"{_plural(weeks, 'week')} {_plural(rest // _DAY, 'day')}"
    elif delta >= 2 * _DAY:
        text = f"{delta // _DAY} days"
    elif delta >= 25 * _HOUR:
        text = f"1 day {(delta - _DAY) // _HOUR}h"
    elif delta >= 6 * _HOUR:
        text = f"{delta // _HOUR}h"
    elif delta >= _HOUR:
        text = f"{delta // _HOUR}h {delta % _HOUR // _MINUTE}min"
    elif delta >= 5 * _MINUTE:
        text = f"{delta // _MINUTE}min"
    elif delta >= _MINUTE:
        text = f"{delta // _MINUTE}min {delta % _MINUTE // _SECOND}s"
    elif delta >= _SECOND:
        text = f"{delta // _SECOND}s"
    elif delta >= 1000:
        text = f"{delta // 1000}ms"
    elif delta > 0:
        text = f"{delta}us"
    else:
        return "now"
    return f"{text} {suffix}"


def cpu_time(seconds: float) -> str:
    """Format a CPU time to the millisecond as systemctl does: `1.204s`, `250ms`,
    `2min 3.5s`."""
    millis = int(round(seconds * 1000))
    if millis <= 0:
        return "0"
    parts = []
    for name, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000)):
        if millis >= size:
            parts.append(f"{millis // size}{name}")
            millis %= size
    if millis >= 1000:
        whole, fraction = divmod(millis, 1000)
        digits = f"{fraction:03d}".rstrip("0")
        parts.append(f"{whole}.{digits}s" if digits else f"{whole}s")
    elif millis:
        parts.append(f"{millis}ms")
    return " ".join(parts)


def size(count: int) -> str:
    """Format a byte count in binary units with one truncated decimal, as systemd
    does: `21.4M`, `512B`."""
    for suffix, factor in _BYTE_UNITS:
        if count >= factor:
            tenths = count * 10 // factor
            return f"{tenths // 10}.{tenths % 10}{suffix}"
    return f"{count}B"
