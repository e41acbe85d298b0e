"""Adversarial use of manager/_clone3.c: bad arguments, huge inputs, threads, signals and a crash loop.

Tests that change process-wide state (signal handlers, setitimer, descriptors
0 to 2) run their spawns in a child Python process. That keeps pytest-timeout's
SIGALRM and pytest's own stdio untouched, and a crash of the extension fails
one test instead of the whole run.
"""

from __future__ import annotations

import errno
import gc
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import test_cgroupjoin
from support import wait_for, write_unit
from unitmgr.manager import cgroups
from unitmgr.manager import spawn as spawn_module
from unitmgr.manager.spawn import SpawnSpec

needs_cgroups = test_cgroupjoin.needs_cgroups
# The fixtures, shared with the join's own tests: every test that takes unit_cgroup runs with clone3 and with the
# shell join.
unit_cgroup = test_cgroupjoin.unit_cgroup
join_way = test_cgroupjoin.join_way

_clone3 = spawn_module._clone3
needs_clone3 = pytest.mark.skipif(_clone3 is None, reason="manager/_clone3.c was not built")


def open_fds() -> set[str]:
    """Return the descriptors open in this process, with their targets."""
    entries = {}
    for entry in os.listdir("/proc/self/fd"):
        try:
            entries[entry] = os.readlink(f"/proc/self/fd/{entry}")
        except OSError:
            continue  # the listing's own descriptor, closed by now
    return {f"{fd} -> {target}" for fd, target in entries.items()}


def children() -> list[int]:
    """Return the pids of this process's children, zombies included, from every thread."""
    pids = []
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as listing:
            pids += [int(pid) for pid in listing.read().split()]
    return pids


@pytest.fixture
def leak_check() -> Iterator[None]:
    """Fail the test when it leaves a descriptor open or a child unreaped."""
    fds_before = open_fds()
    children_before = children()
    yield
    assert children() == children_before, "a child is left unreaped"
    assert open_fds() == fds_before, "a descriptor leaked"


@pytest.fixture
def cgroup_fd() -> Iterator[int]:
    """Return an O_PATH descriptor of a fresh cgroup, as spawn.py passes it to _clone3.spawn."""
    if _clone3 is None:
        pytest.skip("manager/_clone3.c was not built")
    if not test_cgroupjoin.SUPPORT.usable:
        pytest.skip(f"no writable cgroup v2 hierarchy: {test_cgroupjoin.SUPPORT.reason}")
    tree = cgroups.CgroupTree(test_cgroupjoin.SUPPORT)
    tree.setup()
    fd = os.open(tree.create("breakit.service"), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)
        tree.cleanup()


def exit_code(pid: int) -> int:
    _pid, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def run_script(script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60) -> dict:
    """Run `script` in a child Python with `args`; return the JSON object it prints as its last line."""
    result = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                            timeout=timeout, env=env)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.splitlines()[-1])


