"""Tab completion for the interactive shell, derived from the command registry.

It completes command names, option flags, option values with fixed choices,
signal names after `kill -s`, command names after `help`, and unit names
from a callable that must return at once (the interactive shell passes a
cache refreshed in the background).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from unitmgr.shell.commandspec import Command, Option
from unitmgr.shell.statusnames import signal_names


class ShellCompleter(Completer):
    def __init__(self, commands: Iterable[Command], unit_names: Callable[[], Iterable[str]]):
        self.commands = tuple(commands)
        self.registry = {word: command for command in self.commands for word in command.words}
        self.unit_names = unit_names

    def get_completions(self, document: Document, complete_event: CompleteEvent,
                        ) -> Iterator[Completion]:
        # Only the command after the last ";" matters.
        segment = document.text_before_cursor.rsplit(";", 1)[-1]
        words = segment.split()
        if not words or segment[-1].isspace():
            words.append("")
        current = words[-1]
        if len(words) == 1:
            yield from self._command_words(current)
            return
        command = self.registry.get(words[0])
        if command is None:
            return
        option = _option_by_flag(command, words[-2])
        if option is not None and option.takes_value:
            yield from _choices(option, current, prefix="")
        elif current.startswith("--") and "=" in current:
            flag, _, value = current.partition("=")
            option = _option_by_flag(command, flag)
            if option is not None:
                yield from _choices(option, value, prefix=flag + "=", replace=len(current))
        elif current.startswith("-"):
            yield from _flags(command, current)
        else:
            yield from self._positional(command, current)

    def _command_words(self, current: str) -> Iterator[Completion]:
        for command in self.commands:
            for word in command.words:
                if word.startswith(current):
                    yield Completion(word, start_position=-len(current), display_meta="command")

    def _positional(self, command: Command, current: str) -> Iterator[Completion]:
        kind = command.positional.complete if command.positional else ""
        if kind == "commands":
            yield from self._command_words(current)
        elif kind == "units":
            for name in sorted(self.unit_names()):
                if name.startswith(current):
                    yield Completion(name, start_position=-len(current), display_meta="unit")


def _option_by_flag(command: Command, flag: str) -> Option | None:
    for option in command.options:
        if flag in option.flags:
            return option
    return None


def _flags(command: Command, current: str) -> Iterator[Completion]:
    for option in command.options:
        meta = "not available yet" if option.unavailable else option.help
        for flag in option.flags:
            if flag.startswith(current):
                yield Completion(flag, start_position=-len(current), display_meta=meta)


def _values(option: Option, current: str) -> Iterable[str]:
    if option.choices or option.suggestions:
        return option.choices or option.suggestions
    if option.complete == "signals":
        names = signal_names()
        # "SIGT" completes to SIGTERM, "T" to TERM: the manager accepts both spellings.
        if current.startswith("SIG") or "SIG".startswith(current):
            return names
        return [name.removeprefix("SIG") for name in names]
    return ()


def _choices(option: Option, current: str, prefix: str,
             replace: int | None = None) -> Iterator[Completion]:
    start = -(len(current) if replace is None else replace)
    for choice in _values(option, current):
        if choice.startswith(current):
            yield Completion(prefix + choice, start_position=start, display=choice,
                             display_meta=option.metavar.lower())
