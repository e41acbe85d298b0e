"""Load-time checks of resource-control and process-attribute values (units.limitvalues)."""

from __future__ import annotations

import pytest
from unit_text import messages, unit_from
from unitmgr.units.cinteger import parse_c_integer
from unitmgr.units.cpuset import parse_cpu_set
from unitmgr.units.limitvalues import parse_cpu_quota, parse_weight
from unitmgr.units.model import RLimit
from unitmgr.units.schedvalues import parse_cpu_sched_policy, parse_io_class
from unitmgr.units.values import UnitValueError, parse_mode, parse_nice, parse_rlimit, parse_size


@pytest.mark.parametrize(("text", "expected"), [
    ("10", 10), ("+10", 10), ("-10", -10), ("0x1f", 31), ("0X1F", 31), ("010", 8), ("0", 0),
    ("0b101", 5), ("  7", 7),
])
def test_c_integer_forms(text: str, expected: int) -> None:
    assert parse_c_integer(text) == expected


@pytest.mark.parametrize("text", ["08", "0x", "1_000", "1e3", "1.5", "7 ", "- 5", "+-5", "", "0o7"])
def test_c_integer_rejects(text: str) -> None:
    assert parse_c_integer(text) is None


def test_c_integer_unsigned_minus() -> None:
    assert parse_c_integer("-0", signed=False) == 0
    assert parse_c_integer("-1", signed=False) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("20%", 0.2), ("150%", 1.5), ("1.55%", 0.0155), ("0.01%", 0.0001), ("5‰", 0.005),
    ("5.5‰", 0.0055), ("5‱", 0.0005), ("+5%", 0.05), ("-0.5%", 0.005),
])
def test_cpu_quota_forms(text: str, expected: float) -> None:
    assert parse_cpu_quota(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["20", "0%", "-5%", "1.555%", "%", "20 %", "infinity", "5.%",
                                  ".5%", "1.5‱", "21474837%"])
def test_cpu_quota_rejects(text: str) -> None:
    with pytest.raises(UnitValueError, match="CPUQuota="):
        parse_cpu_quota(text)


def test_weights() -> None:
    assert parse_weight("CPUWeight", "idle", allow_idle=True) == 0
    assert parse_weight("IOWeight", "0x10") == 16
    for text in ("0", "10001", "idle", "-1", "1.5"):
        with pytest.raises(UnitValueError, match="1 to 10000"):
            parse_weight("IOWeight", text)


def test_cpu_set_forms() -> None:
    assert parse_cpu_set("AllowedCPUs", "0-2,5 7,,").cpus == (0, 1, 2, 5, 7)
    assert parse_cpu_set("CPUAffinity", "numa", allow_numa=True).numa is True
    backwards = parse_cpu_set("CPUAffinity", "0 3-1")
    assert backwards.cpus == (0,)
    assert "3 > 1" in backwards.warnings[0]


@pytest.mark.parametrize("text", ["a", "0-", "-1", "0-1-2", "8192", "numa"])
def test_cpu_set_rejects(text: str) -> None:
    with pytest.raises(UnitValueError, match="AllowedCPUs="):
        parse_cpu_set("AllowedCPUs", text)


def test_scheduling_names_and_numbers() -> None:
    assert parse_io_class("none") == 0
    assert parse_io_class("idle") == 3
    assert parse_cpu_sched_policy("fifo") == 1
    assert parse_cpu_sched_policy("7") == 7
    for text in ("Idle", "9", "be"):
        with pytest.raises(UnitValueError, match="IOSchedulingClass="):
            parse_io_class(text)
    with pytest.raises(UnitValueError, match="other, batch, idle, fifo or rr"):
        parse_cpu_sched_policy("deadline")


def test_sizes_add_terms_with_shrinking_suffixes() -> None:
    assert parse_size("1G 512M") == (1 << 30) + (512 << 20)
    assert parse_size("1K1") == 1025
    assert parse_size("1.K") == 1024
    for text in ("512M 1G", "5 5", "0x10", "-0", ".5K", "16E", "1KiB"):
        with pytest.raises(UnitValueError, match="Invalid size"):
            parse_size(text)


def test_nice_and_mode_use_c_syntax() -> None:
    assert parse_nice("0x5") == 5
    assert parse_nice("010") == 8
    assert parse_mode("00022") == 0o22
    with pytest.raises(UnitValueError):
        parse_nice("08")
    with pytest.raises(UnitValueError):
        parse_mode("17777")


@pytest.mark.parametrize(("key", "text", "expected"), [
    ("LimitNOFILE", "0x10", RLimit(16, 16)),
    ("LimitNOFILE", "18446744073709551614", RLimit(2**64 - 2, 2**64 - 2)),
    ("LimitNICE", "+5:-5", RLimit(15, 25)),
    ("LimitNICE", "010", RLimit(8, 8)),
    ("LimitAS", "1G 512M", RLimit(1536 << 20, 1536 << 20)),
])
def test_rlimit_c_syntax(key: str, text: str, expected: RLimit) -> None:
    assert parse_rlimit(key, text) == expected


@pytest.mark.parametrize(("key", "text"), [
    ("LimitNOFILE", "18446744073709551615"), ("LimitNOFILE", "1K"), ("LimitNOFILE", "08"),
    ("LimitNICE", "infinity"), ("LimitNICE", "41"), ("LimitNICE", "+20"),
    ("LimitCPU", "18446744073709"), ("LimitRTTIME", "18446744073709551614"),
])
def test_rlimit_rejects_out_of_range(key: str, text: str) -> None:
    with pytest.raises(UnitValueError):
        parse_rlimit(key, text)


def test_bad_value_keeps_earlier_assignment() -> None:
    unit = unit_from("[Service]\nExecStart=/bin/true\nCPUQuota=20%\nCPUQuota=20\n"
                     "OOMScoreAdjust=5\nOOMScoreAdjust=abc\n")
    assert unit.get("Service", "CPUQuota") == "20%"
    assert unit.get("Service", "OOMScoreAdjust") == "5"
    assert [m.split(":")[1] for m in messages(unit)] == ["4", "6"]


def test_backwards_cpu_range_warns_and_keeps_value() -> None:
    unit = unit_from("[Service]\nExecStart=/bin/true\nCPUAffinity=0,3-1\n")
    assert unit.get("Service", "CPUAffinity") == ["0,3-1"]
    assert len(messages(unit)) == 1
    assert messages(unit)[0].startswith("/u/test.service:3: [Service] CPUAffinity=: Range '3-1'")


def test_checked_values_skip_specifiers() -> None:
    # systemd expands no specifiers here, so 20%% is not 20%.
    unit = unit_from("[Service]\nExecStart=/bin/true\nCPUQuota=20%%\nMemoryMax=50%\n")
    assert unit.get("Service", "CPUQuota") is None
    assert unit.get("Service", "MemoryMax") == "50%"
    assert len(messages(unit)) == 1
