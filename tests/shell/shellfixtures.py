"""Helpers shared by the shell tests: result dicts shaped as docs/protocol.md
describes, a fake session for in-process runs, and a fake manager that
replies over real CurveZMQ on a temporary UNITMGR_HOME."""

from __future__ import annotations

import copy
import io
import json
import threading
from pathlib import Path
from typing import Any

import zmq
from unitmgr.manager import keys, paths
from unitmgr.shell.client import RemoteError
from unitmgr.shell.context import Context
from unitmgr.shell.render import Output
from unitmgr.shell.session import Session

NOW = 1796414406.0  # Fri 2026-12-04 20:00:06 UTC
STARTED = NOW - 5.0  # 20:00:01


def log_record(text: str, offset: float = 0.0, pid: int = 1234, **extra: Any) -> dict[str, Any]:
    record = {"unit": "web.service", "time": STARTED + offset, "stream": "stdout",
              "pid": pid, "text": text}
    record.update(extra)
    return record


ACTIVE_WEB: dict[str, Any] = {
    "name": "web.service", "description": "Example web server",
    "documentation": ["man:python3(1)"],
    "load_state": "loaded", "load_error": "",
    "fragment_path": "/home/ann/.config/unitmgr/units/web.service", "dropin_paths": [],
    "enablement": "enabled",
    "active_state": "active", "sub_state": "running", "result": "success",
    "state_change_time": STARTED, "active_enter_time": STARTED,
    "main_pid": 1234, "main_comm": "python3", "exec_main": None,
    "control_processes": [{"pid": 1190, "setting": "ExecStartPre", "command": "/bin/true",
                           "code": "exited", "status": 0, "status_name": "SUCCESS"}],
    "status_text": "", "n_restarts": 0,
    "tasks": 3, "tasks_max": None,
    "memory_bytes": 22544384, "memory_max": None, "memory_peak": None,
    "cpu_seconds": 1.204,
    "processes": [{"pid": 1234, "ppid": 1, "cmdline": "python3 -m http.server"}],
    "log": [log_record("Serving HTTP on 127.0.0.1 port 8000")],
    "log_write_errors": 0, "warnings": [],
}


def unit_status(**changes: Any) -> dict[str, Any]:
    unit = copy.deepcopy(ACTIVE_WEB)
    unit.update(changes)
    return unit


def make_output(color: bool = False) -> tuple[Output, io.StringIO, io.StringIO]:
    stdout, stderr = io.StringIO(), io.StringIO()
    return Output(stdout=stdout, stderr=stderr, color=color, clock=lambda: NOW), stdout, stderr


class FakeSession(Session):
    """A Session whose replies come from a dict: cmd -> result dict or RemoteError."""

    def __init__(self, replies: dict[str, Any]):
        super().__init__(connect=self._no_connect)
        self.replies = replies
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def _no_connect(self):
        raise AssertionError("FakeSession never connects")

    def request(self, cmd, args=None, timeout=None):
        self.requests.append((cmd, args or {}))
        reply = self.replies[cmd]
        if isinstance(reply, Exception):
            raise reply
        return copy.deepcopy(reply)


def make_context(replies: dict[str, Any], json_mode: bool = False):
    out, stdout, stderr = make_output()
    session = FakeSession({"hello": {"host": "build-3"}, **replies})
    return Context(out, session, json=json_mode), stdout, stderr


def remote_error(code: str, message: str) -> RemoteError:
    return RemoteError(code, message)


class FakeManager:
    """A ROUTER socket with CURVE on the control endpoint of a temporary home,
    replying to each command from `replies` (result dict, or ("error", code, message))."""

    def __init__(self, home: Path):
        self.home = home
        self.paths = paths.resolve({"UNITMGR_HOME": str(home), "HOME": str(home)})
        paths.ensure_private_dir(self.paths.runtime)
        material = keys.ensure_keys(self.paths)
        self.replies: dict[str, Any] = {"hello": {"protocol": 1, "host": "build-3"}}
        self.requests: list[dict[str, Any]] = []
        self.unanswered: set[str] = set()  # commands left without a reply, like a hung job
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.ROUTER)
        self._socket.linger = 0
        self._socket.curve_server = True
        self._socket.curve_secretkey = material.server.secret
        self._socket.curve_publickey = material.server.public
        self._socket.bind(self.paths.control_endpoint)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        poller = zmq.Poller()
        poller.register(self._socket, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(50):
                continue
            identity, data = self._socket.recv_multipart()
            request = json.loads(data)
            self.requests.append(request)
            if request["cmd"] in self.unanswered:
                continue
            reply = self.replies.get(request["cmd"])
            if isinstance(reply, tuple):
                body = {"id": request["id"], "ok": False,
                        "error": {"code": reply[1], "message": reply[2]}}
            else:
                body = {"id": request["id"], "ok": True, "result": reply or {}}
            self._socket.send_multipart([identity, json.dumps(body).encode()])

    def bind_tcp(self) -> str:
        """Also listen on a free loopback TCP port; return the endpoint."""
        port = self._socket.bind_to_random_port("tcp://127.0.0.1")
        return f"tcp://127.0.0.1:{port}"

    def env(self) -> dict[str, str]:
        return {"UNITMGR_HOME": str(self.home), "NO_COLOR": "1", "TZ": "UTC"}

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()
        self._context.term()
