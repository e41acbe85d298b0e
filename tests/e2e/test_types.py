"""Service types and readiness against real programs: systemd-notify, sdnotify, memcached."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sys
from pathlib import Path

import pytest
from support import ManagerProcess, free_port, processes_with_env, wait_for, write_unit
from unitwait import alive, job_result, log_lines, user_name, wait_log, wait_state

SYSTEMD_NOTIFY = shutil.which("systemd-notify")
MEMCACHED = shutil.which("memcached")

needs_systemd_notify = pytest.mark.skipif(SYSTEMD_NOTIFY is None, reason="systemd-notify not installed")


def open_gate(fifo: Path) -> None:
    """Let a unit blocked in `read < fifo` go on (waits until the unit has the FIFO open)."""

    def opened() -> int | None:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:
                return None
            raise

    fd = wait_for(opened, message=f"a reader on {fifo}")
    os.write(fd, b"go\n")
    os.close(fd)


def start_notify_unit(make_manager, tmp_path: Path, name: str, body: str,
                      env: dict[str, str] | None = None) -> ManagerProcess:
    """Write `name`.service as Type=notify with NotifyAccess=all and the lines in `body`, then start a manager
    (with `env` added to its environment) and the unit, and return the manager."""
    units = tmp_path / "units"
    write_unit(units, f"{name}.service", f"[Service]\nType=notify\nNotifyAccess=all\n{body}")
    manager = make_manager(units, start=False)
    manager.env.update(env or {})
    manager.start()
    assert job_result(manager.request("start", {"units": [name]}), f"{name}.service") == "done"
    return manager


@needs_systemd_notify
def test_systemd_notify_ready_orders_dependent(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    write_unit(units, "notifier.service", f"""\
[Service]
Type=notify
NotifyAccess=all
ExecStart=/bin/sh -c 'read line < {gate}; {SYSTEMD_NOTIFY} --ready --status="Serving 3 clients"; exec sleep 1000'
""")
    write_unit(units, "dependent.service", """\
[Unit]
Wants=notifier.service
After=notifier.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/true
""")
    manager = make_manager(units)

    queued = manager.request("start", {"units": ["dependent"], "no_block": True})
    assert job_result(queued, "dependent.service") == "queued"
    wait_state(manager, "notifier", "activating", "start")
    # Still waiting for READY=1: the dependent must not have started.
    assert manager.status("dependent")["start_times"] == []

    open_gate(gate)
    dependent = wait_state(manager, "dependent", "active", "exited")
    notifier = manager.status("notifier")
    assert notifier["active_state"] == "active"
    assert notifier["sub_state"] == "running"
    assert notifier["status_text"] == "Serving 3 clients"
    assert dependent["start_times"][0] >= notifier["active_enter_time"]


@needs_systemd_notify
def test_mainpid_and_extend_timeout(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "slow.service", f"""\
[Service]
Type=notify
NotifyAccess=all
TimeoutStartSec=1
ExecStart=/bin/sh -c '{SYSTEMD_NOTIFY} EXTEND_TIMEOUT_USEC=4000000; sleep 2; \\
    sleep 1000 & {SYSTEMD_NOTIFY} --ready --pid=$$!; wait'
""")
    manager = make_manager(units)
    reply = manager.request("start", {"units": ["slow"]})
    assert job_result(reply, "slow.service") == "done"
    status = manager.status("slow")
    assert status["active_state"] == "active"
    assert status["main_comm"] == "sleep"
    with open(f"/proc/{status['main_pid']}/cmdline", "rb") as f:
        assert f.read() == b"sleep\x001000\x00"


def test_notify_access_main_rejects_child(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    sender = tmp_path / "sender.py"
    sender.write_text(
        "import os, socket, time\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n"
        "s.sendto(b'READY=1', os.environ['NOTIFY_SOCKET'])\n"
        "time.sleep(30)\n"
    )
    write_unit(units, "strict.service", f"""\
[Service]
Type=notify
TimeoutStartSec=1.5
TimeoutStopSec=2
ExecStart=/bin/sh -c '{sys.executable} {sender} & exec sleep 1000'
""")
    manager = make_manager(units)
    reply = manager.request("start", {"units": ["strict"]})
    assert job_result(reply, "strict.service") == "failed"
    status = manager.status("strict")
    assert status["active_state"] == "failed"
    assert status["result"] == "timeout"
    assert status["notify_access"] == "main"
    assert "rejecting a notify message" in manager.log()


SDNOTIFY_SERVICE = """\
import os
import sys
import time

import sdnotify

notifier = sdnotify.SystemdNotifier()
print("watchdog", os.environ.get("WATCHDOG_USEC"), os.environ.get("WATCHDOG_PID") == str(os.getpid()), flush=True)
notifier.notify("READY=1\\nSTATUS=pinging")
pings = 0
while not os.path.exists(sys.argv[1]):
    notifier.notify("WATCHDOG=1")
    pings += 1
    print("ping", pings, flush=True)
    time.sleep(0.1)
