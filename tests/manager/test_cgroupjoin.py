"""Spawning into a unit's cgroup: the cgroup, what the program receives, and failures.

Every test that takes `unit_cgroup` runs twice: with clone3(CLONE_INTO_CGROUP)
from manager/_clone3.c, and with the /bin/sh join that replaces it where
clone3 cannot be used.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from unitmgr.manager import cgroupjoin, cgroups
from unitmgr.manager import spawn as spawn_module
from unitmgr.manager.spawn import Spawned, SpawnError, SpawnSpec, parse_helper_status, spawn

SUPPORT = cgroups.detect()
needs_cgroups = pytest.mark.skipif(not SUPPORT.usable, reason=f"no writable cgroup v2 hierarchy: {SUPPORT.reason}")


@pytest.fixture(params=["clone3", "shell"])
def join_way(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Return how a process reaches its cgroup in this test: born there (clone3) or joining through /bin/sh."""
    if request.param == "clone3" and spawn_module._clone3 is None:
        pytest.skip("manager/_clone3.c was not built (test_clone3_extension_built reports why)")
    monkeypatch.setattr(spawn_module, "_clone3_enabled", request.param == "clone3")
    return request.param


@pytest.fixture
def unit_cgroup(join_way: str) -> Iterator[Path]:
    tree = cgroups.CgroupTree(SUPPORT)
    tree.setup()
    try:
        yield tree.create("probe.service")
    finally:
        tree.cleanup()


def read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def run(spec: SpawnSpec) -> tuple[Spawned, int, bytes, bytes]:
    """Spawn `spec` with stdout and stderr on a pipe; return (spawned, exit code, status pipe bytes, output)."""
    read_fd, write_fd = os.pipe()
    spec.stdout_fd = spec.stderr_fd = write_fd
    try:
        spawned = spawn(spec, os.getcwd())
    finally:
        os.close(write_fd)
    status = read_all(spawned.status_fd) if spawned.status_fd is not None else b""
    # The output is read before the wait: a program writing more than a pipe buffer would block.
    output = read_all(read_fd)
    _pid, wait_status = os.waitpid(spawned.pid, 0)
    return spawned, os.waitstatus_to_exitcode(wait_status), status, output


def probe(cgroup: str, env: dict[str, str], argv: list[str] | None = None) -> SpawnSpec:
    argv = argv or ["/bin/cat", "/proc/self/cgroup", "/proc/self/environ", "/proc/self/cmdline"]
    return SpawnSpec(path="/bin/cat", argv=argv, env=env, stdout_fd=-1, stderr_fd=-1, cgroup=cgroup)


@needs_cgroups
def test_program_runs_in_its_cgroup(unit_cgroup: Path) -> None:
    spawned, code, status, output = run(probe(str(unit_cgroup), {"GREETING": "hello world"}))
    assert code == 0
    assert status == b"", "EOF on the status pipe means the join worked"
    relative = "/" + str(unit_cgroup.relative_to(SUPPORT.mount))
    assert f"0::{relative}\n".encode() in output
    # The environment reaches the program unchanged: no PWD added by the shell.
    assert b"\0GREETING=hello world\0" in b"\0" + output.split(b"\n")[-1]
    assert b"PWD=" not in output
    assert output.endswith(b"/bin/cat\0/proc/self/cgroup\0/proc/self/environ\0/proc/self/cmdline\0")


@needs_cgroups
def test_unit_pwd_kept(unit_cgroup: Path) -> None:
    _spawned, code, _status, output = run(probe(str(unit_cgroup), {"PWD": "/not/the/cwd"}))
    assert code == 0
    assert b"PWD=/not/the/cwd\0" in output


