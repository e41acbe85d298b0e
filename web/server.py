"""`unitmgr web`: the web console, an HTTP server that is a Curve client of the manager.

Pages: `/` lists the units, `/unit/NAME` shows one unit with a live CPU and
memory graph (per unit and per process), its log tail and its buttons.
Everything the pages load is served from `static/`, nothing from a CDN. The
JSON API under `/api/` backs them; `/api/events` is a server-sent event
stream. GET never changes state; every change is a POST checked by auth.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

from unitmgr.manager import protocol
from unitmgr.web.auth import Tokens
from unitmgr.web.history import History

log = logging.getLogger(__name__)

ACTIONS = ("start", "stop", "restart", "reload")
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html", ".svg": "image/svg+xml"}
EVENT_INTERVAL = 1.0
# The manager's queue for one page's log events. A page shows a tail of the
# log, so a browser that falls behind loses the oldest lines, not the newest.
PAGE_QUEUE_BYTES = 1024 * 1024


def static_file(name: str) -> bytes:
    return resources.files("unitmgr.web").joinpath("static", name).read_bytes()


class ConsoleError(Exception):
    def __init__(self, status: HTTPStatus, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class Console:
    """What the request handlers share: tokens, the manager connection factory, the history."""

    def __init__(self, connect, tokens: Tokens | None = None, interval: float = EVENT_INTERVAL):
        self.connect = connect
        self.tokens = tokens or Tokens()
        self.history = History(connect, interval=interval)
        self.interval = interval
        self._local = threading.local()

    def client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            client = self.connect()
            self._local.client = client
        return client

    def request(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        from unitmgr.shell.client import ClientError, RemoteError

        try:
            return self.client().request(cmd, args or {})
        except RemoteError as exc:
            status = HTTPStatus.NOT_FOUND if exc.code == "unit-not-found" else HTTPStatus.CONFLICT
            raise ConsoleError(status, exc.message) from None
        except ClientError as exc:
            self._local.client = None
            raise ConsoleError(HTTPStatus.BAD_GATEWAY, str(exc)) from None

    def units(self) -> list[dict[str, Any]]:
        listing = protocol.expand_table(self.request("list", {"all": True, "table": True}), "units")
        try:
            top = {row["name"]: row for row in self.request("top", {"all": True})["units"]}
        except ConsoleError:
            top = {}
        status_by_name = {}
        names = [u["name"] for u in listing if u.get("active_state") != "inactive"]
        if names:
            for status in self.request("status", {"units": names, "lines": 0})["units"]:
                status_by_name[status["name"]] = status
        rows = []
        for unit in listing:
            figures = top.get(unit["name"], {})
            status = status_by_name.get(unit["name"], {})
            rows.append({
                **unit,
                "n_restarts": status.get("n_restarts", 0),
                "active_enter_time": status.get("active_enter_time"),
                "cpu_percent": figures.get("cpu_percent"),
                "memory_bytes": figures.get("memory_bytes", status.get("memory_bytes")),
            })
        return rows


class Handler(BaseHTTPRequestHandler):
    server: ConsoleServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)

    # -- plumbing ---------------------------------------------------------

    @property
    def console(self) -> Console:
        return self.server.console

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, status: HTTPStatus, message: str) -> None:
        self._json(status, {"error": message})

    def _page(self, name: str) -> None:
        html = static_file(name).decode().replace("{{csrf}}", self.console.tokens.csrf)
        self._send(HTTPStatus.OK, html.encode(), "text/html; charset=utf-8")

    def _authorised(self, query: dict[str, list[str]]) -> bool:
        if self.console.tokens.access_ok(self.headers):
            return True
        token = query.get("token", [""])[0]
        if self.console.tokens.query_token_ok(token):
            # Keep the token out of the address bar and the history.
            location = urllib.parse.urlsplit(self.path).path
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain",
                       {"Location": location, "Set-Cookie": self.console.tokens.cookie_header()})
            return False
        self._send(HTTPStatus.UNAUTHORIZED,
                   b"unitmgr web: open the URL with ?token=... that `unitmgr web` printed when it started\n",
                   "text/plain; charset=utf-8")
        return False

    # -- GET --------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if url.path.startswith("/static/"):
            self._static(url.path[len("/static/"):])
            return
        if not self._authorised(query):
            return
        try:
            self._route_get(url.path, query)
        except ConsoleError as exc:
            self._error(exc.status, exc.message)

    def _route_get(self, path: str, query: dict[str, list[str]]) -> None:
        if path == "/":
            self._page("index.html")
        elif path.startswith("/unit/"):
            self._page("unit.html")
        elif path == "/api/units":
            self._json(HTTPStatus.OK, {"units": self.console.units()})
        elif path.startswith("/api/unit/"):
            name = urllib.parse.unquote(path[len("/api/unit/"):])
            if "/" in name:
                raise ConsoleError(HTTPStatus.NOT_FOUND, f"no page at {path}; actions are POST requests")
            status = self.console.request("status", {"units": [name], "lines": 50})["units"][0]
            self._json(HTTPStatus.OK, {"status": status, "series": self.console.history.series(status["name"])})
        elif path == "/api/events":
            self._events(query.get("unit", [""])[0])
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no page at {path}")

    def _static(self, name: str) -> None:
        if "/" in name or name.startswith(".") or not name:
            self._error(HTTPStatus.NOT_FOUND, "no such file")
            return
        try:
            body = static_file(name)
        except (FileNotFoundError, IsADirectoryError):
            self._error(HTTPStatus.NOT_FOUND, f"no static file {name}")
            return
        suffix = name[name.rfind("."):]
        self._send(HTTPStatus.OK, body, STATIC_TYPES.get(suffix, "application/octet-stream"))

    def _events(self, unit: str) -> None:
        """Server-sent events: a `stats` event every interval, `log` events as lines arrive.

        The manager bounds the log events waiting for this page (PAGE_QUEUE_BYTES)
        and a `dropped` event counts the events a slow browser missed. An `ended`
        event reports that the manager removed the log subscription, with its reason."""
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        history = self.console.history
        history.watch(unit or None)
        log_client = None
        try:
            if unit:
                log_client = self.console.connect()
                log_client.subscribe(["log"], units=[unit], queue_bytes=PAGE_QUEUE_BYTES)
            while not self.server.stopping.is_set():
                series = history.series(unit) if unit else {}
                self._event("stats", {"time": time.time(), "series": series, "error": history.last_error})
                deadline = time.monotonic() + self.console.interval
                if log_client is None:
                    time.sleep(self.console.interval)
                    continue
                for event in log_client.iter_events(timeout=self.console.interval):
                    if event.get("event") in ("log", "dropped", "ended"):
                        self._event(event["event"], event)
                    if event.get("event") == "ended":
                        # The manager removed the subscription. The page shows the reason, and stats go on.
                        log_client.close()
                        log_client = None
                        break
                    if time.monotonic() >= deadline:
                        break
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:
            log.warning("event stream for %s ended: %s", unit or "all units", exc)
        finally:
            history.unwatch(unit or None)
            if log_client is not None:
                log_client.close()

    def _event(self, kind: str, data: Any) -> None:
        self.wfile.write(f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode())
        self.wfile.flush()

    # -- POST -------------------------------------------------------------

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        url = urllib.parse.urlsplit(self.path)
        if not self.console.tokens.access_ok(self.headers):
            self._error(HTTPStatus.UNAUTHORIZED, "missing or invalid access token")
            return
        if not self.console.tokens.csrf_ok(self.headers, self.headers.get("Host", "")):
            self._error(HTTPStatus.FORBIDDEN, "missing or invalid CSRF token; reload the page")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self._error(HTTPStatus.BAD_REQUEST, "invalid Content-Length header")
            return
        body = self.rfile.read(min(length, 65536)) if length else b""
        try:
            self._route_post(url.path, body)
        except ConsoleError as exc:
            self._error(exc.status, exc.message)

    def _route_post(self, path: str, body: bytes) -> None:
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if len(parts) == 4 and parts[:2] == ["api", "unit"] and parts[3] in ACTIONS:
            name, action = parts[2], parts[3]
            log.info("web console: %s %s", action, name)
            result = self.console.request(action, {"units": [name]})
            self._json(HTTPStatus.OK, result)
        elif len(parts) == 3 and parts[:2] == ["api", "scale"]:
            try:
                delta = json.loads(body or b"{}").get("delta")
            except (ValueError, AttributeError):
                delta = None
            if delta not in (1, -1):
                raise ConsoleError(HTTPStatus.BAD_REQUEST, 'send {"delta": 1} or {"delta": -1}')
            log.info("web console: scale %s %+d", parts[2], delta)
            result = self.console.request("scale", {"template": parts[2], "delta": delta})
            self._json(HTTPStatus.OK, result)
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no action at {path}")


class ConsoleServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], console: Console):
        self.console = console
        self.stopping = threading.Event()
        super().__init__(address, Handler)

    def shutdown(self) -> None:
        self.stopping.set()
        super().shutdown()
