"""The shape of a shell command, and parsing its words into an Invocation.

A `Command` declares everything about one shell command once: its words,
arguments, options, help, the control command it sends, how its result is
shown and which exit status it gives. `commands.py` contains the registry;
parsing, help, completion and documentation are derived from it here and in
`helptext.py` and `completion.py`.

The declarations are NamedTuples, not dataclasses, so that `unitsh -c` does
not import dataclasses (with inspect and ast) at every start.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from unitmgr.shell.context import Context


class UsageError(Exception):
    """Invalid command words; the message names the command and the problem."""

    status = 2  # the exit status, as for any invalid command line


# Seconds to wait for a command that replies only when its jobs end (start, stop,
# restart, scale, enable --now, disable --now). A unit's TimeoutStartSec= and
# TimeoutStopSec= default to 90 s each.
JOB_TIMEOUT = 600.0


class NotAvailableError(UsageError):
    """A command or option that is declared but not implemented yet."""

    status = 1


class Option(NamedTuple):
    flags: tuple[str, ...]  # e.g. ("-n", "--lines")
    dest: str
    help: str
    metavar: str = ""  # empty for a flag that takes no value
    choices: tuple[str, ...] = ()  # the only values argparse accepts
    suggestions: tuple[str, ...] = ()  # values offered by completion, when not `choices`
    parse: Callable[[str], Any] | None = None  # converts a value; raises ArgumentTypeError
    default: Any = None
    repeat: bool = False  # the option may be given several times; values are collected
    unavailable: str = ""  # non-empty while the option is not implemented: the message
    complete: str = ""  # "signals": what completion offers, when not `choices` or `suggestions`

    @property
    def takes_value(self) -> bool:
        return bool(self.metavar)


class Positional(NamedTuple):
    metavar: str  # "UNIT", "COMMAND"
    arity: str  # "?", "*" or "+", as argparse's nargs
    complete: str = ""  # "units" or "commands": what completion offers


class Invocation(NamedTuple):
    """One parsed command: its Command, positional words and option values."""

    command: Command
    args: list[str]
    options: dict[str, Any]

    def option(self, dest: str) -> Any:
        return self.options.get(dest)


class Command(NamedTuple):
    name: str
    summary: str
    positional: Positional | None = None
    options: tuple[Option, ...] = ()
    aliases: tuple[str, ...] = ()
    control: str = ""  # the control command sent; empty for a command the shell runs itself
    build_args: Callable[[Invocation], dict[str, Any]] | None = None
    show: Callable[[Context, Invocation, dict[str, Any]], None] | None = None
    # Turns the reply's result into the one that `show` and --json print. With None they get it as sent.
    convert_result: Callable[[dict[str, Any]], dict[str, Any]] | None = None
    exit_status: Callable[[Invocation, dict[str, Any]], int] | None = None
    run_local: Callable[[Context, Invocation], int] | None = None
    not_found_status: int = 1  # exit status when the manager replies unit-not-found
    timeout: float | None = None  # reply timeout in seconds; None for the client's default
    description: str = ""  # extra paragraphs for `help CMD`

    @property
    def words(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that raises UsageError in place of printing and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message or 'invalid arguments'}")


# Parsers already built, by id() of their Command. Each entry keeps its Command
# alive, so that an id is not reused while its entry exists.
_PARSERS: dict[int, tuple[Command, argparse.ArgumentParser]] = {}


def build_parser(command: Command) -> argparse.ArgumentParser:
    """Return (and cache) the argparse parser for one command."""
    cached = _PARSERS.get(id(command))
    if cached is not None and cached[0] is command:
        return cached[1]
    parser = _Parser(prog=command.name, add_help=False, allow_abbrev=False)
    if command.positional:
        parser.add_argument("args", nargs=command.positional.arity,
                            metavar=command.positional.metavar)
    for option in command.options:
        kwargs: dict[str, Any] = {"dest": option.dest, "help": option.help}
        if not option.takes_value:
            kwargs["action"] = "store_true"
        else:
            kwargs.update(metavar=option.metavar, default=option.default)
            if option.parse:
                kwargs["type"] = option.parse
            if option.choices:
                kwargs["choices"] = option.choices
            if option.repeat:
                kwargs["action"] = "append"
        parser.add_argument(*option.flags, **kwargs)
    _PARSERS[id(command)] = (command, parser)
    return parser


def _plain_values(command: Command, words: list[str]) -> dict[str, Any] | None:
    """Return what argparse would parse from `words` when none is an option and their
    number suits the command, else None.

    Most commands are names without options (`status web`), and for them this
    skips building an argparse parser, whose gettext look-ups are a noticeable
    part of a one-shot `unitsh -c`."""
    if any(word.startswith("-") for word in words):
        return None
    values: dict[str, Any] = {
        option.dest: option.default if option.takes_value else False
        for option in command.options}
    positional = command.positional
    if positional is None:
        return None if words else values
    if positional.arity == "?":
        if len(words) > 1:
            return None
        values["args"] = words[0] if words else None
    elif positional.arity == "+" and not words:
        return None
    else:
        values["args"] = list(words)
    return values


# The option words that request JSON output of one command, as the global --json does.
# `-o`/`--output` are systemctl's spelling; a command with an `-o` option of its own
# (`logs -o json`, one log record per line) keeps them.
JSON_WORDS = ("--json", "--output=json", "-ojson")
OUTPUT_FLAGS = ("-o", "--output")


def _has_flag(command: Command, flag: str) -> bool:
    return any(flag in option.flags for option in command.options)


def split_json_words(command: Command, words: list[str]) -> tuple[list[str], bool]:
    """Return `words` without the words that request JSON output, and whether there were any.

    Words after `--` are left alone, as they are positional."""
    own_output = _has_flag(command, "-o") or _has_flag(command, "--output")
    other_words: list[str] = []
    wants_json = False
    index = 0
    while index < len(words):
        word = words[index]
        if word == "--":
            other_words.extend(words[index:])
            break
        if word == "--json" or (not own_output and word in JSON_WORDS):
            wants_json = True
        elif (not own_output and word in OUTPUT_FLAGS and index + 1 < len(words)
              and words[index + 1] == "json"):
            wants_json = True
            index += 1
        else:
            other_words.append(word)
        index += 1
    return other_words, wants_json


def parse_words(registry: dict[str, Command], words: list[str]) -> Invocation:
    """Parse one command's words (`["logs", "-n", "5", "web"]`) into an Invocation.

    `CMD -h` and `CMD --help` become `help CMD`. `--json` (and `-o json` for a
    command without an `-o` option) sets the option `json`, which the runner
    takes as the global --json for this command.
    """
    if not words:
        raise UsageError("empty command")
    command = registry.get(words[0])
    if command is None:
        raise UsageError(f"unknown command '{words[0]}'; run 'help' to list the commands")
    if "-h" in words[1:] or "--help" in words[1:]:
        return Invocation(registry["help"], [command.name], {})
    rest, wants_json = split_json_words(command, words[1:])
    values = _plain_values(command, rest)
    if values is None:
        values = vars(build_parser(command).parse_args(rest))
    if wants_json:
        values["json"] = True
    args = values.pop("args", None)
    if args is None:
        args = []
    elif isinstance(args, str):
        args = [args]
    for option in command.options:
        if option.unavailable and values.get(option.dest) not in (None, False, option.default):
            raise NotAvailableError(f"{command.name}: {option.unavailable}")
    return Invocation(command, list(args), values)
