"""daemon-reload, reload, and authorized_keys re-read by a running manager."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import zmq
from support import wait_for, write_unit
from unitmgr.shell.client import RemoteError
from unitwait import job_result, log_lines, wait_log, wait_state


def test_daemon_reload_keeps_running_units(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    env_v1 = tmp_path / "v1.env"
    env_v1.write_text("COLOR=red\n")
    env_v2 = tmp_path / "v2.env"
    env_v2.write_text("COLOR=blue\n")
    path = write_unit(units, "paint.service", f"""\
[Service]
EnvironmentFile={env_v1}
ExecStart=/bin/sh -c 'echo "color=$$COLOR leak=$${{LEAKED:-none}}"; exec sleep 1000'
""")
    write_unit(units, "doomed.service", "[Service]\nExecStart=/bin/sleep 1000\n")
    write_unit(units, "gone.service", "[Service]\nExecStart=/bin/sleep 1000\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["paint", "doomed"]})
    manager.status("gone")
    wait_log(manager, "paint", "color=red")
    first_pid = manager.status("paint")["main_pid"]
    assert manager.status("paint")["changed_on_disk"] is False

    # A newer mtime, even within the same second as the first write.
    path.write_text(path.read_text().replace(str(env_v1), str(env_v2)))
    stamp = time.time() + 2
    os.utime(path, (stamp, stamp))
    assert manager.status("paint")["changed_on_disk"] is True
    (units / "doomed.service").unlink()
    (units / "gone.service").unlink()

    # The client's environment never reaches the units.
    shell_env = dict(manager.env, LEAKED="from-the-client")
    reloaded = subprocess.run([sys.executable, "-c", (
        "from unitmgr.manager import paths; from unitmgr.shell.client import Client; import json; "
        "c = Client.local(paths.resolve()); print(json.dumps(c.request('daemon-reload', {})))")],
        env=shell_env, capture_output=True, text=True, timeout=30)
    assert reloaded.returncode == 0, reloaded.stderr
    assert '"gone.service"' in reloaded.stdout

    status = manager.status("paint")
    assert status["changed_on_disk"] is False
    assert status["main_pid"] == first_pid, "daemon-reload must not restart running units"
    assert manager.status("doomed")["active_state"] == "active", "a removed unit stops only on request"
    assert manager.status("gone")["load_state"] == "not-found"

    manager.request("restart", {"units": ["paint"]})
    wait_log(manager, "paint", "color=blue")
    assert "color=blue leak=none" in log_lines(manager, "paint")
    assert job_result(manager.request("stop", {"units": ["doomed"]}), "doomed.service") == "done"
    assert manager.status("doomed")["active_state"] == "inactive"


def test_reload_runs_exec_reload_with_mainpid(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "reloadable.service", """\
[Service]
ExecStart=/bin/sleep 1000
ExecReload=/bin/sh -c 'echo "reloading $$MAINPID"'
""")
    write_unit(units, "fixed.service", "[Service]\nExecStart=/bin/sleep 1000\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["reloadable", "fixed"]})
    main = manager.status("reloadable")["main_pid"]
    reply = manager.request("reload", {"units": ["reloadable"]})
    assert job_result(reply, "reloadable.service") == "done"
    assert f"reloading {main}" in log_lines(manager, "reloadable")
    status = manager.status("reloadable")
    assert (status["active_state"], status["main_pid"]) == ("active", main)
    with pytest.raises(RemoteError) as caught:
        manager.request("reload", {"units": ["fixed"]})
    assert caught.value.code == "not-applicable"


def test_notify_reload_signal(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    script = tmp_path / "reloader.py"
    script.write_text("""\
import signal, socket, os, time
sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def send(text):
    sock.sendto(text.encode(), os.environ["NOTIFY_SOCKET"])
def on_hup(signum, frame):
    now = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    send(f"RELOADING=1\\nMONOTONIC_USEC={now}")
    print("reloaded", flush=True)
    send("READY=1\\nSTATUS=reloaded")
signal.signal(signal.SIGHUP, on_hup)
send("READY=1\\nSTATUS=started")
while True:
    time.sleep(1)
""")
    write_unit(units, "hup.service", f"[Service]\nType=notify-reload\nExecStart={sys.executable} -u {script}\n")
    manager = make_manager(units)
    assert job_result(manager.request("start", {"units": ["hup"]}), "hup.service") == "done"
    assert manager.status("hup")["status_text"] == "started"
    assert job_result(manager.request("reload", {"units": ["hup"]}), "hup.service") == "done"
    status = manager.status("hup")
    assert status["status_text"] == "reloaded"
    assert status["active_state"] == "active"
    assert "reloaded" in log_lines(manager, "hup")


def test_authorized_keys_reread(make_manager, tmp_path: Path) -> None:
    from unitmgr.manager import paths as paths_module
    from unitmgr.manager.keys import load_server_public
    from unitmgr.shell.client import Client, ClientError

    units = tmp_path / "units"
    write_unit(units, "idle.service", "[Service]\nExecStart=/bin/sleep 1000\n")
    manager = make_manager(units)
    paths = paths_module.resolve(manager.env)
    public, secret = zmq.curve_keypair()

    def hello() -> bool:
        client = Client(paths.control_endpoint, load_server_public(paths), public, secret, timeout=5)
        try:
            return client.request("hello")["pid"] == manager.proc.pid
        except ClientError as exc:
            assert exc.kind == "unauthorized"
            return False
        finally:
            client.close()

    assert hello() is False
    with open(paths.authorized_keys, "a") as f:
        f.write(f"# added by the test\n{public.decode()}\n")
    wait_for(hello, message="the new key to be accepted without a restart")
    manager_pid = manager.proc.pid
    assert manager.proc.poll() is None and manager_pid == manager.request("hello")["pid"]
    wait_state(manager, "idle", "inactive")
