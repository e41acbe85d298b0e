"""The interactive shell under a pseudo-terminal against a real manager: live
`logs -f` and `top` left with Ctrl-C or a key, and signal-name completion."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest
from ptyshell import interactive_shell
from support import ManagerProcess, wait_for, write_unit

# Lines written to the FIFO come back as "echo: LINE" on the unit's stdout.
ECHO_UNIT = """\
[Unit]
Description=Echo lines from a FIFO

[Service]
ExecStart={python} -u -c "{script}"
"""
ECHO_SCRIPT = (
    "import signal, sys; "
    "signal.signal(signal.SIGTERM, lambda *_: (print('got SIGTERM'), sys.exit(0))); "
    "print('echo ready'); "
    "[print('echo:', line.strip()) for line in open(sys.argv[1])]"
)


@pytest.fixture
def echo_manager(make_manager: Callable[..., ManagerProcess], tmp_path: Path) -> Iterator[tuple[ManagerProcess, Path]]:
    """A manager running echo.service, and the FIFO that feeds it."""
    fifo = tmp_path / "input.fifo"
    os.mkfifo(fifo)
    units = tmp_path / "units"
    text = ECHO_UNIT.format(python=sys.executable, script=ECHO_SCRIPT)
    write_unit(units, "echo.service", text.replace('"\n', f'" {fifo}\n'), enable=True)
    manager = make_manager(units)
    wait_for(lambda: manager.status("echo.service")["sub_state"] == "running",
             message="echo.service running")
    yield manager, fifo


@pytest.fixture
def shell(echo_manager: tuple[ManagerProcess, Path]) -> Iterator[pexpect.spawn]:
    manager, _ = echo_manager
    env = {key: value for key, value in manager.env.items() if not key.startswith("XDG_")}
    env.update(NO_COLOR="1")
    with interactive_shell(env, rows=40, columns=160) as child:
        yield child


def write_line(fifo: Path, text: str) -> int:
    """Open the FIFO for writing (once the unit reads it), send one line and return the fd."""
    fd = os.open(fifo, os.O_WRONLY)
    os.write(fd, f"{text}\n".encode())
    return fd


def interrupt_to_prompt(shell: pexpect.spawn) -> None:
    """Press Ctrl-C and expect the prompt back, with no traceback and no error."""
    shell.sendcontrol("c")
    shell.expect_exact("unitsh>")
    assert "Traceback" not in shell.before
    assert "interrupted" not in shell.before


def expect_status_works(shell: pexpect.spawn) -> None:
    shell.sendline("status echo")
    # The output line, not the echo of the typed command.
    shell.expect_exact("● echo.service - Echo lines from a FIFO")
    shell.expect_exact("Active: active (running)")
    shell.expect_exact("unitsh>")


def leave(shell: pexpect.spawn) -> None:
    shell.sendeof()
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0


def test_ctrl_c_leaves_logs_follow(shell: pexpect.spawn, echo_manager: tuple[ManagerProcess, Path]):
    _, fifo = echo_manager
    shell.sendline("logs -f echo")
    # Seeing an earlier line means the subscription exists: the manager
    # registers it and returns the earlier lines in one step.
    shell.expect_exact("echo ready")
    fd = write_line(fifo, "first live line")
    try:
        shell.expect_exact("echo: first live line")
        interrupt_to_prompt(shell)
        expect_status_works(shell)
    finally:
        os.close(fd)
    leave(shell)


def test_key_press_leaves_top(shell: pexpect.spawn):
    shell.sendline("top -d 0.5")
    shell.expect_exact("press any key to stop")
    shell.expect_exact("echo.service")
    shell.send("q")
    shell.expect_exact("unitsh>")
    assert "Traceback" not in shell.before
    expect_status_works(shell)
    leave(shell)


def test_ctrl_c_leaves_top(shell: pexpect.spawn):
    shell.sendline("top -d 0.5")
    shell.expect_exact("press any key to stop")
    shell.expect_exact("echo.service")
    # A second refresh shows that top is looping, not waiting for the first reply.
    shell.expect_exact("press any key to stop")
    interrupt_to_prompt(shell)
    expect_status_works(shell)
    leave(shell)


def test_kill_completes_signal_name(shell: pexpect.spawn, echo_manager: tuple[ManagerProcess, Path]):
    manager, _ = echo_manager
    shell.send("kill -s SIGTE")
    shell.send("\t")
    # prompt_toolkit draws only the inserted part of the completed word.
    shell.expect_exact("RM")
    shell.send(" echo\r")
    shell.expect_exact("unitsh>")
    assert "unknown signal" not in shell.before
    wait_for(lambda: manager.status("echo.service")["active_state"] != "active",
             message="echo.service stopped by SIGTERM")
    shell.sendline("logs echo")
    shell.expect_exact("got SIGTERM")
    shell.expect_exact("unitsh>")
    leave(shell)
