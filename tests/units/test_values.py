import math
import signal

import pytest
from unit_text import messages, unit_from
from unitmgr.units.model import ExitStatusSet, RLimit
from unitmgr.units.values import (
    UnitValueError,
    parse_bool,
    parse_exit_status_set,
    parse_int,
    parse_mode,
    parse_nice,
    parse_rlimit,
    parse_signal,
    parse_size,
    parse_size_or_percent,
    parse_timespan,
)


@pytest.mark.parametrize("text", ["1", "yes", "Y", "true", "t", "ON"])
def test_bool_true_words(text):
    assert parse_bool(text) is True


@pytest.mark.parametrize("text", ["0", "no", "n", "FALSE", "f", "off"])
def test_bool_false_words(text):
    assert parse_bool(text) is False


@pytest.mark.parametrize("text", ["enabled", "maybe", ""])
def test_bool_rejects_other_words(text):
    with pytest.raises(UnitValueError, match="boolean"):
        parse_bool(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5", 5), ("1min 30s", 90), ("1h30m", 5400), ("55s500ms", 55.5), ("2 h", 7200),
     ("1.5s", 1.5), ("0.5h", 1800), ("100us", 0.0001), ("1d", 86400), ("1w", 604800),
     ("1M", 2629800), ("1y", 31557600), ("5min 20s", 320)],
)
def test_timespan_values(text, seconds):
    assert parse_timespan(text) == pytest.approx(seconds)


def test_timespan_infinity():
    assert parse_timespan("infinity") == math.inf


@pytest.mark.parametrize("text", ["garbage", "5 parsecs", "", "1x", "-5"])
def test_timespan_rejects_garbage(text):
    with pytest.raises(UnitValueError, match="Failed to parse sec value"):
        parse_timespan(text)


def test_sizes_are_1024_based():
    assert parse_size("512") == 512
    assert parse_size("1K") == 1024
    assert parse_size("4G") == 4 << 30
    assert parse_size("1.5G") == int(1.5 * (1 << 30))
    assert parse_size("infinity") is None


def test_size_percent():
    assert parse_size_or_percent("50%") == 0.5
    with pytest.raises(UnitValueError):
        parse_size_or_percent("150%")


@pytest.mark.parametrize(
    ("text", "number"),
    [("SIGTERM", 15), ("TERM", 15), ("9", 9), ("SIGRTMIN+3", signal.SIGRTMIN + 3),
     ("RTMIN+3", signal.SIGRTMIN + 3), ("SIGKILL", 9), ("HUP", 1)],
)
def test_signal_forms(text, number):
    assert parse_signal(text) == number


@pytest.mark.parametrize("text", ["SIGFOO", "0", "999", "RTMIN+999"])
def test_signal_rejects_unknown(text):
    with pytest.raises(UnitValueError, match="signal"):
        parse_signal(text)


def test_exit_status_set_mixes_codes_names_signals():
    result = parse_exit_status_set("TEMPFAIL 250 SIGKILL TERM")
    assert result == ExitStatusSet(frozenset({75, 250}), frozenset({9, 15}))


@pytest.mark.parametrize("text", ["999", "FOO"])
def test_exit_status_rejects_bad_words(text):
    with pytest.raises(UnitValueError):
        parse_exit_status_set(text)


@pytest.mark.parametrize(
    ("key", "text", "expected"),
    [("LimitNOFILE", "1024:4096", RLimit(1024, 4096)),
     ("LimitNOFILE", "4096", RLimit(4096, 4096)),
     ("LimitNOFILE", "infinity", RLimit(None, None)),
     ("LimitNOFILE", "1024:infinity", RLimit(1024, None)),
     ("LimitAS", "4G:16G", RLimit(4 << 30, 16 << 30)),
     ("LimitCPU", "10min", RLimit(600, 600)),
     ("LimitCPU", "1.5", RLimit(2, 2)),
     ("LimitRTTIME", "50ms", RLimit(50000, 50000)),
     ("LimitRTTIME", "100", RLimit(100, 100)),
     ("LimitNICE", "-5", RLimit(25, 25)),
     ("LimitNICE", "+19", RLimit(1, 1)),
     ("LimitNICE", "30", RLimit(30, 30))],
)
def test_rlimit_forms(key, text, expected):
    assert parse_rlimit(key, text) == expected


@pytest.mark.parametrize("text", ["4096:1024", "infinity:524288", "a:b", "1:2:3", ""])
def test_rlimit_rejects_bad_pairs(text):
    with pytest.raises(UnitValueError):
        parse_rlimit("LimitNOFILE", text)


