"""`logs -f`: print the last lines of units, then every new line until Ctrl-C.

The follower uses a connection of its own, so the events it reads never mix
with the replies of the shell's other requests. The manager registers the
subscription and returns the earlier lines in one step, so no line falls
between the two. Lines arrive through the `log` event stream, which does not
depend on the log files: following goes on across rotation and across a
deleted file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from unitmgr.shell import render
from unitmgr.shell.logpages import fetch_logs, omitted_notice

if TYPE_CHECKING:
    from unitmgr.shell.client import Client
    from unitmgr.shell.commandspec import Invocation
    from unitmgr.shell.context import Context

log = logging.getLogger(__name__)

# Lines shown before following when -n is not given, as journalctl -f does.
DEFAULT_LINES = 10


def follow_args(args: dict[str, Any]) -> dict[str, Any]:
    """Turn `logs` request arguments into `subscribe` arguments for the log stream."""
    follow = {key: value for key, value in args.items() if key != "units"}
    follow["streams"] = ["log"]
    if not follow.get("lines"):
        follow["lines"] = DEFAULT_LINES
    return follow


def follow_logs(
    client: Client,
    out: render.Output,
    args: dict[str, Any],
    mode: str,
    host: str,
    stop: Callable[[], bool] = lambda: False,
) -> int:
    """Print the lines `args` selects, then new ones as they arrive; return an exit status.

    Return 0 after Ctrl-C or when `stop()` turns true, and 1 when the
    manager ends the subscription. Raise ClientError when the connection is
    lost and RemoteError for invalid arguments."""
    follow = follow_args(args)
    result = client.subscribe(["log"], list(args.get("units") or []),
                              **{k: v for k, v in follow.items() if k != "streams"})
    try:
        notice = omitted_notice(result, following=True)
        if notice:
            out.error(notice)
        _show(out, result.get("records", []), mode, host)
        while not stop():
            # A short timeout, so that `stop` is checked while nothing arrives.
            for event in client.iter_events(timeout=0.5):
                if not _on_event(out, event, mode, host):
                    return 1
                if stop():
                    break
    except KeyboardInterrupt:
        pass
    _unsubscribe(client, result["sub"])
    return 0


def _unsubscribe(client: Client, sub: int) -> None:
    """End the subscription, so it does not count against the manager's limit per client key."""
    from unitmgr.shell.client import ClientError, RemoteError

    try:
        client.unsubscribe(sub)
    except (ClientError, RemoteError, KeyboardInterrupt) as exc:
        log.debug("failed to unsubscribe %d: %s", sub, exc)


def _on_event(out: render.Output, event: dict[str, Any], mode: str, host: str) -> bool:
    """Show one event; return False when it ends the subscription."""
    kind = event.get("event")
    if kind == "log":
        _show(out, event.get("records", []), mode, host)
    elif kind == "dropped":
        out.error(f"-- {event.get('count', 0)} log events were dropped because this "
                  "terminal read too slowly --")
    elif kind == "ended":
        out.error(f"-- the manager ended this subscription ({event.get('reason', 'no reason given')}). "
                  "Run logs -f again to keep following --")
        return False
    return True


def _show(out: render.Output, records: list[dict[str, Any]], mode: str, host: str) -> None:
    if not records:
        return
    render.logs(out, records, mode, host)
    out.stdout.flush()


def run_logs(ctx: Context, inv: Invocation) -> int:
    """Run `logs`: one request, or with -f a subscription that prints lines until Ctrl-C."""
    from unitmgr.shell import commands, runner
    from unitmgr.shell.client import RemoteError

    args = commands._logs_args(inv)
    mode = "json" if ctx.json else inv.option("output") or "short"
    if not inv.option("follow"):
        try:
            # fetch_logs requests older pages until it has every selected line.
            result = fetch_logs(ctx.session.request, args, keep_text=mode != "raw")
        except RemoteError as err:
            return runner.report_remote_error(ctx, inv, err)
        if ctx.json:
            render.json_object(ctx.out, result)
        else:
            commands._show_logs(ctx, inv, result)
        return 0
    host = ctx.session.host if mode.startswith("short") else ""
    client = ctx.session.open_client()
    try:
        return follow_logs(client, ctx.out, args, mode, host)
    except RemoteError as err:
        return runner.report_remote_error(ctx, inv, err)
    finally:
        client.close()
