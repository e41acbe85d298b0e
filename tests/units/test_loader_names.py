"""UnitLoader's directory listing: cached, and listed again when a lookup misses after a change."""

import os
import time
from pathlib import Path

from unit_text import CONTEXT
from unitmgr.units import loader as loader_module
from unitmgr.units.loader import UnitLoader


def test_names_cached_until_invalidate(tmp_path: Path) -> None:
    (tmp_path / "web.service").write_text("[Service]\nExecStart=/bin/true\n")
    loader = UnitLoader([tmp_path], CONTEXT)
    assert "web.service" in loader.names()

    # names() alone never checks the directories, because list calls it on every request.
    (tmp_path / "api.service").write_text("[Service]\nExecStart=/bin/true\n")
    assert "api.service" not in loader.names()
    loader.invalidate()
    assert "api.service" in loader.names()


def test_names_returns_a_copy(tmp_path: Path) -> None:
    (tmp_path / "web.service").write_text("[Service]\nExecStart=/bin/true\n")
    loader = UnitLoader([tmp_path], CONTEXT)
    loader.names().clear()
    assert "web.service" in loader.names()


SERVICE = "[Service]\nExecStart=/bin/true\n"
SECOND = 1_000_000_000


def set_mtime(directory: Path, mtime_ns: int) -> None:
    os.utime(directory, ns=(mtime_ns, mtime_ns))


def test_load_finds_file_added_later(tmp_path: Path) -> None:
    (tmp_path / "web.service").write_text(SERVICE)
    set_mtime(tmp_path, time.time_ns() - 20 * SECOND)
    loader = UnitLoader([tmp_path], CONTEXT)
    assert loader.load("web.service").load_state == "loaded"
    assert loader.load("api.service").load_state == "not-found"

    (tmp_path / "api.service").write_text(SERVICE)
    set_mtime(tmp_path, time.time_ns() - 10 * SECOND)
    assert loader.load("api.service").load_state == "loaded"
    assert "api.service" in loader.names()


def test_unchanged_directory_keeps_listing(tmp_path: Path) -> None:
    old = time.time_ns() - 20 * SECOND
    set_mtime(tmp_path, old)
    loader = UnitLoader([tmp_path], CONTEXT)
    assert loader.load("api.service").load_state == "not-found"
    generation = loader.listing_generation

    # The mtime is put back, and the listing is long past it, so it counts as current.
    (tmp_path / "api.service").write_text(SERVICE)
    set_mtime(tmp_path, old)
    assert loader.load("api.service").load_state == "not-found"
    assert loader.listing_generation == generation


def test_file_added_in_same_tick_found(tmp_path: Path) -> None:
    # A directory mtime less than a second before the listing means the listing may be stale.
    recent = time.time_ns() + SECOND // 2
    set_mtime(tmp_path, recent)
    loader = UnitLoader([tmp_path], CONTEXT)
    assert loader.load("api.service").load_state == "not-found"

    (tmp_path / "api.service").write_text(SERVICE)
    set_mtime(tmp_path, recent)
    assert loader.load("api.service").load_state == "loaded"


def test_directory_created_later_found(tmp_path: Path) -> None:
    missing = tmp_path / "later"
    loader = UnitLoader([missing, tmp_path], CONTEXT)
    assert loader.load("api.service").load_state == "not-found"

    missing.mkdir()
    (missing / "api.service").write_text(SERVICE)
    assert loader.load("api.service").load_state == "loaded"


def test_loaded_unit_not_read_again(tmp_path: Path) -> None:
    web = tmp_path / "web.service"
    web.write_text("[Unit]\nDescription=first\n" + SERVICE)
    loader = UnitLoader([tmp_path], CONTEXT)
    assert loader.load("web.service").description == "first"

    web.write_text("[Unit]\nDescription=second\n" + SERVICE)
    (tmp_path / "api.service").write_text(SERVICE)
    set_mtime(tmp_path, time.time_ns() + 5 * SECOND)
    assert loader.load("api.service").load_state == "loaded"
    assert loader.load("web.service").description == "first"


def test_hit_stats_no_directory(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "web.service").write_text(SERVICE)
    set_mtime(tmp_path, time.time_ns() - 20 * SECOND)
    loader = UnitLoader([tmp_path], CONTEXT)
    assert loader.load("web.service").load_state == "loaded"

    # A hit stats nothing, and a miss in an unchanged directory stats it once.
    calls: list[object] = []
    real = loader_module._directory_mtimes
    monkeypatch.setattr(loader_module, "_directory_mtimes", lambda path: calls.append(path) or real(path))
    assert loader.load("web.service").load_state == "loaded"
    assert calls == []
    assert loader.load("api.service").load_state == "not-found"
    assert len(calls) == 1


def test_new_dropin_applies_on_first_load(tmp_path: Path) -> None:
    loader = UnitLoader([tmp_path], CONTEXT)
    assert loader.load("api.service").load_state == "not-found"

    (tmp_path / "api.service").write_text(SERVICE)
    (tmp_path / "api.service.d").mkdir()
    (tmp_path / "api.service.d" / "name.conf").write_text("[Unit]\nDescription=from drop-in\n")
    unit = loader.load("api.service")
    assert unit.load_state == "loaded"
    assert unit.description == "from drop-in"
