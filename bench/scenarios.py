"""The scenarios S1-S6, each measured the same way for every manager.

Every function starts the manager it is given, measures, and stops it in a
`finally`, so a failure in one scenario leaves no process behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import procfs
from logfollow import LogFollower, unitmgr_names
from managers import BENCH_DIR, ManagerUnderTest, Service, Unitmgr, probe_result, worker_names
from settings import START_LIMIT
from writer import expected

log = logging.getLogger(__name__)

WRITER = BENCH_DIR / "writer.py"
MB = 1_000_000


@dataclass
class Idle:
    cpu_percent: float
    rss_mb: float


def wait_workers(manager: ManagerUnderTest, count: int, timeout: float) -> procfs.WorkerWatch:
    """Poll until `count` children of the manager have exec'd /bin/sleep."""
    watch = procfs.WorkerWatch(manager.pid)
    deadline = time.monotonic() + timeout
    while len(watch.running()) < count:
        manager.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"{manager.label}: {len(watch.known)} of {count} workers after {timeout:g}s")
        time.sleep(0.005)
    return watch


def measure_idle(manager: ManagerUnderTest, settle: float, window: float) -> Idle:
    """CPU % of the manager process over `window` seconds after `settle`, and its RSS at the end."""
    time.sleep(settle)
    cpu_before, start = procfs.cpu_seconds(manager.pid), time.monotonic()
    time.sleep(window)
    cpu_after, elapsed = procfs.cpu_seconds(manager.pid), time.monotonic() - start
    return Idle(100 * (cpu_after - cpu_before) / elapsed, procfs.rss_bytes(manager.pid) / MB)


def startup(manager: ManagerUnderTest, count: int, idle: tuple[float, float] | None = None,
            profile: str = "default") -> tuple[float, Idle | None]:
    """S1: seconds from launch until all `count` workers have exec'd; with `idle`, also S2 after that."""
    manager.prepare([Service(name, profile=profile) for name in worker_names(count)])
    try:
        launched = manager.start()
        wait_workers(manager, count, timeout=60 + count * 0.2)
        seconds = time.monotonic() - launched
        measured = measure_idle(manager, *idle) if idle else None
        return seconds, measured
    finally:
        manager.stop()


def respawn(manager: ManagerUnderTest, kills: int, profile: str, gap: float) -> list[float]:
    """S3: SIGKILL one of 10 workers, time until a new /bin/sleep child runs; `kills` times."""
    manager.prepare([Service(name, profile=profile) for name in worker_names(10)])
    times: list[float] = []
    try:
        manager.start()
        watch = wait_workers(manager, 10, timeout=60)
        manager.wait_control()
        time.sleep(gap)
        for number in range(kills):
            before = watch.running()
            victim = sorted(before)[number % len(before)]
            os.kill(victim, signal.SIGKILL)
            killed = time.perf_counter()
            times.append(wait_replacement(manager, watch, before, killed))
            time.sleep(gap)
    finally:
        manager.stop()
    return times


def wait_replacement(manager: ManagerUnderTest, watch: procfs.WorkerWatch, before: set[int],
                     killed: float, timeout: float = 60.0) -> float:
    while True:
        if watch.running() - before:
            return (time.perf_counter() - killed) * 1000
        if time.perf_counter() - killed > timeout:
            raise TimeoutError(f"{manager.label}: no replacement {timeout:g}s after a kill")
        manager.check_alive()
        time.sleep(0.0002)


def control(manager: ManagerUnderTest, count: int, runs: int, iterations: int) -> tuple[dict, dict]:
    """S4: wall ms of one-shot status commands, and of round trips inside a running client."""
    manager.prepare([Service(name) for name in worker_names(count)])
    try:
        manager.start()
        wait_workers(manager, count, timeout=60 + count * 0.2)
        manager.wait_control()
        time.sleep(1.0)
        commands = {"status-all": manager.ctl_status_argv(), **manager.extra_ctl_argvs()}
        walls = {label: time_command(manager, argv, runs) for label, argv in commands.items()}
        return walls, probe_result(manager, iterations)
    finally:
        manager.stop()


