"""systemd's formats for relative times, CPU times and sizes."""

from __future__ import annotations

import pytest
from unitmgr.shell import humanize
from unitmgr.shell.statusnames import describe_exit

NOW = 1_796_414_406.0


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "now"),
    (0.0005, "500us ago"),
    (0.25, "250ms ago"),
    (5, "5s ago"),
    (123, "2min 3s ago"),
    (299, "4min 59s ago"),
    (300, "5min ago"),
    (3900, "1h 5min ago"),
    (7 * 3600, "7h ago"),
    (26 * 3600, "1 day 2h ago"),
    (2 * 86400 + 5, "2 days ago"),
    (10 * 86400, "1 week 3 days ago"),
    (40 * 86400, "1 month 9 days ago"),
    (400 * 86400, "1 year 1 month ago"),
    (-90, "1min 30s left"),
])
def test_relative(seconds, text):
    assert humanize.relative(NOW - seconds, NOW) == text


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "0"), (0.0004, "0"), (0.25, "250ms"), (1.204, "1.204s"), (1.5, "1.5s"), (3, "3s"),
    (123.5, "2min 3.5s"), (3600.02, "1h 20ms"),
])
def test_cpu_time(seconds, text):
    assert humanize.cpu_time(seconds) == text


@pytest.mark.parametrize(("count", "text"), [
    (0, "0B"), (512, "512B"), (1024, "1.0K"), (1536, "1.5K"), (22544384, "21.5M"),
    (1024**3 * 3 - 1, "2.9G"),
])
def test_size(count, text):
    assert humanize.size(count) == text


def test_describe_exit():
    assert describe_exit("exited", 1, "FAILURE") == "code=exited, status=1/FAILURE"
    assert describe_exit("exited", 203, "203/EXEC") == "code=exited, status=203/EXEC"
    assert describe_exit("exited", 203) == "code=exited, status=203/EXEC"
    assert describe_exit("exited", 99) == "code=exited, status=99"
    assert describe_exit("killed", 15) == "code=killed, signal=TERM"
    assert describe_exit("dumped", 11, "SEGV") == "code=dumped, signal=SEGV"
