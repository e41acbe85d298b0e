"""Hostile link layouts for loading and is-enabled: instances linked to their template, alias cycles, masks."""

from __future__ import annotations

from pathlib import Path

import pytest
from unitmgr.manager.enablement import Enablement
from unitmgr.units.loader import UnitLoader
from unitmgr.units.specifiers import SpecifierContext

CONTEXT = SpecifierContext()
TEMPLATE = "[Service]\nExecStart=/bin/sleep 100\n[Install]\nWantedBy=default.target\n"


def test_instance_link_to_template_loads(tmp_path: Path) -> None:
    (tmp_path / "u@.service").write_text(TEMPLATE)
    (tmp_path / "u@2.service").symlink_to("u@.service")

    unit = UnitLoader([tmp_path], CONTEXT).load("u@2.service")

    assert unit.load_state == "loaded", unit.load_error
    assert unit.name == "u@2.service"
    assert unit.get("Service", "ExecStart")


def test_instance_link_to_template_state(tmp_path: Path) -> None:
    (tmp_path / "u@.service").write_text(TEMPLATE)
    (tmp_path / "u@2.service").symlink_to("u@.service")
    enablement = Enablement([tmp_path], CONTEXT)
    query = ["u@2.service", "u@3.service", "u@.service"]

    single = [enablement.state(name) for name in query]

    assert single[0] == "disabled"
    assert single[1] == "disabled"
    assert enablement.states(query) == single


def test_template_alias_cycle_errors(tmp_path: Path) -> None:
    (tmp_path / "a@.service").symlink_to("b@.service")
    (tmp_path / "b@.service").symlink_to("a@.service")
    loader = UnitLoader([tmp_path], CONTEXT)
    enablement = Enablement([tmp_path], CONTEXT)

    unit = loader.load("a@1.service")

    assert unit.load_state == "error"
    assert "symbolic links" in unit.load_error
    assert enablement.state("a@1.service") == "alias"
    assert enablement.states(["a@1.service", "b@1.service"]) == ["alias", "alias"]


def _link_loop(path: Path, other: Path) -> None:
    other.symlink_to(path)
    path.symlink_to(other)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda path: path.symlink_to("/dev/null"), "masked"),
    (lambda path: path.symlink_to("/dev/zero"), "masked"),
    (lambda path: path.write_text(""), "masked"),
    (lambda path: path.symlink_to(path.parent / "elsewhere" / path.name), "linked"),
    (lambda path: _link_loop(path, path.parent / "loop.service"), "alias"),
])
def test_mask_like_files_agree(tmp_path: Path, make, expected: str) -> None:
    units = tmp_path / "units"
    units.mkdir()
    (tmp_path / "elsewhere").mkdir()
    make(units / "odd.service")
    enablement = Enablement([units], CONTEXT)

    assert enablement.state("odd.service") == expected
    assert enablement.states(["odd.service"]) == [expected]
