"""Kernel-enforced resource limits, on a cgroup v2 hierarchy with the memory, pids, cpu and io controllers.

test_kernel_limits.py runs this file inside the test VM (harness.py), and
pytest only collects it when it is named on the command line. On a host
whose own cgroup v2 hierarchy offers these controllers it can be run
directly. Elsewhere it skips, except inside the VM, where a missing
controller is a failure of the VM's set-up.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from support import kill_and_reap, limit_entry, log_text, memory_hog_command, wait_for, write_unit
from unitmgr.manager import cgroups

CGROUPS = cgroups.detect()
IN_VM = os.environ.get("UNITMGR_TEST_VM") == "1"
MISSING = [c for c in cgroups.WANTED_CONTROLLERS if c not in CGROUPS.controllers]
pytestmark = pytest.mark.skipif(
    bool(MISSING or not CGROUPS.usable) and not IN_VM,
    reason=f"the cgroup v2 hierarchy lacks controllers {MISSING} or is not writable ({CGROUPS.reason})")
PYTHON = sys.executable
FORKER = """\
import os, time
forked = failed = 0
for _ in range(20):
    try:
        pid = os.fork()
    except BlockingIOError:
        failed += 1
        continue
    if pid == 0:
        time.sleep(1000)
        os._exit(0)
    forked += 1
print(f"forked {forked}, failed {failed}", flush=True)
time.sleep(1000)
"""


def test_hierarchy_has_controllers() -> None:
    assert CGROUPS.usable, CGROUPS.reason
    assert MISSING == []


def test_startup_log_lists_kernel_limits(make_manager, tmp_path: Path) -> None:
    manager = make_manager(tmp_path / "units")
    text = manager.log()

    assert text.count("resource control: ") == 1
    assert "cgroup.kill available" in text
    assert "controllers enabled: cpu, memory, pids, io" in text
    assert ("enforced by the kernel: MemoryMax=, MemoryHigh=, MemorySwapMax=, CPUQuota=, "
            "CPUWeight=, TasksMax=, IOWeight=") in text


def test_memory_max_oom_kill_restarts(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "hog.service", f"""\
[Service]
MemoryMax=64M
Restart=on-failure
RestartSec=0.2
ExecStart={memory_hog_command(200)}
""", enable=True)
    manager = make_manager(units)

    status = wait_for(lambda: (s := manager.status("hog")) and s["n_restarts"] >= 1 and s,
                      timeout=60, message="hog to be killed by the kernel and restarted")
    hit = status["limit_hit"]
    assert hit["name"] == "MemoryMax"
    assert hit["enforced_by"] == "kernel"
    assert "the kernel killed" in hit["action"]
    assert limit_entry(status, "MemoryMax")["enforced_by"] == "kernel"
    assert "the kernel's OOM killer killed 1 process(es) at MemoryMax=67108864 (result oom-kill)" in manager.log()
    # The manager's sampler stays out of it: the kernel acted.
    assert "is above MemoryMax=" not in manager.log()
    shown = manager.unitsh("-c", "status hog").stdout
    assert "Limits: MemoryMax=64.0M (kernel)" in shown
    assert "Limit hit: MemoryMax=64.0M at " in shown
    assert "by kernel" in shown


def test_memory_max_oom_kill_result(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "hog.service", f"""\
[Service]
MemoryMax=32M
ExecStart={memory_hog_command(100)}
""", enable=True)
    manager = make_manager(units)

    status = wait_for(lambda: (s := manager.status("hog")) and s["active_state"] == "failed" and s,
                      timeout=60, message="hog to fail")
    assert status["result"] == "oom-kill"
    assert status["limit_hit"]["enforced_by"] == "kernel"
    # The state change itself carries the result; no later correction.
    assert "hog.service: failed (failed) result=oom-kill" in manager.log()
    assert "result=signal" not in manager.log()


def test_tasks_max_fork_fails(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    (tmp_path / "forker.py").write_text(FORKER)
    write_unit(units, "forker.service", f"""\
