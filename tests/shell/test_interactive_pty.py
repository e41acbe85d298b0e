"""The interactive shell under a pseudo-terminal, against the fake manager."""

from __future__ import annotations

import os
import time

import pexpect
import pytest
from ptyshell import interactive_shell
from shellfixtures import unit_status

LIST_REPLY = {"units": [
    {"name": "web.service", "load_state": "loaded", "active_state": "active",
     "sub_state": "running", "description": "Example web server", "main_pid": 1234}]}


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


@pytest.fixture
def shell(fake_manager):
    fake_manager.replies["list"] = LIST_REPLY
    fake_manager.replies["status"] = {"units": [unit_status()]}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNITMGR_", "XDG_"))}
    env.update(fake_manager.env())
    with interactive_shell(env) as child:
        yield child


def test_command_name_completion(shell):
    shell.send("hel")
    shell.send("\t")
    time.sleep(0.3)  # completion runs asynchronously; keys sent at once can overtake it
    shell.send("\r")
    shell.expect_exact("Commands:")
    shell.expect_exact("unitsh>")


def test_unit_name_completion_and_history(shell, fake_manager):
    wait_for(lambda: any(r["cmd"] == "list" for r in fake_manager.requests))
    shell.send("status we")
    shell.send("\t")
    time.sleep(0.3)
    shell.send("\r")
    shell.expect_exact("● web.service - Example web server")
    shell.expect_exact("unitsh>")
    statuses = [r for r in fake_manager.requests if r["cmd"] == "status"]
    assert statuses[0]["args"]["units"] == ["web.service"]

    shell.send("\x1b[A")  # Up recalls the last command
    time.sleep(0.3)
    shell.send("\r")
    shell.expect_exact("● web.service - Example web server")
    shell.expect_exact("unitsh>")
    history = (fake_manager.paths.state / "unitsh_history").read_text()
    assert "+status web.service" in history
    assert oct(fake_manager.paths.state.stat().st_mode & 0o777) == "0o700"


def test_ctrl_c_clears_line_and_ctrl_d_exits(shell):
    shell.send("bogus")
    time.sleep(0.2)
    shell.send("\x03")
    shell.expect_exact("unitsh>")
    shell.send("help\r")
    shell.expect_exact("Commands:")
    shell.expect_exact("unitsh>")
    assert "unknown command" not in shell.before
    shell.send("\x04")
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0


def test_quit_command_leaves(shell):
    shell.send("quit\r")
    shell.expect(pexpect.EOF)
    shell.close()
    assert shell.exitstatus == 0


def test_exit_asks_before_stopping(shell):
    shell.send("exit\r")
    shell.expect_exact("Stop the manager and all its units? [y/N]")
    shell.send("n\r")
    shell.expect_exact("Not stopped.")
    shell.expect_exact("unitsh>")
    shell.send("\x04")
    shell.expect(pexpect.EOF)


def test_ctrl_c_interrupts_running_command(shell, fake_manager):
    fake_manager.unanswered.add("restart")
    shell.send("restart web\r")
    wait_for(lambda: any(r["cmd"] == "restart" for r in fake_manager.requests))
    shell.send("\x03")
    shell.expect_exact("unitsh: interrupted")
    shell.expect_exact("unitsh>")
    # The session reconnects for the next command.
    shell.send("status web\r")
    shell.expect_exact("● web.service - Example web server")
    shell.expect_exact("unitsh>")