notifier.notify("STATUS=hanging")
while True:
    time.sleep(1)
"""


def test_sdnotify_watchdog(make_manager, tmp_path: Path) -> None:
    pytest.importorskip("sdnotify")
    units = tmp_path / "units"
    script = tmp_path / "pinger.py"
    script.write_text(SDNOTIFY_SERVICE)
    hang = tmp_path / "hang"
    write_unit(units, "pinger.service", f"""\
[Service]
Type=notify
WatchdogSec=0.6
TimeoutAbortSec=2
LimitCORE=0
WorkingDirectory={tmp_path}
ExecStart={sys.executable} -u {script} {hang}
""")
    manager = make_manager(units)
    reply = manager.request("start", {"units": ["pinger"]})
    assert job_result(reply, "pinger.service") == "done"
    first = manager.status("pinger")
    assert first["status_text"] == "pinging"
    assert "watchdog 600000 True" in log_lines(manager, "pinger")
    # Pinging every 0.1 s keeps it alive well past WatchdogSec=.
    wait_log(manager, "pinger", "ping 20")
    assert manager.status("pinger")["active_state"] == "active"

    hang.touch()
    status = wait_state(manager, "pinger", "failed")
    assert status["result"] == "watchdog"
    assert status["exec_main"]["pid"] == first["main_pid"]
    assert status["exec_main"]["status_name"] == "ABRT"
    assert not alive(first["main_pid"])


@pytest.mark.skipif(MEMCACHED is None, reason="memcached not installed")
def test_memcached_forking(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    pid_file = tmp_path / "memcached.pid"
    port = free_port()
    write_unit(units, "memcached.service", f"""\
[Service]
Type=forking
PIDFile={pid_file}
ExecStart={MEMCACHED} -d -u {user_name()} -P {pid_file} -l 127.0.0.1 -p {port} -U 0
TimeoutStopSec=5
""")
    manager = make_manager(units)
    reply = manager.request("start", {"units": ["memcached"]})
    assert job_result(reply, "memcached.service") == "done"
    status = manager.status("memcached")
    assert status["active_state"] == "active"
    daemon_pid = int(pid_file.read_text().split()[0])
    assert status["main_pid"] == daemon_pid
    assert status["main_comm"] == "memcached"
    assert status["exec_main"]["code"] == "exited"  # the parent that forked
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"version\r\n")
        assert conn.recv(100).startswith(b"VERSION ")

    reply = manager.request("stop", {"units": ["memcached"]})
    assert job_result(reply, "memcached.service") == "done"
    assert manager.status("memcached")["active_state"] == "inactive"
    assert not alive(daemon_pid)
    assert [pid for pid in processes_with_env(manager.marker) if pid != manager.proc.pid] == []


def test_forking_guesses_main_pid(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "guess.service", """\
[Service]
Type=forking
ExecStart=/bin/sh -c 'setsid sleep 1000 < /dev/null > /dev/null 2>&1 &'
""")
    manager = make_manager(units)
    assert job_result(manager.request("start", {"units": ["guess"]}), "guess.service") == "done"
    # The guessed main process may still be setsid, about to exec sleep.
    status = wait_for(lambda: (s := manager.status("guess"))["main_comm"] == "sleep" and s, timeout=10,
                      message="main process sleep")
    main = status["main_pid"]
    os.kill(main, 9)
    failed = wait_state(manager, "guess", "failed")
    assert failed["result"] == "signal"
    assert failed["exec_main"]["status_name"] == "KILL"


def test_forking_pid_file_of_stranger_refused(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    pid_file = tmp_path / "stranger.pid"
    # The PID file names this test process: alive, but no process of the unit.
    write_unit(units, "liar.service", f"""\
