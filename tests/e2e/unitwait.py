"""Small helpers shared by the supervision end-to-end tests."""

from __future__ import annotations

import os
from typing import Any

from support import ManagerProcess, wait_for


def alive(pid: int) -> bool:
    """Whether `pid` runs and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def wait_state(manager: ManagerProcess, unit: str, active: str, sub: str | None = None,
               timeout: float = 20.0) -> dict[str, Any]:
    """Wait until `unit` is in `active` (and `sub`); return its status."""
    last: dict[str, Any] = {}

    def reached() -> dict[str, Any] | None:
        nonlocal last
        last = manager.status(unit)
        if last["active_state"] == active and (sub is None or last["sub_state"] == sub):
            return last
        return None

    try:
        return wait_for(reached, timeout, message=f"{unit} to be {active} ({sub or 'any'})")  # type: ignore[return-value]
    except AssertionError as exc:
        raise AssertionError(f"{exc}; last state {last.get('active_state')} ({last.get('sub_state')}), "
                             f"result {last.get('result')}\n{manager_log_tail(manager)}") from None


def manager_log_tail(manager: ManagerProcess, lines: int = 40) -> str:
    """The manager's last log lines, without the per-request noise."""
    noise = ("manager.zap:", "manager.commands:")
    kept = [line for line in manager.log().splitlines() if not any(word in line for word in noise)]
    return "\n".join(kept[-lines:])


def log_lines(manager: ManagerProcess, unit: str) -> list[str]:
    """Return the texts of the unit's output lines, without the manager's lines about the unit."""
    records = manager.request("logs", {"units": [unit], "lines": 0})["records"]
    return [record["text"] for record in records if record["stream"] != "manager"]


def wait_log(manager: ManagerProcess, unit: str, text: str, timeout: float = 20.0) -> list[str]:
    return wait_for(lambda: [line for line in log_lines(manager, unit) if text in line], timeout,
                    message=f"{text!r} in the log of {unit}")  # type: ignore[return-value]


def job_result(reply: dict[str, Any], unit: str) -> str:
    [job] = [job for job in reply["jobs"] if job["unit"] == unit]
    return job["result"]


def user_name() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def wait_starts(manager: ManagerProcess, unit: str, count: int, timeout: float = 20.0,
                interval: float = 0.02) -> dict[str, Any]:
    """Wait until the manager has started `unit` at least `count` times; return its status."""

    def started() -> dict[str, Any] | None:
        status = manager.status(unit)
        return status if len(status["start_times"]) >= count else None

    return wait_for(started, timeout, interval, message=f"{count} starts of {unit}")  # type: ignore[return-value]
