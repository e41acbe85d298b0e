"""The unit preload: a forked child loads the unit files, the manager's loader takes the ones still current."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from support import wait_for, write_unit
from unitmgr.manager import preload
from unitmgr.manager.config import load_manager_config
from unitmgr.units.loader import UnitLoader
from unitmgr.units.specifiers import SpecifierContext

needs_two_cpus = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the preload needs a second CPU")


def write_units(directory: Path, count: int) -> list[str]:
    names = []
    for number in range(count):
        name = f"p{number:03d}.service"
        write_unit(directory, name, f"[Unit]\nDescription=Preloaded {number}\nAfter=other{number}.service\n"
                                    f"[Service]\nExecStart=/bin/sleep {number + 1}\nEnvironment=N={number}\n")
        names.append(name)
    return names


def manager_loader(unit_dirs: list[Path], config_file: Path) -> UnitLoader:
    """Return a loader with the search path, context and defaults Manager.__init__ gives its own."""
    config = load_manager_config(config_file)
    context = SpecifierContext.from_environment({**os.environ, **config.environment})
    return UnitLoader(unit_dirs, context, config.defaults)


def child_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@needs_two_cpus
def test_preloaded_units_equal_loaded_ones(tmp_path: Path) -> None:
    units = tmp_path / "units"
    names = write_units(units, 80)
    config_file = tmp_path / "unitmgr.conf"
    running = preload.start([units], config_file)
    assert running is not None
    loader = manager_loader([units], config_file)

    adopted = running.take(loader)

    assert adopted >= len(names)
    assert child_gone(running.pid)
    fresh = manager_loader([units], config_file)
    for name in names:
        assert loader.load(name) == fresh.load(name), name


def finished_preload(tmp_path: Path) -> tuple[Path, Path, preload.Preload]:
    """Start a preload of 80 units and wait for its result, so that later changes surely come after its reads."""
    units = tmp_path / "units"
    write_units(units, 80)
    config_file = tmp_path / "unitmgr.conf"
    running = preload.start([units], config_file)
    assert running is not None
    result = running._receive()
    running._receive = lambda: result  # type: ignore[method-assign]
    return units, config_file, running


@needs_two_cpus
def test_changed_file_loaded_again(tmp_path: Path) -> None:
    units, config_file, running = finished_preload(tmp_path)
    changed = units / "p005.service"
    changed.write_text("[Unit]\nDescription=Changed\n[Service]\nExecStart=/bin/true\n")
    stamp = changed.stat().st_mtime_ns + 5_000_000_000
    os.utime(changed, ns=(stamp, stamp))
    loader = manager_loader([units], config_file)

    running.take(loader)

    assert loader.load("p005.service").description == "Changed"
    assert loader.load("p006.service").description == "Preloaded 6"


@needs_two_cpus
def test_new_file_discards_the_preload(tmp_path: Path) -> None:
    units, config_file, running = finished_preload(tmp_path)
    write_unit(units, "late.service", "[Service]\nExecStart=/bin/true\n")
    loader = manager_loader([units], config_file)

    # The manager's listing has a file the child's had not: nothing is taken.
    assert running.take(loader) == 0
    assert loader.load("late.service").load_state == "loaded"
    assert loader.load("p001.service").description == "Preloaded 1"


@needs_two_cpus
def test_other_config_discards_the_preload(tmp_path: Path) -> None:
    units, config_file, running = finished_preload(tmp_path)
    config_file.write_text("[Manager]\nDefaultRestartSec=7\n")
    loader = manager_loader([units], config_file)

    assert running.take(loader) == 0


@needs_two_cpus
def test_killed_child_leaves_loading_to_the_manager(tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_units(units, 80)
    config_file = tmp_path / "unitmgr.conf"
    running = preload.start([units], config_file)
    assert running is not None
    os.kill(running.pid, signal.SIGKILL)
    loader = manager_loader([units], config_file)

    adopted = running.take(loader)

    # Killed before or after it wrote: either nothing or every unit, never a partial result.
    assert adopted == 0 or adopted >= 80
    assert child_gone(running.pid)
    assert loader.load("p010.service").description == "Preloaded 10"


@needs_two_cpus
def test_discard_ends_the_child(tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_units(units, 80)
    running = preload.start([units], tmp_path / "unitmgr.conf")
    assert running is not None

    running.discard()
    running.discard()

    assert child_gone(running.pid)


def test_few_units_no_preload(tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_units(units, 5)

    assert preload.start([units], tmp_path / "unitmgr.conf") is None


@needs_two_cpus
def test_manager_boots_from_the_preload(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    for number in range(70):
        write_unit(units, f"w{number}.service", "[Service]\nExecStart=/bin/sleep 600\n", enable=True)
    manager = make_manager(units, "--log-level", "debug")

    wait_for(lambda: all(manager.status(f"w{number}")["active_state"] == "active" for number in range(70)),
             timeout=30, message="every unit active")
    assert "units from the preload" in manager.log()
    # The child was reaped: no zombie and no other process left under the manager but the units.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{manager.proc.pid}/task/{manager.proc.pid}/children").read_text().split()
        states = [Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] for pid in children]
        if len(children) == 70 and "Z" not in states:
            break
        time.sleep(0.05)
    assert len(children) == 70
    assert "Z" not in states
