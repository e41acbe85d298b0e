"""Adversarial spawns: a program started through the /bin/sh cgroup join gets what posix_spawn gives it."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
import test_cgroupjoin
from unitmgr.manager.spawn import SpawnSpec

needs_cgroups = test_cgroupjoin.needs_cgroups
# The fixtures, shared with the join's own tests: every test runs with clone3 and with the shell join.
unit_cgroup = test_cgroupjoin.unit_cgroup
join_way = test_cgroupjoin.join_way

# A program that prints its environment, argv and cwd as a Python literal.
PROBE = "import os,sys;sys.stdout.buffer.write(repr((open('/proc/self/environ','rb').read(), " \
        "open('/proc/self/cmdline','rb').read(), os.getcwd())).encode())"


def run(spec: SpawnSpec) -> tuple[int, bytes, bytes]:
    """Run `spec`; return its exit code, its status pipe bytes and its output."""
    _spawned, code, status, output = test_cgroupjoin.run(spec)
    return code, status, output


def seen_by(spec: SpawnSpec) -> bytes:
    """Run `spec` and return what it printed about its environment, argv and cwd."""
    code, status, output = run(spec)
    assert code == 0, (status, output)
    return output


def compare(cgroup: Path, env: dict[str, str], argv_tail: list[str], cwd: str | None = None,
            ordered: bool = False) -> None:
    """Check that the program gets the same environment, argv and cwd with and without the cgroup join.

    Without `ordered`, the environment is compared as a set of variables."""
    python = os.path.realpath("/usr/bin/python3")
    argv = [python, "-c", PROBE, *argv_tail]
    plain = ast.literal_eval(seen_by(SpawnSpec(python, list(argv), dict(env), -1, -1, cwd=cwd)).decode())
    joined = ast.literal_eval(seen_by(SpawnSpec(python, list(argv), dict(env), -1, -1, cwd=cwd,
                                                cgroup=str(cgroup))).decode())
    if not ordered:
        plain = (sorted(plain[0].split(b"\0")), *plain[1:])
        joined = (sorted(joined[0].split(b"\0")), *joined[1:])
    assert joined[1] == plain[1], "argv differs"
    assert joined[2] == plain[2], "cwd differs"
    assert joined[0] == plain[0], "environment differs"


ODD_VALUES = {
    "QUOTES": "it's \"quoted\"",
    "DOLLAR": "$HOME ${PATH} $(id) `id`",
    "NEWLINE": "one\ntwo\n",
    "EMPTY": "",
    "UNICODE": "grüße 👋",
    "BACKSLASH": "a\\b\\",
}


@needs_cgroups
def test_odd_values_and_argv_same(unit_cgroup: Path, tmp_path: Path) -> None:
    spaced = tmp_path / "dir with spaces"
    spaced.mkdir()
    compare(unit_cgroup, {"A": "1", **ODD_VALUES}, ["arg with spaces", "new\nline", "ü", "", "$1", "-e"],
            cwd=str(spaced))


@needs_cgroups
def test_pwd_from_environment_same(unit_cgroup: Path, tmp_path: Path) -> None:
    compare(unit_cgroup, {"PWD": "/nonexistent dir", "A": "1"}, [], cwd=str(tmp_path))


@needs_cgroups
def test_huge_environment_same(unit_cgroup: Path) -> None:
    env = {f"V{number}": "x" * 1000 for number in range(500)}
    compare(unit_cgroup, env, [])


@needs_cgroups
def test_environment_order_same(unit_cgroup: Path, join_way: str, request: pytest.FixtureRequest) -> None:
    if join_way == "shell":
        request.applymarker(pytest.mark.xfail(strict=True, reason="dash keeps its variables in a hash table and "
                                              "passes the environment to exec in another order than the unit's"))
    env = {"ZETA": "1", "ALPHA": "2", "MIDDLE": "3", "HOME": "/h", "B": "4"}
    compare(unit_cgroup, env, [], ordered=True)


def spaced_script(tmp_path: Path, shebang: bool) -> str:
    directory = tmp_path / "bin dir $x"
    directory.mkdir(exist_ok=True)
    script = directory / ("with shebang" if shebang else "without shebang")
    body = "printf '%s|' \"$0\" \"$@\"; pwd; env | sort\n"
    script.write_text(("#!/bin/sh\n" if shebang else "") + body)
    script.chmod(0o755)
    return str(script)


@needs_cgroups
@pytest.mark.parametrize("shebang", [True, False])
def test_script_path_with_spaces_same(unit_cgroup: Path, tmp_path: Path, shebang: bool) -> None:
    path = spaced_script(tmp_path, shebang)
    argv = [path, "a b", "$HOME"]
    env = {"PATH": "/usr/bin:/bin", "X": "`id`"}
    plain = run(SpawnSpec(path, list(argv), dict(env), -1, -1, cwd=str(tmp_path)))
    joined = run(SpawnSpec(path, list(argv), dict(env), -1, -1, cwd=str(tmp_path), cgroup=str(unit_cgroup)))
    assert joined == plain
    if shebang:
        assert f"{path}|a b|$HOME|".encode() in plain[2]
    else:
        assert plain[0] == 203, "the kernel does not run a file without #! or ELF header"
