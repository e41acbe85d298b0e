"""The resource tracker's decisions: who enforces each limit, and what reaches a spawn."""

from __future__ import annotations

from pathlib import Path

from test_cgroups import fake_tree
from unitmgr.manager.resources import ResourceTracker
from unitmgr.manager.spawn import SpawnSpec
from unitmgr.units.model import Unit


class StubManager:
    def __init__(self) -> None:
        self.listeners: list = []
        self.runtimes: dict = {}
        self.loop = None  # the limit sampler is not started in these tests


class StubRuntime:
    def __init__(self, settings: dict[str, str]) -> None:
        self.unit = Unit(name="limited.service", kind="service", settings={"Service": dict(settings)})
        self.name = self.unit.name
        self.invocation_id = "1234"

    def members(self) -> set[int]:
        return set()


def spawn_spec() -> SpawnSpec:
    return SpawnSpec(path="/bin/true", argv=["true"], env={}, stdout_fd=1, stderr_fd=2)


def tracker_for(tmp_path: Path | None, controllers: list[str]) -> ResourceTracker:
    tracker = ResourceTracker(StubManager(), use_cgroups=False)
    if tmp_path is not None:
        tracker.tree = fake_tree(tmp_path, controllers)
        tracker.tree.setup()
    return tracker


LIMITS = {"MemoryMax": "64M", "TasksMax": "5", "CPUQuota": "20%", "IOWeight": "50", "CPUAffinity": "0"}


def test_without_cgroups_manager_or_nobody() -> None:
    tracker = tracker_for(None, [])
    runtime = StubRuntime(LIMITS)
    spec = spawn_spec()
    tracker.prepare_spawn(runtime, spec)

    entry = tracker.units["limited.service"]
    assert entry.enforced_by == {"MemoryMax": "manager", "TasksMax": "manager",
                                 "CPUQuota": "none", "IOWeight": "none"}
    assert spec.cgroup is None
    assert spec.cpu_affinity == [0]
    warnings = tracker.load_warnings(entry)
    assert len(warnings) == 2
    assert "CPUQuota= is not enforced: it needs the cpu controller" in warnings[0]


def test_kernel_limits_written(tmp_path: Path) -> None:
    tracker = tracker_for(tmp_path, ["cpu", "memory", "pids"])
    runtime = StubRuntime(LIMITS)
    spec = spawn_spec()
    tracker.prepare_spawn(runtime, spec)

    entry = tracker.units["limited.service"]
    assert entry.enforced_by == {"MemoryMax": "kernel", "TasksMax": "kernel",
                                 "CPUQuota": "kernel", "IOWeight": "none"}
    directory = Path(spec.cgroup)
    assert directory == tracker.tree.base / "limited.service"
    assert (directory / "memory.max").read_text() == str(64 << 20)
    assert (directory / "pids.max").read_text() == "5"
    assert (directory / "cpu.max").read_text() == "20000 100000"
    assert not (directory / "io.weight").exists()
    # Unset limits get the kernel's default back, in case the cgroup is reused.
    assert (directory / "memory.high").read_text() == "max"
    assert (directory / "cpu.weight").read_text() == "100"


def test_rejected_write_falls_back(tmp_path: Path) -> None:
    tracker = tracker_for(tmp_path, ["memory"])
    (tracker.tree.base / "limited.service" / "memory.max").mkdir(parents=True)  # writing it fails
    runtime = StubRuntime({"MemoryMax": "64M", "MemoryHigh": "32M"})
    tracker.prepare_spawn(runtime, spawn_spec())

    entry = tracker.units["limited.service"]
    assert entry.enforced_by["MemoryMax"] == "manager"
    assert entry.enforced_by["MemoryHigh"] == "kernel"


def test_limits_rewritten_for_new_invocation(tmp_path: Path) -> None:
    tracker = tracker_for(tmp_path, ["memory"])
    runtime = StubRuntime({"MemoryMax": "64M"})
    spec = spawn_spec()
    tracker.prepare_spawn(runtime, spec)
    memory_max = Path(spec.cgroup) / "memory.max"
    assert memory_max.read_text() == str(64 << 20)

    runtime.unit = Unit(name="limited.service", kind="service")  # as daemon-reload replaces it
    runtime.invocation_id = "5678"
    tracker.prepare_spawn(runtime, spawn_spec())
    assert memory_max.read_text() == "max"
    assert tracker.units["limited.service"].enforced_by == {}


async def test_sampler_runs_only_while_needed() -> None:
    import asyncio

    tracker = tracker_for(None, [])
    tracker.manager.loop = asyncio.get_running_loop()
    watcher = tracker.watcher
    assert watcher._timer is None

    watcher.watch("a.service")
    watcher.watch("b.service")
    assert watcher._timer is not None
    watcher.unwatch("a.service")
    assert watcher._timer is not None
    watcher.unwatch("b.service")
    assert watcher._timer is None
