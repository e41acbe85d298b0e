"""Finding every process that belongs to a unit when there is no cgroup to ask.

A unit owns: the processes it spawned, every descendant of those (the ppid
chain), every member of the sessions it spawned them in, and orphans that were
re-parented to the manager and still carry the unit's INVOCATION_ID in their
environment. The last rule catches a daemon that double-forked and started
its own session, whose parent has already exited.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
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