def test_join_failure_exits_219(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-cgroup"
    spawned, code, status, output = run(probe(str(missing), {}))
    assert spawned.status_fd is not None
    assert code == 219
    exit_code, reason = parse_helper_status(status)
    assert exit_code == 219
    assert reason.startswith("cgroup failed: ")
    assert f"{missing}/cgroup.procs" in reason
    assert output == b"", "the program must not run outside its cgroup"


def test_missing_program_raises(tmp_path: Path) -> None:
    spec = probe(str(tmp_path), {}, ["/nonexistent/program"])
    spec.path = "/nonexistent/program"
    with pytest.raises(SpawnError) as caught:
        spawn(spec, os.getcwd())
    assert caught.value.exit_code == 203
    assert "No such file or directory" in str(caught.value)


@pytest.mark.parametrize(("change", "expected"), [
    ({}, True),
    ({"argv": ["cat", "/proc/self/cgroup"]}, False),
    ({"env": {"A-B": "1"}}, False),
    ({"env": {"IFS": ":"}}, False),
    ({"env": {"OPTIND": "3"}}, False),
    ({"pass_fds": list(range(10, 17))}, False),
], ids=["plain", "own-argv0", "odd-name", "ifs", "optind", "many-fds"])
def test_shell_used_only_when_exact(change: dict, expected: bool) -> None:
    spec = probe("/sys/fs/cgroup/x", {"HOME": "/root"})
    for name, value in change.items():
        setattr(spec, name, value)
    assert cgroupjoin.can_join(spec) is expected


@needs_cgroups
def test_helper_keeps_argv0_and_env(unit_cgroup: Path) -> None:
    argv = ["kitty", "/proc/self/cmdline", "/proc/self/environ", "/proc/self/cgroup"]
    _spawned, code, _status, output = run(probe(str(unit_cgroup), {"A-B": "1"}, argv))
    assert code == 0
    assert output.startswith(b"kitty\0/proc/self/cmdline\0/proc/self/environ\0/proc/self/cgroup\0A-B=1\0")
    assert output.endswith(f"/{unit_cgroup.name}\n".encode())


@needs_cgroups
def test_file_the_kernel_cannot_exec_fails_203(unit_cgroup: Path, tmp_path: Path) -> None:
    # A shell's exec would run this file as a script; the kernel refuses it (ENOEXEC).
    marker = tmp_path / "ran"
    program = tmp_path / "not-a-program"
    program.write_text(f"touch {marker}\n")
    program.chmod(0o755)
    spec = probe(str(unit_cgroup), {}, [str(program)])
    spec.path = str(program)
    code, reason = outcome(spec)
    assert code == 203, f"exit code {code}, reason {reason!r}"
    assert reason.endswith("Exec format error")
    assert not marker.exists(), "the file must not run as a shell script"


def outcome(spec: SpawnSpec) -> tuple[int, str]:
    """Return the exit code and reason of a spawn that fails, raised at once (clone3) or from the status pipe."""
    try:
        _spawned, code, status, _output = run(spec)
    except SpawnError as exc:
        return exc.exit_code, str(exc)
    return code, parse_helper_status(status)[1]


@needs_cgroups
@pytest.mark.parametrize(("name", "error"), [("missing", "No such file or directory"),
                                             ("not-executable", "Permission denied")])
def test_failed_exec_leaves_no_child(unit_cgroup: Path, tmp_path: Path, name: str, error: str) -> None:
    program = tmp_path / name
    if name == "not-executable":
        program.write_bytes(b"\x7fELF")
        program.chmod(0o644)
    spec = probe(str(unit_cgroup), {}, [str(program)])
    spec.path = str(program)
    code, reason = outcome(spec)
    assert (code, reason.endswith(error)) == (203, True), reason
    with pytest.raises(ChildProcessError):
        os.waitpid(-1, os.WNOHANG)


@needs_cgroups
def test_child_born_in_cgroup_forks_there(unit_cgroup: Path) -> None:
    # The child forks at once: its child must be in the unit's cgroup too.
    spec = probe(str(unit_cgroup), {}, ["/bin/sh", "-c", "/bin/cat /proc/self/cgroup"])
    spec.path = "/bin/sh"
    _spawned, code, _status, output = run(spec)
    assert code == 0
    relative = "/" + str(unit_cgroup.relative_to(SUPPORT.mount))
    assert f"0::{relative}\n".encode() in output


def ignored_signals(output: bytes) -> int:
    """Return the mask of ignored standard signals from the output of `cat /proc/self/status`.

    Signals 32 and 33 are left out: glibc keeps them for itself, and dash
    passes them on ignored.
    """
    line = next(line for line in output.splitlines() if line.startswith(b"SigIgn:"))
    return int(line.split()[1], 16) & ((1 << 31) - 1)


@needs_cgroups
@pytest.mark.parametrize("ignore_sigpipe", [True, False])
def test_new_session_and_default_signals(unit_cgroup: Path, ignore_sigpipe: bool) -> None:
    spec = probe(str(unit_cgroup), {}, ["/bin/cat", "/proc/self/stat", "/proc/self/status"])
    spec.ignore_sigpipe = ignore_sigpipe
    spawned, code, _status, output = run(spec)
    assert code == 0
    session = int(output.split(b")", 1)[1].split()[3])
    assert session == spawned.pid, "the process leads a new session"
    expected = 1 << (signal.SIGPIPE - 1) if ignore_sigpipe else 0
    assert ignored_signals(output) == expected, "only SIGPIPE may stay ignored, and only with IgnoreSIGPIPE=yes"
    blocked = next(line for line in output.splitlines() if line.startswith(b"SigBlk:"))
    assert int(blocked.split()[1], 16) == 0, "the signal mask starts empty"


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="manager/_clone3.c has assembly for x86-64 only")
def test_clone3_extension_built() -> None:
    assert spawn_module._clone3 is not None, (
        "unitmgr.manager._clone3 is missing: install a C compiler (Debian: gcc libc6-dev) and reinstall with pip")


@pytest.mark.skipif(spawn_module._clone3 is None, reason="manager/_clone3.c was not built")
def test_rejected_clone3_joins_with_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A directory outside cgroupfs: the kernel rejects CLONE_INTO_CGROUP with EBADF for this spawn only.
    monkeypatch.setattr(spawn_module, "_clone3_enabled", True)
    spawned, code, status, _output = run(probe(str(tmp_path), {}))
    assert (code, status) == (0, b"")
    assert spawned.status_fd is not None, "the shell joined instead"
    assert (tmp_path / "cgroup.procs").read_text() == "0\n", "the shell wrote where the unit's cgroup.procs would be"
    assert spawn_module.clone3_enabled()


@pytest.mark.skipif(spawn_module._clone3 is None, reason="manager/_clone3.c was not built")
def test_kernel_without_clone3_disables_it(unit_cgroup: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Mocked: this kernel has clone3, so a kernel or seccomp filter without it is simulated.
    def reject(*_args: object) -> int:
        raise spawn_module._clone3.CloneUnavailable(38, "Function not implemented")

    monkeypatch.setattr(spawn_module, "_clone3_enabled", True)
    monkeypatch.setattr(spawn_module._clone3, "spawn", reject)
    spawned, code, _status, output = run(probe(str(unit_cgroup), {}))
    assert code == 0
    assert spawned.status_fd is not None, "the shell joined instead"
    assert ("/" + unit_cgroup.name + "\n").encode() in output
    assert not spawn_module.clone3_enabled(), "later spawns go straight to the shell"
