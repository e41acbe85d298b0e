"""Running shell commands: splitting text into commands, sending them, and
turning results and errors into output and exit statuses."""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from unitmgr.manager import protocol
from unitmgr.shell import exitcodes, render
from unitmgr.shell.commands import REGISTRY, ShellExit
from unitmgr.shell.commandspec import Invocation, UsageError, parse_words
from unitmgr.shell.context import Context

if TYPE_CHECKING:
    from unitmgr.shell.client import ClientError, RemoteError


def split_commands(text: str) -> list[list[str]]:
    """Split one line into commands at `;`, each as a list of words (shell quoting,
    `#` starts a comment)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";")
    lexer.whitespace_split = True
    groups: list[list[str]] = [[]]
    try:
        for token in lexer:
            # NOTE: a quoted ";" alone is taken as a separator, because shlex does
            # not mark quoted tokens. No unit name or option value is just ";".
            if token and set(token) == {";"}:
                groups.append([])
            else:
                groups[-1].append(token)
    except ValueError as exc:
        raise UsageError(f"cannot parse {text.strip()!r}: {exc}") from None
    return [group for group in groups if group]


def parse_line(text: str) -> list[Invocation]:
    return [parse_words(REGISTRY, words) for words in split_commands(text)]


def run(ctx: Context, inv: Invocation) -> int:
    """Run one command and return its exit status.

    Raises ClientError when the manager cannot be reached (the caller decides
    whether to go on) and ShellExit for `exit`. A command given `--json` of its
    own runs as with the global --json.
    """
    if inv.option("json") and not ctx.json:
        ctx.json = True
        try:
            return _run(ctx, inv)
        finally:
            ctx.json = False
    return _run(ctx, inv)


def _run(ctx: Context, inv: Invocation) -> int:
    command = inv.command
    if command.run_local is not None:
        try:
            return command.run_local(ctx, inv)
        except UsageError as err:  # e.g. `help nosuchcommand`
            return report_usage_error(ctx, err)
    return request_and_show(ctx, inv)


def request_and_show(ctx: Context, inv: Invocation) -> int:
    """Send the command's request, print the result and return its exit status."""
    from unitmgr.shell.client import RemoteError

    command = inv.command
    assert command.build_args is not None and command.show is not None
    try:
        args = command.build_args(inv)
    except UsageError as err:  # e.g. `logs` with no unit
        return report_usage_error(ctx, err)
    try:
        result = ctx.session.request(command.control, args, timeout=command.timeout)
    except RemoteError as err:
        return report_remote_error(ctx, inv, err)
    if command.convert_result is not None:
        try:
            result = command.convert_result(result)
        except protocol.ProtocolError as err:
            _json_error(ctx, protocol.BAD_REQUEST, err.message)
            ctx.out.error(f"{command.name}: invalid reply from the manager: {render.visible(err.message)}")
            return exitcodes.FAILURE
    if ctx.json:
        render.json_object(ctx.out, result)
    else:
        command.show(ctx, inv, result)
    return command.exit_status(inv, result) if command.exit_status else exitcodes.SUCCESS


def _json_error(ctx: Context, code: str, message: str, details: dict[str, Any] | None = None,
                ) -> None:
    if ctx.json:
        error: dict[str, Any] = {"code": code, "message": message}
        if details:
            error["details"] = details
        render.json_object(ctx.out, {"error": error})


def report_remote_error(ctx: Context, inv: Invocation, err: RemoteError) -> int:
    """Print an error reply as systemctl would and return the command's status for it."""
    _json_error(ctx, err.code, err.message, err.details)
    if err.code in (protocol.UNIT_NOT_FOUND, protocol.UNIT_MASKED):
        ctx.out.error(render.visible(err.message))  # "Unit web.service not found."
    else:
        ctx.out.error(f"{inv.command.name}: {render.visible(err.message)}")
    if err.code == protocol.UNIT_NOT_FOUND:
        hint = _template_hint(ctx, (err.details or {}).get("unit"))
        if hint and not ctx.json:
            ctx.out.error(hint)
        return inv.command.not_found_status
    return exitcodes.FAILURE


def _template_hint(ctx: Context, unit: Any) -> str:
    """Return a hint when the missing unit NAME.service has a template NAME@.service, else "".

    It costs one more request, made only after a unit was not found."""
    from unitmgr.shell.client import ClientError, RemoteError

    if not isinstance(unit, str) or "@" in unit or "." not in unit:
        return ""
    stem, _, suffix = unit.rpartition(".")
    template = f"{stem}@.{suffix}"
    try:
        files = ctx.session.request("list-unit-files", {})
    except (ClientError, RemoteError):
        return ""  # The hint is optional, because "Unit X not found." is printed already.
    if not any(entry.get("name") == template for entry in files.get("units", [])):
        return ""
    return (f"{render.visible(template)} is a template: start an instance such as "
            f"{render.visible(stem)}@1, or use 'scale {render.visible(stem)} N'")


def report_client_error(ctx: Context, err: ClientError) -> int:
    _json_error(ctx, err.kind, str(err))
    ctx.out.error(f"unitsh: {err}")
    return exitcodes.FAILURE


def report_usage_error(ctx: Context, err: UsageError, where: str = "") -> int:
    _json_error(ctx, "usage", str(err))
    ctx.out.error(f"unitsh: {where}{err}")
    return err.status


def run_all(ctx: Context, invocations: Iterable[Invocation], statuses: list[int]) -> bool:
    """Run commands in order, appending each exit status to `statuses`.

    Return False when the rest of the input must be skipped: after `exit`, or
    when the manager cannot be reached (every later command would wait for
    the same timeout).
    """
    from unitmgr.shell.client import ClientError

    for inv in invocations:
        try:
            statuses.append(run(ctx, inv))
        except ShellExit:
            return False
        except ClientError as err:
            statuses.append(report_client_error(ctx, err))
            return False
    return True


def run_text(ctx: Context, text: str) -> int:
    """Run `unitsh -c TEXT`: every command is parsed before any runs, so a typo
    in the last command leaves the manager untouched."""
    try:
        invocations = [inv for line in text.splitlines() for inv in parse_line(line)]
    except UsageError as err:
        return report_usage_error(ctx, err)
    statuses: list[int] = []
    run_all(ctx, invocations, statuses)
    return exitcodes.combine(statuses)


def run_lines(ctx: Context, lines: Iterable[str]) -> int:
    """Run commands read line by line (stdin that is not a terminal).

    A line with a usage error is reported with its number and skipped.
    """
    statuses: list[int] = []
    for number, line in enumerate(lines, start=1):
        try:
            invocations = parse_line(line)
        except UsageError as err:
            statuses.append(report_usage_error(ctx, err, where=f"line {number}: "))
            continue
        if not run_all(ctx, invocations, statuses):
            break
    return exitcodes.combine(statuses)