[Service]
TasksMax=5
ExecStart={PYTHON} {tmp_path / "forker.py"}
""", enable=True)
    manager = make_manager(units)

    wait_for(lambda: "forked " in log_text(manager, "forker"), timeout=30, message="the forker's report")
    # The main process and four children fill the limit; fork() fails for the other 16.
    assert "forked 4, failed 16" in log_text(manager, "forker")
    status = manager.status("forker")
    assert status["active_state"] == "active"
    assert status["tasks"] == 5
    assert status["tasks_killed"] == 0
    assert limit_entry(status, "TasksMax")["enforced_by"] == "kernel"
    directory = Path(status["cgroup"])
    assert (directory / "pids.max").read_text().strip() == "5"
    events = dict(line.split() for line in (directory / "pids.events").read_text().splitlines())
    assert events["max"] == "16"
    assert "Tasks: 5 (limit: 5)" in manager.unitsh("-c", "status forker").stdout


def test_limits_written_to_cgroup(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "limited.service", """\
[Service]
MemoryMax=300M
MemoryHigh=100M
MemorySwapMax=0
CPUQuota=20%
CPUWeight=50
TasksMax=64
IOWeight=50
ExecStart=/bin/sleep 1000
""", enable=True)
    write_unit(units, "plain.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    manager = make_manager(units)

    status = wait_for(lambda: (s := manager.status("limited")) and s["active_state"] == "active" and s,
                      message="limited to run")
    directory = Path(status["cgroup"])
    expected = {
        "memory.max": str(300 << 20), "memory.high": str(100 << 20), "memory.swap.max": "0",
        "cpu.max": "20000 100000", "cpu.weight": "50", "pids.max": "64", "io.weight": "default 50",
    }
    for name, value in expected.items():
        assert (directory / name).read_text().strip() == value, name
    for entry in status["limits"]:
        assert entry["enforced_by"] == "kernel", entry
    assert not [w for w in status["warnings"] if "is not enforced" in w]

    plain = wait_for(lambda: (s := manager.status("plain")) and s["active_state"] == "active" and s,
                     message="plain to run")
    plain_dir = Path(plain["cgroup"])
    for name in ("memory.max", "memory.high", "memory.swap.max", "pids.max"):
        assert (plain_dir / name).read_text().strip() == "max", name
    assert (plain_dir / "cpu.max").read_text().split()[0] == "max"


def test_membership_from_cgroup_procs(make_manager, tmp_path: Path) -> None:
    # The daemon leaves the unit's session and clears its environment, so only the cgroup still lists it.
    units = tmp_path / "units"
    daemon = "(setsid env -i /bin/sleep 1000 > /dev/null 2>&1 < /dev/null &)"
    write_unit(units, "escape.service", f"[Service]\nExecStart=/bin/sh -c '{daemon}; exec sleep 1001'\n",
               enable=True)
    manager = make_manager(units)

    def both_sleeping() -> dict | None:
        # Until the daemon has exec'd sleep, the cgroup also lists the short-lived subshell.
        status = manager.status("escape")
        commands = sorted(str(p["cmdline"]) for p in status["processes"])
        return status if len(commands) == 2 and all("sleep 100" in c for c in commands) else None

    status = wait_for(both_sleeping, message="escape's two sleep processes")
    directory = Path(status["cgroup"])
    members = {int(pid) for pid in (directory / "cgroup.procs").read_text().split()}
    try:
        assert {p["pid"] for p in status["processes"]} == members
        assert status["main_pid"] in members
    finally:
        kill_and_reap(sorted(members - {status["main_pid"]}))


def test_stop_through_cgroup_kill(make_manager, tmp_path: Path) -> None:
    # Every process ignores SIGTERM and the main one keeps forking, so the stop ends in SIGKILL.
    units = tmp_path / "units"
    (tmp_path / "stubborn.py").write_text("""\
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    try:
        if os.fork() == 0:
            time.sleep(1000)
            os._exit(0)
    except BlockingIOError:
        pass
    time.sleep(0.05)
""")
    write_unit(units, "stubborn.service", f"""\
[Service]
TasksMax=30
TimeoutStopSec=1
ExecStart={PYTHON} {tmp_path / "stubborn.py"}
""", enable=True)
    manager = make_manager(units)

    status = wait_for(lambda: (s := manager.status("stubborn")) and (s["tasks"] or 0) >= 5 and s,
                      timeout=30, message="stubborn to fork")
    directory = Path(status["cgroup"])
    result = manager.unitsh("-c", "stop stubborn")
    assert result.returncode == 0, result.stderr

    wait_for(lambda: not directory.exists(), timeout=20, message="the unit's cgroup to be removed")
    status = manager.status("stubborn")
    assert status["active_state"] == "failed"
    assert status["result"] == "timeout"
    assert "cgroup.kill available" in manager.log()


DELEGATED_PROBE = """\
import json
from unitmgr.manager import cgroups
support = cgroups.detect()
tree = cgroups.CgroupTree(support)
tree.setup()
tree.create("probe.service")
written = tree.write("probe.service", "memory.max", "1048576")
print(json.dumps({"own_path": support.own_path, "enabled": tree.enabled, "written": written,
                  "memory_max": tree.read("probe.service", "memory.max").strip()}))
tree.cleanup()
"""


def test_delegated_subtree_setup(tmp_path: Path) -> None:
    # A manager started in a non-root cgroup moves itself into a leaf before it enables controllers.
    assert CGROUPS.mount is not None
    delegated = CGROUPS.mount / f"vm-delegated-{secrets.token_hex(3)}"
    delegated.mkdir()
    try:
        result = subprocess.run(
            [PYTHON, "-c", DELEGATED_PROBE], capture_output=True, text=True, timeout=60,
            preexec_fn=lambda: (delegated / "cgroup.procs").write_text(str(os.getpid())))
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["own_path"] == f"/{delegated.name}"
        assert report["enabled"] == list(cgroups.WANTED_CONTROLLERS)
        assert report["written"] is True
        assert report["memory_max"] == "1048576"
    finally:
        leaf = delegated / "manager"
        for directory in (leaf, delegated):
            if directory.exists():
                directory.rmdir()
