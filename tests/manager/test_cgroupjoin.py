"""Spawning into a unit's cgroup through /bin/sh: the cgroup, what the program receives, and failures."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from unitmgr.manager import cgroupjoin, cgroups
from unitmgr.manager.spawn import Spawned, SpawnError, SpawnSpec, parse_helper_status, spawn

SUPPORT = cgroups.detect()
needs_cgroups = pytest.mark.skipif(not SUPPORT.usable, reason=f"no writable cgroup v2 hierarchy: {SUPPORT.reason}")


@pytest.fixture
def unit_cgroup() -> Iterator[Path]:
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
    _pid, wait_status = os.waitpid(spawned.pid, 0)
    return spawned, os.waitstatus_to_exitcode(wait_status), status, read_all(read_fd)


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
    _spawned, code, status, _output = run(spec)
    assert code == 203, f"exit code {code}, status {status!r}"
    assert parse_helper_status(status) == (203, "execve failed: Exec format error")
    assert not marker.exists(), "the file must not run as a shell script"
