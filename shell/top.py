"""`top`: a table of the running units' CPU, memory, tasks, open files and I/O.

`unitsh -c top` prints the table once. In the interactive shell on a
terminal, `top` redraws it every `--interval` seconds until a key or Ctrl-C
is pressed. The manager computes every figure (see the `top` command in
docs/protocol.md); this module only lays them out.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Any

from unitmgr.shell import exitcodes, humanize, render
from unitmgr.shell.commandspec import Command, Invocation, Option

if TYPE_CHECKING:
    from unitmgr.shell.context import Context

SORT_KEYS = ("cpu", "memory", "tasks", "time", "io", "files", "restarts", "name")
HEADERS = ("UNIT", "SUB", "PID", "TASKS", "CPU%", "CPU TIME", "MEMORY", "PEAK", "FILES",
           "READ", "WRITE", "RESTARTS")
# Columns after the unit name and state are numbers: align them to the right.
RIGHT_ALIGNED_FROM = 2
CLEAR_SCREEN = "\x1b[H\x1b[2J"


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value < 0.5:
        raise argparse.ArgumentTypeError(f"invalid interval '{text}': use seconds, 0.5 or more")
    return value


def _size(value: int | None) -> str:
    return "-" if value is None else humanize.size(value)


def _row(unit: dict[str, Any]) -> tuple[str, ...]:
    cpu = unit.get("cpu_percent")
    seconds = unit.get("cpu_seconds")
    tasks = "-" if unit.get("tasks") is None else str(unit["tasks"])
    if unit.get("tasks_max"):
        tasks += f"/{unit['tasks_max']}"
    return (
        render.visible(unit["name"]),
        unit.get("sub_state", ""),
        str(unit.get("main_pid") or "-"),
        tasks,
        "-" if cpu is None else f"{cpu:.1f}",
        "-" if seconds is None else humanize.cpu_time(seconds),
        _size(unit.get("memory_bytes")),
        _size(unit.get("memory_peak") or None),
        "-" if unit.get("open_files") is None else str(unit["open_files"]),
        _size(unit.get("io_read_bytes")),
        _size(unit.get("io_write_bytes")),
        str(unit.get("n_restarts") or 0),
    )


def render_table(out: render.Output, result: dict[str, Any]) -> None:
    """Write the `top` table, one unit per line, in the order the manager sorted them."""
    units = result.get("units", [])
    if not units:
        out.line("No running units. Pass --all to include inactive units.")
        return
    rows = [_row(unit) for unit in units]
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(HEADERS)]

    def line(cells: tuple[str, ...]) -> str:
        padded = [cell.rjust(width) if index >= RIGHT_ALIGNED_FROM else cell.ljust(width)
                  for index, (cell, width) in enumerate(zip(cells, widths, strict=True))]
        return " ".join(padded).rstrip()

    out.line(line(HEADERS))
    for row in rows:
        out.line(line(row))


def _top_args(inv: Invocation) -> dict[str, Any]:
    return {"sort": inv.option("sort") or "cpu", "all": bool(inv.option("all"))}


def _show_once(ctx: Context, inv: Invocation) -> int:
    result = ctx.session.request("top", _top_args(inv))
    if ctx.json:
        render.json_object(ctx.out, result)
    else:
        render_table(ctx.out, result)
    return exitcodes.SUCCESS


def _show_live(ctx: Context, inv: Invocation, interval: float) -> int:
    """Redraw the table every `interval` seconds until a key is pressed on stdin
    or Ctrl-C; either ends `top` with status 0 and no message."""
    import select
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd)
        while True:
            result = ctx.session.request("top", _top_args(inv))
            ctx.out.stdout.write(CLEAR_SCREEN)
            ctx.out.line(f"top: sorted by {result.get('sort', 'cpu')}, every {interval:g}s; "
                         "press any key to stop")
            render_table(ctx.out, result)
            ctx.out.stdout.flush()
            ready, _, _ = select.select([fd], [], [], interval)
            if ready:
                os.read(fd, 1024)
                return exitcodes.SUCCESS
    except KeyboardInterrupt:
        return exitcodes.SUCCESS
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run_top(ctx: Context, inv: Invocation) -> int:
    from unitmgr.shell.client import RemoteError
    from unitmgr.shell.runner import report_remote_error

    live = ctx.interactive and not ctx.json and not inv.option("once") and sys.stdin.isatty()
    try:
        if live:
            return _show_live(ctx, inv, inv.option("interval") or 2.0)
        return _show_once(ctx, inv)
    except RemoteError as err:
        return report_remote_error(ctx, inv, err)


TOP_COMMAND = Command(
    "top", "show the running units' CPU, memory, tasks, open files and I/O",
    options=(
        Option(("-s", "--sort"), "sort", "order by this column, largest first (name: A to Z)",
               metavar="KEY", choices=SORT_KEYS),
        Option(("-a", "--all"), "all", "include inactive units"),
        Option(("-d", "--interval"), "interval",
               "seconds between refreshes in the interactive shell (default 2)",
               metavar="SECONDS", parse=_interval),
        Option(("--once",), "once", "print the table once, also in the interactive shell"),
    ),
    run_local=run_top,
    description="CPU% is the share of one CPU since the previous sample, so a unit "
                "using two CPUs shows 200. MEMORY is the proportional set size where "
                "readable (the resident set size otherwise); PEAK is the highest value "
                "seen since the unit started. In the interactive shell the table "
                "refreshes until a key or Ctrl-C is pressed.")
