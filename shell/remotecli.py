"""The command-line side of `unitsh HOST...`: options, and the run on one host or many.

`cli.py` calls in here only when hosts are given, so paramiko is imported
only on that path (through `remote.py`).

    unitsh HOST                    interactive shell on HOST's manager
    unitsh HOST -c "CMD"           run CMD there, exit with its status
    unitsh -c "CMD" HOST1 HOST2    run CMD on every host at once (fanout.py)
"""

from __future__ import annotations

import argparse
import sys

from unitmgr.manager.paths import Paths
from unitmgr.shell import exitcodes

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_REMOTE_COMMAND = "unitmgr"


def add_remote_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options that only matter with HOST arguments."""
    parser.add_argument(
        "--remote-command", default=DEFAULT_REMOTE_COMMAND, metavar="COMMAND",
        help="SSH: how to run unitmgr on the hosts, for one that is not on the remote PATH "
             "(e.g. ~/venv/bin/unitmgr); the remote shell runs it (default: unitmgr)")
    parser.add_argument(
        "--connect-timeout", type=_positive_seconds, default=None, metavar="SECONDS",
        help="SSH: how long to wait for a host to connect (default: ConnectTimeout in ~/.ssh/config, "
             f"else {DEFAULT_CONNECT_TIMEOUT:g})")


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid timeout '{text}': use seconds above 0")
    return value


def wants_interactive(options: argparse.Namespace) -> bool:
    """True when unitsh will open the interactive shell (no -c, stdin a terminal)."""
    return options.command is None and sys.stdin.isatty()


def remote_options(options: argparse.Namespace, paths: Paths, interactive: bool):  # -> RemoteOptions
    from unitmgr.shell.remote import RemoteOptions, ask_on_terminal

    return RemoteOptions(
        remote_command=options.remote_command, accept_new_host_key=options.accept_new_host_key,
        authorize=options.authorize, ask=ask_on_terminal if interactive else None,
        connect_timeout=options.connect_timeout, timeout=options.timeout, paths=paths)


def open_host_session(options: argparse.Namespace, paths: Paths):  # -> Session
    """Return the Session for the single HOST argument.

    For the interactive shell it connects at once, so that host-key and
    authorisation questions come before the prompt. It then raises ClientError
    when the host cannot be reached."""
    from unitmgr.shell.remote import open_remote_session

    interactive = wants_interactive(options)
    return open_remote_session(options.hosts[0], remote_options(options, paths, interactive),
                               eager=interactive)


def split_quietly(line: str) -> list[list[str]]:
    """Return the commands on `line`, or one placeholder command when it does not parse.

    The hosts then report the parse error."""
    from unitmgr.shell.commandspec import UsageError
    from unitmgr.shell.runner import split_commands

    try:
        return split_commands(line)
    except UsageError:
        return [[line]]


def run_many(options: argparse.Namespace, paths: Paths) -> int:
    """Run -c CMD (or the commands on stdin) on several hosts at once."""
    from unitmgr.shell.fanout import run_remote

    if options.command is not None:
        commands = options.command
    elif not sys.stdin.isatty():
        commands = sys.stdin.read()
        if not any(split_quietly(line) for line in commands.splitlines()):
            # As with one host or the local shell: empty input runs nothing and contacts no host.
            return exitcodes.SUCCESS
    else:
        print(f"unitsh: several hosts ({' '.join(options.hosts)}) need -c \"CMD\" or commands on "
              "stdin; the interactive shell works on one host at a time", file=sys.stderr)
        return exitcodes.USAGE
    return run_remote(options.hosts, commands, remote_options(options, paths, interactive=False),
                      json_output=options.json)
