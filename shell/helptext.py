"""Help text derived from the command registry: `help`, `help CMD`, `unitsh --help`."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from typing import Any

from unitmgr.shell.commandspec import Command, Option

WIDTH = 79  # help lines wrap at this column


def _option_usage(option: Option) -> str:
    flag = option.flags[0]
    if not option.takes_value:
        return f"[{flag}]"
    joiner = "=" if flag.startswith("--") else " "
    return f"[{flag}{joiner}{option.metavar}]"


def usage(command: Command) -> str:
    """Return a one-line synopsis: `logs [-n N] [-o FORMAT] [-f] UNIT...`."""
    parts = [command.name]
    parts += [_option_usage(option) for option in command.options]
    positional = command.positional
    if positional:
        name = positional.metavar
        parts.append({"?": f"[{name}]", "*": f"[{name}...]", "+": f"{name}..."}[positional.arity])
    return " ".join(parts)


def _option_lines(option: Option) -> list[str]:
    flags = ", ".join(
        f"{flag}={option.metavar}" if option.takes_value and flag.startswith("--")
        else f"{flag} {option.metavar}" if option.takes_value else flag
        for flag in option.flags)
    text = option.help
    if option.choices:
        text += f" ({'|'.join(option.choices)})"
    if option.unavailable:
        text += " [not available yet]"
    return [f"  {flags}", *textwrap.wrap(text, WIDTH, initial_indent=" " * 6,
                                          subsequent_indent=" " * 6)]


def command_help(command: Command) -> list[str]:
    """Return the lines of `help CMD`."""
    lines = [f"usage: {usage(command)}", "", command.summary[0].upper() + command.summary[1:] + "."]
    if command.description:
        lines += ["", *textwrap.wrap(command.description, WIDTH)]
    if command.aliases:
        lines += ["", f"Also called: {', '.join(command.aliases)}."]
    if command.options:
        lines += ["", "options:"]
        for option in command.options:
            lines += _option_lines(option)
    return lines


def overview(commands: Iterable[Command]) -> list[str]:
    """Return the command table of `help` and `unitsh --help`."""
    commands = list(commands)
    width = max(len(command.name) for command in commands)
    lines = ["Commands:"]
    lines += [f"  {command.name.ljust(width)}  {command.summary}" for command in commands]
    lines += ["", "Run 'help COMMAND' for the arguments and options of one command.",
              "Any command also takes --json (or -o json, except logs): print its result "
              "as one JSON object."]
    return lines


def as_json(commands: Iterable[Command], topic: list[str]) -> dict[str, Any]:
    """Return the registry (or the commands named in `topic`) as a JSON-ready dict."""
    chosen = [c for c in commands if not topic or topic[0] in c.words]
    return {"commands": [
        {"name": c.name, "aliases": list(c.aliases), "summary": c.summary, "usage": usage(c),
         "options": [{"flags": list(o.flags), "help": o.help, "available": not o.unavailable}
                     for o in c.options]}
        for c in chosen]}
