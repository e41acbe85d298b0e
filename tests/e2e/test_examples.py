"""The bundled example units, run by a real manager and driven by the real unitsh."""

from __future__ import annotations

import os
import signal
import urllib.request
from pathlib import Path

from support import wait_for, web_port


def http_ok(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.status == 200 and b"unitmgr" in response.read()
    except OSError:
        return False


def running_main_pid(manager, unit: str) -> int:
    status = manager.status(unit)
    if status["active_state"] == "active" and status["sub_state"] == "running":
        return status["main_pid"]
    return 0


def test_web_serves_and_restarts(make_manager, example_units: Path) -> None:
    manager = make_manager(example_units)
    port = web_port(example_units)
    first_pid = wait_for(lambda: running_main_pid(manager, "web"), message="web running")
    wait_for(lambda: http_ok(port), message="web answering HTTP")

    restarted = manager.unitsh("-c", "restart web")
    assert restarted.returncode == 0, restarted.stderr
    second_pid = running_main_pid(manager, "web")
    assert second_pid and second_pid != first_pid
    wait_for(lambda: http_ok(port), message="web answering after restart")

    status = manager.unitsh("-c", "status web")
    assert status.returncode == 0, status.stderr
    assert "● web.service - Example web server on 127.0.0.1" in status.stdout
    assert "Active: active (running) since" in status.stdout
    assert f"Main PID: {second_pid}" in status.stdout


def test_killed_web_is_restarted(make_manager, example_units: Path) -> None:
    manager = make_manager(example_units)
    port = web_port(example_units)
    first_pid = wait_for(lambda: running_main_pid(manager, "web"), message="web running")
    os.kill(first_pid, signal.SIGKILL)

    def replaced() -> int:
        pid = running_main_pid(manager, "web")
        return pid if pid and pid != first_pid else 0

    second_pid = wait_for(replaced, timeout=15, message="a new web main PID")
    assert second_pid != first_pid
    assert manager.status("web")["n_restarts"] >= 1
    wait_for(lambda: http_ok(port), message="web answering after the kill")


def test_flaky_hits_start_limit(make_manager, example_units: Path) -> None:
    manager = make_manager(example_units)

    def failed() -> bool:
        return manager.status("flaky")["active_state"] == "failed"

    wait_for(failed, timeout=40, interval=0.2, message="flaky to fail")
    status = manager.status("flaky")
    assert status["result"] == "start-limit-hit"
    assert len(status["start_times"]) == 3

    is_active = manager.unitsh("-c", "is-active flaky")
    assert is_active.returncode == 3
    assert is_active.stdout.strip() == "failed"

    text = manager.unitsh("-c", "status flaky")
    assert text.returncode == 3
    assert "failed (Result: start-limit-hit)" in text.stdout
    assert "flaky: giving up" in text.stdout


def test_workers_and_ticker_run(make_manager, example_units: Path) -> None:
    manager = make_manager(example_units)
    for unit in ("worker@1", "worker@2", "ticker"):
        wait_for(lambda u=unit: running_main_pid(manager, u), message=f"{unit} running")

    def ticker_lines() -> int:
        records = manager.request("logs", {"units": ["ticker"], "lines": 5})["records"]
        return len([r for r in records if r["text"].startswith("tick ")])

    wait_for(lambda: ticker_lines() >= 2, timeout=10, message="two ticker lines")
    worker_log = manager.unitsh("-c", "logs -n 5 worker@2")
    assert worker_log.returncode == 0, worker_log.stderr
    assert "worker 2: job 1 done" in worker_log.stdout

    listing = manager.unitsh("-c", "list")
    assert listing.returncode == 0
    for unit in ("web.service", "worker@1.service", "worker@2.service", "ticker.service"):
        assert unit in listing.stdout
