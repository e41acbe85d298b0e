"""`unitsh`: the command-line entry point.

    unitsh                    interactive shell (stdin and stdout are a terminal)
    unitsh -c "CMD[; CMD]"    run commands and exit with systemctl's status
    ... | unitsh              run commands from stdin, one per line

The `-c` and stdin paths import neither prompt_toolkit nor asyncio nor
paramiko, because one-shot commands pay for every import at start-up. For
the same reason `-c CMD` and `--json` alone are parsed without building the
argparse parser (whose construction looks up gettext translations), and the
help text is built only when it is printed.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from unitmgr.manager import paths as pathmod
from unitmgr.shell import exitcodes, hostcheck, remotecli
from unitmgr.shell.context import Context
from unitmgr.shell.render import Output
from unitmgr.shell.session import Session

if TYPE_CHECKING:
    from unitmgr.shell.client import Client

_DESCRIPTION = """\
The shell of unitmgr. Without -c, and with stdin and stdout on a terminal,
unitsh opens an interactive shell; with stdin not a terminal it reads
commands from stdin, one per line ('#' starts a comment), and runs them on
the HOSTs when hosts are given.

Commands go after -c: 'unitsh -c "status web"'. Without -c every other word
is a HOST, and a word that is a command name is rejected (exit status 2);
write a host named like a command as user@status or status:22."""

_MODES = """\
Several commands ('-c "stop web; start web"', or one per line on stdin) run
in order even when one fails; the exit status is that of the last command
that failed, or 0. 'exit' skips the commands after it. With --json, every
command prints exactly one JSON object on one line of stdout: its result, or
{"error": {"code": ..., "message": ...}}. A command may also be given --json
(or systemctl's -o json) of its own: 'unitsh -c "list --json"'."""


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"invalid timeout '{text}': use seconds above 0")
    return value


DEFAULT_TIMEOUT = 5.0  # --timeout's default: seconds to wait for a reply


class _Parser(argparse.ArgumentParser):
    """The unitsh parser. Its epilog lists every command, so it is built on first use
    (--help, or the man page generator), not for every run."""

    _epilog: str | None = None

    @property  # type: ignore[override]
    def epilog(self) -> str:
        if self._epilog is None:
            from unitmgr.shell import helptext
            from unitmgr.shell.commands import COMMANDS

            self._epilog = "\n".join([
                *helptext.overview(COMMANDS), "", _MODES, "",
                "Exit status (as systemctl):", exitcodes.help_text()])
        return self._epilog

    @epilog.setter
    def epilog(self, text: str | None) -> None:
        # ArgumentParser.__init__ assigns None here, which keeps the generated epilog.
        self._epilog = text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="unitsh", description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("hosts", nargs="*", metavar="HOST",
                        help="[user@]host[:port] to control through SSH; with several, -c runs "
                             "on all of them at once (see docs/remote.md)")
    parser.add_argument("-c", dest="command", metavar="CMD",
                        help="run CMD (several separated by ';') and exit")
    parser.add_argument("--json", action="store_true",
                        help="print each result as one JSON object per line")
    parser.add_argument("--endpoint", metavar="ENDPOINT",
                        help="connect to this ZeroMQ endpoint (tcp://HOST:PORT) without SSH; "
                             "needs --server-key")
    parser.add_argument("--server-key", metavar="KEY",
                        help="the manager's public key (Z85, 40 characters), as printed by "
                             "'unitmgr endpoint --json'")
    parser.add_argument("--accept-new-host-key", action="store_true",
                        help="SSH: accept and remember an unknown host key")
    parser.add_argument("--authorize", action="store_true",
                        help="SSH: add the local client key to the host's authorized_keys")
    parser.add_argument("--version", action="store_true",
                        help="print the unitsh version and exit")
    parser.add_argument("--timeout", type=_positive_seconds, default=DEFAULT_TIMEOUT,
                        metavar="SECONDS",
                        help="how long to wait for a reply from the manager "
                             f"(default {DEFAULT_TIMEOUT:g})")
    remotecli.add_remote_arguments(parser)  # --remote-command, --connect-timeout
    return parser


def _check_endpoint(parser: argparse.ArgumentParser, options: argparse.Namespace) -> None:
    if options.server_key and not options.endpoint:
        parser.error("--server-key needs --endpoint")
    if not options.endpoint:
        return
    if not options.server_key:
        parser.error("--endpoint needs --server-key KEY (see 'unitmgr endpoint --json')")
    if not options.endpoint.startswith(("tcp://", "ipc://")):
        parser.error(f"invalid --endpoint '{options.endpoint}': use tcp://HOST:PORT "
                     "or ipc://PATH")
    from unitmgr.manager.keys import parse_key

    try:
        options.server_key = parse_key(options.server_key)
    except ValueError as exc:
        parser.error(f"invalid --server-key: {exc}")


def _endpoint_connector(endpoint: str, server_key: bytes, paths: pathmod.Paths,
                        timeout: float) -> Callable[[], Client]:
    def connect() -> Client:
        from unitmgr.manager.keys import KeyFileError, load_client_keys
        from unitmgr.shell.client import Client, ClientError

        try:
            pair = load_client_keys(paths)
        except (KeyFileError, OSError) as exc:
            raise ClientError(
                "unauthorized", f"cannot read the local client key in {paths.keys}: {exc}; "
                "run 'unitmgr --user' once to create it") from None
        return Client(endpoint, server_key, pair.public, pair.secret, timeout=timeout)

    return connect


