"""UnitLoader.names(): read from the cached directory listings until invalidate()."""

from pathlib import Path

from unit_text import CONTEXT
from unitmgr.units.loader import UnitLoader


def test_names_cached_until_invalidate(tmp_path: Path) -> None:
    (tmp_path / "web.service").write_text("[Service]\nExecStart=/bin/true\n")
    loader = UnitLoader([tmp_path], CONTEXT)
    assert "web.service" in loader.names()

    (tmp_path / "api.service").write_text("[Service]\nExecStart=/bin/true\n")
    assert "api.service" not in loader.names()
    loader.invalidate()
    assert "api.service" in loader.names()


def test_names_returns_a_copy(tmp_path: Path) -> None:
    (tmp_path / "web.service").write_text("[Service]\nExecStart=/bin/true\n")
    loader = UnitLoader([tmp_path], CONTEXT)
    loader.names().clear()
    assert "web.service" in loader.names()
