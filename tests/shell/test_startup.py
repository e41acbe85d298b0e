"""What a one-shot `unitsh -c` loads, and the parsing shortcuts that keep its start-up
short: they must give exactly what argparse gives."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from shellfixtures import unit_status
from unitmgr.manager import paths as pathmod
from unitmgr.shell import cli
from unitmgr.shell.commands import COMMANDS
from unitmgr.shell.commandspec import _plain_values, build_parser

# Modules that a successful `-c` run of `status` and `list` must not import.
DEFERRED = (
    "prompt_toolkit",  # the interactive shell only
    "logging",  # imported when something logs: errors and debug paths
    "socket",  # the control-socket probe, run only when a connection is refused
    "tempfile",  # writing key files
    "unitmgr.shell.helptext",  # `help` and `unitsh --help`
    "unitmgr.shell.follow",  # `logs`
)


def run_python(code: str, env_extra: dict[str, str]) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNITMGR_", "XDG_"))}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=20)


def loaded_after(command: str, env_extra: dict[str, str]) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run main(['-c', command]) in a fresh interpreter; return the run and which DEFERRED
    modules it imported. Modules that the interpreter loaded before unitsh's import
    (the editable install's finder imports tempfile) do not count."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "from unitmgr.shell.cli import main\n"
        f"status = main(['-c', {command!r}])\n"
        f"loaded = [m for m in {DEFERRED!r} if m in sys.modules and m not in before]\n"
        "print('LOADED', ','.join(loaded))\n"
        "sys.exit(status)\n")
    result = run_python(code, env_extra)
    last = result.stdout.splitlines()[-1] if result.stdout else ""
    assert last.startswith("LOADED "), result.stderr
    return result, [name for name in last.removeprefix("LOADED ").split(",") if name]


def test_one_shot_defers_imports(fake_manager):
    fake_manager.replies["status"] = {"units": [unit_status()]}
    fake_manager.replies["list"] = {"units": [unit_status()]}
    result, loaded = loaded_after("status web; list", fake_manager.env())
    assert result.returncode == 0, result.stderr
    assert "● web.service - Example web server" in result.stdout
    assert loaded == []


def test_stale_socket_reported_by_one_shot(tmp_path: Path):
    env = {"UNITMGR_HOME": str(tmp_path), "HOME": str(tmp_path)}
    paths = pathmod.resolve(env)
    pathmod.ensure_private_dir(paths.runtime)
    from unitmgr.manager import keys

    keys.ensure_keys(paths)
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(paths.control_socket))
    result, _ = loaded_after("status web", env)
    assert result.returncode == 1
    assert "stale" in result.stderr
    assert "unitmgr --user" in result.stderr


@pytest.mark.parametrize("argv", [
    ["-c", "status web"],
    ["--json", "-c", "list"],
    ["-c", "list", "--json"],
    ["-c", ""],
    ["--json"],
    [],
])
def test_one_shot_parse_matches_argparse(argv: list[str]):
    fast = cli.parse_one_shot(argv)
    assert fast is not None
    assert vars(fast) == vars(cli.build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [
    ["-c", "-x"],  # a value starting with "-": argparse decides
    ["-c", "list", "-c", "status"],
    ["--json", "--json", "-c", "list"],
    ["-c"],
    ["--timeout", "2", "-c", "list"],
    ["host1", "-c", "list"],
    ["--help"],
])
def test_one_shot_parse_leaves_others_to_argparse(argv: list[str]):
    assert cli.parse_one_shot(argv) is None


def test_help_epilog_built_on_use():
    epilog = cli.build_parser().epilog
    assert "Exit status (as systemctl):" in epilog
    assert "  status " in epilog


WORD_LISTS = ([], ["web"], ["web", "db"], ["web@1", "a b"], [""])


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command.name)
def test_plain_words_match_argparse(command):
    for words in WORD_LISTS:
        fast = _plain_values(command, words)
        try:
            parsed = vars(build_parser(command).parse_args(words))
        except Exception:  # noqa: BLE001 - argparse rejects these words: so must the shortcut
            assert fast is None, (command.name, words)
            continue
        if fast is not None:
            assert fast == parsed, (command.name, words)


def test_plain_words_skip_options():
    status = next(command for command in COMMANDS if command.name == "status")
    assert _plain_values(status, ["-n", "3", "web"]) is None
    assert _plain_values(status, ["web", "--full"]) is None
