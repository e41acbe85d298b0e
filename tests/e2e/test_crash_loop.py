"""Crash-loop damping against real crash loops: the delay after quick exits, its cap, the switch
in unitmgr.conf, and what ends it (a long run, a manual restart)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path

from support import ManagerProcess, wait_for, write_unit
from unitwait import wait_starts


def crash_loop_unit(command: str) -> str:
    """Return a unit that runs `command` and restarts at once after every exit, with no start rate limit."""
    return f"[Unit]\nStartLimitIntervalSec=0\n\n[Service]\nRestart=always\nRestartSec=0\nExecStart={command}\n"


CRASHER = crash_loop_unit('/bin/sh -c "exit 1"')
SCHEDULED = re.compile(r"(\S+): scheduled restart job in ([0-9.e-]+)s, restart counter is at (\d+)")


@contextmanager
def crash_looping(make_manager, tmp_path: Path, unit: str, text: str, config: str) -> Iterator[ManagerProcess]:
    """Start a manager with the [Manager] lines in `config`, then start `unit` (written from `text`) without
    waiting for it. The unit is stopped when the block exits."""
    units = tmp_path / "units"
    write_unit(units, f"{unit}.service", text)
    manager = make_manager(units, start=False)
    manager.write_config(f"[Manager]\n{config}")
    manager.start()
    manager.request("start", {"units": [unit], "no_block": True})
    try:
        yield manager
    finally:
        manager.request("stop", {"units": [unit]})


def scheduled_restarts(manager: ManagerProcess, unit: str) -> list[tuple[int, float]]:
    """Return (restart counter, delay) of each restart the manager logged for `unit`, in order."""
    return [(int(counter), float(delay)) for name, delay, counter in SCHEDULED.findall(manager.log())
            if name == unit]


def scheduled_delays(manager: ManagerProcess, unit: str) -> dict[int, float]:
    """Map each restart counter value to the delay the manager logged for that restart."""
    return dict(scheduled_restarts(manager, unit))


def test_delay_grows_to_cap(make_manager, tmp_path: Path) -> None:
    with crash_looping(make_manager, tmp_path, "crasher", CRASHER, "CrashLoopMaxDelaySec=0.8\n") as manager:
        times = wait_starts(manager, "crasher", 12, timeout=30)["start_times"][:12]
        damped = wait_for(lambda: (s := manager.status("crasher"))["crash_loop"] and s, timeout=10,
                          message="status to show crash-loop damping")
        status_text = manager.unitsh("-c", "status crasher").stdout

    # CrashLoopBurst=5: five restarts at RestartSec=0, then 0.1 s doubling up to the cap.
    expected = [0, 0, 0, 0, 0, 0.1, 0.2, 0.4, 0.8, 0.8, 0.8]
    delays = scheduled_delays(manager, "crasher.service")
    assert [delays[counter] for counter in range(1, 12)] == expected
    gaps = [later - earlier for earlier, later in pairwise(times)]
    for gap, delay in zip(gaps, expected, strict=True):
        assert gap >= delay - 0.01, (gaps, expected)
    assert damped["crash_loop"]["quick_exits"] > 5
    assert damped["crash_loop"]["delay"] > 0
    assert "quick exits in a row (crash-loop damping)" in status_text
    warnings = [line for line in manager.log().splitlines() if "(crash-loop damping)" in line]
    assert len(warnings) == 1, warnings
    assert "crasher.service: process " in warnings[0]


def test_damping_off_in_config(make_manager, tmp_path: Path) -> None:
    with crash_looping(make_manager, tmp_path, "crasher", CRASHER, "CrashLoopMaxDelaySec=0\n") as manager:
        status = wait_starts(manager, "crasher", 12, timeout=30)

    delays = scheduled_delays(manager, "crasher.service")
    assert [delays[counter] for counter in range(1, 12)] == [0] * 11
    assert status["crash_loop"] is None
    assert "crash-loop damping" not in manager.log()


def test_long_run_restarts_at_once(make_manager, tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    # Runs 1-4 exit at once. From run 5 on, each run lasts 0.7 s, longer than CrashLoopQuickExitSec=.
    slowing = crash_loop_unit(
        f"/bin/sh -c 'echo run >> {counter}; if [ \"$$(wc -l < {counter})\" -ge 5 ]; then sleep 0.7; fi; exit 1'")
    config = "CrashLoopQuickExitSec=0.5\nCrashLoopBurst=2\n"
    with crash_looping(make_manager, tmp_path, "slowing", slowing, config) as manager:
        wait_starts(manager, "slowing", 7, timeout=30)

    delays = scheduled_delays(manager, "slowing.service")
    # Quick exits 3 and 4 are damped. Runs 5 and 6 lasted 0.7 s, so their restarts are immediate.
    assert [delays[counter] for counter in range(1, 7)] == [0, 0, 0.1, 0.2, 0, 0]
    assert "crash-loop damping ends after 4 quick exits" in manager.log()


def test_manual_restart_resets_count(make_manager, tmp_path: Path) -> None:
    config = "CrashLoopBurst=1\nCrashLoopMaxDelaySec=10\n"
    with crash_looping(make_manager, tmp_path, "crasher", CRASHER, config) as manager:
        wait_starts(manager, "crasher", 5, timeout=30)
        manager.request("restart", {"units": ["crasher"], "no_block": True})
        wait_for(lambda: [counter for counter, _ in scheduled_restarts(manager, "crasher.service")].count(2) >= 2,
                 timeout=30, message="two restarts after the manual restart")

    restarts = scheduled_restarts(manager, "crasher.service")
    # CrashLoopBurst=1: restart 1 at once, then 0.1 s, 0.2 s, 0.4 s, ...
    assert restarts[:4] == [(1, 0), (2, 0.1), (3, 0.2), (4, 0.4)]
    # The manual restart set the restart counter and the quick exits back to 0.
    second_round = restarts.index((1, 0), 1)
    assert restarts[second_round:second_round + 2] == [(1, 0), (2, 0.1)]
