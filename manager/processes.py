"""Finding every process that belongs to a unit when there is no cgroup to ask.

A unit owns: the processes it spawned, every descendant of those (the ppid
chain), every member of the sessions it spawned them in, and orphans that were
re-parented to the manager and still carry the unit's INVOCATION_ID in their
environment. The last rule catches a daemon that double-forked and started
its own session, whose parent has already exited.

The manager is a child subreaper, so every such process descends from it:
`tree_members()` walks the manager's own children (`/proc/PID/task/TID/children`)
instead of reading the stat file of every process on the host. A process
that leaves a session stays a descendant of the process that forked it, and
when that one exits it is re-parented to the manager, so the walk misses none.
`unit_members()` scans all of /proc, for kernels without the children files
(CONFIG_PROC_CHILDREN).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    pgid: int
    sid: int
    comm: str
    state: str


def read_stat(pid: int) -> ProcInfo | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # comm may contain spaces and parentheses: it ends at the last ')'.
    open_paren, close_paren = data.find(b"("), data.rfind(b")")
    if open_paren < 0 or close_paren < 0:
        return None
    comm = data[open_paren + 1 : close_paren].decode("utf-8", "replace")
    fields = data[close_paren + 2 :].split()
    if len(fields) < 5:
        return None
    return ProcInfo(pid, int(fields[1]), int(fields[2]), int(fields[3]), comm, fields[0].decode())


def process_table() -> dict[int, ProcInfo]:
    table: dict[int, ProcInfo] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = read_stat(int(entry))
            if info is not None and info.state != "Z":
                table[info.pid] = info
    return table


def environ_has(pid: int, assignment: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return assignment in f.read().split(b"\0")
    except OSError:
        return False


def unit_members(
    table: dict[int, ProcInfo],
    roots: Iterable[int],
    sessions: Iterable[int],
    invocation_id: str,
    manager_pid: int,
) -> set[int]:
    """Return the live pids of a unit, per the rules in the module docstring."""
    session_set = set(sessions)
    members = {pid for pid in roots if pid in table}
    members |= {info.pid for info in table.values() if info.sid in session_set}
    if invocation_id:
        marker = f"INVOCATION_ID={invocation_id}".encode()
        for info in table.values():
            if info.ppid == manager_pid and info.pid not in members and environ_has(info.pid, marker):
                members.add(info.pid)
    return _with_descendants(table, members)


@functools.cache
def children_files_available() -> bool:
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def find_members(
    roots: Iterable[int],
    invocation_id: str,
    manager_pid: int,
    spawned: Callable[[int], bool],
) -> set[int]:
    """Return the live pids of a unit that has no cgroup; without children files, from a scan of /proc."""
    if children_files_available():
        return tree_members(roots, invocation_id, manager_pid, spawned)
    root_list = list(roots)
    return unit_members(process_table(), root_list, root_list, invocation_id, manager_pid)


def children_of(pid: int) -> list[int]:
    """Return the children of every thread of `pid`; [] once it is gone."""
    base = f"/proc/{pid}/task"
    try:
        threads = os.listdir(base)
    except OSError:
        return []
    children: list[int] = []
    for thread in threads:
        try:
            with open(f"{base}/{thread}/children", "rb") as f:
                children.extend(int(word) for word in f.read().split())
        except OSError:
            continue  # the thread ended meanwhile
    return children


def is_running(pid: int) -> bool:
    """Return whether `pid` exists and has not exited (zombies have)."""
    info = read_stat(pid)
    return info is not None and info.state != "Z"


def tree_members(
    roots: Iterable[int],
    invocation_id: str,
    manager_pid: int,
    spawned: Callable[[int], bool],
) -> set[int]:
    """Return the live pids of a unit from the manager's descendants, per the module docstring's rules.

    `spawned(pid)` returns whether the manager started `pid` itself. Such a
    child of the manager belongs to the unit whose root it is, and its
    environment is never read.
    """
    root_set = set(roots)
    members = {pid for pid in root_set if is_running(pid)}
    marker = f"INVOCATION_ID={invocation_id}".encode()
    for child in children_of(manager_pid):
        if child in members or spawned(child):
            continue
        info = read_stat(child)
        if info is None or info.state == "Z":
            continue
        if info.sid in root_set or (invocation_id and environ_has(child, marker)):
            members.add(child)
    return _running_descendants(members)


def _running_descendants(members: set[int]) -> set[int]:
    result = set(members)
    stack = list(members)
    while stack:
        for child in children_of(stack.pop()):
            if child not in result and is_running(child):
                result.add(child)
                stack.append(child)
    return result


def _with_descendants(table: dict[int, ProcInfo], members: set[int]) -> set[int]:
    children: dict[int, list[int]] = {}
    for info in table.values():
        children.setdefault(info.ppid, []).append(info.pid)
    result = set(members)
    stack = list(members)
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in result:
                result.add(child)
                stack.append(child)
    return result


def read_cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return ""
    return raw.rstrip(b"\0").replace(b"\0", b" ").decode("utf-8", "replace")
