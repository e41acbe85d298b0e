"""Scaling a template: run instances `NAME@1` to `NAME@N` of `NAME@.service`.

`scale web 4` starts `web@1.service` to `web@4.service` and stops every
running `web@K.service` with K above 4; `scale web +1` and `scale web -1`
step from the current count. The count is kept in `scale.json` in the state
directory and applied again once `default.target` is active after the
manager starts, so a scaled template survives a manager restart.

The instances of one template usually share one listener: `web@.service`
with `Sockets=web.socket` (see sockets.py and docs/sockets.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from unitmgr.manager import protocol
from unitmgr.manager.protocol import ProtocolError
from unitmgr.manager.states import ActiveState
from unitmgr.manager.unitbase import UnitRuntime

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager

log = logging.getLogger(__name__)

BOOT_TARGET = "default.target"
MAX_INSTANCES = 1000
STEP = re.compile(r"[+-]\d+")


def template_prefix(text: str) -> str:
    """`web`, `web@`, `web@.service` and `web@3.service` all mean the template prefix `web`."""
    name = text.strip()
    if name.endswith(".service"):
        name = name[: -len(".service")]
    prefix = name.split("@", 1)[0]
    if not prefix or "." in prefix or "/" in prefix:
        raise ProtocolError(protocol.BAD_REQUEST,
                            f"'{text}' is not a template name; give the prefix of NAME@.service, e.g. 'web'")
    return prefix


def parse_count(value: Any, current: int) -> int:
    """Return the new count: an absolute count (4, "4") or a step ("+1", "-2") applied to `current`."""
    if isinstance(value, bool):
        value = None
    if isinstance(value, int):
        target = value
    elif isinstance(value, str) and value.strip().isdigit():
        target = int(value)
    elif isinstance(value, str) and STEP.fullmatch(value.strip()):
        target = current + int(value)
    else:
        raise ProtocolError(protocol.BAD_REQUEST,
                            f"count must be a number of instances (4) or a step (+1, -1), not {value!r}")
    if not 0 <= target <= MAX_INSTANCES:
        raise ProtocolError(protocol.BAD_REQUEST,
                            f"count {target} is out of range; use 0 to {MAX_INSTANCES} (current count {current})")
    return target


class ScaleStore:
    """The persisted counts: {"web": 4, ...} in a small JSON file, replaced atomically."""

    def __init__(self, path: Path):
        self.path = path

    def load(self) -> dict[str, int]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring the unreadable scale counts in %s: %s", self.path, exc)
            return {}
        if not isinstance(data, dict):
            return {}
        return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, int) and v >= 0}

    def save(self, counts: dict[str, int]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self.path.with_suffix(".tmp")
        temp.write_text(json.dumps(counts, indent=1, sort_keys=True) + "\n")
        os.replace(temp, self.path)


class Scaler:
    def __init__(self, manager: Manager):
        self.manager = manager
        self.store = ScaleStore(manager.paths.state / "scale.json")
        self.counts = self.store.load()
        self._applied_at_boot = False
        manager.listeners.append(self._on_state_change)

    # -- instances --------------------------------------------------------

    def running_instances(self, prefix: str) -> dict[int, UnitRuntime]:
        """Numbered instances `PREFIX@K.service` that are not inactive, by K."""
        pattern = re.compile(re.escape(prefix) + r"@(\d+)\.service")
        found = {}
        for name, runtime in list(self.manager.runtimes.items()):
            match = pattern.fullmatch(name)
            if match and (runtime.active_state not in (ActiveState.INACTIVE, ActiveState.FAILED)
                          or runtime.job is not None):
                found[int(match.group(1))] = runtime
        return found

    def current(self, prefix: str) -> int:
        if prefix in self.counts:
            return self.counts[prefix]
        running = self.running_instances(prefix)
        return max(running, default=0)

    def _check_template(self, prefix: str) -> None:
        name = f"{prefix}@.service"
        template = self.manager.load(name)
        if template.load_state == "not-found":
            raise ProtocolError(protocol.UNIT_NOT_FOUND, f"Unit {name} not found; scale {prefix} needs a "
                                f"template file {name} in the unit path", {"unit": name})
        if template.load_state != "loaded":
            reason = template.load_error or template.load_state
            raise ProtocolError(protocol.UNIT_BAD, f"Unit {name} cannot be loaded ({reason}); fix the file",
                                {"unit": name})

    # -- applying a count -------------------------------------------------

    async def apply(self, prefix: str, count: int) -> list[dict[str, str]]:
        """Start instances 1..count, stop running ones above count; return the jobs."""
        kept = [f"{prefix}@{k}.service" for k in range(1, count + 1)]
        extra = [r.name for k, r in sorted(self.running_instances(prefix).items()) if k > count]
        log.info("scaling %s@.service to %d: starting %d, stopping %d", prefix, count, len(kept), len(extra))
        stop_task = asyncio.ensure_future(self.manager.transactions.stop(extra)) if extra else None
        started = await self.manager.transactions.start(kept) if kept else {}
        stopped = await stop_task if stop_task is not None else {}
        jobs = [{"unit": n, "job": "start", "result": started.get(n, "done")} for n in kept]
        jobs += [{"unit": n, "job": "stop", "result": stopped.get(n, "done")} for n in extra]
        return jobs

    async def scale(self, args: dict[str, Any]) -> dict[str, Any]:
        """Serve the `scale` command: args {"unit": "web", "count": 4 | "+1" | "-1"} or {"unit", "delta": 1}."""
        unit = args.get("unit", args.get("template"))
        if not isinstance(unit, str):
            raise ProtocolError(protocol.BAD_REQUEST, "'unit' must be a template name such as 'web'")
        prefix = template_prefix(unit)
        self._check_template(prefix)
        previous = self.current(prefix)
        requested = args.get("count")
        delta = args.get("delta")
        if requested is None and isinstance(delta, int) and not isinstance(delta, bool):
            requested = f"{delta:+d}"
        count = parse_count(requested, previous)
        self.counts[prefix] = count
        self.store.save(self.counts)
        jobs = await self.apply(prefix, count)
        return {"unit": f"{prefix}@.service", "previous": previous, "count": count, "jobs": jobs}

    async def list_counts(self, args: dict[str, Any]) -> dict[str, Any]:
        rows = []
        for prefix, count in sorted(self.counts.items()):
            rows.append({"unit": f"{prefix}@.service", "count": count,
                         "running": len(self.running_instances(prefix))})
        return {"templates": rows}

    # -- boot ---------------------------------------------------------------

    def _on_state_change(self, runtime: UnitRuntime) -> None:
        if self._applied_at_boot or runtime.name != BOOT_TARGET:
            return
        if runtime.active_state is ActiveState.ACTIVE:
            self._applied_at_boot = True
            if self.counts:
                asyncio.ensure_future(self._apply_saved())

    async def _apply_saved(self) -> None:
        for prefix, count in sorted(self.counts.items()):
            try:
                self._check_template(prefix)
            except ProtocolError as exc:
                log.warning("not restoring the scale of %s: %s", prefix, exc)
                continue
            jobs = await self.apply(prefix, count)
            failed = [j["unit"] for j in jobs if j["result"] not in ("done", "skipped")]
            if failed:
                log.warning("restoring %s@.service to %d instances: failed: %s", prefix, count, ", ".join(failed))
