"""The wheel must carry every module of units/, manager/ and shell/ under unitmgr/."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE_DIRS = {"units": "unitmgr/units", "manager": "unitmgr/manager", "shell": "unitmgr/shell"}


def test_every_subpackage_is_listed() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = set()
    for package, folder in config["package-dir"].items():
        for init in (REPO / folder).rglob("__init__.py"):
            parts = init.parent.relative_to(REPO / folder).parts
            found.add(".".join((package, *parts)))
    assert found - listed == set(), f"add to [tool.setuptools] packages: {sorted(found - listed)}"


def test_no_init_in_namespace_or_packaging() -> None:
    assert not (REPO / "unitmgr" / "__init__.py").exists()
    assert not (REPO / "packaging" / "__init__.py").exists()
    assert not (REPO / "tests" / "__init__.py").exists()


def test_wheel_contains_every_module(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--quiet", "-w", str(tmp_path), str(REPO)],
        check=True, timeout=300,
    )
    wheels = list(tmp_path.glob("unitmgr-*.whl"))
    assert len(wheels) == 1, f"expected one wheel, got {wheels}"
    names = set(zipfile.ZipFile(wheels[0]).namelist())
    for folder, target in PACKAGE_DIRS.items():
        for module in (REPO / folder).rglob("*.py"):
            expected = f"{target}/{module.relative_to(REPO / folder).as_posix()}"
            assert expected in names, f"{expected} is missing from the wheel"
    assert not any(name.startswith("unitmgr/__init__") for name in names)
    if os.uname().machine == "x86_64":
        assert "unitmgr/manager/_clone3.abi3.so" in names, "the C extension is missing from the wheel"
        assert wheels[0].name.endswith("-cp311-abi3-linux_x86_64.whl"), wheels[0].name
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    text = zipfile.ZipFile(wheels[0]).read(entry_points).decode()
    assert "unitmgr = unitmgr.manager.cli:main" in text
    assert "unitsh = unitmgr.shell.cli:main" in text
