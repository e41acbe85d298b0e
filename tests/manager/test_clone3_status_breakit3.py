"""The clone3 child that no longer makes the manager wait: its status pipe, its block and the parent's state.

_clone3.spawn() returns before the child's exec. A failed step reaches the
caller only as "203 STEP ERRNO PATH: TEXT" on the status descriptor, so these
tests check that message where it is hardest to write, and that the child's
block (stack and arguments) outlives a child stopped before its exec.
Scripts that change limits or descriptors, or could crash, run in a child
Python through run_script.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_cgroupjoin
import test_clone3_breakit
from test_clone3_breakit import needs_clone3, run_script, spawn_and_wait
from unitmgr.manager import cgroups
from unitmgr.manager import spawn as spawn_module

needs_cgroups = test_cgroupjoin.needs_cgroups
# The fixtures of the first breakit tests: a fresh cgroup's O_PATH descriptor, and the descriptor and child check.
cgroup_fd = test_clone3_breakit.cgroup_fd
leak_check = test_clone3_breakit.leak_check
DUP2 = 2
CLOSE = 1


@pytest.fixture
def cgroup_path() -> Iterator[str]:
    """Return the path of a fresh cgroup, for scripts that open it themselves."""
    if spawn_module._clone3 is None:
        pytest.skip("manager/_clone3.c was not built")
    if not test_cgroupjoin.SUPPORT.usable:
        pytest.skip(f"no writable cgroup v2 hierarchy: {test_cgroupjoin.SUPPORT.reason}")
    tree = cgroups.CgroupTree(test_cgroupjoin.SUPPORT)
    tree.setup()
    try:
        yield str(tree.create("breakit3.service"))
    finally:
        tree.cleanup()


@needs_clone3
def test_long_path_keeps_error_text(cgroup_fd: int, leak_check: None) -> None:
    # A path longer than the 4608-byte message once filled it, and ": File name too long" was cut off.
    path = "/" + "a" * 6000
    code, message = spawn_and_wait(path, ["program"], [], [], cgroup_fd)
    assert code == 203
    assert message.startswith(f"203 execve {errno.ENAMETOOLONG} /aaaa")
    assert message.endswith("...: File name too long")
    assert len(message.encode()) < 4608
    reason = spawn_module.parse_helper_status(message.encode())[1]
    assert reason.endswith("File name too long")


@needs_clone3
def test_path_just_fitting_not_marked(cgroup_fd: int, leak_check: None) -> None:
    path = "/" + "b" * 254
    code, message = spawn_and_wait(path, ["program"], [], [], cgroup_fd)
    assert code == 203
    assert message == f"203 execve {errno.ENOENT} {path}: No such file or directory"


@needs_clone3
def test_undecodable_path_and_bad_format(cgroup_fd: int, tmp_path: Path, leak_check: None) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\0\1 not a program")
    garbage.chmod(0o755)
    code, message = spawn_and_wait(str(garbage), ["garbage"], [], [], cgroup_fd)
    assert code == 203
    assert message == f"203 execve {errno.ENOEXEC} {garbage}: Exec format error"

    undecodable = os.fsencode(tmp_path) + b"/\xff\xfe"
    status_read, status_write = os.pipe()
    try:
        pid = spawn_module._clone3.spawn(undecodable, ["x"], [], [], [], cgroup_fd, status_write)
    finally:
        os.close(status_write)
    data = test_cgroupjoin.read_all(status_read)
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 203
    assert data == b"203 execve 2 " + undecodable + b": No such file or directory"
    assert spawn_module.parse_helper_status(data)[0] == 203


# The actions use descriptor 63 under a soft RLIMIT_NOFILE of 64, so the copy of the status descriptor
# cannot go above them. The failure must still reach the pipe instead of an EOF that means "it runs".
RLIMIT_SCRIPT = """
import json, os, resource, sys
from unitmgr.manager import _clone3
from unitmgr.manager.spawn import SpawnSpec, spawn

