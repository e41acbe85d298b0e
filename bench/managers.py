"""The three managers under test, each driven through one small adapter.

An adapter writes the manager's configuration for a list of services into
its own work directory, starts the manager in a new session, names the
commands that ask it for status, and stops it. Each manager gets its own
settings for two profiles:

- "default": what a user gets without tuning, with restart on unexpected
  exits (unitmgr needs `Restart=always` for that, supervisord and Circus
  restart by default);
- "fast": the fastest respawn each one offers (unitmgr `RestartSec=0`;
  supervisord `startsecs=0 autorestart=true`; Circus `check_delay=0.1
  warmup_delay=0 max_retry=-1`).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import procfs
from anchorenv import VirtualEnv

log = logging.getLogger(__name__)

BENCH_DIR = Path(__file__).resolve().parent
PROBE = BENCH_DIR / "probe.py"
SLEEP = ["/bin/sleep", "100000"]


@dataclass(frozen=True)
class Service:
    """One supervised program. `restart`: "always", "on-failure" (with a start limit) or "no"."""

    name: str
    argv: tuple[str, ...] = tuple(SLEEP)
    profile: str = "default"
    restart: str = "always"
    # Only with restart="on-failure": the start limit unitmgr is given (burst, seconds).
    start_limit: tuple[int, float] = (5, 10.0)
    # A file that receives stdout; None keeps the manager's default.
    log_file: Path | None = None


def worker_names(count: int) -> list[str]:
    return [f"w{i:04d}" for i in range(count)]


class ManagerUnderTest:
    label = ""

    def __init__(self, workdir: Path, anchors: VirtualEnv | None):
        self.workdir = workdir
        self.anchors = anchors
        self.proc: subprocess.Popen | None = None
        self.services: list[Service] = []

    # -- per manager -------------------------------------------------------

    def configure(self, services: list[Service]) -> None:
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def control_ready(self) -> bool:
        raise NotImplementedError

    def ctl_status_argv(self) -> list[str]:
        """Return the one-shot command that shows the state of every service, as argv."""
        raise NotImplementedError

    def extra_ctl_argvs(self) -> dict[str, list[str]]:
        """More one-shot commands worth timing, by label."""
        return {}

    def probe_argv(self, iterations: int) -> list[str]:
        """Return the argv of a probe that times `iterations` status round trips inside one client."""
        raise NotImplementedError

    def log_path(self, name: str) -> Path:
        raise NotImplementedError

    def gave_up(self, name: str) -> bool:
        """Return whether the manager stopped restarting `name` for good (failed, FATAL, stopped)."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def prepare(self, services: list[Service]) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)
        self.services = services
        self.configure(services)

    def start(self) -> float:
        """Launch the manager; return the monotonic time just before the launch."""
        output = open(self.workdir / "manager.out", "wb")
        launched = time.monotonic()
        self.proc = subprocess.Popen(self.command(), env=self.environment(), stdin=subprocess.DEVNULL,
                                     stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
        output.close()
        return launched

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            tail = (self.workdir / "manager.out").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.label} exited with status {self.proc.returncode}:\n{tail}")

    def wait_control(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.control_ready():
            self.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.label}: control endpoint not up after {timeout:g}s")
            time.sleep(0.02)

    def run_ctl(self, argv: list[str], timeout: float = 60.0) -> subprocess.CompletedProcess:
        return subprocess.run(argv, env=self.environment(), capture_output=True, text=True, timeout=timeout)

    def stop(self, grace: float = 3.0) -> None:
        """SIGTERM the manager, SIGKILL it after `grace` seconds, then kill what it left behind."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        procfs.kill_leftovers(keep=set())
        self.proc = None


class Unitmgr(ManagerUnderTest):
    label = "unitmgr"

    def __init__(self, workdir: Path, installed: VirtualEnv | None, extra_args: list[str] | None = None):
        """`installed`: the environment to run unitmgr from; None runs the benchmark's own interpreter."""
        super().__init__(workdir, None)
        self.installed = installed
        self.extra_args = extra_args or []

    @property
    def python(self) -> str:
        return str(self.installed.python) if self.installed else sys.executable

    @property
    def home(self) -> Path:
        return self.workdir / "home"

    @property
    def units(self) -> Path:
        return self.workdir / "units"

    def environment(self) -> dict[str, str]:
        return dict(os.environ, UNITMGR_HOME=str(self.home))

    def configure(self, services: list[Service]) -> None:
        wants = self.units / "default.target.wants"
        wants.mkdir(parents=True)
        for service in services:
            name = f"{service.name}.service"
            (self.units / name).write_text(self.unit_text(service))
            (wants / name).symlink_to(f"../{name}")

    def unit_text(self, service: Service) -> str:
        unit = [f"Description=benchmark {service.name}"]
        lines = [f"ExecStart={shlex.join(service.argv)}", f"Restart={service.restart}"]
        if service.restart == "on-failure":
            burst, interval = service.start_limit
            unit += [f"StartLimitBurst={burst}", f"StartLimitIntervalSec={interval:g}"]
        if service.profile == "fast":
            lines.append("RestartSec=0")
            if service.restart == "always":
                unit.append("StartLimitIntervalSec=0")
        return "[Unit]\n" + "\n".join(unit) + "\n\n[Service]\n" + "\n".join(lines) + "\n"

    def command(self) -> list[str]:
        # The `unitmgr` script a user runs, as supervisord and Circus run from theirs.
        script = Path(self.python).with_name("unitmgr")
        launcher = [str(script)] if script.exists() else [self.python, "-m", "unitmgr.manager.cli"]
        return [*launcher, "--user", "--units", str(self.units), *self.extra_args]

    def control_ready(self) -> bool:
        return (self.home / "runtime" / "endpoint.json").exists()

    def unitsh(self, command: str) -> list[str]:
        unitsh = Path(self.python).with_name("unitsh")
        if unitsh.exists():
            return [str(unitsh), "-c", command]
        return [self.python, "-m", "unitmgr.shell.cli", "-c", command]

    def ctl_status_argv(self) -> list[str]:
        # `status` needs unit names; `list` shows every unit's state, as `supervisorctl status` does.
        return self.unitsh("list")

    def extra_ctl_argvs(self) -> dict[str, list[str]]:
        return {"status-one": self.unitsh(f"status {self.services[0].name}")}

    def probe_argv(self, iterations: int) -> list[str]:
        names = [service.name for service in self.services]
        return [self.python, str(PROBE), "unitmgr", str(iterations), str(self.home), *names]

    def log_path(self, name: str) -> Path:
        return self.home / "state" / "logs" / f"{name}.service.log"

    def stop(self, grace: float = 3.0) -> None:
        # A manager killed after the grace period leaves its cgroups (unitmgr-PID-*) behind, empty.
        pid = self.proc.pid if self.proc is not None else None
        super().stop(grace)
        if pid is not None:
            procfs.remove_cgroups(f"unitmgr-{pid}-")

    def gave_up(self, name: str) -> bool:
        from unitmgr.manager import paths as paths_module
        from unitmgr.shell.client import Client

        with Client.local(paths_module.resolve(self.environment())) as client:
            status = client.request("status", {"units": [name], "lines": 0})["units"][0]
        return status["active_state"] == "failed"