@pytest.mark.parametrize(("minimum", "maximum", "allowed"), [
    (0, None, "use 0 or more"), (None, 5, "use 5 or less"), (1, 5, "use 1..5"),
])
def test_int_range_message_names_bounds(minimum, maximum, allowed):
    with pytest.raises(UnitValueError) as error:
        parse_int("-9" if minimum is not None else "9", minimum, maximum)
    assert str(error.value).endswith(allowed)


def test_umask_and_nice():
    assert parse_mode("0077") == 0o077
    assert parse_nice("-20") == -20
    with pytest.raises(UnitValueError, match="out of range"):
        parse_nice("25")
    with pytest.raises(UnitValueError):
        parse_mode("999")


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("MemoryMax", "lots", "Invalid size 'lots'"),
    ("MemoryMax", "200%", "Invalid percentage '200%'"),
    ("MemoryMax", "-1", "Invalid size '-1'"),
    ("MemoryHigh", "1X", "Invalid size '1X'"),
    ("TasksMax", "-1", "Invalid TasksMax= value '-1'"),
    ("TasksMax", "0", "Invalid TasksMax= value '0'"),
    ("TasksMax", "150%", "Invalid TasksMax= percentage '150%'"),
    ("CPUQuota", "20", "Invalid CPUQuota= value '20', ignoring"),
    ("CPUWeight", "20000", "Invalid CPUWeight= value '20000', ignoring"),
    ("StartupCPUWeight", "0", "Invalid StartupCPUWeight= value '0', ignoring"),
    ("IOWeight", "idle", "Invalid IOWeight= value 'idle', ignoring"),
    ("StartupIOWeight", "10001", "Invalid StartupIOWeight= value '10001', ignoring"),
    ("CPUShares", "1", "Invalid CPUShares= value '1', ignoring"),
    ("AllowedCPUs", "a", "Failed to parse AllowedCPUs= value 'a' at 'a', ignoring"),
    ("CPUAffinity", "0 x", "Failed to parse CPUAffinity= value '0 x' at 'x', ignoring"),
    ("Nice", "25", "Nice priority out of range '25', ignoring"),
    ("IOSchedulingClass", "fast", "Invalid IOSchedulingClass= value 'fast', ignoring"),
    ("IOSchedulingPriority", "9", "Invalid IOSchedulingPriority= value '9', ignoring"),
    ("OOMScoreAdjust", "-2000", "Invalid OOMScoreAdjust= value '-2000', ignoring"),
    ("UMask", "0999", "Failed to parse mode '0999', ignoring"),
    ("CPUSchedulingPolicy", "deadline", "Invalid CPUSchedulingPolicy= value 'deadline', ignoring"),
    ("CPUSchedulingPriority", "100", "Invalid CPUSchedulingPriority= value '100', ignoring"),
    ("LimitNOFILE", "2048:1024", "Soft resource limit chosen higher than hard limit"),
    ("LimitNOFILE", "1K", "Failed to parse resource value '1K', ignoring"),
    ("LimitNICE", "infinity", "Failed to parse resource value 'infinity', ignoring"),
])
def test_bad_limit_warns_with_line(key: str, value: str, expected: str) -> None:
    unit = unit_from(f"[Service]\nExecStart=/bin/true\n{key}={value}\n")
    assert unit.load_state == "loaded"
    assert unit.get("Service", key) in (None, [])
    value_warnings = [m for m in messages(unit) if "not supported by unitmgr" not in m]
    assert len(value_warnings) == 1
    assert value_warnings[0].startswith(f"/u/test.service:3: [Service] {key}=: {expected}")


@pytest.mark.parametrize(("key", "value"), [
    ("MemoryMax", "64M"), ("MemoryMax", "50%"), ("MemoryMax", "infinity"),
    ("TasksMax", "10"), ("TasksMax", "10%"), ("TasksMax", "infinity"),
    ("CPUQuota", "150%"), ("CPUWeight", "idle"), ("IOWeight", "0x10"), ("AllowedCPUs", "0-1,3"),
    ("IOSchedulingClass", "none"), ("IOSchedulingPriority", "07"), ("OOMScoreAdjust", "-0x10"),
    ("CPUSchedulingPriority", "99"),
])
def test_good_limit_stored_as_text(key: str, value: str) -> None:
    unit = unit_from(f"[Service]\nExecStart=/bin/true\n{key}={value}\n")
    assert [m for m in messages(unit) if "not supported by unitmgr" not in m] == []
    assert unit.get("Service", key) == value


def test_bad_limit_in_dropin_keeps_earlier_value() -> None:
    unit = unit_from("[Service]\nExecStart=/bin/true\nMemoryMax=64M\n", dropins=("[Service]\nMemoryMax=lots\n",))
    assert unit.get("Service", "MemoryMax") == "64M"
    assert messages(unit)[0].startswith("/d/00.conf:2: [Service] MemoryMax=: Invalid size 'lots'")
