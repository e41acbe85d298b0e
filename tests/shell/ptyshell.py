"""Starting the interactive unitsh under a pseudo-terminal, for the pexpect tests."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import pexpect


@contextmanager
def interactive_shell(env: dict[str, str], rows: int = 24, columns: int = 120) -> Iterator[pexpect.spawn]:
    """Start `python -m unitmgr.shell.cli` on a terminal with `env`, wait for its prompt,
    and kill it on exit if it is still running."""
    env = dict(env, TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(sys.executable, ["-m", "unitmgr.shell.cli"], env=env,
                          encoding="utf-8", timeout=15, dimensions=(rows, columns))
    try:
        # Not "unitsh> ": prompt_toolkit draws the trailing space as a cursor move.
        child.expect_exact("unitsh>")
        yield child
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.close()
