"""Parsing resource-control and scheduling settings, and the values written to cgroup files."""

from __future__ import annotations

import pytest
from unitmgr.manager.resources import kernel_value, sort_rows
from unitmgr.manager.resourcesettings import (
    ResourceSettings,
    parse_cpu_list,
    parse_tasks,
    physical_memory,
    resource_settings,
    system_tasks_limit,
)
from unitmgr.units.values import UnitValueError


def settings_of(**values) -> ResourceSettings:
    return resource_settings(lambda key: values.get(key))


def test_sizes_and_counts() -> None:
    settings = settings_of(MemoryMax="64M", MemoryHigh="1G", TasksMax="5", CPUQuota="150%", IOWeight="50")
    assert settings.memory_max == 64 << 20
    assert settings.memory_high == 1 << 30
    assert settings.tasks_max == 5
    assert settings.cpu_quota == 1.5
    assert settings.io_weight == 50
    assert settings.warnings == []


def test_percentages_of_the_machine() -> None:
    settings = settings_of(MemoryMax="50%", TasksMax="10%")
    assert settings.memory_max == physical_memory() // 2
    assert settings.tasks_max == system_tasks_limit() // 10


def test_infinity_means_no_limit() -> None:
    settings = settings_of(MemoryMax="infinity", TasksMax="infinity")
    assert settings.limits() == {}


def test_legacy_memory_limit() -> None:
    assert settings_of(MemoryLimit="10M").memory_max == 10 << 20


@pytest.mark.parametrize(("key", "value", "fragment"), [
    ("CPUQuota", "20", "percentage"),
    ("TasksMax", "0", "TasksMax="),
    ("MemoryMax", "lots", "Invalid size"),
    ("CPUWeight", "20000", "1 to 10000"),
    ("IOSchedulingClass", "fast", "realtime, best-effort, idle"),
    ("IOSchedulingPriority", "9", "0 to 7"),
    ("OOMScoreAdjust", "-2000", "-1000 to 1000"),
], ids=lambda v: v if isinstance(v, str) and "=" not in v else None)
def test_invalid_values_warn_and_are_ignored(key: str, value: str, fragment: str) -> None:
    settings = settings_of(**{key: value})
    assert len(settings.warnings) == 1
    assert fragment in settings.warnings[0]
    assert value in settings.warnings[0]
    assert settings.limits() == {}


def test_cpu_list_ranges_and_separators() -> None:
    assert parse_cpu_list(["0-1,3", "5"]) == [0, 1, 3, 5]
    assert parse_cpu_list(["2 2"]) == [2]


def test_cpu_list_skips_backwards_range() -> None:
    # systemd 252 warns about a range such as 3-1 and keeps the rest of the list.
    assert parse_cpu_list(["0,3-1", "5"]) == [0, 5]
    settings = settings_of(CPUAffinity=["0,3-1"])
    assert settings.cpu_affinity == [0]
    assert len(settings.warnings) == 1
    assert "lower CPU first" in settings.warnings[0]


def test_tasks_percentage_range() -> None:
    with pytest.raises(UnitValueError, match="above 0%"):
        parse_tasks("0%")


def test_io_defaults() -> None:
    assert (settings_of(IOSchedulingClass="best-effort").io_priority) == 4
    assert (settings_of(IOSchedulingClass="idle").io_priority) == 0
    only_level = settings_of(IOSchedulingPriority="6")
    assert (only_level.io_class, only_level.io_priority) == (2, 6)


def test_cpu_weight_idle() -> None:
    assert settings_of(CPUWeight="idle").cpu_weight == 0


def test_kernel_values() -> None:
    settings = settings_of(CPUQuota="20%")
    assert kernel_value("CPUQuota", 0.2, settings) == "20000 100000"
    settings.cpu_quota_period = 0.01
    assert kernel_value("CPUQuota", 1.5, settings) == "15000 10000"
    assert kernel_value("MemoryMax", 1024, settings) == "1024"


def test_top_sorting() -> None:
    rows = [{"name": "b", "cpu_percent": 1.0}, {"name": "a", "cpu_percent": None},
            {"name": "c", "cpu_percent": 50.0}]
    assert [r["name"] for r in sort_rows(rows, "cpu")] == ["c", "b", "a"]
    assert [r["name"] for r in sort_rows(rows, "name")] == ["a", "b", "c"]
    with pytest.raises(ValueError, match="unknown sort key 'colour'"):
        sort_rows(rows, "colour")
