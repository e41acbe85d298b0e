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
