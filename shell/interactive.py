"""The interactive shell: a prompt_toolkit prompt over the same commands as `-c`.

The prompt is `unitsh> ` for the local manager and `unitsh@HOST> ` for a
manager reached with --endpoint. History is kept in the state directory.
Ctrl-C clears the line (or interrupts a running command), Ctrl-D leaves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, History, InMemoryHistory
from unitmgr.manager import protocol
from unitmgr.manager.paths import Paths, UnsafeDirectoryError, ensure_private_dir
from unitmgr.shell import exitcodes, runner
from unitmgr.shell.commands import COMMANDS, ShellExit
from unitmgr.shell.commandspec import UsageError
from unitmgr.shell.completion import ShellCompleter
from unitmgr.shell.context import Context

if TYPE_CHECKING:
    from unitmgr.shell.session import Session

log = logging.getLogger(__name__)


class UnitNameCache:
    """Unit names for completion; `refresh()` fetches them in a background thread,
    so completion never waits on the network."""

    def __init__(self, fetch: Callable[[], list[str]]):
        self._fetch = fetch
        self._names: tuple[str, ...] = ()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def names(self) -> tuple[str, ...]:
        return self._names

    def refresh(self) -> threading.Thread:
        """Start a fetch unless one is running; return the thread doing it."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="unit-names",
                                                daemon=True)
                self._thread.start()
            return self._thread

    def _run(self) -> None:
        from unitmgr.shell.client import ClientError, RemoteError

        try:
            self._names = tuple(self._fetch())
        except (ClientError, RemoteError, protocol.ProtocolError, KeyError, TypeError) as exc:
            # The cache keeps the last names; the next command reports the problem.
            log.debug("could not refresh unit names: %s", exc)


def fetch_unit_names(session: Session) -> list[str]:
    result = session.request("list", {"all": True, "table": True})
    return [unit["name"] for unit in protocol.expand_table(result, "units")]


def prompt_text(label: str) -> str:
    return f"unitsh@{label}> " if label else "unitsh> "


def open_history(paths: Paths) -> History:
    """Return the history in the state directory, or an in-memory one with a
    warning if that directory cannot be used."""
    try:
        ensure_private_dir(paths.state)
        return FileHistory(str(paths.history_file))
    except (UnsafeDirectoryError, OSError) as exc:
        log.warning("history is not saved: %s", exc)
        return InMemoryHistory()


def run_line(ctx: Context, text: str) -> None:
    """Run one line of input; raise ShellExit for `exit`."""
    from unitmgr.shell.client import ClientError

    try:
        invocations = runner.parse_line(text)
    except UsageError as err:
        runner.report_usage_error(ctx, err)
        return
    for inv in invocations:
        try:
            runner.run(ctx, inv)
        except ClientError as err:
            runner.report_client_error(ctx, err)
            return
        except KeyboardInterrupt:
            ctx.out.error("unitsh: interrupted")
            return


def run_interactive(ctx: Context, paths: Paths) -> int:
    cache = UnitNameCache(lambda: fetch_unit_names(ctx.session))
    cache.refresh()
    prompt = PromptSession(
        prompt_text(ctx.session.label), history=open_history(paths),
        completer=ShellCompleter(COMMANDS, cache.names), complete_while_typing=False)
    ctx.out.line("unitsh: type 'help' for the commands, Ctrl-D to leave.")
    while True:
        try:
            text = prompt.prompt()
        except KeyboardInterrupt:
            continue  # Ctrl-C at the prompt clears the line
        except EOFError:
            return exitcodes.SUCCESS
        try:
            run_line(ctx, text)
        except ShellExit:
            return exitcodes.SUCCESS
        cache.refresh()
