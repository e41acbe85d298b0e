"""systemd's Restart= table, exit classification and back-off, as pure functions."""

from __future__ import annotations

import signal

import pytest
from unitmgr.manager.reaper import ExitStatus
from unitmgr.manager.states import (
    ExitCause,
    classify_exit,
    restart_delay,
    result_for,
    should_restart,
    status_name,
)
from unitmgr.units.model import ExitStatusSet

# Rows of systemd's table: which Restart= values restart for each cause.
TABLE = {
    ExitCause.CLEAN: {"always", "on-success"},
    ExitCause.UNCLEAN_CODE: {"always", "on-failure"},
    ExitCause.UNCLEAN_SIGNAL: {"always", "on-failure", "on-abnormal", "on-abort"},
    ExitCause.TIMEOUT: {"always", "on-failure", "on-abnormal"},
    ExitCause.WATCHDOG: {"always", "on-failure", "on-abnormal", "on-watchdog"},
}
POLICIES = ["no", "always", "on-success", "on-failure", "on-abnormal", "on-abort", "on-watchdog"]


@pytest.mark.parametrize("cause", list(TABLE), ids=lambda c: c.value)
@pytest.mark.parametrize("policy", POLICIES)
def test_restart_table_cell(policy: str, cause: ExitCause) -> None:
    expected = policy in TABLE[cause]
    assert should_restart(policy, cause, None, None, None, "simple") is expected


def test_prevent_status_wins_over_always() -> None:
    status = ExitStatus(1, "exited", 3)
    assert not should_restart("always", ExitCause.UNCLEAN_CODE, status,
                              ExitStatusSet(codes=frozenset({3})), None, "simple")


def test_force_status_restarts_with_no() -> None:
    status = ExitStatus(1, "killed", signal.SIGUSR1)
    assert should_restart("no", ExitCause.UNCLEAN_SIGNAL, status, None,
                          ExitStatusSet(signals=frozenset({signal.SIGUSR1})), "simple")


def test_force_never_restarts_clean_oneshot() -> None:
    status = ExitStatus(1, "exited", 0)
    assert not should_restart("no", ExitCause.CLEAN, status, None,
                              ExitStatusSet(codes=frozenset({0})), "oneshot")


def test_clean_signals_depend_on_type() -> None:
    term = ExitStatus(1, "killed", signal.SIGTERM)
    assert classify_exit(term, "simple", None) is ExitCause.CLEAN
    assert classify_exit(term, "oneshot", None) is ExitCause.UNCLEAN_SIGNAL
    assert classify_exit(ExitStatus(1, "killed", signal.SIGKILL), "simple", None) is ExitCause.UNCLEAN_SIGNAL


def test_success_exit_status_is_clean() -> None:
    status = ExitStatus(1, "exited", 42)
    assert classify_exit(status, "simple", ExitStatusSet(codes=frozenset({42}))) is ExitCause.CLEAN
    assert classify_exit(status, "simple", None) is ExitCause.UNCLEAN_CODE


def test_results_and_names() -> None:
    dumped = ExitStatus(1, "dumped", signal.SIGABRT)
    assert result_for(ExitCause.UNCLEAN_SIGNAL, dumped) == "core-dump"
    assert result_for(ExitCause.UNCLEAN_CODE, ExitStatus(1, "exited", 1)) == "exit-code"
    assert status_name(ExitStatus(1, "exited", 203)) == "EXEC"
    assert status_name(ExitStatus(1, "killed", signal.SIGTERM)) == "TERM"


def test_backoff_grows_and_caps() -> None:
    delays = [restart_delay(n, 10, 4, 160) for n in range(1, 8)]
    assert delays == pytest.approx([10, 20, 40, 80, 160, 160, 160])


def test_backoff_off_without_max() -> None:
    assert restart_delay(5, 2, 4, float("inf")) == 2
