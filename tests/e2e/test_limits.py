"""Resource limits and statistics with real processes, in both resource modes.

The limit tests run under `--no-cgroups` (the manager enforces MemoryMax=
and TasksMax= by sampling) and, where a writable cgroup v2 hierarchy exists,
in cgroup mode too. These tests cover the manager's enforcement, so the
cgroup variant is skipped where the kernel's memory or pids controller
takes over.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

import pytest
from support import kill_and_reap, limit_entry, log_text, memory_hog_command, wait_for, write_unit
from unitmgr.manager import cgroups

CGROUPS = cgroups.detect()
MODES = [
    pytest.param(["--no-cgroups"], id="process"),
    pytest.param([], id="cgroup", marks=pytest.mark.skipif(
        not CGROUPS.usable, reason=f"no writable cgroup v2 hierarchy: {CGROUPS.reason}")),
]
PYTHON = sys.executable
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def skip_if_kernel_enforces(mode: list[str], controller: str) -> None:
    if "--no-cgroups" not in mode and controller in CGROUPS.controllers:
        pytest.skip(f"the kernel's {controller} controller enforces this limit here")


def forking_unit(children: int) -> str:
    """Return a unit with TasksMax=5 whose shell starts `children` sleeps, prints "forked" and waits."""
    return ("[Service]\nTasksMax=5\nExecStart=/bin/sh -c 'i=0; while [ $$i -lt "
            f"{children} ]; do sleep 1000 & i=$$((i+1)); done; echo forked; wait'\n")


def wait_forked(manager, unit: str, timeout: float) -> None:
    wait_for(lambda: "forked" in log_text(manager, unit), timeout=timeout, message="the shell to finish forking")


@pytest.mark.parametrize("mode", MODES)
def test_memory_max_kills_and_restarts(make_manager, tmp_path: Path, mode: list[str]) -> None:
    skip_if_kernel_enforces(mode, "memory")
    units = tmp_path / "units"
    write_unit(units, "hog.service", f"""\
[Service]
MemoryMax=64M
Restart=on-failure
RestartSec=0.2
ExecStart={memory_hog_command(200)}
""", enable=True)
    manager = make_manager(units, *mode)

    status = wait_for(lambda: (s := manager.status("hog")) and s["n_restarts"] >= 1 and s,
                      timeout=30, message="hog to be killed and restarted")
    hit = status["limit_hit"]
    assert hit["name"] == "MemoryMax"
    assert hit["enforced_by"] == "manager"
    assert hit["observed"] > 64 << 20
    assert status["memory_max"] == 64 << 20
    assert limit_entry(status, "MemoryMax")["enforced_by"] == "manager"
    assert "result oom-kill" in manager.log()
    shown = manager.unitsh("-c", "status hog").stdout
    assert "Limits: MemoryMax=64.0M (unitmgr)" in shown
    assert "Limit hit: MemoryMax=64.0M at " in shown


@pytest.mark.parametrize("mode", MODES)
def test_memory_max_result_without_restart(make_manager, tmp_path: Path, mode: list[str]) -> None:
    skip_if_kernel_enforces(mode, "memory")
    units = tmp_path / "units"
    write_unit(units, "hog.service", f"""\
