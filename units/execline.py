"""Command lines of `Exec*=` settings: parsing at load time, `$VAR` expansion at spawn time.

Parsing follows systemd 252's `config_parse_exec()`: the first word is
unquoted first and its prefix characters (`-@:+!`) are stripped after that,
so `"-/bin/true"` still has the `-` prefix. Specifiers are expanded per word
after splitting, so a `%h` containing spaces stays one word. A word that is
exactly `;` separates commands (a literal `;` argument is written `\\;`).
Errors refuse the unit unless the command has the `-` prefix, in which case
only this assignment is dropped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from unitmgr.units.model import ExecCommand
from unitmgr.units.quoting import WHITESPACE, next_word
from unitmgr.units.specifiers import SpecifierContext, UnitIdentity, expand
from unitmgr.units.values import UnitValueError

PATH_MAX = 4096
NAME_MAX = 255
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\\"']")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$\$")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _strip_prefixes(word: str) -> tuple[str, dict[str, object]]:
    """Strip `-@:+!` prefix characters as systemd does; return (rest, flags)."""
    flags: dict[str, object] = {"ignore": False, "argv0": False, "no_env": False, "priv": ""}
    index = 0
    while index < len(word):
        char = word[index]
        if char == "-" and not flags["ignore"]:
            flags["ignore"] = True
        elif char == "@" and not flags["argv0"]:
            flags["argv0"] = True
        elif char == ":" and not flags["no_env"]:
            flags["no_env"] = True
        elif char in "+!" and not flags["priv"]:
            flags["priv"] = char
        elif char == "!" and flags["priv"] == "!":
            flags["priv"] = "!!"
        else:
            break
        index += 1
    return word[index:], flags


def _check_executable(path: str) -> str | None:
    """Return the problem with executable word `path`, or None when it is usable."""
    if not path:
        return "Empty path in command line"
    if _UNSAFE.search(path):
        return f"Executable name contains special characters: {path}"
    if path.endswith(("/", "/.", "/..")) or path in (".", ".."):
        return f"Executable path specifies a directory: {path}"
    if path.startswith("/"):
        too_long = len(path) >= PATH_MAX or any(len(p) > NAME_MAX for p in path.split("/"))
        if not too_long:
            return None
    elif "/" not in path and len(path) <= NAME_MAX:
        return None
    return (f"Neither a valid executable name nor an absolute path: {path}; "
            "write an absolute path such as /usr/bin/NAME or a bare command name")


def _simplify_path(path: str) -> str:
    """Drop duplicate slashes and `.` components, like systemd's path_simplify().

    NOTE: systemd keeps the unsimplified word as argv[0] when `@` is not
    given; unitmgr passes the simplified path as argv[0] too.
    """
    if "/" not in path:
        return path
    parts = [p for p in path.split("/") if p not in ("", ".")]
    return ("/" if path.startswith("/") else "") + "/".join(parts)


def _fail(message: str, ignore: bool) -> UnitValueError:
    """Build the error for a bad command: fatal, unless the `-` prefix downgrades it."""
    suffix = ", ignoring" if ignore else ""
    return UnitValueError(message + suffix, fatal=not ignore)


def parse_exec(
    value: str, unit: UnitIdentity, context: SpecifierContext
) -> tuple[list[ExecCommand], list[str]]:
    """Parse one `Exec*=` value into commands; return (commands, warnings).

    Raises UnitValueError, whose `fatal` flag is True when systemd would reject the whole unit.
    """
    commands: list[ExecCommand] = []
    warnings: list[str] = []
    position = 0
    while True:
        try:
            first, position = next_word(value, position)
        except UnitValueError as error:
            # systemd 252 drops the assignment when the first word is unbalanced.
            raise UnitValueError(f"{error}, ignoring", fatal=False) from None
        if first is None:
            return commands, warnings
        if first.text == ";":
            continue
        if first.unknown_escape:
            warnings.append(f"Ignoring unknown escape sequences: \"{value}\"")
        command, position = _parse_one(value, position, first.text, unit, context, warnings)
        commands.append(command)


def _parse_one(
    value: str,
    position: int,
    first: str,
    unit: UnitIdentity,
    context: SpecifierContext,
    warnings: list[str],
) -> tuple[ExecCommand, int]:
    """Parse the command whose first word is `first`; stop after a `;` separator."""
    path, flags = _strip_prefixes(first)
    ignore = bool(flags["ignore"])
    try:
        path = expand(path, unit, context)
    except UnitValueError as error:
        raise _fail(str(error), ignore) from None
    problem = _check_executable(path)
    if problem:
        raise _fail(problem, ignore)

    try:
        arguments, position = _read_arguments(value, position, unit, context, warnings)
    except UnitValueError as error:
        raise _fail(str(error), ignore) from None
    words = [_simplify_path(path), *arguments]

    if flags["argv0"] and len(words) < 2:
        raise _fail(f"Empty executable name or zeroeth argument: {value}", ignore)
    command = ExecCommand(
        words=tuple(words),
        ignore_failure=ignore,
        argv0_given=bool(flags["argv0"]),
        no_env_expand=bool(flags["no_env"]),
        privilege=str(flags["priv"]),
        source=value,
    )
    return command, position


def _read_arguments(
    value: str, position: int, unit: UnitIdentity, context: SpecifierContext, warnings: list[str]
) -> tuple[list[str], int]:
    """Read the argument words up to a lone `;` or the end; return (words, next position)."""
    words: list[str] = []
    while True:
        while position < len(value) and value[position] in WHITESPACE:
            position += 1
        rest = value[position:]
        if not rest:
            return words, position
        if rest[0] == ";" and (len(rest) == 1 or rest[1] in WHITESPACE):
            return words, position + 1
        # Only an unquoted, unescaped-looking \; is a literal ";" argument.
        if rest.startswith("\\;") and (len(rest) == 2 or rest[2] in WHITESPACE):
            words.append(";")
            position += 2
            continue
        word, position = next_word(value, position)
        if word is None:
            return words, position
        if word.unknown_escape:
            warnings.append(f"Ignoring unknown escape sequences: \"{value}\"")
        words.append(expand(word.text, unit, context))


# -- Spawn-time expansion ---------------------------------------------------


def split_variable_value(text: str) -> list[str]:
    """Split the value of an entire-word `$NAME` into words.

    Quotes are honoured and removed and a backslash takes the next character
    literally; an unterminated quote runs to the end (systemd's relaxed mode).
    """
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quote = ""
    index = 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
            else:
                current.append(char)
        elif char in WHITESPACE:
            if in_word:
                words.append("".join(current))
                current, in_word = [], False
        elif char in "'\"":
            quote, in_word = char, True
        elif char == "\\" and index + 1 < len(text):
            index += 1
            current.append(text[index])
            in_word = True
        else:
            current.append(char)
            in_word = True
        index += 1
    if in_word:
        words.append("".join(current))
    return words


def expand_word(word: str, env: Mapping[str, str]) -> str:
    """Replace `${NAME}` by its value (empty when unset) and `$$` by `$` inside one word."""
    if "$" not in word:
        return word
    return _VARIABLE.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), ""), word)


def expand_arguments(words: list[str], env: Mapping[str, str]) -> list[str]:
    """Apply systemd's `$NAME` / `${NAME}` / `$$` rules to a list of argument words."""
    result: list[str] = []
    for word in words:
        if word.startswith("$") and _NAME.fullmatch(word[1:]):
            # An entire-word $NAME becomes zero or more arguments.
            if word[1:] in env:
                result.extend(split_variable_value(env[word[1:]]))
            continue
        result.append(expand_word(word, env))
    return result


def resolve_executable(name: str, search_path: str) -> str:
    """Return the path to exec for `name`: itself if absolute, else the first hit on `search_path`.

    A name that is not found is returned unchanged so that exec fails with ENOENT.
    """
    if name.startswith("/"):
        return name
    for directory in search_path.split(":"):
        if not directory:
            continue
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return name


def expand_command(
    cmd: ExecCommand, env: Mapping[str, str], search_path: str
) -> tuple[str, list[str]]:
    """Return (executable path, argv) for spawning `cmd` with environment `env`.

    The executable word itself is never expanded (systemd 252 looks `$BIN`
    up literally); argv[0] and the arguments are, unless the `:` prefix was given.
    """
    path = resolve_executable(cmd.words[0], search_path)
    argv = list(cmd.words[1:]) if cmd.argv0_given else list(cmd.words)
    if not cmd.no_env_expand:
        argv = expand_arguments(argv, env)
    return path, argv
