"""Helpers for tests that run a real manager on a temporary home and drive it with the real unitsh."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "units"
SHARED = REPO.parent / "shared"


def wait_for(predicate: Callable[[], object], timeout: float = 10.0, interval: float = 0.02,
             message: str = "condition") -> object:
    """Poll `predicate` until it returns a true value; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_with_env(marker: bytes) -> list[int]:
    """Pids of this user's processes whose environment contains `marker` (NAME=value)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def stop_process(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM a process this test started, then SIGKILL it if it does not exit in time."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def kill_and_reap(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class ManagerProcess:
    """A `unitmgr --user` process on its own UNITMGR_HOME, stopped and cleaned up by the fixture."""

    def __init__(self, home: Path, unit_dir: Path, extra_args: list[str] | None = None):
        self.home = home
        self.unit_dir = unit_dir
        self.extra_args = extra_args or []
        self.env = dict(os.environ, UNITMGR_HOME=str(home), PYTHONUNBUFFERED="1")
        self.env.pop("NO_COLOR", None)
        self.proc: subprocess.Popen | None = None
        self.log_path = home / "manager.log"

    @property
    def marker(self) -> bytes:
        return f"UNITMGR_HOME={self.home}".encode()

    def write_config(self, text: str) -> None:
        """Write `text` as the manager's unitmgr.conf, read when it next starts."""
        config = self.home / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "unitmgr.conf").write_text(text)

    def start(self, wait: bool = True) -> ManagerProcess:
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "unitmgr.manager.cli", "--user", "--units", str(self.unit_dir),
             "--log-level", "debug", *self.extra_args],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 15.0) -> None:
        endpoint = self.home / "runtime" / "endpoint.json"

        def ready() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"manager exited with {self.proc.returncode}:\n{self.log()}")
            return endpoint.exists()

        wait_for(ready, timeout, message="the manager's endpoint file")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def unitsh(self, *args: str, timeout: float = 30.0, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "unitmgr.shell.cli", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, input=input,
        )

    def request(self, cmd: str, args: dict | None = None) -> dict:
        from unitmgr.manager import paths as paths_module
        from unitmgr.shell.client import Client

        paths = paths_module.resolve(self.env)
        with Client.local(paths) as client:
            return client.request(cmd, args or {})

    def status(self, unit: str) -> dict:
        return self.request("status", {"units": [unit], "lines": 0})["units"][0]

    def stop(self, timeout: float = 30.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def cleanup(self) -> list[int]:
        """Stop the manager, then kill whatever of its units survived; return those pids."""
        self.stop()
        leftovers = processes_with_env(self.marker)
        kill_and_reap(leftovers)
        return leftovers


def copy_units(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target




def web_port(units: Path) -> int:
    text = (units / "web.service.d" / "port.conf").read_text()
    return int(text.split("PORT=")[1].strip())


def write_unit(directory: Path, name: str, text: str, enable: bool = False) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    if enable:
        wants = directory / "default.target.wants"
        wants.mkdir(exist_ok=True)
        (wants / name).symlink_to(path)
    return path


def log_text(manager: ManagerProcess, unit: str) -> str:
    """Join the texts of all log records of `unit`, the manager's lines about it included, into one string."""
    return "\n".join(r["text"] for r in manager.request("logs", {"units": [unit], "lines": 0})["records"])


def limit_entry(status: dict, name: str) -> dict:
    """Return the entry for the limit `name` (such as "MemoryMax") in a unit's status."""
    [entry] = [item for item in status["limits"] if item["name"] == name]
    return entry


def memory_hog_command(mebibytes: int) -> str:
    """Return a command line that allocates `mebibytes` MiB at once and then sleeps."""
    return f"{sys.executable} -c \"import time; data = b'x' * ({mebibytes} << 20); time.sleep(1000)\""