[Service]
MemoryMax=32M
ExecStart={PYTHON} -c "import time; data = b'x' * (100 << 20); time.sleep(1000)"
""", enable=True)
    manager = make_manager(units, *mode)

    status = wait_for(lambda: (s := manager.status("hog")) and s["active_state"] == "failed" and s,
                      timeout=30, message="hog to fail")
    assert status["result"] == "oom-kill"
    assert status["limit_hit"]["name"] == "MemoryMax"


def test_rlimits_seen_by_child(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "probe.service", """\
[Service]
Type=oneshot
RemainAfterExit=yes
LimitNOFILE=100:200
LimitCORE=0
LimitFSIZE=1M:infinity
ExecStart=/bin/grep -E "^Max (open files|core file size|file size)" /proc/self/limits
""", enable=True)
    manager = make_manager(units, "--no-cgroups")

    wait_for(lambda: manager.status("probe")["sub_state"] == "exited", message="probe to finish")
    lines = {" ".join(line.split()[:-1]) for line in log_text(manager, "probe").split("\n")}
    assert "Max open files 100 200" in lines
    assert "Max core file size 0 0" in lines
    assert "Max file size 1048576 unlimited" in lines


def test_hard_limit_above_manager_fails(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "greedy.service", """\
[Service]
LimitNOFILE=100:infinity
ExecStart=/bin/sleep 1000
""", enable=True)
    manager = make_manager(units, "--no-cgroups")

    status = wait_for(lambda: (s := manager.status("greedy")) and s["active_state"] == "failed" and s,
                      message="greedy to fail")
    assert status["result"] == "exit-code"
    assert status["exec_main"]["status"] == 205
    assert "above the manager's own hard limit" in manager.log()
    shown = manager.unitsh("-c", "status greedy")
    assert "205/LIMITS" in shown.stdout
    # The reason is in the unit's own log, which status shows.
    assert "setrlimit failed: LimitNOFILE=: hard limit infinity is above" in shown.stdout


def test_scheduling_attributes_seen_by_child(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "probe.service", """\
[Service]
Type=oneshot
RemainAfterExit=yes
Nice=5
CPUAffinity=0
IOSchedulingClass=best-effort
IOSchedulingPriority=6
OOMScoreAdjust=300
UMask=0077
ExecStart=/bin/sh -c 'echo "nice=$$(cut -d" " -f19 /proc/self/stat)"; \\
    grep Cpus_allowed_list /proc/self/status; echo "oom=$$(cat /proc/self/oom_score_adj)"; \\
    echo "umask=$$(umask)"'
""", enable=True)
    manager = make_manager(units, "--no-cgroups")

    wait_for(lambda: manager.status("probe")["sub_state"] == "exited", message="probe to finish")
    text = log_text(manager, "probe")
    assert "nice=5" in text
    assert "Cpus_allowed_list:\t0" in text
    assert "oom=300" in text
    assert "umask=0077" in text


def test_io_priority_seen_by_child(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "probe.service", f"""\
[Service]
Type=oneshot
RemainAfterExit=yes
IOSchedulingClass=idle
ExecStart={PYTHON} -c "import ctypes; print('ioprio', ctypes.CDLL(None).syscall(252, 1, 0))"
""", enable=True)
    if os.uname().machine != "x86_64":
        pytest.skip("the probe calls ioprio_get by its x86_64 syscall number")
    manager = make_manager(units, "--no-cgroups")

    wait_for(lambda: manager.status("probe")["sub_state"] == "exited", message="probe to finish")
    # IOPRIO_CLASS_IDLE (3) in the top bits, level 0.
    assert f"ioprio {3 << 13}" in log_text(manager, "probe")


def test_affinity_the_kernel_rejects_fails(make_manager, tmp_path: Path) -> None:
    # As root every privileged value is allowed, so the error path uses a CPU
    # the machine does not have, which sched_setaffinity rejects for anyone.
    units = tmp_path / "units"
    write_unit(units, "pinned.service", """\