def time_command(manager: ManagerUnderTest, argv: list[str], runs: int) -> list[float]:
    """Wall-clock ms of `runs` runs of `argv`, after one untimed run that warms the page cache."""
    manager.run_ctl(argv)
    walls = []
    for _ in range(runs):
        start = time.perf_counter()
        result = manager.run_ctl(argv)
        walls.append((time.perf_counter() - start) * 1000)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} exited with {result.returncode}: {result.stderr[-1000:]}")
    return walls


@dataclass
class Capture:
    mb_per_s: float
    bytes_lost: int
    identical: bool


def log_capture(manager: ManagerUnderTest, total: int, timeout: float = 300.0) -> Capture:
    """S5: one writer of `total` bytes; seconds from its first write until the log contains every byte."""
    stamp = manager.workdir.parent / f"{manager.workdir.name}-writer.stamp"
    stamp.unlink(missing_ok=True)
    log_file = manager.workdir / "writer.log"
    argv = (sys.executable, str(WRITER), str(total), str(stamp))
    manager.prepare([Service("writer", argv=argv, restart="no", log_file=log_file)])
    follower = None
    try:
        manager.start()
        path = manager.log_path("writer")
        names = unitmgr_names(path) if isinstance(manager, Unitmgr) else [(path, None)]
        follower = LogFollower(names)
        deadline = time.monotonic() + timeout
        while follower.poll() < total and time.monotonic() < deadline:
            manager.check_alive()
            time.sleep(0.002)
        finished = time.time()
        started = float(stamp.read_text())
        size, digest = follower.digest()
        identical = size == total and digest == hashlib.sha256(expected(total)).hexdigest()
        return Capture(total / MB / (finished - started), max(0, total - size), identical)
    finally:
        if follower:
            follower.close()
        manager.stop()


def ceiling(workdir: Path, total: int) -> Capture:
    """Time the same writer straight into a file: the fastest any manager could capture it."""
    workdir.mkdir(parents=True, exist_ok=True)
    target, stamp = workdir / "ceiling.out", workdir / "ceiling.stamp"
    with open(target, "wb") as out:
        subprocess.run([sys.executable, str(WRITER), str(total), str(stamp)], stdout=out, check=True)
    finished = time.time()
    data = target.read_bytes()
    target.unlink()
    identical = data == expected(total)
    return Capture(total / MB / (finished - float(stamp.read_text())), max(0, total - len(data)), identical)


@dataclass
class CrashLoop:
    spawns: int
    gave_up: bool
    cpu_percent: float = 0.0
    spawns_per_s: float = 0.0


def crash_service(manager: ManagerUnderTest, counter: Path, limited: bool) -> Service:
    """Return a service that exits 1 at once, appending a line to `counter` on each spawn."""
    argv = ("/bin/sh", "-c", f"echo spawn >> {counter}; exit 1")
    if not limited:
        return Service("crasher", argv=argv, profile="fast")
    if isinstance(manager, Unitmgr):
        return Service("crasher", argv=argv, profile="fast", restart="on-failure", start_limit=START_LIMIT)
    return Service("crasher", argv=argv)


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def crash_limited(manager: ManagerUnderTest, window: float) -> CrashLoop:
    """S6 with each manager's limit: spawns within `window` seconds, and whether it gave up."""
    counter = manager.workdir.parent / f"{manager.workdir.name}-spawns.txt"
    counter.unlink(missing_ok=True)
    manager.prepare([crash_service(manager, counter, limited=True)])
    try:
        manager.start()
        manager.wait_control()
        time.sleep(window)
        return CrashLoop(count_lines(counter), manager.gave_up("crasher"))
    finally:
        manager.stop()


def crash_fast(manager: ManagerUnderTest, settle: float, window: float) -> CrashLoop:
    """S6 with the fastest restart and no limit: spawns per second and manager CPU over `window`."""
    counter = manager.workdir.parent / f"{manager.workdir.name}-spawns.txt"
    counter.unlink(missing_ok=True)
    manager.prepare([crash_service(manager, counter, limited=False)])
    try:
        manager.start()
        manager.wait_control()
        time.sleep(settle)
        spawns_before = count_lines(counter)
        idle = measure_idle(manager, 0.0, window)
        spawns = count_lines(counter) - spawns_before
        return CrashLoop(spawns, False, idle.cpu_percent, spawns / window)
    finally:
        manager.stop()
