"""`status` without a unit: the manager's summary, as `systemctl status` shows the system's.

systemctl prints the host with the system state, the unit and failed-unit
counts and the start time, and exits 0 whatever the state is. unitsh does the
same from the manager's `hello`, `is-system-running` and `list` replies.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from unitmgr.manager import protocol
from unitmgr.shell import exitcodes, humanize, render

if TYPE_CHECKING:
    from unitmgr.shell.commandspec import Invocation
    from unitmgr.shell.context import Context
    from unitmgr.shell.render import Output

# The bullet's state for each system state: green for running, red for degraded.
_GLYPH_STATES = {"running": "active", "degraded": "failed", "starting": "activating",
                 "stopping": "deactivating"}


def run_status(ctx: Context, inv: Invocation) -> int:
    """Run `status`: the named units, or with none the manager's summary."""
    # runner imports the command registry, which imports this module.
    from unitmgr.shell import runner
    from unitmgr.shell.client import RemoteError

    if inv.args:
        return runner.request_and_show(ctx, inv)
    try:
        summary = fetch_summary(ctx.session.request)
    except RemoteError as err:
        return runner.report_remote_error(ctx, inv, err)
    if ctx.json:
        render.json_object(ctx.out, summary)
    else:
        for line in summary_lines(ctx.out, summary, time.time()):
            ctx.out.line(line)
    return exitcodes.SUCCESS


def fetch_summary(request: Any) -> dict[str, Any]:
    """Return the manager's summary from three requests made with `request(cmd, args)`."""
    hello = request("hello", {})
    state = request("is-system-running", {})
    units = protocol.expand_table(request("list", {"all": True, "table": True}), "units")
    return {
        "host": hello.get("host", ""),
        "state": state.get("state", "unknown"),
        "units": len(units),
        "failed_units": state.get("failed_units", []),
        "started": hello.get("started"),
        "pid": hello.get("pid"),
        "version": hello.get("version", ""),
    }


def summary_lines(out: Output, summary: dict[str, Any], now: float) -> list[str]:
    """Return the lines of the summary in systemctl's layout."""
    state = summary["state"]
    bullet = render.glyph(out, _GLYPH_STATES.get(state, ""))
    failed = len(summary["failed_units"])
    lines = [
        f"{bullet} {render.visible(summary['host'])}",
        _label("State", state),
        _label("Units", f"{summary['units']} loaded"),
        _label("Failed", f"{failed} unit" if failed == 1 else f"{failed} units"),
    ]
    started = summary.get("started")
    if started:
        lines.append(_label("Since", f"{humanize.timestamp(started)}; {humanize.relative(started, now)}"))
    lines.append(_label("unitmgr", f"{summary['version']} (pid {summary['pid']})"))
    return lines


def _label(name: str, value: str) -> str:
    # systemctl 252 right-aligns these labels to 10 columns ("   Failed: 0 units").
    return f"{name}:".rjust(10) + " " + value