class Supervisord(ManagerUnderTest):
    label = "supervisord"

    @property
    def config(self) -> Path:
        return self.workdir / "supervisord.conf"

    @property
    def socket(self) -> Path:
        return self.workdir / "supervisor.sock"

    def configure(self, services: list[Service]) -> None:
        fds = min(procfs_nofile_limit(), 16 * len(services) + 1024)
        head = [
            "[supervisord]", "nodaemon=true", f"logfile={self.workdir / 'supervisord.log'}",
            f"pidfile={self.workdir / 'supervisord.pid'}", f"childlogdir={self.workdir}",
            f"minfds={fds}", "minprocs=200", "loglevel=warn", "",
            "[unix_http_server]", f"file={self.socket}", "",
            "[rpcinterface:supervisor]",
            "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface", "",
            "[supervisorctl]", f"serverurl=unix://{self.socket}", "",
        ]
        programs = [self.program(service) for service in services]
        self.config.write_text("\n".join(head + programs) + "\n")

    def program(self, service: Service) -> str:
        lines = [f"[program:{service.name}]", f"command={shlex.join(service.argv)}"]
        if service.profile == "fast":
            lines += ["startsecs=0", "autorestart=true"]
        if service.restart == "no":
            lines += ["startsecs=0", "autorestart=false"]
        if service.log_file is not None:
            lines += [f"stdout_logfile={service.log_file}", "stdout_logfile_maxbytes=0",
                      "stdout_logfile_backups=0"]
        return "\n".join(lines) + "\n"

    def command(self) -> list[str]:
        assert self.anchors is not None
        return [str(self.anchors.tool("supervisord")), "-n", "-c", str(self.config)]

    def control_ready(self) -> bool:
        return self.socket.exists()

    def ctl_status_argv(self) -> list[str]:
        assert self.anchors is not None
        return [str(self.anchors.tool("supervisorctl")), "-c", str(self.config), "status"]

    def probe_argv(self, iterations: int) -> list[str]:
        assert self.anchors is not None
        return [str(self.anchors.python), str(PROBE), "supervisord", str(iterations), str(self.socket)]

    def log_path(self, name: str) -> Path:
        return next(s.log_file for s in self.services if s.name == name and s.log_file is not None)

    def gave_up(self, name: str) -> bool:
        result = self.run_ctl([*self.ctl_status_argv(), name])
        return "FATAL" in result.stdout


