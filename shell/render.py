"""All human-readable output of unitsh, in systemctl's and journalctl's shapes.

Every function takes an `Output` and a result dict shaped as docs/protocol.md
describes, and writes lines; nothing else in the shell prints. Text that
comes from units (log lines, descriptions, command lines) goes through
`visible()` in these modes so that control characters cannot drive the terminal.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from unitmgr.shell import humanize
from unitmgr.shell.limitlines import limit_lines
from unitmgr.shell.statusnames import describe_exit

GREEN = "\x1b[0;1;32m"
RED = "\x1b[0;1;31m"
RESET = "\x1b[0m"

LABEL_WIDTH = 12  # systemctl status right-aligns "Label:" in 12 columns
_INDENT = " " * (LABEL_WIDTH + 1)

# C0 controls except tab, DEL and C1 controls.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")


class Output:
    """The streams the shell writes to, and whether it uses colour (only on a terminal
    without NO_COLOR).

    A plain class rather than a dataclass, because importing dataclasses would cost
    every `unitsh -c` run several milliseconds."""

    def __init__(self, stdout: TextIO | None = None, stderr: TextIO | None = None,
                 color: bool = False, clock: Callable[[], float] = time.time):
        self.stdout = sys.stdout if stdout is None else stdout
        self.stderr = sys.stderr if stderr is None else stderr
        self.color = color
        self.clock = clock

    def line(self, text: str = "") -> None:
        print(text, file=self.stdout)

    def error(self, text: str) -> None:
        print(text, file=self.stderr)

    def data(self, chunk: bytes) -> None:
        """Write bytes unchanged to stdout, after any text already written."""
        self.stdout.flush()
        self.stdout.buffer.write(chunk)  # type: ignore[attr-defined]
        self.stdout.buffer.flush()  # type: ignore[attr-defined]

    def paint(self, text: str, colour: str | None) -> str:
        if not self.color or not colour:
            return text
        return f"{colour}{text}{RESET}"


def visible(text: str) -> str:
    """Replace control characters (other than tab) with `\\xNN` escapes."""
    return _CONTROL_RE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def json_object(out: Output, obj: dict[str, Any]) -> None:
    """Write one JSON object on one line (so several commands give JSON Lines)."""
    out.line(json.dumps(obj, ensure_ascii=False, sort_keys=True))


# -- status --------------------------------------------------------------------

_GLYPHS: dict[str, tuple[str, str | None]] = {
    "active": ("●", GREEN),
    "reloading": ("↻", GREEN),
    "refreshing": ("↻", GREEN),
    "activating": ("●", None),
    "deactivating": ("●", None),
    "failed": ("×", RED),
    "error": ("×", RED),
}


def _state_colour(active_state: str) -> str | None:
    return _GLYPHS.get(active_state, ("○", None))[1]


def glyph(out: Output, active_state: str) -> str:
    """Return the status bullet for a state, coloured when colour is on."""
    symbol, colour = _GLYPHS.get(active_state, ("○", None))
    return out.paint(symbol, colour)


def _label(name: str, value: str) -> str:
    return f"{name}:".rjust(LABEL_WIDTH) + " " + value


def _loaded_value(unit: dict[str, Any]) -> str:
    name, load = unit["name"], unit.get("load_state", "")
    reasons = {
        "not-found": f"Unit {name} not found.",
        "masked": f"Unit {name} is masked.",
        "bad-setting": f"Unit {name} has a bad unit file setting.",
        "error": unit.get("load_error") or f"Unit {name} failed to load.",
    }
    if load in reasons:
        return f"{load} (Reason: {visible(reasons[load])})"
    enablement = unit.get("enablement", "")
    details = [unit.get("fragment_path", ""), enablement]
    if enablement in ("enabled", "disabled"):
        # unitmgr reads no preset files, so no unit is enabled by preset.
        details.append(f"preset: {unit.get('preset') or 'disabled'}")
    return f"{load} ({'; '.join(visible(d) for d in details if d)})"


def _dropin_lines(paths: Iterable[str]) -> list[str]:
    by_dir: dict[str, list[str]] = {}
    for path in paths:
        directory, _, filename = path.rpartition("/")
        by_dir.setdefault(directory, []).append(filename)
    lines = []
    for index, (directory, names) in enumerate(by_dir.items()):
        label = "Drop-In:" if index == 0 else ""
        lines.append(label.rjust(LABEL_WIDTH) + " " + visible(directory))
        lines.append(_INDENT + "└─" + visible(", ".join(names)))
    return lines


def _active_value(out: Output, unit: dict[str, Any]) -> str:
    active, sub = unit.get("active_state", ""), unit.get("sub_state", "")
    text = active
    if sub and sub != active:
        text += f" ({sub})"
    result = unit.get("result", "")
    if result and result != "success":
        text += f" (Result: {result})"
    text = out.paint(text, _state_colour(active))
    since = unit.get("state_change_time")
    # An inactive unit that never ran shows no time, as systemctl does.
    never_ran = active == "inactive" and not unit.get("active_enter_time")
    if since and not never_ran:
        now = out.clock()
        text += f" since {humanize.timestamp(since)}; {humanize.relative(since, now)}"
    return text


def _condition_lines(out: Output, unit: dict[str, Any]) -> list[str]:
    """Return the `Condition:` (or `Assert:`) block of a unit whose last start a check stopped."""
    failures = unit.get("condition_failures") or []
    if not failures:
        return []
    label, what = ("Assert", "assertion") if failures[0].startswith("Assert") else (
        "Condition", "condition")
    text = f"start {what} failed"
    since = unit.get("state_change_time")
    if since:
        text += f" at {humanize.timestamp(since)}; {humanize.relative(since, out.clock())}"
    lines = [_label(label, text)]
    for index, failure in enumerate(failures):
        branch = "└─" if index == len(failures) - 1 else "├─"
        lines.append(f"{_INDENT}{branch} {visible(failure)} was not met")
    return lines


def _crash_loop_line(unit: dict[str, Any]) -> list[str]:
    """Return the `Restart:` line shown while crash-loop damping delays the pending restart."""
    damping = unit.get("crash_loop")
    if not damping:
        return []
    return [_label("Restart", f"delayed {damping['delay']:g}s after {damping['quick_exits']} quick exits "
                              "in a row (crash-loop damping)")]


def _control_lines(unit: dict[str, Any]) -> list[str]:
    lines = []
    for proc in unit.get("control_processes") or []:
        command = visible(proc.get("command", ""))
        if proc.get("code"):
            exit_text = describe_exit(proc["code"], proc.get("status"), proc.get("status_name", ""))
            value = f"{proc['pid']} {proc.get('setting', '')}={command} ({exit_text})"
            lines.append(_label("Process", value))
        else:
            lines.append(_label("Cntrl PID", f"{proc['pid']} ({command})"))
    return lines


def _main_pid_line(unit: dict[str, Any]) -> list[str]:
    pid = unit.get("main_pid") or 0
    if pid:
        comm = unit.get("main_comm", "")
        return [_label("Main PID", f"{pid} ({visible(comm)})" if comm else str(pid))]
    last = unit.get("exec_main")
    if last and last.get("pid"):
        exit_text = describe_exit(last.get("code", ""), last.get("status"),
                                  last.get("status_name", ""))
        return [_label("Main PID", f"{last['pid']} ({exit_text})")]
    return []


def _resource_lines(unit: dict[str, Any]) -> list[str]:
    lines = []
    if unit.get("status_text"):
        lines.append(_label("Status", f'"{visible(unit["status_text"])}"'))
    # A stopped unit has no processes to count; systemctl shows no Tasks: then.
    stopped = unit.get("active_state") in ("inactive", "failed") and not unit.get("tasks")
    if unit.get("tasks") is not None and not stopped:
        limit = unit.get("tasks_max")
        lines.append(_label("Tasks", f"{unit['tasks']} (limit: {limit})" if limit
                            else str(unit["tasks"])))
    memory = unit.get("memory_bytes")
    if memory is not None:
        extras = []
        if unit.get("memory_max"):
            available = max(unit["memory_max"] - memory, 0)
            extras.append(f"max: {humanize.size(unit['memory_max'])}")
            extras.append(f"available: {humanize.size(available)}")
        if unit.get("memory_peak"):
            extras.append(f"peak: {humanize.size(unit['memory_peak'])}")
        suffix = f" ({' '.join(extras)})" if extras else ""
        lines.append(_label("Memory", humanize.size(memory) + suffix))
    if unit.get("cpu_seconds") is not None:
        lines.append(_label("CPU", humanize.cpu_time(unit["cpu_seconds"])))
    lines += limit_lines(unit, _label)  # each resource limit and who enforces it: limitlines.py
    return lines


def _process_tree(unit: dict[str, Any]) -> list[str]:
    processes = unit.get("processes") or []
    if not processes:
        return []
    pids = {proc["pid"] for proc in processes}
    children: dict[int, list[dict[str, Any]]] = {}
    roots = []
    for proc in processes:
        if proc.get("ppid") in pids and proc.get("ppid") != proc["pid"]:
            children.setdefault(proc["ppid"], []).append(proc)
        else:
            roots.append(proc)
    lines = [_label("Processes", unit["name"])]

    def add(procs: list[dict[str, Any]], prefix: str) -> None:
        for index, proc in enumerate(procs):
            last = index == len(procs) - 1
            lines.append(f"{_INDENT}{prefix}{'└─' if last else '├─'}"
                         f"{proc['pid']} {visible(proc.get('cmdline', ''))}")
            add(children.get(proc["pid"], []), prefix + ("  " if last else "│ "))

    add(roots, "")
    return lines


def status_lines(out: Output, unit: dict[str, Any], host: str) -> list[str]:
    """Return the `status` block of one unit (header, fields, processes, log)."""
    description = unit.get("description", "")
    header = f"{glyph(out, unit.get('active_state', ''))} {unit['name']}"
    if description:
        header += f" - {visible(description)}"
    lines = [header, _label("Loaded", _loaded_value(unit))]
    if unit.get("load_error") and unit.get("load_state") != "error":
        lines.append(_INDENT + visible(unit["load_error"]))
    lines += _dropin_lines(unit.get("dropin_paths") or [])
    lines.append(_label("Active", _active_value(out, unit)))
    lines += _condition_lines(out, unit)  # the Condition*=/Assert*= that stopped the last start
    lines += _crash_loop_line(unit)
    for index, doc in enumerate(unit.get("documentation") or []):
        lines.append(_label("Docs", visible(doc)) if index == 0 else _INDENT + visible(doc))
    lines += _control_lines(unit)
    lines += _main_pid_line(unit)
    lines += _socket_lines(unit)  # socket units (docs/sockets.md)
    lines += _resource_lines(unit)
    lines += _process_tree(unit)
    records = unit.get("log") or []
    if records:
        lines.append("")
        lines += [log_line(record, host) for record in records]
    return lines


def _socket_lines(unit: dict[str, Any]) -> list[str]:
    """Return systemctl's Triggers:, Listen: and Accepted: lines of a socket unit."""
    if "listen" not in unit:
        return []
    lines = [_label("Triggers", visible(name)) for name in unit.get("triggers") or []]
    for index, entry in enumerate(unit["listen"]):
        text = f"{visible(entry['listen'])} ({entry['type']})"
        lines.append(_label("Listen", text) if index == 0 else _INDENT + text)
    if unit.get("accept"):
        lines.append(_label("Accepted", f"{unit.get('accepted', 0)}; Connected: {unit.get('connections', 0)};"))
    if unit.get("socket_error"):
        lines.append(_INDENT + visible(unit["socket_error"]))
    return lines