cgroup = sys.argv[1]
fd = os.open(cgroup, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
output_read, output_write = os.pipe()
os.dup2(output_write, 63, inheritable=False)
os.close(output_write)

def read_all(fd):
    data = b""
    while chunk := os.read(fd, 4096):
        data += chunk
    os.close(fd)
    return data

def direct(path):
    status_read, status_write = os.pipe()
    pid = _clone3.spawn(path, ["program"], [], [(_clone3.DUP2, 63, 1)], [], fd, status_write)
    os.close(status_write)
    message = read_all(status_read)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), message.decode()

result = {"missing": direct("/nonexistent/program")}
# The same descriptor passed through spawn.py: its staging copy at 64 fails in the child.
spec = SpawnSpec("/bin/true", ["/bin/true"], {}, -1, -1, pass_fds=[63], cgroup=cgroup)
spawned = spawn(spec, os.getcwd())
message = read_all(spawned.status_fd) if spawned.status_fd is not None else b""
result["passed"] = [os.waitstatus_to_exitcode(os.waitpid(spawned.pid, 0)[1]), message.decode()]
# A program that can run still runs, and its output reaches descriptor 63's pipe.
status_read, status_write = os.pipe()
pid = _clone3.spawn("/bin/sh", ["sh", "-c", "echo ran"], [], [(_clone3.DUP2, 63, 1)], [], fd, status_write)
os.close(status_write)
os.close(63)
result["runs"] = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), read_all(status_read).decode(),
                  read_all(output_read).decode()]
print(json.dumps(result))
"""


@needs_clone3
def test_status_copy_over_fd_limit(cgroup_path: str) -> None:
    result = run_script(RLIMIT_SCRIPT, cgroup_path, timeout=20)
    assert result["missing"] == [203, "203 execve 2 /nonexistent/program: No such file or directory"]
    code, message = result["passed"]
    assert code == 203
    assert message == "203 dup2 9 /bin/true: Bad file descriptor", "the failure must reach the status pipe"
    assert result["runs"] == [0, "", "ran\n"]


@needs_clone3
def test_spawns_keep_parent_errno(cgroup_fd: int, leak_check: None) -> None:
    # The child shares the parent's memory and thread pointer: a libc call in it would set this thread's errno.
    libc = ctypes.CDLL(None)
    libc.__errno_location.restype = ctypes.POINTER(ctypes.c_int)
    errno_slot = libc.__errno_location()
    errno_slot[0] = 4242
    pids = []
    for index in range(300):
        path = "/nonexistent/program" if index % 2 else "/bin/true"
        pids.append(spawn_module._clone3.spawn(path, ["program"], [], [(DUP2, 999, 5)] if index % 3 == 0 else [],
                                               [], cgroup_fd))
    after_spawns = errno_slot[0]
    codes = {os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in pids}
    assert after_spawns == 4242
    assert errno_slot[0] == 4242
    assert codes == {0, 203}


# Children are stopped before their exec, inside 300000 close actions. Meanwhile the parent spawns and reaps
# 3000 others, collects garbage and reuses freed memory. On SIGCONT each must exec its own argv and env.
STOPPED_SCRIPT = """
import gc, json, os, signal, sys
from unitmgr.manager import _clone3

fd = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
with open("/proc/self/comm") as file:
    comm = file.read()
closes = [(_clone3.CLOSE, 5000)] * 300000
output_read, output_write = os.pipe()
stopped = []
for index in range(20):
    argv = ["/bin/sh", "-c", 'printf "%s %s %s\\\\n" "$0" "$TAG" "$#" >&9', f"arg{index}",
            *[f"x{index}-{word}" for word in range(50)]]
    env = [f"TAG=tag{index}", *[f"P{name}=" + "z" * 100 for name in range(200)]]
    pid = _clone3.spawn("/bin/sh", argv, env, [*closes, (_clone3.DUP2, output_write, 9)], [], fd)
    os.kill(pid, signal.SIGSTOP)
    while True:
        with open(f"/proc/{pid}/stat") as file:
            if file.read().rsplit(") ", 1)[1][0] == "T":
                break
    with open(f"/proc/{pid}/comm") as file:
        stopped.append([pid, file.read() == comm])