[Service]
CPUAffinity=1000
ExecStart=/bin/sleep 1000
""", enable=True)
    manager = make_manager(units, "--no-cgroups")

    status = wait_for(lambda: (s := manager.status("pinned")) and s["active_state"] == "failed" and s,
                      message="pinned to fail")
    assert status["exec_main"]["status"] == 215
    assert "sched_setaffinity" in manager.log()


@pytest.mark.parametrize("mode", MODES)
def test_tasks_max_holds(make_manager, tmp_path: Path, mode: list[str]) -> None:
    skip_if_kernel_enforces(mode, "pids")
    units = tmp_path / "units"
    write_unit(units, "forker.service", forking_unit(20), enable=True)
    manager = make_manager(units, *mode)

    # On a slow machine (such as the emulated test VM) the shell may still be forking when the manager first acts.
    wait_forked(manager, "forker", timeout=30)
    status = wait_for(lambda: (s := manager.status("forker")) and s["tasks_killed"] > 0 and s,
                      timeout=20, message="the manager to act on TasksMax=")
    wait_for(lambda: manager.status("forker")["tasks"] <= 5, message="tasks to drop to the limit")
    status = manager.status("forker")
    assert status["active_state"] == "active"
    assert status["tasks_max"] == 5
    assert limit_entry(status, "TasksMax")["enforced_by"] == "manager"
    assert status["limit_hit"]["name"] == "TasksMax"
    assert "newest process" in status["limit_hit"]["action"]
    assert len(status["processes"]) == 5
    assert status["main_pid"] in [p["pid"] for p in status["processes"]]
    shown = manager.unitsh("-c", "status forker")
    assert "(limit: 5)" in shown.stdout
    assert "Limits: TasksMax=5 (unitmgr)" in shown.stdout


def test_unenforced_limits_are_reported(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "quota.service", """\
[Service]
CPUQuota=20%
IOWeight=50
ExecStart=/bin/sleep 1000
""", enable=True)
    manager = make_manager(units, "--no-cgroups")

    wait_for(lambda: manager.status("quota")["active_state"] == "active", message="quota to run")
    status = manager.status("quota")
    assert limit_entry(status, "CPUQuota") == {"name": "CPUQuota", "value": 0.2, "enforced_by": "none"}
    assert limit_entry(status, "IOWeight")["enforced_by"] == "none"
    assert any("CPUQuota= is not enforced" in w for w in status["warnings"])
    assert manager.log().count("CPUQuota= is not enforced") == 1


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_top_shows_cpu_use(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "burner.service", "[Service]\nExecStart=/bin/sh -c 'while :; do :; done'\n", enable=True)
    write_unit(units, "idle.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    manager = make_manager(units, "--no-cgroups")
    wait_for(lambda: manager.status("burner")["active_state"] == "active"
             and manager.status("idle")["active_state"] == "active", message="both units to run")

    def rows() -> dict[str, dict]:
        return {row["name"]: row for row in manager.request("top")["units"]}

    # On an idle machine the burner gets a whole CPU and shows near 100 %. The
    # test suite may share the CPUs, so the expected value is what the test
    # itself measures for the burner between two `top` requests.
    first = rows()
    pid = first["burner.service"]["main_pid"]
    ticks_before, time_before = cpu_ticks(pid), time.monotonic()
    wait_for(lambda: cpu_ticks(pid) - ticks_before >= 0.5 * CLOCK_TICKS, timeout=30,
             message="the burner to use half a second of CPU")
    table = rows()
    measured = 100 * (cpu_ticks(pid) - ticks_before) / CLOCK_TICKS / (time.monotonic() - time_before)

    burner = table["burner.service"]
    assert abs(burner["cpu_percent"] - measured) <= max(20.0, measured / 2), (burner, measured)
    assert table["idle.service"]["cpu_percent"] < 2
    assert list(table)[0] == "burner.service"
    assert burner["cpu_seconds"] > 0.5

    shown = manager.unitsh("-c", "top")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("UNIT")
    assert lines[1].startswith("burner.service")


def test_statistics_in_status(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "worker.service", f"""\
[Service]
MemoryMax=256M
ExecStart={PYTHON} -c "import time; f = open('/dev/null'); data = b'x' * (20 << 20); time.sleep(1000)"
""", enable=True)
    manager = make_manager(units, "--no-cgroups")

    status = wait_for(lambda: (s := manager.status("worker")) and (s["memory_bytes"] or 0) > 20 << 20 and s,
                      message="worker to allocate")
    assert status["memory_peak"] >= status["memory_bytes"]
    assert status["memory_rss"] >= 20 << 20
    assert status["open_files"] >= 4
    assert status["io_read_bytes"] is not None
    assert status["tasks"] == 1
    shown = manager.unitsh("-c", "status worker").stdout
    assert "Memory: " in shown and "(max: 256.0M" in shown and "peak: " in shown
    assert "Tasks: 1" in shown
    assert "CPU: " in shown


@pytest.mark.skipif(not CGROUPS.usable, reason=f"no writable cgroup v2 hierarchy: {CGROUPS.reason}")
def test_cgroup_per_unit(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "family.service", """\
[Service]
ExecStart=/bin/sh -c 'sleep 1000 & sleep 1000 & setsid sleep 1000 & wait'
TimeoutStopSec=5
""", enable=True)
    manager = make_manager(units)

    status = wait_for(lambda: (s := manager.status("family")) and s["tasks"] >= 4 and s,
                      message="family's four processes")
    assert status["resource_mode"] == "cgroup"
    directory = Path(status["cgroup"])
    members = {int(pid) for pid in (directory / "cgroup.procs").read_text().split()}
    assert status["main_pid"] in members
    assert len(members) == 4
    for pid in members:
        assert Path(f"/proc/{pid}/cgroup").read_text().strip().endswith(
            str(directory.relative_to(CGROUPS.mount)))

    result = manager.unitsh("-c", "stop family")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: not directory.exists(), message="the unit's cgroup to be removed")
    for pid in members:
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def escaped_pids(directory: Path, known: set[int]) -> list[int]:
    return [int(p) for p in (directory / "cgroup.procs").read_text().split() if int(p) not in known]


@pytest.mark.skipif(not CGROUPS.usable, reason=f"no writable cgroup v2 hierarchy: {CGROUPS.reason}")
@pytest.mark.parametrize("unit_type", ["simple", "oneshot"])
def test_cgroup_stop_catches_escaped_process(make_manager, tmp_path: Path, unit_type: str) -> None:
    # A daemon that leaves the unit's session and clears its environment
    # escapes process tracking, but not its cgroup, which is where a unit
    # with a cgroup finds its processes: the stop sends it SIGTERM with the rest.
    units = tmp_path / "units"
    # The subshell exits at once, so the sleep is re-parented to the manager.
    daemon = "(setsid env -i /bin/sleep 1000 > /dev/null 2>&1 < /dev/null &)"
    if unit_type == "simple":
        body = f"ExecStart=/bin/sh -c '{daemon}; exec sleep 1001'"
    else:
        body = f"Type=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c '{daemon}'"
    write_unit(units, "escape.service", f"[Service]\n{body}\n", enable=True)
    manager = make_manager(units)

    status = wait_for(lambda: (s := manager.status("escape")) and s["active_state"] == "active" and s,
                      message="escape to start")
    directory = Path(status["cgroup"])
    # The subshell that started the sleep may still be in the cgroup for a moment, so wait for one pid.
    [pid] = wait_for(lambda: len(pids := escaped_pids(directory, {status["main_pid"]})) == 1 and pids,
                     message="the escaped sleep alone in the cgroup")
    try:
        assert manager.unitsh("-c", "stop escape").returncode == 0
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text(),
                 message="the escaped process to be killed")
        wait_for(lambda: not directory.exists(), message="the unit's cgroup to be removed")
        signalled = 2 if unit_type == "simple" else 1
        assert f"sending SIGTERM to {signalled} process(es) (KillMode=control-group)" in manager.log()
    finally:
        # The fixture finds leftovers by their environment, which this one cleared.
        kill_and_reap([pid])


@pytest.mark.skipif(not CGROUPS.usable, reason=f"no writable cgroup v2 hierarchy: {CGROUPS.reason}")
def test_cgroup_removed_at_shutdown(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "idle.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    manager = make_manager(units)
    status = wait_for(lambda: (s := manager.status("idle")) and s["cgroup"] and s, message="idle to run")
    base = Path(status["cgroup"]).parent
    assert base.name.startswith(f"unitmgr-{manager.proc.pid}-")
    assert manager.stop() == 0
    assert not base.exists()


@pytest.mark.skipif(not CGROUPS.usable, reason=f"no writable cgroup v2 hierarchy: {CGROUPS.reason}")
def test_cgroup_kill_mode_process_keeps_rest(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "lenient.service", """\
[Service]
KillMode=process
ExecStart=/bin/sh -c 'sleep 1000 & exec sleep 1001'
""", enable=True)
    manager = make_manager(units)

    status = wait_for(lambda: (s := manager.status("lenient")) and len(s["processes"]) == 2 and s,
                      message="lenient's two processes")
    directory = Path(status["cgroup"])
    [child] = [p["pid"] for p in status["processes"] if p["pid"] != status["main_pid"]]
    assert manager.unitsh("-c", "stop lenient").returncode == 0

    assert Path(f"/proc/{child}").exists()
    assert str(child) in (directory / "cgroup.procs").read_text().split()
    assert "left in its cgroup (KillMode=)" in manager.log()


def test_interactive_top_refreshes(make_manager, tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    units = tmp_path / "units"
    write_unit(units, "idle.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    manager = make_manager(units, "--no-cgroups")
    wait_for(lambda: manager.status("idle")["active_state"] == "active", message="idle to run")

    env = dict(manager.env, TERM="xterm-256color", PROMPT_TOOLKIT_NO_CPR="1")
    child = pexpect.spawn(PYTHON, ["-m", "unitmgr.shell.cli"], env=env, encoding="utf-8",
                          timeout=20, dimensions=(24, 160))
    try:
        child.expect_exact("unitsh>")
        child.send("top -d 0.5\r")
        for _refresh in range(2):
            child.expect_exact("press any key to stop")
            child.expect_exact("idle.service")
        child.send("q")
        child.expect_exact("unitsh>")
        child.send("quit\r")
        child.expect(pexpect.EOF)
    finally:
        if child.isalive():
            child.terminate(force=True)
        child.close()


HOG = memory_hog_command(100)
# Units that pass MemoryMax=32M before they are started, one per phase of the start.
ACTIVATING_HOGS = {
    "start-pre": f"ExecStartPre={HOG}\nExecStart=/bin/sleep 1000\n",
    "notify-before-ready": f"Type=notify\nExecStart={HOG}\n",
    "oneshot": f"Type=oneshot\nExecStart={HOG}\n",
}


@pytest.mark.parametrize("phase", list(ACTIVATING_HOGS))
@pytest.mark.parametrize("mode", MODES)
def test_memory_max_while_activating(make_manager, tmp_path: Path, mode: list[str], phase: str) -> None:
    skip_if_kernel_enforces(mode, "memory")
    units = tmp_path / "units"
    write_unit(units, "hog.service", f"[Service]\nMemoryMax=32M\n{ACTIVATING_HOGS[phase]}")
    manager = make_manager(units, *mode)
    manager.request("start", {"units": ["hog"], "no_block": True})

    status = wait_for(lambda: (s := manager.status("hog")) and s["active_state"] == "failed" and s,
                      timeout=30, message="hog to fail while activating")
    assert status["result"] == "oom-kill"
    assert status["limit_hit"]["name"] == "MemoryMax"
    assert status["limit_hit"]["enforced_by"] == "manager"
    assert "start timed out" not in manager.log()
    if phase == "start-pre":
        assert "hog.service: started ExecStart=" not in manager.log()


@pytest.mark.parametrize("mode", MODES)
def test_memory_max_before_ready_restarts(make_manager, tmp_path: Path, mode: list[str]) -> None:
    skip_if_kernel_enforces(mode, "memory")
    units = tmp_path / "units"
    write_unit(units, "hog.service", f"""\
