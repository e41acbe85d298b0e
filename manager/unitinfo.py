"""The control commands about unit files: verify, cat, show, enable, disable, is-enabled,
list-unit-files.

`CommandHandler.commands` (commands.py) maps each command to a method of
`UnitFileCommands`; the argument and result shapes are in docs/protocol.md.
Everything runs on the manager's host, so a remote `unitsh` checks and
enables the files where the manager runs.
"""

from __future__ import annotations

import asyncio
import os
import resource
from typing import TYPE_CHECKING, Any

from unitmgr.manager import protocol
from unitmgr.manager.enablement import Enablement
from unitmgr.manager.protocol import ProtocolError
from unitmgr.units.builtin import BUILTIN_PATH_PREFIX, BUILTIN_UNITS
from unitmgr.units.filesize import read_limited
from unitmgr.units.model import RLimit, Unit
from unitmgr.units.showformat import unit_properties
from unitmgr.units.verify import verify_files

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager

# Limit*= directive name to the resource module's constant.
_RLIMITS = {
    "LimitCPU": "RLIMIT_CPU", "LimitFSIZE": "RLIMIT_FSIZE", "LimitDATA": "RLIMIT_DATA",
    "LimitSTACK": "RLIMIT_STACK", "LimitCORE": "RLIMIT_CORE", "LimitRSS": "RLIMIT_RSS",
    "LimitNOFILE": "RLIMIT_NOFILE", "LimitAS": "RLIMIT_AS", "LimitNPROC": "RLIMIT_NPROC",
    "LimitMEMLOCK": "RLIMIT_MEMLOCK", "LimitLOCKS": "RLIMIT_LOCKS",
    "LimitSIGPENDING": "RLIMIT_SIGPENDING", "LimitMSGQUEUE": "RLIMIT_MSGQUEUE",
    "LimitNICE": "RLIMIT_NICE", "LimitRTPRIO": "RLIMIT_RTPRIO", "LimitRTTIME": "RLIMIT_RTTIME",
}  # fmt: skip


def inherited_limit(directive: str) -> RLimit | None:
    """Return the limit the manager's children inherit when a unit does not set `directive`."""
    constant = getattr(resource, _RLIMITS.get(directive, ""), None)
    if constant is None:
        return None
    soft, hard = resource.getrlimit(constant)

    def side(value: int) -> int | None:
        return None if value == resource.RLIM_INFINITY else value

    return RLimit(side(soft), side(hard))


def _string_list(args: dict[str, Any], key: str) -> list[str]:
    value = args.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ProtocolError(protocol.BAD_REQUEST, f"'{key}' must be a list of non-empty strings")
    return value


def _read_file(path: str) -> str:
    if path.startswith(BUILTIN_PATH_PREFIX):
        return BUILTIN_UNITS.get(path[len(BUILTIN_PATH_PREFIX):], "")
    try:
        # A file over the unit-file size limit was never loaded, and its error names the size and the fix.
        return read_limited(path).decode("utf-8", "replace")
    except OSError as error:
        return f"# (could not read {path}: {error.strerror})\n"


