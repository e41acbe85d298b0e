"""Per-unit figures sampled from /proc, and CPU % between two samples."""

from __future__ import annotations

import os
import subprocess

from unitmgr.manager.stats import ProcessFigures, UnitSample, cpu_percent, sample_unit, statistics_fields


def figures(pid: int, cpu: float, rss: int = 0, pss: int | None = None) -> ProcessFigures:
    return ProcessFigures(pid=pid, ppid=1, threads=1, cpu_seconds=cpu, rss=rss, pss=pss)


def test_cpu_percent_per_process_deltas() -> None:
    before = UnitSample(10.0, [figures(1, 5.0), figures(2, 1.0)])
    # Process 2 exited (its time must not count as negative), 3 is new.
    after = UnitSample(12.0, [figures(1, 6.0), figures(3, 0.5)])
    assert cpu_percent(before, after) == 75.0


def test_cpu_percent_without_elapsed_time() -> None:
    sample = UnitSample(10.0, [figures(1, 5.0)])
    assert cpu_percent(sample, sample) == 0.0


def test_memory_prefers_pss_when_complete() -> None:
    assert UnitSample(0, [figures(1, 0, rss=100, pss=60), figures(2, 0, rss=100, pss=40)]).memory == 100
    assert UnitSample(0, [figures(1, 0, rss=100, pss=60), figures(2, 0, rss=100)]).memory == 200


def test_sample_of_real_processes() -> None:
    child = subprocess.Popen(["sleep", "1000"])
    try:
        sample = sample_unit({os.getpid(), child.pid, 999_999_999})
        assert {p.pid for p in sample.processes} == {os.getpid(), child.pid}
        fields = statistics_fields(sample)
        assert fields["tasks"] >= 2
        assert fields["memory_rss"] > 0
        assert fields["open_files"] >= 6
        assert fields["cpu_seconds"] > 0
        assert fields["io_read_bytes"] is not None
        assert [p["pid"] for p in fields["processes"]] == sorted([os.getpid(), child.pid])
    finally:
        child.kill()
        child.wait()


def test_empty_sample_has_no_memory() -> None:
    fields = statistics_fields(UnitSample(0.0))
    assert fields["tasks"] == 0
    assert fields["memory_bytes"] is None
    assert fields["cpu_seconds"] is None
