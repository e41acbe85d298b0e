"""`unitmgr exporter`: Prometheus metrics of every unit on a loopback HTTP port.

Serves `/metrics` in the Prometheus text exposition format (version 0.0.4).
Each scrape sends `list --all` and `status` to the manager, so the figures
are as fresh as the scrape, and nothing is sampled between scrapes.
Run it by hand or as a unit of the manager it watches.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:9810"
ACTIVE_STATES = ("active", "reloading", "inactive", "failed", "activating", "deactivating")

# name -> (type, help)
METRICS = {
    "unitmgr_unit_state": ("gauge", "1 for the unit's current ActiveState, 0 for the others"),
    "unitmgr_unit_restarts_total": ("counter", "Automatic restarts of the unit (NRestarts)"),
    "unitmgr_unit_cpu_seconds_total": ("counter", "CPU time used by the unit's processes"),
    "unitmgr_unit_memory_bytes": ("gauge", "Memory of the unit's processes"),
    "unitmgr_unit_tasks": ("gauge", "Processes and threads of the unit"),
    "unitmgr_unit_log_bytes_total": ("counter", "Bytes of output stored in the unit's log"),
    "unitmgr_unit_log_dropped_bytes_total": ("counter", "Bytes of output that could not be stored"),
    "unitmgr_up": ("gauge", "1 when the manager answered this scrape"),
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float) else str(int(value))


def render(samples: Iterable[tuple[str, dict[str, str], Any]]) -> str:
    """Render (metric, labels, value) samples, grouped under their HELP and TYPE lines."""
    grouped: dict[str, list[tuple[dict[str, str], Any]]] = {name: [] for name in METRICS}
    for name, labels, value in samples:
        if value is not None:
            grouped[name].append((labels, value))
    lines = []
    for name, entries in grouped.items():
        kind, help_text = METRICS[name]
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        for labels, value in entries:
            label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
            lines.append(f"{name}{{{label_text}}} {_number(value)}" if label_text else f"{name} {_number(value)}")
    return "\n".join(lines) + "\n"


def collect(client: Any) -> list[tuple[str, dict[str, str], Any]]:
    from unitmgr.manager import protocol

    units = protocol.expand_table(client.request("list", {"all": True, "table": True}), "units")
    names = [u["name"] for u in units]
    statuses = {s["name"]: s for s in client.request("status", {"units": names, "lines": 0})["units"]} if names else {}
    samples: list[tuple[str, dict[str, str], Any]] = [("unitmgr_up", {}, 1)]
    for unit in units:
        name = unit["name"]
        status = statuses.get(name, {})
        for state in ACTIVE_STATES:
            samples.append(("unitmgr_unit_state", {"unit": name, "state": state},
                            1 if unit["active_state"] == state else 0))
        samples.append(("unitmgr_unit_restarts_total", {"unit": name}, status.get("n_restarts", 0)))
        samples.append(("unitmgr_unit_cpu_seconds_total", {"unit": name}, status.get("cpu_seconds")))
        samples.append(("unitmgr_unit_memory_bytes", {"unit": name}, status.get("memory_bytes")))
        samples.append(("unitmgr_unit_tasks", {"unit": name}, status.get("tasks")))
        samples.append(("unitmgr_unit_log_bytes_total", {"unit": name}, status.get("log_bytes")))
        samples.append(("unitmgr_unit_log_dropped_bytes_total", {"unit": name}, status.get("log_write_errors", 0)))
    return samples


class MetricsHandler(BaseHTTPRequestHandler):
    server: MetricsServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if self.path.split("?")[0] != "/metrics":
            self._reply(HTTPStatus.NOT_FOUND, b"see /metrics\n", "text/plain")
            return
        try:
            with self.server.connect() as client:
                body = render(collect(client))
        except Exception as exc:
            log.warning("scrape failed: %s", exc)
            body = render([("unitmgr_up", {}, 0)])
        self._reply(HTTPStatus.OK, body.encode(), "text/plain; version=0.0.4; charset=utf-8")

    def _reply(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class MetricsServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], connect: Callable[[], Any]):
        self.connect = connect
        super().__init__(address, MetricsHandler)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from unitmgr.web.cli import parse_listen

    parser.add_argument("--listen", dest="exporter_listen", type=parse_listen,
                        default=parse_listen(DEFAULT_LISTEN), metavar="HOST:PORT",
                        help=f"address of /metrics (default {DEFAULT_LISTEN})")


def run_exporter(args: argparse.Namespace) -> int:
    from unitmgr.manager import paths as paths_module
    from unitmgr.shell.client import Client

    paths = paths_module.resolve()
    host, port = args.exporter_listen
    try:
        server = MetricsServer((host, port), lambda: Client.local(paths, timeout=10))
    except OSError as exc:
        print(f"unitmgr exporter: could not listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
        return 1
    print(f"unitmgr exporter: http://{server.server_address[0]}:{server.server_address[1]}/metrics", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    stop.wait()
    server.shutdown()
    server.server_close()
    return 0