class UnitFileCommands:
    """Implementations of the unit-file control commands for one manager."""

    def __init__(self, manager: Manager) -> None:
        self.manager = manager

    @property
    def enablement(self) -> Enablement:
        return Enablement(self.manager.unit_dirs, self.manager.context)

    def _unit(self, name: str) -> Unit:
        full = self.manager.resolve(name)
        runtime = self.manager.runtime(full)
        return runtime.unit if runtime is not None else self.manager.load(full)

    # -- verify -----------------------------------------------------------

    async def verify(self, args: dict[str, Any]) -> dict[str, Any]:
        """Check unit files on the manager's host; relative paths start at its home."""
        files = [os.path.join(self.manager.cwd, f) for f in _string_list(args, "files")]
        if not files:
            raise ProtocolError(protocol.BAD_REQUEST, "verify needs at least one unit file path")
        context = self.manager.context
        lines, has_errors = await asyncio.to_thread(verify_files, files, context)
        return {"lines": lines, "errors": has_errors}

    # -- cat --------------------------------------------------------------

    async def cat(self, args: dict[str, Any]) -> dict[str, Any]:
        """Return each unit's fragment and drop-ins, as `systemctl cat` prints them."""
        result = []
        for name in protocol.arg_units(args):
            unit = self._unit(name)
            if unit.load_state == "masked":
                raise ProtocolError(protocol.UNIT_MASKED, f"Unit {unit.name} is masked.",
                                    {"unit": unit.name})
            if unit.fragment_path is None:
                raise ProtocolError(protocol.UNIT_NOT_FOUND, f"No files found for {unit.name}.",
                                    {"unit": unit.name})
            paths = [unit.fragment_path, *unit.dropin_paths]
            result.append({"name": unit.name,
                           "files": [{"path": p, "text": _read_file(p)} for p in paths]})
        return {"units": result}

    # -- show -------------------------------------------------------------

    def _header(self, name: str) -> list[tuple[str, str]]:
        runtime = self.manager.runtime(name)
        unit = runtime.unit if runtime is not None else self.manager.load(name)
        data = runtime.status() if runtime is not None else {}
        main = data.get("exec_main") or {}
        fields = [
            ("Id", unit.name), ("Names", " ".join([unit.name, *unit.aliases])),
            ("Description", unit.description), ("LoadState", unit.load_state),
            ("LoadError", unit.load_error),
            ("ActiveState", data.get("active_state", "inactive")),
            ("SubState", data.get("sub_state", "dead")), ("Result", data.get("result", "success")),
            ("MainPID", str(data.get("main_pid", 0))),
            ("ExecMainPID", str(main.get("pid", 0))), ("ExecMainStatus", str(main.get("status", 0))),
            ("NRestarts", str(data.get("n_restarts", 0))),
            ("InvocationID", data.get("invocation_id", "")),
            ("FragmentPath", unit.fragment_path or ""), ("DropInPaths", " ".join(unit.dropin_paths)),
            ("UnitFileState", self.enablement.state(unit.name)),
            ("ConditionResult", "no" if data.get("condition_failures") else "yes"),
        ]
        return fields

    async def show(self, args: dict[str, Any]) -> dict[str, Any]:
        """Return `Key=Value` properties; `properties` selects some, `all` keeps empty ones."""
        requested = set(_string_list(args, "properties"))
        show_empty = bool(args.get("all")) or bool(requested)
        result = []
        for name in protocol.arg_units(args):
            full = self.manager.resolve(name)
            unit = self._unit(full)
            pairs = self._header(full)
            if unit.load_state == "loaded":
                pairs += unit_properties(unit, inherited_limit)
            if requested:
                pairs = [p for p in pairs if p[0] in requested]
            if not show_empty:
                pairs = [p for p in pairs if p[1] != ""]
            result.append({"name": full, "properties": [list(p) for p in pairs]})
        return {"units": result}

    # -- enablement -------------------------------------------------------

    async def enable(self, args: dict[str, Any]) -> dict[str, Any]:
        """Write the [Install] links; with `now`, also start the units (enable --now)."""
        units = protocol.arg_units(args)
        result = self.enablement.enable(units).to_json()
        if args.get("now") and result["ok"]:
            result["jobs"] = await self._jobs("start", units)
        return result

    async def disable(self, args: dict[str, Any]) -> dict[str, Any]:
        """Remove the links of the units; with `now`, also stop them (disable --now)."""
        units = protocol.arg_units(args)
        result = self.enablement.disable(units).to_json()
        if args.get("now"):
            result["jobs"] = await self._jobs("stop", units)
        return result

    async def _jobs(self, kind: str, units: list[str]) -> list[dict[str, str]]:
        """Run start or stop jobs for the loadable units among `units` (templates are skipped)."""
        names = []
        for name in units:
            full = self.manager.resolve(name)
            runtime = self.manager.runtime(full)
            if runtime is not None and runtime.unit.load_state == "loaded" \
                    and not runtime.unit.is_template:
                names.append(full)
        run = getattr(self.manager.transactions, kind)
        results = await run(names) if names else {}
        return [{"unit": n, "job": kind, "result": results.get(n, "done")} for n in names]

    async def list_unit_files(self, args: dict[str, Any]) -> dict[str, Any]:
        """Return every unit file in the search path with its is-enabled word (list-unit-files).

        As systemctl does, this reads the directories as they are now: a file
        added since the last daemon-reload is listed, templates included. The
        optional `states` keeps only the units whose word is in it.
        """
        states = set(_string_list(args, "states"))
        loader = self.manager.loader
        loader.refresh_listing()
        unit_names = loader.names()
        units = []
        for name, state in zip(unit_names, self.enablement.states(unit_names), strict=True):
            if not states or state in states:
                units.append({"name": name, "state": state})
        return {"units": units}

    async def is_enabled(self, args: dict[str, Any]) -> dict[str, Any]:
        enablement = self.enablement
        units = [{"name": self.manager.resolve(n), "state": enablement.state(n)}
                 for n in protocol.arg_units(args)]
        return {"units": units}
