"""The exec helper run directly: each failed step exits with systemd's code and says why.

Values that need privileges are checked as the unprivileged user `nobody`
(through setpriv), because these tests run as root, for whom every value is
allowed. Without setpriv, root or a `nobody` account those cases are skipped.
"""

from __future__ import annotations

import json
import os
import pwd
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from unitmgr.manager.spawn import HELPER, parse_helper_status


def run_helper(spec: dict, as_nobody: bool = False, status_pipe: bool = False) -> tuple[int, str, bytes]:
    """Run the helper on `spec` (exec'ing /bin/true); return (exit code, stderr, status-pipe bytes)."""
    full = {"path": "/bin/true", "argv": ["true"], "env": {}, **spec}
    prefix: list[str] = []
    if as_nobody:
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    read_fd = write_fd = -1
    if status_pipe:
        read_fd, write_fd = os.pipe()
        full["status_fd"] = write_fd
    try:
        proc = subprocess.run([*prefix, sys.executable, "-I", "-S", HELPER, json.dumps(full)],
                              capture_output=True, text=True, timeout=30,
                              pass_fds=[write_fd] if status_pipe else ())
        status = b""
        if status_pipe:
            os.close(write_fd)
            write_fd = -1
            status = os.read(read_fd, 4096)
    finally:
        for fd in (read_fd, write_fd):
            if fd >= 0:
                os.close(fd)
    return proc.returncode, proc.stderr, status


def nobody_available() -> str:
    if os.geteuid() != 0:
        return "needs root to switch to the user nobody"
    if shutil.which("setpriv") is None:
        return "setpriv is not installed"
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        return "there is no user nobody"
    code, stderr, _ = run_helper({}, as_nobody=True)
    if code != 0:
        return f"the helper cannot run as nobody: {stderr.strip()}"
    return ""


NOBODY_SKIP = nobody_available()
needs_nobody = pytest.mark.skipif(bool(NOBODY_SKIP), reason=NOBODY_SKIP)


def test_success_closes_status_pipe() -> None:
    code, _, status = run_helper({"nice": 3, "umask": 0o22}, status_pipe=True)
    assert code == 0
    assert status == b""


@needs_nobody
@pytest.mark.parametrize(("spec", "exit_code", "step"), [
    ({"nice": -5}, 201, "setpriority"),
    ({"oom_score_adjust": -500}, 206, "oom_score_adj"),
    ({"io_class": 1, "io_priority": 4}, 211, "ioprio_set"),
], ids=["negative-nice", "lower-oom-score", "realtime-io"])
def test_privileged_values_fail_unprivileged(spec: dict, exit_code: int, step: str) -> None:
    code, stderr, _ = run_helper(spec, as_nobody=True)
    assert code == exit_code
    assert f"{step} failed" in stderr


@needs_nobody
def test_unwritable_cgroup_fails(tmp_path: Path) -> None:
    directory = tmp_path / "unit.service"
    directory.mkdir()
    (directory / "cgroup.procs").write_text("")
    tmp_path.chmod(0o755)
    code, stderr, _ = run_helper({"cgroup": str(directory)}, as_nobody=True)
    assert code == 219
    assert "cgroup failed" in stderr


def test_status_pipe_names_step_and_code() -> None:
    code, _, status = run_helper({"cpu_affinity": [100_000]}, status_pipe=True)
    assert code == 215
    exit_code, reason = parse_helper_status(status)
    assert exit_code == 215
    assert reason.startswith("sched_setaffinity failed: ")


def test_hard_limit_above_own_fails() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        pytest.skip("this process has no finite hard RLIMIT_NOFILE to exceed")
    code, _, status = run_helper({"rlimits": {"RLIMIT_NOFILE": [64, hard + 1]}}, status_pipe=True)
    assert code == 205
    exit_code, reason = parse_helper_status(status)
    assert exit_code == 205
    assert f"above the manager's own hard limit {hard}" in reason


def test_rlimits_reach_the_program(tmp_path: Path) -> None:
    output = tmp_path / "limits"
    spec = {"path": "/bin/sh", "argv": ["sh", "-c", f"cat /proc/self/limits > {output}"],
            "rlimits": {"RLIMIT_NOFILE": [100, 200], "RLIMIT_CORE": [0, 0]}}
    code, stderr, _ = run_helper(spec)
    assert code == 0, stderr
    lines = {" ".join(line.split()[:-1]) for line in output.read_text().splitlines()}
    assert "Max open files 100 200" in lines
    assert "Max core file size 0 0" in lines


# Every Limit*= directive's rlimit, a soft value that /bin/sh and cat still
# run under, and its row in /proc/PID/limits.
EVERY_RLIMIT = {
    "RLIMIT_CPU": (3600, "Max cpu time"), "RLIMIT_FSIZE": (1 << 40, "Max file size"),
    "RLIMIT_DATA": (1 << 40, "Max data size"), "RLIMIT_STACK": (4 << 20, "Max stack size"),
    "RLIMIT_CORE": (0, "Max core file size"), "RLIMIT_RSS": (1 << 40, "Max resident set"),
    "RLIMIT_NPROC": (10_000, "Max processes"), "RLIMIT_NOFILE": (100, "Max open files"),
    "RLIMIT_MEMLOCK": (65_536, "Max locked memory"), "RLIMIT_AS": (1 << 42, "Max address space"),
    "RLIMIT_LOCKS": (1000, "Max file locks"), "RLIMIT_SIGPENDING": (1000, "Max pending signals"),
    "RLIMIT_MSGQUEUE": (4096, "Max msgqueue size"), "RLIMIT_NICE": (0, "Max nice priority"),
    "RLIMIT_RTPRIO": (0, "Max realtime priority"), "RLIMIT_RTTIME": (1_000_000, "Max realtime timeout"),
}


def test_every_rlimit_reaches_the_program(tmp_path: Path) -> None:
    from unitmgr.manager.exechelper import rlimit_number
    from unitmgr.manager.service import RLIMIT_NAMES

    assert set(RLIMIT_NAMES.values()) == set(EVERY_RLIMIT)
    wanted = {}
    for name, (soft, _label) in EVERY_RLIMIT.items():
        _current_soft, hard = resource.getrlimit(rlimit_number(name))
        soft = soft if hard == resource.RLIM_INFINITY else min(soft, hard)
        wanted[name] = [soft, None if hard == resource.RLIM_INFINITY else hard]
    output = tmp_path / "limits"
    spec = {"path": "/bin/sh", "argv": ["sh", "-c", f"cat /proc/self/limits > {output}"], "rlimits": wanted}
    code, stderr, _ = run_helper(spec)
    assert code == 0, stderr

    rows = {}
    for line in output.read_text().splitlines()[1:]:
        label, soft, hard = line[:26].strip(), *line[26:].split()[:2]
        rows[label] = (soft, hard)
    for name, (soft, hard) in wanted.items():
        expected_hard = "unlimited" if hard is None else str(hard)
        assert rows[EVERY_RLIMIT[name][1]] == (str(soft), expected_hard), name