[Service]
Type=notify
MemoryMax=32M
Restart=on-failure
RestartSec=0.2
ExecStart={HOG}
""")
    manager = make_manager(units, *mode)
    manager.request("start", {"units": ["hog"], "no_block": True})
    try:
        wait_for(lambda: manager.status("hog")["n_restarts"] >= 2, timeout=30,
                 message="hog to be killed and restarted twice")
    finally:
        manager.request("stop", {"units": ["hog"]})
    assert "hog.service: activating (auto-restart) result=oom-kill" in manager.log()


@pytest.mark.parametrize("mode", MODES)
def test_tasks_max_against_fork_burst(make_manager, tmp_path: Path, mode: list[str]) -> None:
    skip_if_kernel_enforces(mode, "pids")
    units = tmp_path / "units"
    # A bounded fork bomb: 300 children started as fast as the shell can, none of which exits.
    write_unit(units, "burst.service", forking_unit(300))
    manager = make_manager(units, *mode)
    ticks_before = cpu_ticks(manager.proc.pid)
    manager.request("start", {"units": ["burst"]})
    try:
        wait_forked(manager, "burst", timeout=60)
        status = wait_for(lambda: (s := manager.status("burst"))["tasks"] <= 5 and s, timeout=20,
                          message="tasks to drop to the limit")
        cpu_used = (cpu_ticks(manager.proc.pid) - ticks_before) / CLOCK_TICKS
    finally:
        manager.request("stop", {"units": ["burst"]})

    assert status["active_state"] == "active"
    assert status["tasks_killed"] >= 295
    seen = [int(count) for count in re.findall(r"burst.service: (\d+) tasks is above TasksMax=5", manager.log())]
    assert seen, "the manager never found the unit above TasksMax="
    print(f"fork burst against TasksMax=5 ({mode or 'cgroup'}): {len(seen)} samples over the limit, "
          f"the largest count seen {max(seen)}: {seen}; manager CPU {cpu_used:.2f}s")
