"""The unit-file commands of unitsh: verify, cat, show, enable, disable, is-enabled, list-unit-files.

Declared here and added to the registry in commands.py (`UNIT_FILE_COMMANDS`).
Output and exit statuses follow systemctl and systemd-analyze:

- `verify FILE...`: the report on stderr; exit 1 when a file would not load
- `cat UNIT...`: each file preceded by `# PATH`; exit 1 when a unit has no file
- `show UNIT... [-p KEY[,KEY]]... [--value] [-P KEY] [-a]`: `Key=Value` lines
- `enable`/`disable UNIT...`: "Created symlink A → B." / "Removed "A"." on stderr
- `list-unit-files [PATTERN...] [--state=STATE,...]`: a UNIT FILE / STATE
  table and "N unit files listed.", read from the directories as they are now
- `is-enabled UNIT...`: one word per unit. The exit status is 0 if a unit is
  enabled, static, indirect or an alias, else 4 if a unit is not found, else 1
"""

from __future__ import annotations

import argparse
import fnmatch
import os
from typing import TYPE_CHECKING, Any

from unitmgr.shell import exitcodes, render
from unitmgr.shell.commandspec import (
    JOB_TIMEOUT,
    Command,
    Invocation,
    Option,
    Positional,
    UsageError,
)

if TYPE_CHECKING:
    from unitmgr.shell.context import Context

# is-enabled words that exit 0 (manager/enablement.py has the same list; the
# shell imports nothing from the manager but its wire format).
ENABLED_STATES = frozenset({"enabled", "enabled-runtime", "static", "indirect", "alias",
                            "generated", "transient"})

# Properties `show -p` completion offers; show accepts any name.
SHOW_PROPERTIES = (
    "Id", "Names", "Description", "LoadState", "ActiveState", "SubState", "Result", "MainPID",
    "ExecMainPID", "ExecMainStatus", "NRestarts", "InvocationID", "FragmentPath", "DropInPaths",
    "UnitFileState", "Type", "Restart", "RestartUSec", "TimeoutStartUSec", "TimeoutStopUSec",
    "ExecStart", "Environment", "WorkingDirectory", "Wants", "Requires", "After", "Before",
)  # fmt: skip


# The words is-enabled and list-unit-files print.
FILE_STATES = ("enabled", "enabled-runtime", "linked", "linked-runtime", "alias", "masked",
               "masked-runtime", "static", "indirect", "disabled", "generated", "transient", "bad")


def _file_state_list(text: str) -> list[str]:
    states = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [state for state in states if state not in FILE_STATES]
    if not states or unknown:
        raise argparse.ArgumentTypeError(f"invalid unit file state '{text}': use one or more of "
                                         f"{', '.join(FILE_STATES)}, separated by commas")
    return states


def _property_list(text: str) -> list[str]:
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise argparse.ArgumentTypeError(f"invalid property list '{text}': name properties "
                                         "such as MainPID or ActiveState,SubState")
    return names


# -- arguments -----------------------------------------------------------------

def _units_args(inv: Invocation) -> dict[str, Any]:
    return {"units": inv.args}


def _link_args(inv: Invocation) -> dict[str, Any]:
    return {"units": inv.args, "now": bool(inv.option("now"))}


def _show_args(inv: Invocation) -> dict[str, Any]:
    groups = [*(inv.option("property") or []), *(inv.option("value_property") or [])]
    properties = [name for group in groups for name in group]
    args: dict[str, Any] = {"units": inv.args, "all": bool(inv.option("all"))}
    if properties:
        args["properties"] = properties
    return args


def _unit_file_args(inv: Invocation) -> dict[str, Any]:
    states = [state for group in inv.option("state") or [] for state in group]
    return {"states": states} if states else {}


# -- output --------------------------------------------------------------------

