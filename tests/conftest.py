"""Fixtures that run a real manager on a temporary home; the helpers live in support.py."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import EXAMPLES, ManagerProcess, copy_units, free_port


@pytest.fixture
def make_manager(tmp_path: Path) -> Iterator[Callable[..., ManagerProcess]]:
    """Factory: make_manager(unit_dir, *extra_args) starts a manager; all are cleaned up."""
    managers: list[ManagerProcess] = []
    # Homes live in a short directory: a unix socket path is limited to 107 bytes.
    homes = Path(tempfile.mkdtemp(prefix="um-"))

    def factory(unit_dir: Path, *extra_args: str, start: bool = True, name: str = "home") -> ManagerProcess:
        manager = ManagerProcess(homes / f"{name}{len(managers)}", unit_dir, list(extra_args))
        managers.append(manager)
        if start:
            manager.start()
        return manager

    yield factory
    leftovers = []
    for manager in managers:
        leftovers += manager.cleanup()
    shutil.rmtree(homes, ignore_errors=True)
    assert not leftovers, f"processes survived the manager's shutdown: {leftovers}"


@pytest.fixture
def example_units(tmp_path: Path) -> Path:
    """A copy of examples/units with web on a free port (through a drop-in)."""
    units = copy_units(EXAMPLES, tmp_path / "units")
    dropin = units / "web.service.d"
    dropin.mkdir()
    (dropin / "port.conf").write_text(f"[Service]\nEnvironment=PORT={free_port()}\n")
    return units

