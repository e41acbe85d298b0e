"""The figures behind the console's graphs: CPU and memory per unit and per process, last minutes.

A sampler thread requests `top` (every unit) and the status
of the units someone is looking at, once per interval, and keeps the last
`points` samples in memory. It samples only while a browser is connected,
so an idle console costs the manager nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class History:
    def __init__(self, connect: Callable[[], Any], interval: float = 1.0, points: int = 300):
        self.connect = connect
        self.interval = interval
        self.points = points
        self.units: dict[str, deque] = {}
        self.processes: dict[str, dict[int, deque]] = {}
        self.watched: dict[str, int] = {}
        self.watchers = 0
        self.last_error = ""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(5)

    def watch(self, unit: str | None) -> None:
        with self._lock:
            self.watchers += 1
            if unit:
                self.watched[unit] = self.watched.get(unit, 0) + 1
        self._wake.set()

    def unwatch(self, unit: str | None) -> None:
        with self._lock:
            self.watchers -= 1
            if unit and unit in self.watched:
                self.watched[unit] -= 1
                if not self.watched[unit]:
                    del self.watched[unit]

    def series(self, unit: str) -> dict[str, Any]:
        """Return the unit's points and its processes' points, oldest first."""
        with self._lock:
            return {
                "unit": list(self.units.get(unit, ())),
                "processes": {str(pid): list(points) for pid, points in self.processes.get(unit, {}).items()},
            }

    def _run(self) -> None:
        client = None
        while not self._stop.is_set():
            if self.watchers <= 0:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            started = time.monotonic()
            try:
                client = client or self.connect()
                self._sample(client)
                self.last_error = ""
            except Exception as exc:  # the manager went away; try again next round
                self.last_error = str(exc)
                log.warning("sampling the manager failed: %s", exc)
                if client is not None:
                    client.close()
                client = None
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))
        if client is not None:
            client.close()

    def _sample(self, client: Any) -> None:
        now = time.time()
        rows = client.request("top", {"all": True}).get("units", [])
        with self._lock:
            watched = list(self.watched)
        statuses = client.request("status", {"units": watched, "lines": 0})["units"] if watched else []
        with self._lock:
            for row in rows:
                point = {"time": now, "cpu": row.get("cpu_percent") or 0.0, "memory": row.get("memory_bytes") or 0}
                self.units.setdefault(row["name"], deque(maxlen=self.points)).append(point)
            for status in statuses:
                per_unit = self.processes.setdefault(status["name"], {})
                alive = set()
                for process in status.get("processes", []):
                    pid = process["pid"]
                    alive.add(pid)
                    points = per_unit.setdefault(pid, deque(maxlen=self.points))
                    cpu_seconds = process.get("cpu_seconds") or 0.0
                    point = {"time": now, "cpu": 0.0, "memory": process.get("rss") or 0,
                             "cpu_seconds": cpu_seconds}
                    if points:
                        # CPU % of one process from the CPU time it used since the last point.
                        elapsed = now - points[-1]["time"]
                        used = cpu_seconds - points[-1].get("cpu_seconds", cpu_seconds)
                        point["cpu"] = max(0.0, 100.0 * used / elapsed) if elapsed > 0 else 0.0
                    points.append(point)
                for pid in list(per_unit):
                    if pid not in alive and per_unit[pid] and now - per_unit[pid][-1]["time"] > 60:
                        del per_unit[pid]
