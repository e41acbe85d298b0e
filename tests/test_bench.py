"""The benchmark runs end to end in its smallest mode and writes its table.

Timings are never asserted: the figures depend on the machine and its load.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO, kill_and_reap, processes_with_env

BENCH = REPO / "bench" / "run.py"
# bench/run.py exits with this status when pip cannot install supervisor and Circus.
EXIT_NO_ANCHORS = 4
ROW_PREFIXES = [
    "| S1 | start-up, N=5 (s) |",
    "| S2 | idle RSS, N=5 (MB) |",
    "| S2 | idle CPU, N=5 (%) |",
    "| S2 | idle CPU, fast respawn settings (%) |",
    "| S3 | respawn, fast settings, median / p90 (ms) |",
    "| S3 | respawn, default settings, median / p90 (ms) |",
    "| S4 | ctl status of every service, whole process (ms) |",
    "| S4 | status round trip in a running client (ms) |",
    "| S5 | log capture (MB/s) |",
    "| S5 | bytes lost; content compared with what was written |",
    "| S5 | ceiling: the writer straight into a file (MB/s) |",
    "| S6 | crash loop with a limit: spawns per run |",
    "| S6 | crash loop with a limit: gave up |",
    "| S6 | crash loop, fast settings, no limit: spawns/s |",
    "| S6 | crash loop, fast settings, no limit: manager CPU (%) |",
]


def unitmgr_cell(line: str) -> str:
    return line.split("|")[3].strip()


@pytest.mark.timeout(900)
def test_bench_smoke_writes_table(tmp_path: Path) -> None:
    output = tmp_path / "RESULTS.md"
    marker = f"UNITMGR_BENCH_TEST={tmp_path}"
    env = dict(os.environ, UNITMGR_BENCH_TEST=str(tmp_path))
    # --dev-unitmgr runs this interpreter's unitmgr, so the test neither waits for nor replaces the
    # benchmark's own install of unitmgr.
    command = [sys.executable, str(BENCH), "--smoke", "--dev-unitmgr", "--output", str(output),
               "--workdir", str(tmp_path / "w")]
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=840)
    finally:
        survivors = processes_with_env(marker.encode())
        kill_and_reap(survivors)
    if result.returncode == EXIT_NO_ANCHORS:
        pytest.skip(f"supervisor and Circus could not be installed from PyPI: {result.stderr.strip()[-500:]}")

    assert result.returncode == 0, result.stderr[-4000:]
    assert not survivors, f"processes outlived the benchmark: {survivors}"
    text = output.read_text()
    lines = text.splitlines()
    for prefix in ROW_PREFIXES:
        matching = [line for line in lines if line.startswith(prefix)]
        assert matching, f"row missing from {output}: {prefix}\n{text}"
        assert unitmgr_cell(matching[0]) != "n/a", f"no unitmgr figure in: {matching[0]}"
    assert "## Targets" in text
    assert "Machine:" in text
