"""`unitsh` as a separate process: imports, no manager, and a fake manager
replying over real CurveZMQ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from shellfixtures import NOW, unit_status
from support import free_port
from unitmgr.manager import keys
from unitmgr.shell import cli

HEAVY_MODULES = ("prompt_toolkit", "asyncio", "paramiko")


def run_unitsh(args, env_extra, stdin=None, timeout=20):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("UNITMGR_", "XDG_"))}
    env.update(env_extra)
    return subprocess.run(
        [sys.executable, "-m", "unitmgr.shell.cli", *args], input=stdin, env=env,
        capture_output=True, text=True, timeout=timeout)


def test_module_runs_as_script():
    # `python -m unitmgr.shell.cli` is how these tests start unitsh.
    result = run_unitsh(["--help"], {})
    assert result.returncode == 0
    assert "Exit status (as systemctl):" in result.stdout
    assert "  5  start, stop, restart: a unit does not exist" in result.stdout


def test_no_manager_reported_at_once(tmp_path: Path):
    # A hang waiting for a manager that is not there ends in TimeoutExpired.
    result = run_unitsh(["-c", "status web"], {"UNITMGR_HOME": str(tmp_path)}, timeout=10)
    assert result.returncode == 1
    assert "unitmgr --user" in result.stderr
    assert result.stdout == ""


def test_empty_stdin_on_hosts_contacts_nobody(tmp_path: Path):
    # Nothing listens on these ports: a connection attempt would fail the run.
    ports = [free_port(), free_port()]
    result = run_unitsh([f"127.0.0.1:{port}" for port in ports], {"UNITMGR_HOME": str(tmp_path),
                        "HOME": str(tmp_path)}, stdin="\n# only a comment\n")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr == ""


def test_remote_host_refused_connection(tmp_path: Path):
    # The SSH tests live in tests/remote; this one needs no sshd.
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run_unitsh(["-c", "status", f"alice@127.0.0.1:{port}"],
                        {"UNITMGR_HOME": str(tmp_path), "HOME": str(tmp_path)})
    assert result.returncode == 1
    assert f"cannot connect to alice@127.0.0.1 port {port}: connection refused" in result.stderr


def test_usage_errors_exit_2(tmp_path: Path):
    env = {"UNITMGR_HOME": str(tmp_path)}
    assert run_unitsh(["-c", "start"], env).returncode == 2
    result = run_unitsh(["--endpoint", "tcp://127.0.0.1:1"], env)
    assert result.returncode == 2
    assert "--endpoint needs --server-key" in result.stderr
    result = run_unitsh(["--endpoint", "tcp://127.0.0.1:1", "--server-key", "short"], env)
    assert result.returncode == 2
    assert "invalid --server-key" in result.stderr


def test_c_path_imports_no_heavy_modules(fake_manager):
    fake_manager.replies["status"] = {"units": [unit_status()]}
    fake_manager.replies["list"] = {"columns": ["name"], "rows": []}
    code = (
        "import sys\n"
        "from unitmgr.shell.cli import main\n"
        "status = main(['-c', 'status web; list'])\n"
        f"print('LOADED', [m for m in {HEAVY_MODULES!r} if m in sys.modules])\n"
        "sys.exit(status)\n")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("UNITMGR_")},
           **fake_manager.env()}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert "● web.service - Example web server" in result.stdout
    assert result.stdout.splitlines()[-1] == "LOADED []"


def test_status_through_real_client(fake_manager):
    fake_manager.replies["status"] = {"units": [unit_status(state_change_time=NOW)]}
    result = run_unitsh(["-c", "status web"], fake_manager.env())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "● web.service - Example web server"
    assert lines[2].startswith("     Active: active (running) since Fri 2026-12-04 20:00:06 UTC;")
    assert lines[-1] == ("Dec 04 20:00:01 build-3 web.service[1234]: "
                         "Serving HTTP on 127.0.0.1 port 8000")
    sent = fake_manager.requests[0]
    assert (sent["cmd"], sent["args"]) == ("status", {"units": ["web"], "lines": 10})


def test_is_active_and_unknown_unit_exit_codes(fake_manager):
    fake_manager.replies["status"] = {"units": [unit_status(active_state="inactive")]}
    result = run_unitsh(["-c", "is-active web"], fake_manager.env())
    assert (result.returncode, result.stdout) == (3, "inactive\n")
    fake_manager.replies["restart"] = ("error", "unit-not-found", "Unit nope.service not found.")
    result = run_unitsh(["-c", "restart nope"], fake_manager.env())
    assert (result.returncode, result.stderr) == (5, "Unit nope.service not found.\n")


def test_json_and_stdin_commands(fake_manager):
    fake_manager.replies["list"] = {"units": [
        {"name": "web.service", "load_state": "loaded", "active_state": "active",
         "sub_state": "running", "description": "Example web server", "main_pid": 1234}]}
    script = "# check the units\nlist --all\nlist\n"
    result = run_unitsh(["--json"], fake_manager.env(), stdin=script)
    assert result.returncode == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(objects) == 2
    assert objects[0]["units"][0]["main_pid"] == 1234
    assert [r["args"] for r in fake_manager.requests] == [{"all": True, "table": True}, {"all": False, "table": True}]


def test_endpoint_and_server_key(fake_manager):
    endpoint = fake_manager.bind_tcp()
    server_key = keys.load_server_public(fake_manager.paths).decode()
    fake_manager.replies["list"] = {"units": []}
    result = run_unitsh(["--endpoint", endpoint, "--server-key", server_key, "-c", "list"],
                        fake_manager.env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("0 loaded units listed.")


def test_closed_pipe_is_not_a_traceback(fake_manager):
    records = [{"unit": "web.service", "time": NOW, "stream": "stdout", "pid": 7,
                "text": f"line {i}"} for i in range(20000)]
    fake_manager.replies["logs"] = {"records": records}
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("UNITMGR_")},
           **fake_manager.env()}
    process = subprocess.Popen([sys.executable, "-m", "unitmgr.shell.cli", "-c", "logs web"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        first = process.stdout.readline()
        process.stdout.close()
        _, errors = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert first.endswith(b"web.service[7]: line 0\n")
    assert b"Traceback" not in errors
    assert process.returncode == 1


def test_server_key_may_start_with_dash():
    key = "-" + "a" * 39
    assert cli.join_key_values(["--server-key", key, "-c", "list"]) == [
        f"--server-key={key}", "-c", "list"]
    assert cli.join_key_values(["-c", "list", "--server-key"]) == ["-c", "list", "--server-key"]


class FakeTerminal:
    def __init__(self, tty: bool):
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_colour_only_on_terminal_without_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert cli.wants_color(FakeTerminal(True)) is True
    assert cli.wants_color(FakeTerminal(False)) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert cli.wants_color(FakeTerminal(True)) is False
    monkeypatch.setenv("NO_COLOR", "")  # an empty NO_COLOR does not count
    assert cli.wants_color(FakeTerminal(True)) is True


def test_endpoint_label_for_prompt():
    assert cli.endpoint_label("tcp://build-3:7000") == "build-3"
    assert cli.endpoint_label("tcp://[::1]:7000") == "::1"
    assert cli.endpoint_label("ipc:///run/x.sock") == "ipc:///run/x.sock"