[Service]
Type=forking
PIDFile={pid_file}
ExecStart=/bin/sh -c 'echo {os.getpid()} > {pid_file}'
TimeoutStopSec=2
""")
    manager = make_manager(units)
    assert job_result(manager.request("start", {"units": ["liar"]}), "liar.service") == "failed"
    status = manager.status("liar")
    assert status["result"] == "protocol"
    assert "does not belong to the service" in manager.log()


def test_exec_missing_binary_fails_start(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "missing-exec.service", "[Service]\nType=exec\nExecStart=/nonexistent/program\n")
    write_unit(units, "missing-dir.service",
               "[Service]\nType=exec\nWorkingDirectory=/nonexistent/dir\nExecStart=/bin/sleep 1000\n")
    write_unit(units, "missing-simple.service", "[Service]\nType=simple\nExecStart=/nonexistent/program\n")
    manager = make_manager(units)

    for unit, code in (("missing-exec", 203), ("missing-dir", 200)):
        reply = manager.request("start", {"units": [unit]})
        assert job_result(reply, f"{unit}.service") == "failed", unit
        status = manager.status(unit)
        assert status["active_state"] == "failed", unit
        assert status["result"] == "exit-code", unit
        assert status["exec_main"]["status"] == code, unit

    # Type=simple counts as started at fork: the start succeeds, the unit then fails.
    reply = manager.request("start", {"units": ["missing-simple"]})
    assert job_result(reply, "missing-simple.service") == "done"
    status = wait_state(manager, "missing-simple", "failed")
    assert status["exec_main"]["status"] == 203


def test_oneshot_several_commands(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "steps.service", """\
[Service]
Type=oneshot
ExecStart=/bin/echo one
ExecStart=-/bin/false
ExecStart=/bin/echo three
""")
    write_unit(units, "kept.service", "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
    manager = make_manager(units)
    assert job_result(manager.request("start", {"units": ["steps"]}), "steps.service") == "done"
    status = manager.status("steps")
    assert (status["active_state"], status["sub_state"]) == ("inactive", "dead")
    assert log_lines(manager, "steps") == ["one", "three"]

    assert job_result(manager.request("start", {"units": ["kept"]}), "kept.service") == "done"
    status = manager.status("kept")
    assert (status["active_state"], status["sub_state"]) == ("active", "exited")


@needs_systemd_notify
def test_watchdog_trigger_abort_timeout(make_manager, tmp_path: Path) -> None:
    manager = start_notify_unit(make_manager, tmp_path, "stuck", f"""\
TimeoutAbortSec=1
ExecStart=/bin/sh -c 'trap "echo got ABRT" ABRT; {SYSTEMD_NOTIFY} --ready; {SYSTEMD_NOTIFY} WATCHDOG=trigger; \\
    while :; do sleep 0.1; done'
""")
    # No WatchdogSec= at all: WATCHDOG=trigger still ends the unit.
    status = wait_state(manager, "stuck", "failed")
    assert status["result"] == "watchdog"
    assert status["exec_main"]["status_name"] == "KILL", "SIGKILL after TimeoutAbortSec="
    assert "got ABRT" in log_lines(manager, "stuck")


def test_forking_pid_file_written_late(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    pid_file = tmp_path / "late.pid"
    script = tmp_path / "daemon.sh"
    # The daemon writes its PID file 0.3 s after its parent has exited.
    script.write_text("setsid /bin/sh -c 'sleep 0.3; echo $$ > \"$1\"; exec sleep 1000' sh \"$1\" "
                      "< /dev/null > /dev/null 2>&1 &\n")
    write_unit(units, "late.service", f"""\
[Service]
Type=forking
PIDFile={pid_file}
ExecStart=/bin/sh {script} {pid_file}
""")
    manager = make_manager(units)
    assert job_result(manager.request("start", {"units": ["late"]}), "late.service") == "done"
    status = manager.status("late")
    assert status["main_pid"] == int(pid_file.read_text())
    assert status["main_comm"] == "sleep"


@needs_systemd_notify
def test_abstract_notify_socket(make_manager, tmp_path: Path) -> None:
    import uuid

    name = f"@unitmgr-test-{uuid.uuid4().hex}"
    manager = start_notify_unit(make_manager, tmp_path, "abstract", f"""\
ExecStart=/bin/sh -c 'echo "socket=$$NOTIFY_SOCKET"; {SYSTEMD_NOTIFY} --ready --status=abstract; exec sleep 1000'
""", env={"UNITMGR_NOTIFY_SOCKET": name})
    assert manager.status("abstract")["status_text"] == "abstract"
    assert f"socket={name}" in log_lines(manager, "abstract")
    assert not (manager.home / "runtime" / "notify.sock").exists()


@needs_systemd_notify
def test_stopping_and_errno(make_manager, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    os.mkfifo(gate)
    manager = start_notify_unit(make_manager, tmp_path, "leaving", f"""\
ExecStart=/bin/sh -c '{SYSTEMD_NOTIFY} --ready ERRNO=5; read line < {gate}; \\
    {SYSTEMD_NOTIFY} STOPPING=1 STATUS=leaving; read line < {gate}; exit 0'
""")
    assert manager.status("leaving")["status_errno"] == 5
    open_gate(gate)
    status = wait_state(manager, "leaving", "deactivating")
    assert status["status_text"] == "leaving"
    open_gate(gate)
    status = wait_state(manager, "leaving", "inactive")
    assert status["result"] == "success"


@needs_systemd_notify
def test_wrapper_hands_over_main_pid(make_manager, tmp_path: Path) -> None:
    # The wrapper names its child as the main process and exits before READY=1 arrives.
    manager = start_notify_unit(make_manager, tmp_path, "wrapped", f"""\
ExecStart=/bin/sh -c 'sleep 1000 & {SYSTEMD_NOTIFY} MAINPID=$$!; \\
    (sleep 0.5; {SYSTEMD_NOTIFY} --ready) & exit 0'
""")
    status = manager.status("wrapped")
    assert status["active_state"] == "active"
    assert status["main_comm"] == "sleep"