def socket_list(out: Output, result: dict[str, Any], show_all: bool) -> None:
    """Write a `systemctl list-sockets` table and its count."""
    rows = [(visible(s["listen"]), s["type"], visible(s["unit"]), visible(s["activates"]))
            for s in result.get("sockets", [])]
    hint = "" if show_all else " Pass --all to see inactive socket units, too."
    if not rows:
        out.line(f"0 sockets listed.{hint}")
        return
    headers = ("LISTEN", "TYPE", "UNIT", "ACTIVATES")
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out.line(" ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in rows:
        out.line(" ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    out.line()
    out.line(f"{len(rows)} sockets listed.{hint}")


def is_missing(unit: dict[str, Any]) -> bool:
    """Return True where systemctl prints "could not be found": no unit file and no state."""
    return unit.get("load_state") == "not-found" and unit.get("active_state") in (
        "inactive", "", None)


def status(out: Output, result: dict[str, Any], host: str) -> None:
    """Write `status` output: one block per unit, blank lines between them, and
    "could not be found" and warnings on stderr."""
    first = True
    for unit in result.get("units", []):
        if is_missing(unit):
            out.error(f"Unit {unit['name']} could not be found.")
            continue
        if not first:
            out.line()
        first = False
        for text in status_lines(out, unit, host):
            out.line(text)
        for warning in unit.get("warnings") or []:
            out.error(f"Warning: {visible(warning)}")
        if unit.get("changed_on_disk"):  # supervision: daemon-reload (manager/unitbase.py)
            out.error(changed_on_disk_warning(unit["name"]))
        lost = unit.get("log_write_errors") or 0
        if lost:
            out.error(f"Warning: {lost} bytes of output of {unit['name']} could not be "
                      "written to its log.")
        reopened = unit.get("log_reopened") or 0
        if reopened:
            out.error(f"Warning: the log file of {unit['name']} was deleted or moved "
                      f"{reopened} time(s); logging went on in a new file.")


# -- list ----------------------------------------------------------------------

_LEGEND = (
    "LOAD   = whether the unit file was loaded without errors",
    "ACTIVE = the high-level state: active, inactive, failed, activating, ...",
    "SUB    = the detailed state, which depends on the unit type",
)


def unit_list(out: Output, result: dict[str, Any], show_all: bool, legend: bool = True,
              plain: bool = False) -> None:
    """Write a `systemctl list-units` table with its legend and count.

    Without `legend` (--no-legend) only the unit rows are written. With `plain`
    (--plain) the rows have no colour and no ● column, as systemctl --plain."""
    units = result.get("units", [])
    hint = "" if show_all else " Pass --all to see inactive units, too."
    if not units:
        if legend:
            out.line(f"0 loaded units listed.{hint}")
        return
    headers = ("UNIT", "LOAD", "ACTIVE", "SUB")
    rows = [(visible(u["name"]), u.get("load_state", ""), u.get("active_state", ""),
             u.get("sub_state", "")) for u in units]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    if legend:
        out.line(("" if plain else "  ")
                 + " ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
                 + " DESCRIPTION")
    for unit, row in zip(units, rows, strict=True):
        if plain:
            out.line(" ".join(text.ljust(width) for text, width in zip(row, widths, strict=True))
                     + " " + visible(unit.get("description", "")))
        else:
            out.line(_list_row(out, unit, row, widths))
    if not legend:
        return
    out.line()
    for text in _LEGEND:
        out.line(text)
    out.line()
    out.line(f"{len(units)} loaded units listed.{hint}")


def _list_row(out: Output, unit: dict[str, Any], row: tuple[str, ...], widths: list[int]) -> str:
    bad_load = unit.get("load_state") not in ("loaded", None)
    failed = unit.get("active_state") == "failed"
    marker = out.paint("●", RED) + " " if (bad_load or failed) else "  "
    cells = [text.ljust(width) for text, width in zip(row, widths, strict=True)]
    if bad_load:
        cells[1] = out.paint(cells[1], RED)
    if failed:
        cells[2], cells[3] = out.paint(cells[2], RED), out.paint(cells[3], RED)
    return marker + " ".join(cells) + " " + visible(unit.get("description", ""))


# -- logs ----------------------------------------------------------------------

LOG_FORMATS = ("short", "short-precise", "cat", "json", "raw")


def log_line(record: dict[str, Any], host: str, precise: bool = False) -> str:
    """Format one record as journalctl -o short: `Dec 04 20:00:01 host unit[pid]: text`."""
    stamp = humanize.journal_time(record.get("time", 0.0), precise)
    # SyslogIdentifier= (or the process name), as journalctl shows it; older managers send none.
    source = record.get("identifier") or record.get("unit", "")
    if record.get("pid"):
        source += f"[{record['pid']}]"
    return f"{stamp} {host} {source}: {visible(record.get('text', ''))}"


def logs(out: Output, records: list[dict[str, Any]], mode: str, host: str) -> None:
    """Write log records in one of LOG_FORMATS."""
    if mode == "raw":
        for record in records:
            chunk = base64.b64decode(record.get("raw", ""))
            out.data(chunk if record.get("partial") else chunk + b"\n")
        return
    if mode == "json":
        for record in records:
            out.line(json.dumps(record, ensure_ascii=False, sort_keys=True))
        return
    if mode == "cat":
        for record in records:
            out.line(record.get("text", ""))
        return
    if not records:
        out.line("-- No entries --")
    for record in records:
        out.line(log_line(record, host, precise=mode == "short-precise"))


# -- jobs, states --------------------------------------------------------------

# "queued" is what the manager returns for --no-block, before the job has run.
JOB_SUCCESS = frozenset({"done", "skipped", "queued"})

# The reason clause of "Job for X failed because ...", by the unit's Result=.
_FAILURE_REASONS = {
    "exit-code": "the control process exited with error code",
    "timeout": "a timeout was exceeded",
    "signal": "a fatal signal was delivered to the control process",
    "core-dump": "the control process was killed and dumped core",
    "watchdog": "the service missed its watchdog deadline",
    "start-limit-hit": "start of the service was attempted too often",
    "protocol": "the service did not complete the start-up its Type= requires",
    "resources": "its environment could not be set up (directory, file or fork failure)",
    "oom-kill": "a process was killed by the out-of-memory killer",
}


def _details_hint(unit: str) -> str:
    return (f"See \"unitsh -c 'status {unit}'\" and \"unitsh -c 'logs {unit}'\" "
            "for details.")


def job_failure(job: dict[str, Any], unit_result: str = "") -> str:
    """Return the stderr message for a job that did not succeed."""
    unit, outcome = job.get("unit", "?"), job.get("result", "")
    if outcome == "failed":
        reason = _FAILURE_REASONS.get(unit_result)
        head = f"Job for {unit} failed because {reason}." if reason else f"Job for {unit} failed."
    elif outcome == "timeout":
        head = f"Job for {unit} timed out."
    elif outcome == "canceled":
        return f"Job for {unit} canceled."
    elif outcome == "dependency":
        head = f"A dependency job for {unit} failed."
    else:
        head = f"Job for {unit} ended with result '{outcome}'."
    return f"{head}\n{_details_hint(unit)}"


def jobs(out: Output, result: dict[str, Any], unit_results: dict[str, str]) -> None:
    """Write nothing for successful jobs (as systemctl) and a message per failed one,
    after a warning per ordering cycle the manager had to break. A unit whose files
    changed on disk gets systemctl's daemon-reload warning."""
    for cycle in result.get("cycles") or []:
        units = " → ".join(str(name) for name in cycle)
        out.error(f"Warning: ordering cycle between {units}; "
                  "the manager ignored an ordering to break it.")
    for job in result.get("jobs", []):
        if job.get("changed_on_disk"):
            out.error(changed_on_disk_warning(job.get("unit", "")))
        if job.get("result") not in JOB_SUCCESS:
            out.error(job_failure(job, unit_results.get(job.get("unit", ""), "")))


def changed_on_disk_warning(unit: str) -> str:
    """Return systemctl's warning for a unit whose files changed since they were loaded."""
    return (f"Warning: The unit file, source configuration file or drop-ins of {visible(unit)} "
            "changed on disk. Run 'unitsh -c daemon-reload' to reload units.")


def unit_states(out: Output, result: dict[str, Any]) -> None:
    """Write each unit's active state, one per line (`is-active`, `is-failed`)."""
    for unit in result.get("units", []):
        state = "inactive" if is_missing(unit) else unit.get("active_state", "inactive")
        out.line(state)
