"""The registry of unitsh commands: every command is declared here once.

Parsing (`commandspec.parse_words`), `help`, completion and the generated
documentation all read `COMMANDS`. A command either sends one control
command (`control`, with arguments from `build_args`) and shows the result
with `show`, or runs in the shell itself (`run_local`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from unitmgr.manager import protocol
from unitmgr.shell import exitcodes, render
from unitmgr.shell.commandspec import (
    JOB_TIMEOUT,
    Command,
    Invocation,
    NotAvailableError,
    Option,
    Positional,
    UsageError,
)
from unitmgr.shell.top import TOP_COMMAND
from unitmgr.shell.unitfiles import UNIT_FILE_COMMANDS

if TYPE_CHECKING:
    from unitmgr.shell.context import Context

# Values `list --state=` accepts: load, active and sub states.
UNIT_STATES = (
    "loaded", "not-found", "bad-setting", "error", "masked",
    "active", "reloading", "inactive", "failed", "activating", "deactivating", "maintenance",
    "running", "exited", "dead", "condition", "start-pre", "start", "start-post",
    "auto-restart", "reload", "stop", "stop-sigterm", "stop-sigkill", "stop-post",
    "final-sigterm", "final-sigkill", "cleaning",
)

UNIT_TYPES = ("service", "socket", "target", "timer", "path", "slice", "scope", "mount",
              "automount", "swap", "device")


class ShellExit(Exception):
    """Raised by `exit` to end the shell or the script."""


# -- option value parsers ------------------------------------------------------

def _line_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"invalid line count '{text}': use a whole number, 0 or more (0 means all)")
    return value


def _name_list(text: str, allowed: tuple[str, ...], kind: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    for name in names:
        if name not in allowed:
            raise argparse.ArgumentTypeError(
                f"unknown {kind} '{name}'; use one of: {', '.join(allowed)}")
    return names


def _state_list(text: str) -> list[str]:
    return _name_list(text, UNIT_STATES, "state")


def _type_list(text: str) -> list[str]:
    return _name_list(text, UNIT_TYPES, "unit type")


# -- arguments sent to the manager ---------------------------------------------

def _list_args(inv: Invocation) -> dict[str, Any]:
    states = [state for group in inv.option("state") or [] for state in group]
    if inv.option("failed"):
        states.append("failed")
    types = [unit_type for group in inv.option("type") or [] for unit_type in group]
    args: dict[str, Any] = {"all": bool(inv.option("all")), "table": True}
    if states:
        args["states"] = states
    if types:
        args["types"] = types
    return args


def _status_args(inv: Invocation) -> dict[str, Any]:
    lines = inv.option("lines")
    return {"units": inv.args, "lines": 10 if lines is None else lines}


def _state_args(inv: Invocation) -> dict[str, Any]:
    return {"units": inv.args, "lines": 0}


def _job_args(inv: Invocation) -> dict[str, Any]:
    return {"units": inv.args, "no_block": bool(inv.option("no_block"))}


def _logs_args(inv: Invocation) -> dict[str, Any]:
    units = [*inv.args, *(inv.option("unit") or [])]
    if not units:
        raise UsageError("logs: name at least one unit, e.g. 'logs web' or 'logs -u web'")
    args = {"units": units, "lines": inv.option("lines") or 0,
            "raw": inv.option("output") == "raw"}
    # The manager parses times and patterns, so they are sent as typed.
    for name in ("since", "until", "grep", "stream"):
        if inv.option(name):
            args[name] = inv.option(name)
    return args


def _kill_args(inv: Invocation) -> dict[str, Any]:
    return {"units": inv.args, "signal": inv.option("signal") or "SIGTERM",
            "whom": inv.option("whom") or "all"}


# -- showing results -----------------------------------------------------------

def _show_nothing(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    """Print nothing on success, as systemctl does for kill, reset-failed and daemon-reload."""

def _show_status(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    has_log = any(unit.get("log") for unit in result.get("units", []))
    render.status(ctx.out, result, ctx.session.host if has_log else "")


def _list_result(result: dict[str, Any]) -> dict[str, Any]:
    # The manager sends a table, but --json has always printed one object per unit.
    return {"units": protocol.expand_table(result, "units")}


def _show_list(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    render.unit_list(ctx.out, result, show_all=bool(inv.option("all")),
                     legend=not inv.option("no_legend"), plain=bool(inv.option("plain")))


def _show_logs(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    from unitmgr.shell.logpages import omitted_notice

    mode = inv.option("output") or "short"
    records = result.get("records", [])
    notice = omitted_notice(result, following=False)
    if notice:
        ctx.out.error(notice)
    host = ctx.session.host if mode.startswith("short") and records else ""
    render.logs(ctx.out, records, mode, host)


def _show_jobs(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    failed = [job["unit"] for job in result.get("jobs", [])
              if job.get("result") == "failed" and job.get("unit")]
    unit_results = _unit_results(ctx, failed) if failed else {}
    render.jobs(ctx.out, result, unit_results)


def _unit_results(ctx: Context, units: list[str]) -> dict[str, str]:
    """Ask for the Result= of failed units, to say why their jobs failed."""
    from unitmgr.shell.client import ClientError, RemoteError

    try:
        status = ctx.session.request("status", {"units": units, "lines": 0})
    except (ClientError, RemoteError):
        return {}  # the generic "Job for X failed." still reports the failure
    return {unit["name"]: unit.get("result", "") for unit in status.get("units", [])}


def _show_states(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    if not inv.option("quiet"):
        render.unit_states(ctx.out, result)


# -- exit statuses -------------------------------------------------------------

def _status_exit(inv: Invocation, result: dict[str, Any]) -> int:
    """Return the first non-zero per-unit status: 4 not found, 3 not active, else 0."""
    for unit in result.get("units", []):
        if render.is_missing(unit):
            return exitcodes.NO_SUCH_UNIT
        if unit.get("active_state") not in ("active", "reloading"):
            return exitcodes.NOT_ACTIVE
    return exitcodes.SUCCESS


def _is_active_exit(inv: Invocation, result: dict[str, Any]) -> int:
    states = {unit.get("active_state") for unit in result.get("units", [])}
    return exitcodes.SUCCESS if states & {"active", "reloading"} else exitcodes.NOT_ACTIVE


def _is_failed_exit(inv: Invocation, result: dict[str, Any]) -> int:
    states = {unit.get("active_state") for unit in result.get("units", [])}
    return exitcodes.SUCCESS if "failed" in states else exitcodes.FAILURE


def _jobs_exit(inv: Invocation, result: dict[str, Any]) -> int:
    ok = all(job.get("result") in render.JOB_SUCCESS for job in result.get("jobs", []))
    return exitcodes.SUCCESS if ok else exitcodes.FAILURE


# -- commands the shell runs itself --------------------------------------------

def _run_logs(ctx: Context, inv: Invocation) -> int:
    # follow.py is imported here, so that other one-shot commands do not load it.
    from unitmgr.shell.follow import run_logs

    return run_logs(ctx, inv)


def _run_status(ctx: Context, inv: Invocation) -> int:
    from unitmgr.shell.systemstatus import run_status

    return run_status(ctx, inv)


def _run_help(ctx: Context, inv: Invocation) -> int:
    from unitmgr.shell import helptext

    if inv.args:
        command = REGISTRY.get(inv.args[0])
        if command is None:
            raise UsageError(f"help: unknown command '{inv.args[0]}'; "
                             "run 'help' to list the commands")
        lines = helptext.command_help(command)
    else:
        lines = helptext.overview(COMMANDS)
    if ctx.json:
        render.json_object(ctx.out, helptext.as_json(COMMANDS, inv.args))
    else:
        for text in lines:
            ctx.out.line(text)
    return exitcodes.SUCCESS


def _run_quit(ctx: Context, inv: Invocation) -> int:
    raise ShellExit()


def _run_exit(ctx: Context, inv: Invocation) -> int:
    """Stop every unit and the manager, as `systemctl --user exit` does."""
    if ctx.interactive and not inv.option("yes"):
        # In a shell, `exit` usually means "leave": make sure stopping everything is meant.
        try:
            answer = input("Stop the manager and all its units? [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            ctx.out.line("Not stopped. Use 'quit' or Ctrl-D to leave the shell.")
            return exitcodes.SUCCESS
    ctx.session.request("exit", {})
    if not ctx.json:
        ctx.out.error("The manager is stopping all units and exiting.")
    else:
        render.json_object(ctx.out, {"stopping": True})
    if ctx.interactive:
        raise ShellExit()
    return exitcodes.SUCCESS


def _show_system_state(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    if ctx.json:
        render.json_object(ctx.out, result)
    elif not inv.option("quiet"):
        ctx.out.line(result.get("state", "unknown"))


def _system_state_exit(inv: Invocation, result: dict[str, Any]) -> int:
    return exitcodes.SUCCESS if result.get("state") == "running" else exitcodes.FAILURE


# -- scale and list-sockets (docs/sockets.md) ---------------------------------

def _scale_args(inv: Invocation) -> dict[str, Any]:
    if len(inv.args) != 2:
        raise UsageError("scale: expected TEMPLATE COUNT, e.g. 'scale web 4', 'scale web +1' or "
                         "'scale web -1'")
    return {"unit": inv.args[0], "count": inv.args[1]}


def _instance_count(count: Any) -> str:
    return f"{count} instance" if count == 1 else f"{count} instances"


def _show_scale(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    previous, count = result.get("previous"), result.get("count")
    if previous == count:
        ctx.out.line(f"{result.get('unit')}: {_instance_count(count)}, unchanged")
    else:
        ctx.out.line(f"{result.get('unit')}: scaled from {_instance_count(previous)} to {count}")
    _show_jobs(ctx, inv, result)


def _show_sockets(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    render.socket_list(ctx.out, result, show_all=bool(inv.option("all")))


# -- the registry --------------------------------------------------------------

_UNITS_REQUIRED = Positional("UNIT", "+", complete="units")
_NO_BLOCK = Option(("--no-block",), "no_block",
                   "return once the jobs are queued, without waiting for them to finish")
_QUIET = Option(("-q", "--quiet"), "quiet", "print nothing; only the exit status tells")


def _job_command(name: str, summary: str) -> Command:
    return Command(
        name, summary, positional=_UNITS_REQUIRED, options=(_NO_BLOCK,), control=name,
        build_args=_job_args, show=_show_jobs, exit_status=_jobs_exit,
        not_found_status=exitcodes.NOT_INSTALLED, timeout=JOB_TIMEOUT,
        description="Silent on success. A failed job is reported on stderr with "
                    "where to look next.")


COMMANDS: tuple[Command, ...] = (
    Command(
        "list", "list units and their states", aliases=("list-units",),
        options=(
            Option(("-a", "--all"), "all", "include inactive units"),
            Option(("--failed",), "failed", "only failed units (as --state=failed)"),
            Option(("--state",), "state", "only units in these load, active or sub states",
                   metavar="STATE[,STATE...]", parse=_state_list, repeat=True,
                   suggestions=UNIT_STATES),
            Option(("-t", "--type"), "type", "only units of these types",
                   metavar="TYPE[,TYPE...]", parse=_type_list, repeat=True,
                   suggestions=UNIT_TYPES),
            Option(("--no-legend",), "no_legend",
                   "print only the unit rows: no header, legend or count"),
            Option(("--plain",), "plain", "no colour and no column marking failed units"),
        ),
        control="list", build_args=_list_args, show=_show_list, convert_result=_list_result),
    Command(
        "status", "show the state, processes and latest log lines of units",
        positional=Positional("UNIT", "*", complete="units"),
        options=(Option(("-n", "--lines"), "lines", "how many log lines to show (default 10)",
                        metavar="N", parse=_line_count),
                 Option(("--no-pager",), "no_pager", "accepted for systemctl habits; unitsh never pages"),
                 Option(("-l", "--full"), "full", "accepted for systemctl habits; lines are never cut")),
        control="status", build_args=_status_args, show=_show_status,
        exit_status=_status_exit, not_found_status=exitcodes.NO_SUCH_UNIT,
        run_local=_run_status),  # without a unit: the manager's summary, shell/systemstatus.py
    _job_command("start", "start units and wait until they are started"),
    _job_command("stop", "stop units and wait until they are stopped"),
    _job_command("restart", "stop and start units (start them if they are not running)"),
    _job_command("reload", "reload units: run ExecReload=, or send the reload signal (Type=notify-reload)"),
    _job_command("try-restart", "restart units that are running; leave the others stopped"),
    _job_command("reload-or-restart",
                 "reload running units that support reload; restart (or start) the others"),
    _job_command("try-reload-or-restart",
                 "as reload-or-restart, but only for running units; leave the others stopped"),
    Command(
        "kill", "send a signal to the processes of units",
        positional=_UNITS_REQUIRED,
        options=(
            Option(("-s", "--signal"), "signal", "the signal, as a name (TERM, SIGHUP) or a number "
                   "(default TERM)", metavar="SIGNAL", complete="signals"),
            Option(("--kill-whom",), "whom", "which processes: main, control or all (default all)",
                   metavar="WHOM", choices=("main", "control", "all")),
        ),
        control="kill", build_args=_kill_args, show=_show_nothing),
    Command(
        "reset-failed", "clear the failed state and the start limit of units (of all units without UNIT)",
        positional=Positional("UNIT", "*", complete="units"), control="reset-failed",
        build_args=lambda inv: {"units": inv.args}, show=_show_nothing),
    Command(
        "daemon-reload", "read all unit files again; running units keep running",
        control="daemon-reload", build_args=lambda inv: {}, show=_show_nothing,
        description="A changed unit uses its new definition from its next start or restart. "
                    "A unit whose file is gone keeps running until it is stopped."),
    Command(
        "is-active", "print whether units are active; exit 0 if any is",
        positional=_UNITS_REQUIRED, options=(_QUIET,), control="status",
        build_args=_state_args, show=_show_states, exit_status=_is_active_exit,
        not_found_status=exitcodes.NOT_ACTIVE),
    Command(
        "is-failed", "print whether units are failed; exit 0 if any is",
        positional=_UNITS_REQUIRED, options=(_QUIET,), control="status",
        build_args=_state_args, show=_show_states, exit_status=_is_failed_exit),
    Command(
        "logs", "show the output of units, oldest first (as journalctl -u)",
        positional=Positional("UNIT", "*", complete="units"),
        options=(
            Option(("-n", "--lines"), "lines", "show only the last N lines (default: all)",
                   metavar="N", parse=_line_count),
            Option(("-o", "--output"), "output", "output format", metavar="FORMAT",
                   choices=render.LOG_FORMATS, default="short"),
            Option(("-S", "--since"), "since",
                   "only lines written at or after TIME ('today', '10 min ago', "
                   "'2026-12-04 20:00', '@EPOCH'; write --since=-1h for a value starting "
                   "with '-')", metavar="TIME"),
            Option(("-U", "--until"), "until", "only lines written at or before TIME",
                   metavar="TIME"),
            Option(("-g", "--grep"), "grep",
                   "only lines matching the regular expression PATTERN (case-insensitive "
                   "unless it contains an upper-case letter)", metavar="PATTERN"),
            Option(("-f", "--follow"), "follow",
                   "after the last lines (10 without -n), print new lines as they arrive, "
                   "until Ctrl-C"),
            Option(("-u", "--unit"), "unit", "a unit to show, as with journalctl (repeatable)",
                   metavar="UNIT", repeat=True),
            Option(("--stream",), "stream", "only the lines of one stream", metavar="STREAM",
                   choices=("stdout", "stderr", "manager")),
        ),
        control="logs", build_args=_logs_args, show=_show_logs,
        run_local=_run_logs,  # -f subscribes to the log event stream: shell/follow.py
        description="Formats: short (journalctl's default), short-precise (with "
                    "microseconds), cat (text only), json (one object per line), raw "
                    "(the exact bytes the unit wrote)."),
    Command(
        "scale", "run instances 1 to N of a template NAME@.service (scale web 4, scale web +1)",
        positional=Positional("TEMPLATE COUNT", "+", complete="units"), control="scale",
        build_args=_scale_args, show=_show_scale, exit_status=_jobs_exit,
        not_found_status=exitcodes.NOT_INSTALLED, timeout=JOB_TIMEOUT,
        description="Starts NAME@1 to NAME@N and stops running instances above N; +K and -K step "
                    "the count. The manager keeps the count and applies it again after a restart."),
    Command(
        "list-sockets", "list the listening sockets of socket units and what they activate",
        options=(Option(("-a", "--all"), "all", "include inactive socket units"),),
        control="list-sockets", build_args=lambda inv: {"all": bool(inv.option("all"))},
        show=_show_sockets),
    Command(
        "help", "list the commands, or describe one",
        positional=Positional("COMMAND", "?", complete="commands"), run_local=_run_help),
    Command(
        "is-system-running", "print the manager's state: starting, running, degraded or stopping",
        options=(_QUIET,), control="is-system-running", build_args=lambda inv: {}, show=_show_system_state,
        exit_status=_system_state_exit,
        description="Exit status 0 only for 'running'; 'degraded' means some unit failed. "
                    "Usable as a container HEALTHCHECK."),
    Command(
        "exit", "stop all units and the manager (as systemctl --user exit)",
        options=(Option(("-y", "--yes"), "yes", "do not ask for confirmation in the interactive shell"),),
        run_local=_run_exit,
        description="In the interactive shell it asks first; use 'quit' to leave the shell only."),
    Command(
        "quit", "leave the shell (in a script: skip the remaining commands)",
        run_local=_run_quit),
    TOP_COMMAND,  # shell/top.py
    *UNIT_FILE_COMMANDS,  # shell/unitfiles.py: verify, cat, show, enable, disable, list-unit-files, is-enabled
)

REGISTRY: dict[str, Command] = {word: command for command in COMMANDS for word in command.words}

__all__ = ["COMMANDS", "REGISTRY", "ShellExit", "NotAvailableError", "UsageError"]
