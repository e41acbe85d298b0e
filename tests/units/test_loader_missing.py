"""UnitLoader's missing names: kept as names, and each lookup returns a new not-found unit."""

import os
import time
from pathlib import Path

from unit_text import CONTEXT
from unitmgr.units.loader import UnitLoader

SECOND = 1_000_000_000


def test_repeated_miss_not_found(tmp_path: Path) -> None:
    loader = UnitLoader([tmp_path], CONTEXT)

    first = loader.load("web.socket")
    second = loader.load("web.socket")

    for unit in (first, second):
        assert unit.name == "web.socket"
        assert unit.kind == "socket"
        assert unit.load_state == "not-found"
        assert unit.load_error == "Unit web.socket not found."
        assert unit.fragment_path is None


def test_miss_found_after_invalidate(tmp_path: Path) -> None:
    loader = UnitLoader([tmp_path], CONTEXT)
    assert loader.load("web.service").load_state == "not-found"
    # Keep the directory's mtime old, so only invalidate() (daemon-reload) makes the file visible.
    old = time.time_ns() - 20 * SECOND
    (tmp_path / "web.service").write_text("[Service]\nExecStart=/bin/true\n")
    os.utime(tmp_path, ns=(old, old))

    loader.invalidate()

    assert loader.load("web.service").load_state == "loaded"


def test_builtin_not_missing(tmp_path: Path) -> None:
    loader = UnitLoader([tmp_path], CONTEXT)

    assert loader.load("default.target").load_state == "loaded"
    assert loader.load("default.target") is loader.load("default.target")


def test_listed_never_stats_directories(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "web.socket").write_text("[Socket]\nListenStream=127.0.0.1:0\n")
    (tmp_path / "job@.socket").write_text("[Socket]\nListenStream=127.0.0.1:0\n")
    loader = UnitLoader([tmp_path], CONTEXT)
    assert loader.load("web.socket").load_state == "loaded"

    # Every service start calls listed(), so it must not stat the search directories.
    def no_stat(_search_path):
        raise AssertionError("listed() checked the directories for changes")

    monkeypatch.setattr("unitmgr.units.loader._directory_mtimes", no_stat)
    assert loader.listed("web.socket")
    assert loader.listed("job@1.socket")
    assert not loader.listed("api.socket")
    (tmp_path / "api.socket").write_text("[Socket]\nListenStream=127.0.0.1:0\n")
    assert not loader.listed("api.socket")


def test_listed_new_file_after_invalidate(tmp_path: Path) -> None:
    loader = UnitLoader([tmp_path], CONTEXT)
    assert not loader.listed("web.socket")
    (tmp_path / "web.socket").write_text("[Socket]\nListenStream=127.0.0.1:0\n")

    loader.invalidate()

    assert loader.listed("web.socket")
