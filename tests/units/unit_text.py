"""Builds units from inline text for the tests."""

from __future__ import annotations

from unitmgr.units.loader import build_unit
from unitmgr.units.model import Unit
from unitmgr.units.specifiers import SpecifierContext

CONTEXT = SpecifierContext(user="ann", uid=1000, group="ann", gid=1000, home="/home/ann",
                           runtime_dir="/run/user/1000", hostname="box.example.org")


def unit_from(text: str, name: str = "test.service", dropins: tuple[str, ...] = ()) -> Unit:
    dropin_files = [(f"/d/{i:02d}.conf", t) for i, t in enumerate(dropins)]
    return build_unit(name, (f"/u/{name}", text), dropin_files, CONTEXT)


def messages(unit: Unit) -> list[str]:
    return [str(d) for d in unit.diagnostics]