def _local_connector(paths: pathmod.Paths, timeout: float) -> Callable[[], Client]:
    def connect() -> Client:
        from unitmgr.manager.keys import KeyFileError
        from unitmgr.shell.client import Client, ClientError

        try:
            return Client.local(paths, timeout=timeout)
        except KeyFileError as exc:
            raise ClientError("unauthorized", f"cannot use the local client key: {exc}",
                              ) from None

    return connect


def endpoint_label(endpoint: str) -> str:
    """Return the host of tcp://HOST:PORT (for the prompt), or the endpoint itself."""
    if endpoint.startswith("tcp://"):
        host = endpoint[len("tcp://"):].rpartition(":")[0]
        return host.strip("[]") or endpoint
    return endpoint


def wants_color(stream: object) -> bool:
    """Return True when output should be coloured: on a terminal, unless NO_COLOR is
    set to a non-empty value."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not os.environ.get("NO_COLOR")


def join_key_values(argv: list[str]) -> list[str]:
    """Rewrite `--server-key KEY` as `--server-key=KEY`, because a Z85 key may start
    with "-" and argparse would take it for an option."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        if argv[index] == "--server-key" and index + 1 < len(argv):
            joined.append(f"--server-key={argv[index + 1]}")
            index += 2
        else:
            joined.append(argv[index])
            index += 1
    return joined


def parse_one_shot(argv: list[str]) -> argparse.Namespace | None:
    """Parse an argv of only `-c CMD` and `--json`, each at most once, as build_parser()
    would. Return None for any other argv, which argparse then parses."""
    command: str | None = None
    json_output = False
    index = 0
    while index < len(argv):
        word = argv[index]
        if word == "--json" and not json_output:
            json_output = True
            index += 1
        elif word == "-c" and command is None and index + 1 < len(argv):
            command = argv[index + 1]
            if command.startswith("-"):
                return None  # argparse decides whether it is a value or an option
            index += 2
        else:
            return None
    return argparse.Namespace(
        hosts=[], command=command, json=json_output, version=False, endpoint=None, server_key=None,
        accept_new_host_key=False, authorize=False, timeout=DEFAULT_TIMEOUT,
        remote_command=remotecli.DEFAULT_REMOTE_COMMAND,
        connect_timeout=None)  # as --connect-timeout: ~/.ssh/config or its default decides


def parse_arguments(argv: list[str]) -> argparse.Namespace:
    """Return the options of `argv`. Raise SystemExit after printing help or a usage error."""
    options = parse_one_shot(argv)
    if options is None:
        mistake = hostcheck.command_as_host(argv)
        if mistake:
            print(f"unitsh: {mistake}", file=sys.stderr)
            raise SystemExit(exitcodes.USAGE)
        parser = build_parser()
        options = parser.parse_args(argv)
        _check_endpoint(parser, options)
    return options


def package_version() -> str:
    """Return the installed unitmgr version, from the package metadata."""
    from importlib import metadata

    try:
        return metadata.version("unitmgr")
    except metadata.PackageNotFoundError:
        return "unknown (unitmgr is not installed as a package)"


def main(argv: list[str] | None = None) -> int:
    """Run unitsh with `argv` and return its exit status.

    Without `argv`, main() is the program's entry point (sys.argv), so the
    process exits next. It then freezes the heap: the interpreter's final
    garbage collection skips every object, which shortens a one-shot run by
    several milliseconds."""
    if argv is not None:
        return _run(list(argv))
    try:
        return _run(sys.argv[1:])
    finally:
        gc.freeze()


def _run(argv: list[str]) -> int:
    argv = join_key_values(argv)
    try:
        options = parse_arguments(argv)
    except SystemExit as exc:  # argparse has printed help or the usage error
        return exc.code if isinstance(exc.code, int) else exitcodes.USAGE
    if options.version:
        print(f"unitsh {package_version()}")
        return exitcodes.SUCCESS
    paths = pathmod.resolve()
    # -- remote hosts through SSH (remotecli.py; paramiko is imported only on this path) --
    if options.hosts:
        from unitmgr.shell.client import ClientError

        if options.endpoint:
            print("unitsh: give HOST arguments or --endpoint, not both", file=sys.stderr)
            return exitcodes.USAGE
        if len(options.hosts) > 1:
            return remotecli.run_many(options, paths)
        try:
            session = remotecli.open_host_session(options, paths)
        except ClientError as err:
            print(f"unitsh: {err}", file=sys.stderr)
            return exitcodes.FAILURE
        except KeyboardInterrupt:
            return 130  # as a shell reports a command ended by SIGINT
    # -- end of remote hosts --
    elif options.endpoint:
        session = Session(_endpoint_connector(options.endpoint, options.server_key, paths,
                                              options.timeout),
                          label=endpoint_label(options.endpoint))
    else:
        session = Session(_local_connector(paths, options.timeout))
    ctx = Context(Output(color=wants_color(sys.stdout)), session, json=options.json)
    try:
        return _run_mode(ctx, options, paths)
    except KeyboardInterrupt:
        return 130  # as a shell reports a command ended by SIGINT
    except BrokenPipeError:
        # The reader went away (`unitsh -c "logs web" | head`). Point stdout at
        # /dev/null so that the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return exitcodes.FAILURE
    finally:
        session.close()


def _run_mode(ctx: Context, options: argparse.Namespace, paths: pathmod.Paths) -> int:
    from unitmgr.shell import runner

    if options.command is not None:
        return runner.run_text(ctx, options.command)
    if not sys.stdin.isatty():
        return runner.run_lines(ctx, sys.stdin)
    from unitmgr.shell.interactive import run_interactive

    ctx.interactive = True
    return run_interactive(ctx, paths)


if __name__ == "__main__":
    sys.exit(main())