class Circus(ManagerUnderTest):
    label = "Circus"

    @property
    def config(self) -> Path:
        return self.workdir / "circus.ini"

    @property
    def endpoint(self) -> str:
        return f"ipc://{self.workdir / 'control.sock'}"

    def configure(self, services: list[Service]) -> None:
        fast = any(service.profile == "fast" for service in services)
        head = [
            "[circus]", f"endpoint = {self.endpoint}",
            f"pubsub_endpoint = ipc://{self.workdir / 'pubsub.sock'}",
            f"stats_endpoint = ipc://{self.workdir / 'stats.sock'}", "statsd = false",
        ]
        if fast:
            head.append("check_delay = 0.1")
        watchers = [self.watcher(service) for service in services]
        self.config.write_text("\n".join(head) + "\n\n" + "\n".join(watchers))

    def watcher(self, service: Service) -> str:
        lines = [f"[watcher:{service.name}]", f"cmd = {service.argv[0]}",
                 f"args = {shlex.join(service.argv[1:])}", "numprocesses = 1"]
        if service.profile == "fast":
            lines += ["warmup_delay = 0", "max_retry = -1"]
        if service.restart == "no":
            lines.append("respawn = false")
        if service.log_file is not None:
            lines += ["stdout_stream.class = FileStream", f"stdout_stream.filename = {service.log_file}",
                      "stdout_stream.max_bytes = 0"]
        return "\n".join(lines) + "\n"

    def command(self) -> list[str]:
        assert self.anchors is not None
        return [str(self.anchors.tool("circusd")), "--log-level", "warning",
                "--log-output", str(self.workdir / "circusd.log"), str(self.config)]

    def control_ready(self) -> bool:
        return (self.workdir / "control.sock").exists()

    def ctl_status_argv(self) -> list[str]:
        assert self.anchors is not None
        return [str(self.anchors.tool("circusctl")), "--endpoint", self.endpoint, "status"]

    def probe_argv(self, iterations: int) -> list[str]:
        assert self.anchors is not None
        return [str(self.anchors.python), str(PROBE), "circus", str(iterations), self.endpoint]

    def log_path(self, name: str) -> Path:
        return next(s.log_file for s in self.services if s.name == name and s.log_file is not None)

    def gave_up(self, name: str) -> bool:
        result = self.run_ctl([*self.ctl_status_argv(), name])
        return result.stdout.strip() == "stopped"


def procfs_nofile_limit() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def all_managers(workdir: Path, anchors: VirtualEnv, unitmgr_env: VirtualEnv | None,
                 unitmgr_args: list[str]) -> list[ManagerUnderTest]:
    return [Unitmgr(workdir / "unitmgr", unitmgr_env, unitmgr_args), Supervisord(workdir / "supervisord", anchors),
            Circus(workdir / "circus", anchors)]


def probe_result(manager: ManagerUnderTest, iterations: int) -> dict[str, list[float]]:
    """Run the manager's round-trip probe; return round-trip times in milliseconds by kind of request."""
    result = manager.run_ctl(manager.probe_argv(iterations), timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"{manager.label} round-trip probe failed: {result.stderr.strip()[-2000:]}")
    return json.loads(result.stdout)["milliseconds"]