# Each bad call: (path, argv, env, actions, sigdef, cgroup fd or None for the fixture's), exception, message part.
DUP2 = 2
CLOSE = 1
BAD_CALLS = {
    "argv-none": (("/bin/true", None, [], [], [], None), TypeError, "argv must be a sequence"),
    "argv-int": (("/bin/true", 5, [], [], [], None), TypeError, "argv must be a sequence"),
    "argv-str": (("/bin/true", "true", [], [], [], None), TypeError, "argv must be a sequence"),
    "argv-bytes": (("/bin/true", b"true", [], [], [], None), TypeError, "argv must be a sequence"),
    "argv-empty": (("/bin/true", [], [], [], [], None), ValueError, "argv must not be empty"),
    "argv-none-item": (("/bin/true", ["true", None], [], [], [], None), TypeError, "not NoneType"),
    "argv-nul": (("/bin/true", ["tr\0ue"], [], [], [], None), ValueError, "embedded null byte"),
    "path-nul": (("/bin/tr\0ue", ["true"], [], [], [], None), ValueError, "embedded null byte"),
    "path-none": ((None, ["true"], [], [], [], None), TypeError, "not NoneType"),
    "env-nul": (("/bin/true", ["true"], ["A=\0"], [], [], None), ValueError, "embedded null byte"),
    "env-dict": (("/bin/true", ["true"], {"A": "1"}, [], [], None), TypeError, "env must be a sequence"),
    "env-str": (("/bin/true", ["true"], "A=1", [], [], None), TypeError, "env must be a sequence"),
    "actions-none": (("/bin/true", ["true"], [], None, [], None), TypeError, "actions must be a sequence"),
    "action-list": (("/bin/true", ["true"], [], [[DUP2, 1, 1]], [], None), TypeError, "an action is a tuple"),
    "action-str-fd": (("/bin/true", ["true"], [], [(DUP2, "1", 1)], [], None), TypeError, "integer"),
    "action-short": (("/bin/true", ["true"], [], [(DUP2,)], [], None), TypeError, "an action is"),
    "action-long": (("/bin/true", ["true"], [], [(DUP2, 1, 2, 3)], [], None), TypeError, "an action is"),
    "action-op": (("/bin/true", ["true"], [], [(7, 1, 2)], [], None), ValueError, "invalid action 7"),
    "dup2-no-target": (("/bin/true", ["true"], [], [(DUP2, 1)], [], None), ValueError, "target descriptor"),
    "fd-huge": (("/bin/true", ["true"], [], [(DUP2, 2**40, 5)], [], None), OverflowError, "greater than"),
    "signal-0": (("/bin/true", ["true"], [], [], [0], None), ValueError, "invalid signal number 0"),
    "signal-65": (("/bin/true", ["true"], [], [], [65], None), ValueError, "invalid signal number 65"),
    "signal-minus-1": (("/bin/true", ["true"], [], [], [-1], None), ValueError, "invalid signal number -1"),
    "signal-str": (("/bin/true", ["true"], [], [], ["TERM"], None), TypeError, "integer"),
    "signal-huge": (("/bin/true", ["true"], [], [], [2**80], None), OverflowError, "too large"),
    "sigdef-none": (("/bin/true", ["true"], [], [], None, None), TypeError, "not iterable"),
    "cgroup-minus-1": (("/bin/true", ["true"], [], [], [], -1), ValueError, "invalid cgroup descriptor -1"),
    "cgroup-str": (("/bin/true", ["true"], [], [], [], "3"), TypeError, "integer"),
    "cgroup-closed": (("/bin/true", ["true"], [], [], [], 999), _clone3.CloneFailed if _clone3 else OSError,
                      "Bad file descriptor"),
    "status-fd-minus-2": (("/bin/true", ["true"], [], [], [], None, -2), ValueError, "invalid status descriptor -2"),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_call_raises(name: str, cgroup_fd: int, leak_check: None) -> None:
    (path, argv, env, actions, sigdef, fd, *status), error, message = BAD_CALLS[name]
    fd = cgroup_fd if fd is None else fd
    with pytest.raises(error) as caught:
        _clone3.spawn(path, argv, env, actions, sigdef, fd, *status)
    assert message in str(caught.value)
    assert not isinstance(caught.value, _clone3.CloneUnavailable), "a bad argument must not turn clone3 off"

    blocks_before = 0
    for attempt in range(300):
        if attempt == 100:
            # The first calls fill Python's caches; a leak shows as growth over the next 200.
            gc.collect()
            blocks_before = sys.getallocatedblocks()
        try:
            _clone3.spawn(path, argv, env, actions, sigdef, fd, *status)
        except error:
            pass
    gc.collect()
    assert sys.getallocatedblocks() - blocks_before < 50, "memory blocks leaked per failed call"


def spawn_and_wait(path: str, argv: list[str], env: list[str], actions: list[tuple], cgroup_fd: int) -> tuple[int, str]:
    """Spawn with a status pipe; return the exit code and what the child wrote on the pipe."""
    status_read, status_write = os.pipe()
    try:
        pid = _clone3.spawn(path, argv, env, actions, [], cgroup_fd, status_write)
    finally:
        os.close(status_write)
    message = b""
    try:
        while chunk := os.read(status_read, 4096):
            message += chunk
    finally:
        os.close(status_read)
    return exit_code(pid), message.decode()


# Steps that fail in the child, after clone3 has returned: (path, argv, env, actions), step, errno, text.
CHILD_FAILURES = {
    "dup2-bad-source": (("/bin/true", ["true"], [], [(DUP2, 999, 5)]), "dup2", errno.EBADF, "Bad file descriptor"),
    "dup2-negative": (("/bin/true", ["true"], [], [(DUP2, -1, 5)]), "dup2", errno.EBADF, "Bad file descriptor"),
    "dup2-self-closed": (("/bin/true", ["true"], [], [(DUP2, 999, 999)]), "dup2", errno.EBADF,
                         "Bad file descriptor"),
    "missing-program": (("/nonexistent/program", ["program"], [], []), "execve", errno.ENOENT,
                        "No such file or directory"),
    "directory-program": (("/tmp", ["tmp"], [], []), "execve", errno.EACCES, "Permission denied"),
    "value-over-128k": (("/bin/true", ["true"], ["A=" + "x" * (1 << 20)], []), "execve", errno.E2BIG,
                        "Argument list too long"),
}


@needs_clone3
@pytest.mark.parametrize("name", list(CHILD_FAILURES))
def test_child_failure_on_status_pipe(name: str, cgroup_fd: int, leak_check: None) -> None:
    (path, argv, env, actions), step, error, text = CHILD_FAILURES[name]
    code, message = spawn_and_wait(path, argv, env, actions, cgroup_fd)
    assert code == 203
    assert message == f"203 {step} {error} {path}: {text}"
    assert spawn_module.parse_helper_status(message.encode())[0] == 203


@needs_clone3
def test_successful_exec_closes_status_pipe(cgroup_fd: int, leak_check: None) -> None:
    # The child's copies of the status descriptor are close-on-exec: the program writes to every
    # descriptor from 3 to 60, and none of its lines may reach the pipe.
    script = 'i=3; while [ $i -le 60 ]; do (eval "echo leaked >&$i") 2>/dev/null; i=$((i+1)); done; exit 7'
    code, message = spawn_and_wait("/bin/sh", ["sh", "-c", script], [], [], cgroup_fd)
    assert code == 7
    assert message == ""


@needs_clone3
def test_non_directory_cgroup_fd_rejected(cgroup_fd: int, tmp_path: Path, leak_check: None) -> None:
    procs = os.open(f"/proc/self/fd/{cgroup_fd}/cgroup.procs", os.O_RDONLY | os.O_CLOEXEC)
    regular = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for fd in (procs, regular):
            with pytest.raises(_clone3.CloneFailed) as caught:
                _clone3.spawn("/bin/true", ["true"], [], [], [], fd)
            assert not isinstance(caught.value, _clone3.CloneUnavailable)
            assert caught.value.strerror == "Bad file descriptor"
    finally:
        os.close(procs)
        os.close(regular)


# A sequence whose __len__ lies: `(2**64 + 2) // 3` actions once wrapped the buffer size to 12 bytes.
OVERFLOW_SCRIPT = """
import json, os, sys
from unitmgr.manager import _clone3

class Lying:
    def __init__(self, length, item):
        self.length, self.item = length, item
    def __len__(self):
        return self.length
    def __getitem__(self, index):
        if index >= 100000:
            raise IndexError(index)
        return self.item

fd = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY)
calls = {
    "actions": lambda: _clone3.spawn("/bin/true", ["true"], [], Lying((2**64 + 2) // 3, (_clone3.CLOSE, 500)), [], fd),
    "argv": lambda: _clone3.spawn("/bin/true", Lying(sys.maxsize, "true"), [], [], [], fd),
    "env": lambda: _clone3.spawn("/bin/true", ["true"], Lying(sys.maxsize // 8, "A=1"), [], [], fd),
}
errors = {}
for name, call in calls.items():
    try:
        call()
    except Exception as exc:
        errors[name] = type(exc).__name__
print(json.dumps(errors))
"""


@needs_clone3
@needs_cgroups
def test_lying_length_no_overflow(tmp_path: Path) -> None:
    # Runs in a child Python: a heap overflow kills that process, not the test run.
    tree = cgroups.CgroupTree(test_cgroupjoin.SUPPORT)
    tree.setup()
    try:
        errors = run_script(OVERFLOW_SCRIPT, str(tree.create("lying.service")))
    finally:
        tree.cleanup()
    assert errors == {"actions": "MemoryError", "argv": "MemoryError", "env": "MemoryError"}


@needs_clone3
def test_exec_failures_leave_no_zombie(cgroup_fd: int, tmp_path: Path, leak_check: None) -> None:
    not_executable = tmp_path / "not-executable"
    not_executable.write_bytes(b"\x7fELF")
    failures = [
        ("/nonexistent/program", [], "No such file or directory"),
        (str(not_executable), [], "Permission denied"),
        ("/bin/true", ["BIG=" + "x" * (1 << 20)], "Argument list too long"),
        ("/bin/true", [f"V{index}=" + "y" * 100 for index in range(30000)], "Argument list too long"),
    ]
    blocks_before = 0
    for attempt, (path, env, text) in enumerate(failures * 50):
        if attempt == 40:
            gc.collect()
            blocks_before = sys.getallocatedblocks()
        code, message = spawn_and_wait(path, ["program"], env, [], cgroup_fd)
        assert code == 203
        assert message.endswith(f"{path}: {text}")
    gc.collect()
    # Each child's block is freed by a later call once the kernel has cleared its word.
    assert sys.getallocatedblocks() - blocks_before < 50, "memory blocks leaked per failed exec"


@needs_clone3
def test_hundred_thousand_variables(cgroup_fd: int, leak_check: None) -> None:
    env = [f"V{index}=1" for index in range(100000)]
    read_fd, write_fd = os.pipe()
    try:
        pid = _clone3.spawn("/usr/bin/env", ["env"], env, [(DUP2, write_fd, 1)], [], cgroup_fd)
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as output:
        lines = output.read().split(b"\n")
    assert exit_code(pid) == 0
    assert lines[:-1] == [variable.encode() for variable in env]


@needs_clone3
def test_stdio_targets_are_themselves(cgroup_fd: int, leak_check: None) -> None:
    # dup2 of 0, 1 and 2 onto themselves: each stays open in the child.
    pid = _clone3.spawn("/bin/sh", ["sh", "-c", "exec 3>&0 && exec 3>&1 && exec 3>&2"], [],
                        [(DUP2, 0, 0), (DUP2, 1, 1), (DUP2, 2, 2)], [], cgroup_fd)
    assert exit_code(pid) == 0


@needs_cgroups
def test_many_passed_fds(unit_cgroup: Path, leak_check: None) -> None:
    """300 pipes passed as 3, 4, ... arrive in order, each the pipe the manager passed."""
    pairs = [os.pipe() for _ in range(300)]
    passed = [write_fd for _read_fd, write_fd in pairs]
    inodes = [str(os.fstat(fd).st_ino).encode() for fd in passed]
    script = ("import os,sys; n=int(sys.argv[1]); "
              "print(' '.join(str(os.fstat(3 + i).st_ino) for i in range(n)))")
    python = os.path.realpath(sys.executable)
    spec = SpawnSpec(python, [python, "-I", "-S", "-c", script, str(len(passed))], {}, -1, -1,
                     pass_fds=passed, cgroup=str(unit_cgroup))
    try:
        _spawned, code, _status, output = test_cgroupjoin.run(spec)
    finally:
        for read_fd, write_fd in pairs:
            os.close(read_fd)
            os.close(write_fd)
    assert code == 0, output
    assert output.split() == inodes


@needs_cgroups
def test_cgroup_removed_after_open(unit_cgroup: Path, monkeypatch: pytest.MonkeyPatch, join_way: str,
                                   leak_check: None) -> None:
    removed = unit_cgroup.parent / "removed.service"
    removed.mkdir()
    open_cgroup = spawn_module._open_cgroup

    def open_then_remove(path: str) -> int | None:
        fd = open_cgroup(path)
        os.rmdir(path)
        return fd

    monkeypatch.setattr(spawn_module, "_open_cgroup", open_then_remove)
    marker = unit_cgroup.parent / "ran"
    spec = SpawnSpec("/bin/touch", ["/bin/touch", str(marker)], {}, -1, -1, cgroup=str(removed))
    _spawned, code, _status, _output = test_cgroupjoin.run(spec)
    assert code == 219, "the join fails, as for any missing cgroup"
    assert not marker.exists(), "the program must not run outside its cgroup"
    assert spawn_module.clone3_enabled() is (join_way == "clone3"), "one missing cgroup must not turn clone3 off"


@needs_clone3
def test_removed_cgroup_fd_rejected(leak_check: None) -> None:
    if not test_cgroupjoin.SUPPORT.usable:
        pytest.skip(f"no writable cgroup v2 hierarchy: {test_cgroupjoin.SUPPORT.reason}")
    tree = cgroups.CgroupTree(test_cgroupjoin.SUPPORT)
    tree.setup()
    try:
        path = tree.create("removed.service")
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        path.rmdir()
        try:
            with pytest.raises(_clone3.CloneFailed) as caught:
                _clone3.spawn("/bin/true", ["true"], [], [], [], fd)
        finally:
            os.close(fd)
    finally:
        tree.cleanup()
    assert not isinstance(caught.value, _clone3.CloneUnavailable)
    # Linux 6.18 returns ENOENT: the directory of a removed cgroup no longer leads to one.
    assert caught.value.errno in (errno.ENOENT, errno.ENODEV), caught.value


@needs_clone3
def test_threads_spawn_at_once(cgroup_fd: int, leak_check: None) -> None:
    """Spawns from four threads at once: each child must still run its own argv and env, on its own stack.

    A build that released the GIL around the clone failed this test, so
    passing it is evidence that the GIL is held across the clone.
    """
    padding = [f"PAD{index}=" + "y" * 50 for index in range(2000)]  # a longer execve, a wider window
    outputs: dict[str, bytes] = {}
    errors: list[BaseException] = []
    stop = threading.Event()

    def allocate() -> None:
        while not stop.is_set():
            garbage = [bytes(1000) for _ in range(1000)]
            del garbage

    def spawner(tag: str) -> None:
        read_fd, write_fd = os.pipe()
        try:
            for index in range(60):
                pid = _clone3.spawn("/bin/sh", ["/bin/sh", "-c", 'printf "%s-%s\\n" "$0" "$TAG"', f"{tag}.{index}"],
                                    [f"TAG={tag}.{index}", *padding], [(DUP2, write_fd, 1), (CLOSE, read_fd)], [],
                                    cgroup_fd)
                assert exit_code(pid) == 0
            os.close(write_fd)
            with os.fdopen(read_fd, "rb") as output:
                outputs[tag] = output.read()
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    allocators = [threading.Thread(target=allocate) for _ in range(2)]
    spawners = [threading.Thread(target=spawner, args=(tag,)) for tag in "abcd"]
    for thread in allocators + spawners:
        thread.start()
    try:
        for thread in spawners:
            thread.join(timeout=60)
    finally:
        stop.set()
        for thread in allocators:
            thread.join()
    assert errors == []
    for tag in "abcd":
        expected = "".join(f"{tag}.{index}-{tag}.{index}\n" for index in range(60)).encode()
        assert outputs[tag] == expected, tag


SIGNALS_SCRIPT = """
import json, os, signal, sys, threading, time
from unitmgr.manager import _clone3

fd = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY)
counts = {"SIGALRM": 0, "SIGTERM": 0, "SIGCHLD": 0}

def count(signum, frame):
    counts[signal.Signals(signum).name] += 1

for name in counts:
    signal.signal(signal.Signals[name], count)
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2})
mask_before = signal.pthread_sigmask(signal.SIG_BLOCK, [])
stop = threading.Event()

def terminate():
    while not stop.wait(0.001):
        os.kill(os.getpid(), signal.SIGTERM)

killer = threading.Thread(target=terminate)
killer.start()
signal.setitimer(signal.ITIMER_REAL, 0.001, 0.001)
statuses = {}
for index in range(int(sys.argv[2])):
    pid = _clone3.spawn("/bin/true", ["true"], [], [], [], fd)
    _pid, status = os.waitpid(pid, 0)
    statuses[status] = statuses.get(status, 0) + 1
signal.setitimer(signal.ITIMER_REAL, 0)
stop.set()
killer.join()
mask_after = signal.pthread_sigmask(signal.SIG_BLOCK, [])
# One more SIGTERM after the spawns: it must reach the handler, not stay blocked.
terms = counts["SIGTERM"]
os.kill(os.getpid(), signal.SIGTERM)
deadline = time.monotonic() + 10
while counts["SIGTERM"] == terms and time.monotonic() < deadline:
    time.sleep(0.01)
print(json.dumps({"counts": counts, "late_term": counts["SIGTERM"] > terms, "statuses": statuses,
                  "mask_kept": mask_before == mask_after, "mask": sorted(int(s) for s in mask_after)}))
"""


@needs_clone3
@needs_cgroups
def test_signals_during_spawns() -> None:
    tree = cgroups.CgroupTree(test_cgroupjoin.SUPPORT)
    tree.setup()
    try:
        result = run_script(SIGNALS_SCRIPT, str(tree.create("signals.service")), "2000")
    finally:
        tree.cleanup()
    assert result["statuses"] == {"0": 2000}, "every child exec'd /bin/true and exited 0"
    assert result["mask_kept"], result["mask"]
    assert result["mask"] == [12], "SIGUSR2 stays blocked, nothing else"
    assert result["late_term"], "a signal after the spawns reaches its handler"
    assert result["counts"]["SIGALRM"] > 0, "SIGALRM arrived while spawning"
    assert result["counts"]["SIGCHLD"] > 0, "SIGCHLD arrived while spawning"


# Sends SIGUSR1 to each child of the process named by argv[1] that has not exec'd yet (its comm is still the
# parent's), until killed. A handler running in such a child would run in the parent's memory.
SNIPER_SCRIPT = """
import os, signal, sys
parent = int(sys.argv[1])
with open(f"/proc/{parent}/comm") as file:
    comm = file.read()
while True:
    for task in os.listdir(f"/proc/{parent}/task"):
        try:
            with open(f"/proc/{parent}/task/{task}/children") as file:
                pids = [int(pid) for pid in file.read().split()]
        except OSError:
            continue
        for pid in pids:
            if pid == os.getpid():
                continue
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                continue
            try:
                with open(f"/proc/{pid}/comm") as file:
                    if file.read() == comm:
                        signal.pidfd_send_signal(pidfd, signal.SIGUSR1)
            except OSError:
                pass
            finally:
                os.close(pidfd)
"""

TARGET_SCRIPT = """
import json, os, signal, subprocess, sys
from unitmgr.manager import _clone3

fd = os.open(sys.argv[1], os.O_PATH | os.O_DIRECTORY)
handled = []
signal.signal(signal.SIGUSR1, lambda signum, frame: handled.append(signum))
sniper = subprocess.Popen([sys.executable, "-c", sys.argv[2], str(os.getpid())])
env = [f"V{index}=" + "y" * 100 for index in range(3000)]
statuses = {}
try:
    for index in range(int(sys.argv[3])):
        pid = _clone3.spawn("/bin/true", ["true"], env, [], [signal.SIGUSR1], fd)
        _pid, status = os.waitpid(pid, 0)
        statuses[status] = statuses.get(status, 0) + 1
finally:
    sniper.terminate()
    sniper.wait()
print(json.dumps({"handled": len(handled), "statuses": statuses}))
"""


@needs_clone3
@needs_cgroups
def test_signal_to_child_before_exec() -> None:
    """SIGUSR1 sent to children between clone and exec kills them (the default action) or waits for exec.

    A build that left the signals unblocked and the handlers installed in
    the child ran the parent's Python handler 295 times in 1000 such spawns.
    """
    tree = cgroups.CgroupTree(test_cgroupjoin.SUPPORT)
    tree.setup()
    try:
        result = run_script(TARGET_SCRIPT, str(tree.create("sniped.service")), SNIPER_SCRIPT, "500")
    finally:
        tree.cleanup()
    assert result["handled"] == 0, "a handler ran in a child and tripped the parent's flag"
    # The wait status of a process killed by a signal, without a core dump, is the signal number.
    assert set(result["statuses"]) <= {"0", str(int(signal.SIGUSR1))}, result["statuses"]
    assert sum(result["statuses"].values()) == 500


# Puts descriptors where a manager started with stdin or stdout closed has them, then spawns through spawn.py.
STDIO_SCRIPT = """
import json, os, socket, sys
from unitmgr.manager.spawn import SpawnSpec, spawn

cgroup, case = sys.argv[1], sys.argv[2]
report = os.fdopen(os.dup(1), "w")
output_read, output_write = os.pipe()
passed = []
listener = None
if case == "stdout-at-0":
    os.dup2(output_write, 0, inheritable=False)
    stdout = stderr = 0
elif case == "stderr-at-0":
    os.dup2(output_write, 0, inheritable=False)
    stdout, stderr = output_write, 0
elif case == "socket-at-1":
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    os.dup2(listener.fileno(), 1, inheritable=False)
    stdout = stderr = output_write
    passed = [1]
spec = SpawnSpec("/bin/sh", ["/bin/sh", "-c", "echo out; echo err >&2; stat -L -c %F /proc/self/fd/3 2>/dev/null"],
                 {}, stdout, stderr, pass_fds=passed, cgroup=cgroup)
spawned = spawn(spec, os.getcwd())
# The read reaches EOF only once this process has closed every write end of the output pipe.
os.close(output_write)
if case != "socket-at-1":
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
if spawned.status_fd is not None:
    while os.read(spawned.status_fd, 4096):
        pass
_pid, status = os.waitpid(spawned.pid, 0)
output = b""
while chunk := os.read(output_read, 4096):
    output += chunk
print(json.dumps({"status": status, "output": output.decode()}), file=report)
"""


@needs_cgroups
@pytest.mark.parametrize(("case", "expected"), [
    ("stdout-at-0", "out\nerr\n"),
    ("stderr-at-0", "out\nerr\n"),
    ("socket-at-1", "out\nerr\nsocket\n"),
])
def test_stdio_sources_below_three(unit_cgroup: Path, join_way: str, case: str, expected: str) -> None:
    env = dict(os.environ, UNITMGR_NO_CLONE3="1" if join_way == "shell" else "")
    result = run_script(STDIO_SCRIPT, str(unit_cgroup), case, env=env)
    assert result["output"] == expected


# The shell prints its own cgroup (read by grep from /proc/PID) and then one that grep, a forked child, reads.
CRASH_SCRIPT = """\
echo "shell $(grep ^0:: /proc/$$/cgroup)"
grep ^0:: /proc/self/cgroup
exit 3
"""


@needs_clone3
@needs_cgroups
def test_crash_loop_children_in_cgroup(make_manager: Callable, tmp_path: Path) -> None:
    """Every process of a unit restarting in a crash loop, and every child it forks, is in the unit's cgroup."""
    script = tmp_path / "crash.sh"
    script.write_text(CRASH_SCRIPT)
    units = tmp_path / "units"
    write_unit(units, "crash.service", f"[Unit]\nStartLimitBurst=1000\n[Service]\nExecStart=/bin/sh {script}\n"
                                       "Restart=always\nRestartSec=0\n")
    manager = make_manager(units, start=False)
    manager.write_config("[Manager]\nCrashLoopMaxDelaySec=0\n")  # no damping: restart at once
    manager.start()
    manager.request("start", {"units": ["crash"], "no_block": True})
    cgroup = wait_for(lambda: manager.status("crash")["cgroup"], message="the unit's cgroup")
    wait_for(lambda: manager.status("crash")["n_restarts"] >= 300, timeout=60, message="300 restarts")
    manager.request("stop", {"units": ["crash"]})
    relative = "0::/" + str(Path(cgroup).relative_to(test_cgroupjoin.SUPPORT.mount))

    records = manager.request("logs", {"units": ["crash"], "lines": 0})["records"]
    lines = [record["text"] for record in records if record["stream"] != "manager"]
    shells = [line for line in lines if line.startswith("shell ")]
    forked = [line for line in lines if line.startswith("0::")]
    assert len(shells) >= 300
    assert len(forked) >= 300
    assert {line.split(" ", 1)[1] for line in shells} == {relative}, "each started process"
    assert set(forked) == {relative}, "each process the unit forked"
    assert "clone3 into cgroup refused" not in manager.log()
    assert "join their cgroup after the spawn" not in manager.log()


@needs_clone3
def test_collect_frees_finished_children(cgroup_fd: int, leak_check: None) -> None:
    pids = [_clone3.spawn("/bin/true", ["true"], [], [], [], cgroup_fd) for _ in range(20)]
    assert all(exit_code(pid) == 0 for pid in pids)
    # Every child has exited, so the kernel has cleared every word: nothing is left in flight.
    assert _clone3.collect() == 0


@needs_clone3
def test_reused_blocks_keep_each_childs_arguments(cgroup_fd: int, leak_check: None) -> None:
    """Children's blocks are reused by later spawns once free; every child still gets its own argv and env."""
    read_fd, write_fd = os.pipe()
    pids = []
    try:
        for number in range(60):
            # Each child prints its argument and variable; waiting for one before the next makes its block free.
            pid = _clone3.spawn("/bin/sh", ["sh", "-c", 'echo "$0 $MARK"', f"arg{number}"], [f"MARK=mark{number}"],
                                [(DUP2, write_fd, 1)], [], cgroup_fd)
            pids.append(pid)
            if number % 3 == 0:
                assert exit_code(pid) == 0
    finally:
        os.close(write_fd)
    with os.fdopen(read_fd, "rb") as output:
        lines = sorted(output.read().decode().split("\n")[:-1])
    for pid in pids[1::3] + pids[2::3]:
        assert exit_code(pid) == 0
    assert lines == sorted(f"arg{number} mark{number}" for number in range(60))
    # collect() unmaps the kept blocks; no child is before its exec any more.
    assert _clone3.collect() == 0
