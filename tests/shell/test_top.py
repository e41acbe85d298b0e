"""`top`'s table and the `Limits:` lines of `status`."""

from __future__ import annotations

import time

from shellfixtures import make_output
from unitmgr.shell import render
from unitmgr.shell.limitlines import limit_lines, limit_value
from unitmgr.shell.top import render_table

BURNER = {"name": "burner.service", "sub_state": "running", "main_pid": 123, "tasks": 1, "tasks_max": 5,
          "cpu_percent": 99.5, "cpu_seconds": 12.3, "memory_bytes": 2_000_000, "memory_peak": 3_000_000,
          "open_files": 4, "io_read_bytes": 0, "io_write_bytes": 1024, "n_restarts": 2}
IDLE = {"name": "idle.service", "sub_state": "running", "main_pid": 9, "tasks": 1, "cpu_percent": None,
        "cpu_seconds": None, "memory_bytes": None, "open_files": None, "io_read_bytes": None,
        "io_write_bytes": None}


def table_lines(units: list[dict]) -> list[str]:
    out, stdout, _ = make_output()
    render_table(out, {"units": units})
    return stdout.getvalue().splitlines()


def test_top_table_columns() -> None:
    lines = table_lines([BURNER, IDLE])
    assert lines[0].split() == ["UNIT", "SUB", "PID", "TASKS", "CPU%", "CPU", "TIME", "MEMORY", "PEAK",
                                "FILES", "READ", "WRITE", "RESTARTS"]
    assert lines[1].split() == ["burner.service", "running", "123", "1/5", "99.5", "12.3s", "1.9M",
                                "2.8M", "4", "0B", "1.0K", "2"]
    assert lines[2].split() == ["idle.service", "running", "9", "1", "-", "-", "-", "-", "-", "-",
                                "-", "0"]


def test_top_numbers_right_aligned() -> None:
    lines = table_lines([BURNER, IDLE])
    assert lines[1].index("99.5") + len("99.5") == lines[0].index("CPU%") + len("CPU%")


def test_top_without_units() -> None:
    assert table_lines([]) == ["No running units. Pass --all to include inactive units."]


def test_limit_values_as_written() -> None:
    assert limit_value("MemoryMax", 64 << 20) == "64.0M"
    assert limit_value("CPUQuota", 0.2) == "20%"
    assert limit_value("CPUQuota", 1.5) == "150%"
    assert limit_value("CPUWeight", 0) == "idle"
    assert limit_value("TasksMax", 5) == "5"


def test_limit_lines_name_enforcer() -> None:
    unit = {
        "limits": [{"name": "MemoryMax", "value": 64 << 20, "enforced_by": "manager"},
                   {"name": "CPUQuota", "value": 0.2, "enforced_by": "none"},
                   {"name": "TasksMax", "value": 5, "enforced_by": "kernel"},
                   {"name": "LimitNOFILE", "value": {"soft": 1, "hard": 2}, "enforced_by": "kernel"}],
        "limit_hit": {"name": "MemoryMax", "value": 64 << 20, "observed": 70 << 20,
                      "enforced_by": "manager", "action": "killed the unit",
                      "time": time.mktime((2026, 12, 4, 20, 0, 1, 0, 0, -1))},
    }
    lines = limit_lines(unit, render._label)
    assert lines == [
        "     Limits: MemoryMax=64.0M (unitmgr), CPUQuota=20% (not enforced), TasksMax=5 (kernel)",
        "  Limit hit: MemoryMax=64.0M at 20:00:01, by unitmgr: killed the unit",
    ]


def test_no_limit_lines_without_limits() -> None:
    assert limit_lines({"limits": [], "limit_hit": None}, render._label) == []