for index in range(3000):
    path = "/nonexistent" if index % 2 else "/bin/true"
    pid = _clone3.spawn(path, ["t", "y" * 1000], ["A=" + "q" * 2000], [], [], fd)
    if index % 3 == 0:
        garbage = [bytearray(40000) for _ in range(20)]
        del garbage
    os.waitpid(pid, 0)
gc.collect()
garbage = [os.urandom(33000) for _ in range(2000)]
for pid, _before_exec in stopped:
    os.kill(pid, signal.SIGCONT)
os.close(output_write)
lines = b""
while chunk := os.read(output_read, 65536):
    lines += chunk
statuses = [os.waitpid(pid, 0)[1] for pid, _before_exec in stopped]
print(json.dumps({"before_exec": sum(flag for _pid, flag in stopped), "statuses": statuses,
                  "lines": sorted(lines.decode().splitlines())}))
"""


@needs_clone3
def test_stopped_children_keep_arguments(cgroup_path: str) -> None:
    result = run_script(STOPPED_SCRIPT, cgroup_path, timeout=20)
    assert result["before_exec"] > 0, "no child was stopped before its exec: the test proves nothing"
    assert result["statuses"] == [0] * 20
    assert result["lines"] == sorted(f"arg{index} tag{index} 50" for index in range(20))


# 4000 failed execs: a block (32 KiB of stack) that was never freed would add at least its touched pages,
# which sys.getallocatedblocks() does not count (the block comes from malloc, not Python's allocator).
RSS_SCRIPT = """
import json, os, sys
from unitmgr.manager import _clone3

fd = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)

def rss_kib():
    with open("/proc/self/status") as file:
        for line in file:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def spawn_failures(count):
    for _ in range(count):
        status_read, status_write = os.pipe()
        pid = _clone3.spawn("/nonexistent/program", ["program"], [], [], [], fd, status_write)
        os.close(status_write)
        while os.read(status_read, 4096):
            pass
        os.close(status_read)
        os.waitpid(pid, 0)

spawn_failures(200)
before = rss_kib()
fds_before = sorted(os.listdir("/proc/self/fd"))
spawn_failures(4000)
print(json.dumps({"growth_kib": rss_kib() - before, "fds_same": sorted(os.listdir("/proc/self/fd")) == fds_before}))
"""


@needs_clone3
def test_failed_execs_free_blocks(cgroup_path: str) -> None:
    result = run_script(RSS_SCRIPT, cgroup_path, timeout=20)
    assert result["fds_same"]
    assert result["growth_kib"] < 8 * 1024, f"RSS grew by {result['growth_kib']} KiB over 4000 failed execs"


# A child stopped inside its close actions, before its exec: which signals may reach it there.
MASK_SCRIPT = """
import json, os, signal, sys
from unitmgr.manager import _clone3

fd = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
with open("/proc/self/comm") as file:
    comm = file.read()
pid = _clone3.spawn("/bin/true", ["true"], [], [(_clone3.CLOSE, 5000)] * 300000, [], fd)
os.kill(pid, signal.SIGSTOP)
fields = {}
while fields.get("State", "").split()[:1] != ["T"]:
    with open(f"/proc/{pid}/status") as file:
        fields = dict(line.rstrip("\\n").split(":\\t", 1) for line in file if ":\\t" in line)
with open(f"/proc/{pid}/comm") as file:
    before_exec = file.read() == comm
os.kill(pid, signal.SIGCONT)
status = os.waitpid(pid, 0)[1]
print(json.dumps({"blocked": fields["SigBlk"], "before_exec": before_exec, "status": status}))
"""


@needs_clone3
def test_child_blocks_glibc_signals(cgroup_path: str) -> None:
    # pthread_sigmask() left glibc's SIGCANCEL (32) and SIGSETXID (33) open in the child before its handlers
    # were reset. Only SIGKILL and SIGSTOP, which no mask holds back, may remain open.
    result = run_script(MASK_SCRIPT, cgroup_path, timeout=20)
    assert result["before_exec"], "the child exec'd before it was stopped: the test proves nothing"
    assert result["status"] == 0
    unblocked = [number for number in range(1, 65) if not int(result["blocked"], 16) >> (number - 1) & 1]
    assert unblocked == [9, 19]
