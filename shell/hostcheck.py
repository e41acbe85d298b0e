"""Catch a unitsh command typed where a HOST argument goes (`unitsh status web`).

Without `-c`, every word on the unitsh command line is a host name, so
`unitsh is-active web` would try to reach hosts called "is-active" and "web"
through SSH. A word that is exactly a command name is rejected instead, with
the `-c` spelling of what was probably meant. A host really named like a
command is still reachable as `user@status` or `status:22`.
"""

from __future__ import annotations

import shlex

# The unitsh options that take a value in the next word (cli.build_parser and
# remotecli.add_remote_arguments); `--server-key KEY` is already joined by then.
VALUE_OPTIONS = frozenset({"-c", "--endpoint", "--server-key", "--timeout",
                           "--remote-command", "--connect-timeout"})

# Characters that double quotes do not protect in a POSIX shell.
_UNSAFE_IN_DOUBLE_QUOTES = frozenset('"$`\\!')


def _quote_command(words: list[str]) -> str:
    text = shlex.join(words)
    if _UNSAFE_IN_DOUBLE_QUOTES & set(text):
        return shlex.quote(text)
    return f'"{text}"'


def command_as_host(argv: list[str]) -> str:
    """Return an error naming the first HOST word that is a unitsh command, or "".

    Only argv without -c is checked, and not one requesting help. The
    suggested fix keeps the words before the command (hosts, options) and
    passes the command and the words after it to -c."""
    if any(word in ("-c", "-h", "--help") for word in argv):
        return ""
    from unitmgr.shell.commands import REGISTRY

    index = 0
    while index < len(argv):
        word = argv[index]
        if word in VALUE_OPTIONS:
            index += 2
            continue
        if word.startswith("-"):
            index += 1
            continue
        if word in REGISTRY:
            before = [*argv[:index], "-c"]
            fix = " ".join(["unitsh", *(shlex.quote(w) for w in before),
                            _quote_command(argv[index:])])
            return (f"'{word}' is a command, not a host; run it with: {fix}\n"
                    f"(a host named '{word}' can be given as user@{word} or {word}:22)")
        index += 1
    return ""