def _show_cat(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    first = True
    for unit in result.get("units", []):
        for file in unit.get("files", []):
            if not first:
                ctx.out.line()
            first = False
            ctx.out.line(f"# {render.visible(file.get('path', ''))}")
            text = file.get("text", "")
            lines = (text[:-1] if text.endswith("\n") else text).split("\n")
            ctx.out.line("\n".join(render.visible(line) for line in lines))


def _show_properties(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    value_only = bool(inv.option("value") or inv.option("value_property"))
    for index, unit in enumerate(result.get("units", [])):
        if index:
            ctx.out.line()
        for key, value in unit.get("properties", []):
            text = render.visible(str(value))
            ctx.out.line(text if value_only else f"{key}={text}")


def _show_changes(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    for line in result.get("lines", []):
        ctx.out.error(render.visible(line))
    if result.get("jobs"):  # --now
        render.jobs(ctx.out, {"jobs": result["jobs"]}, {})


def _show_words(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    if inv.option("quiet"):
        return
    for unit in result.get("units", []):
        ctx.out.line(unit.get("state", ""))


def _matching_files(inv: Invocation, result: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the unit files whose name matches a PATTERN (shell globs, as systemctl), sorted by name."""
    units = sorted(result.get("units", []), key=lambda unit: unit.get("name", ""))
    if not inv.args:
        return units
    return [unit for unit in units if any(fnmatch.fnmatchcase(unit.get("name", ""), p) for p in inv.args)]


def _show_unit_files(ctx: Context, inv: Invocation, result: dict[str, Any]) -> None:
    units = _matching_files(inv, result)
    width = max([len("UNIT FILE"), *(len(unit.get("name", "")) for unit in units)])
    ctx.out.line(f"{'UNIT FILE':<{width}} STATE")
    for unit in units:
        ctx.out.line(f"{render.visible(unit.get('name', '')):<{width}} {unit.get('state', '')}")
    ctx.out.line()
    ctx.out.line(f"{len(units)} unit files listed.")


# -- exit statuses -------------------------------------------------------------

def _changes_exit(inv: Invocation, result: dict[str, Any]) -> int:
    jobs_ok = all(job.get("result") in render.JOB_SUCCESS for job in result.get("jobs", []))
    return exitcodes.SUCCESS if result.get("ok", True) and jobs_ok else exitcodes.FAILURE


def _unit_files_exit(inv: Invocation, result: dict[str, Any]) -> int:
    # As systemctl 252's list-unit-files, exit 1 when no unit file matched.
    return exitcodes.SUCCESS if _matching_files(inv, result) else exitcodes.FAILURE


def _is_enabled_exit(inv: Invocation, result: dict[str, Any]) -> int:
    states = [unit.get("state") for unit in result.get("units", [])]
    if any(state in ENABLED_STATES for state in states):
        return exitcodes.SUCCESS
    return exitcodes.NO_SUCH_UNIT if "not-found" in states else exitcodes.FAILURE


# -- verify runs in the shell: relative paths mean different things locally and remotely --

class MissingFileError(UsageError):
    """A usage error for a verify argument that names no file. Its exit status is 1, as for any
    file that verify cannot read."""

    status = 1


def _missing_file_error(path: str, local: bool) -> str:
    """Return the error for a verify argument that looks like a unit name, not a path, else ""."""
    if "/" in path or "." in os.path.basename(path) or (local and os.path.exists(path)):
        return ""
    return (f"verify: no file '{path}'; give the unit file's path, "
            f"e.g. units/{path}.service")


def _run_verify(ctx: Context, inv: Invocation) -> int:
    from unitmgr.shell.client import RemoteError
    from unitmgr.shell.runner import report_remote_error, report_usage_error

    local = not ctx.session.label
    for path in inv.args:
        message = _missing_file_error(path, local)
        if message:
            return report_usage_error(ctx, MissingFileError(message))
    files = [os.path.abspath(f) if local else f for f in inv.args]
    try:
        result = ctx.session.request("verify", {"files": files})
    except RemoteError as err:
        return report_remote_error(ctx, inv, err)
    if ctx.json:
        render.json_object(ctx.out, result)
    else:
        for line in result.get("lines", []):
            ctx.out.error(render.visible(line))
    return exitcodes.FAILURE if result.get("errors") else exitcodes.SUCCESS


_UNITS = Positional("UNIT", "+", complete="units")
_QUIET = Option(("-q", "--quiet"), "quiet", "print nothing; only the exit status tells")
_NOW = Option(("--now",), "now", "also start the units (enable) or stop them (disable)")

UNIT_FILE_COMMANDS: tuple[Command, ...] = (
    Command(
        "verify", "check unit files on the manager's host, as systemd-analyze verify",
        positional=Positional("FILE", "+"), run_local=_run_verify,
        description="Problems go to stderr as FILE:LINE: [Section] Key=: problem. Exit "
                    "status 1 when a file would not load. Over SSH the files are read on "
                    "the remote host; a relative path starts at the manager's home there."),
    Command(
        "cat", "print the unit files and drop-ins of units, each after a # PATH line",
        positional=_UNITS, control="cat", build_args=_units_args, show=_show_cat),
    Command(
        "show", "print the properties of units as Key=Value lines (systemctl show)",
        positional=_UNITS,
        options=(
            Option(("-p", "--property"), "property", "only these properties (repeatable)",
                   metavar="NAME[,NAME...]", parse=_property_list, repeat=True,
                   suggestions=SHOW_PROPERTIES),
            Option(("--value",), "value", "print only the values, not the names"),
            Option(("-P",), "value_property", "only these properties, values only "
                   "(as -p NAME --value)", metavar="NAME[,NAME...]", parse=_property_list,
                   repeat=True, suggestions=SHOW_PROPERTIES),
            Option(("-a", "--all"), "all", "also print properties that are empty"),
        ),
        control="show", build_args=_show_args, show=_show_properties,
        description="Time spans use systemd's names and format (TimeoutStopUSec=1min 30s). "
                    "Without -p, empty properties are left out unless -a is given."),
    Command(
        "enable", "link units where their [Install] section says, as systemctl enable",
        positional=_UNITS, options=(_NOW,), control="enable", build_args=_link_args,
        show=_show_changes, exit_status=_changes_exit, timeout=JOB_TIMEOUT,
        description="Links go into the first unit directory of the manager. They take effect "
                    "at the manager's next start; --now also starts the units."),
    Command(
        "disable", "remove the links that enable created for units",
        positional=_UNITS, options=(_NOW,), control="disable", build_args=_link_args,
        show=_show_changes, exit_status=_changes_exit, timeout=JOB_TIMEOUT),
    Command(
        "list-unit-files", "list the unit files on disk and whether each is enabled",
        positional=Positional("PATTERN", "*"),
        options=(Option(("--state",), "state", "only unit files in these states (enabled, disabled, ...)",
                        metavar="STATE[,STATE...]", parse=_file_state_list, repeat=True,
                        suggestions=FILE_STATES),),
        control="list-unit-files", build_args=_unit_file_args, show=_show_unit_files,
        exit_status=_unit_files_exit,
        description="Reads the unit directories as they are now, so a file added since the "
                    "last daemon-reload is listed. PATTERN is a shell glob such as 'worker@*'."),
    Command(
        "is-enabled", "print whether units are enabled (enabled, disabled, static, ...)",
        positional=_UNITS, options=(_QUIET,), control="is-enabled", build_args=_units_args,
        show=_show_words, exit_status=_is_enabled_exit),
)
