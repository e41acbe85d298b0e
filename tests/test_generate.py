"""Completions and man pages are generated from the registries and name everything in them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from unitmgr.manager.cli import build_parser
from unitmgr.shell.commands import COMMANDS
from unitmgr.units.directives import all_directives

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("generated")
    subprocess.run([sys.executable, str(REPO / "packaging" / "generate.py"), "--out", str(out)],
                   check=True, timeout=60)
    return out


@pytest.mark.parametrize("name", ["unitsh", "_unitsh", "unitsh.fish", "unitsh.1"])
def test_every_shell_command_listed(generated: Path, name: str) -> None:
    text = (generated / name).read_text()
    for command in COMMANDS:
        for word in command.words:
            assert word.replace("-", "\\-") in text or word in text, f"{word} missing from {name}"


def test_bash_completion_parses(generated: Path) -> None:
    assert subprocess.run(["bash", "-n", str(generated / "unitsh")]).returncode == 0


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed")
def test_zsh_completion_parses(generated: Path) -> None:
    assert subprocess.run(["zsh", "-n", str(generated / "_unitsh")]).returncode == 0


def test_unitmgr_man_lists_subcommands(generated: Path) -> None:
    text = (generated / "unitmgr.1").read_text()
    subcommands = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    for name in subcommands.choices:
        assert f"\\fB{name.replace('-', chr(92) + '-')}\\fR" in text, f"{name} missing from unitmgr(1)"


def test_unit_man_lists_directives(generated: Path) -> None:
    text = (generated / "unitmgr.unit.5").read_text()
    for directive in all_directives():
        assert f"\\fB{directive.name}=" in text, f"{directive.name}= missing from unitmgr.unit(5)"


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed")
def test_man_pages_render(generated: Path) -> None:
    for page in ("unitmgr.1", "unitsh.1", "unitmgr.unit.5"):
        rendered = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(generated / page)],
                                  capture_output=True, text=True)
        assert rendered.returncode == 0
        assert "warning" not in rendered.stderr, rendered.stderr


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed")
def test_fish_completion_parses(generated: Path) -> None:
    assert subprocess.run(["fish", "--no-execute", str(generated / "unitsh.fish")]).returncode == 0
