"""A cgroup v2 directory per unit, where the manager may create them.

`detect()` reads the manager's own cgroup from `/proc/self/cgroup` (the
`0::PATH` line), finds the cgroup2 mount in `/proc/self/mounts`
(`/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified` on a hybrid
one) and checks that the directory is writable. `CgroupTree` then creates
`unitmgr-<pid>-<random>-<pid namespace inode>/` below it with one directory
per unit, enables the controllers the parent offers (cpu, memory, pids, io)
and writes the unit's limits into them. The kernel's "no internal processes" rule forbids
enabling controllers in a cgroup that holds processes, so before enabling
them in its own (non-root) cgroup the manager moves itself into a `manager`
leaf next to that directory.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

WANTED_CONTROLLERS = ("cpu", "memory", "pids", "io")


@dataclass
class CgroupSupport:
    """The cgroup v2 hierarchy available to this manager. `usable` means it may create cgroups."""

    mount: Path | None = None
    own_path: str = ""
    writable: bool = False
    has_kill: bool = False
    controllers: list[str] = field(default_factory=list)
    reason: str = ""

    @property
    def usable(self) -> bool:
        return self.mount is not None and self.writable

    @property
    def own_dir(self) -> Path:
        assert self.mount is not None
        return self.mount / self.own_path.lstrip("/")


def _cgroup2_mount(mounts_text: str) -> Path | None:
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] == "cgroup2":
            return Path(fields[1])
    return None


def _own_v2_path(cgroup_text: str) -> str | None:
    for line in cgroup_text.splitlines():
        if line.startswith("0::"):
            return line[3:].strip()
    return None


def detect() -> CgroupSupport:
    """Probe the cgroup v2 hierarchy. An unusable result contains the cause in `reason`."""
    try:
        mounts = Path("/proc/self/mounts").read_text()
        own = _own_v2_path(Path("/proc/self/cgroup").read_text())
    except OSError as exc:
        return CgroupSupport(reason=f"could not read /proc: {exc}")
    mount = _cgroup2_mount(mounts)
    if mount is None or own is None:
        return CgroupSupport(reason="no cgroup2 file system is mounted")
    support = CgroupSupport(mount=mount, own_path=own)
    directory = support.own_dir
    support.writable = os.access(directory, os.W_OK) and os.access(directory / "cgroup.procs", os.W_OK)
    if not support.writable:
        support.reason = f"the manager's cgroup {directory} is not writable (no delegation)"
    support.has_kill = (directory / "cgroup.kill").exists()
    with contextlib.suppress(OSError):
        offered = (directory / "cgroup.controllers").read_text().split()
        support.controllers = [c for c in WANTED_CONTROLLERS if c in offered]
    return support


def pid_namespace() -> int:
    """Return the inode number of this process's PID namespace, or 0 when /proc does not show it."""
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def unit_dir_name(unit: str) -> str:
    """Return a directory name for `unit`; unit names never contain '/', but escape it anyway."""
    return unit.replace("/", "\\x2f")


class CgroupTree:
    """The manager's own cgroup directory and a child cgroup per unit."""

    def __init__(self, support: CgroupSupport):
        self.support = support
        # The pid alone is not unique: managers in separate PID namespaces may all be pid 1.
        # The namespace's inode identifies where the pid can be looked up (stalecgroups.py).
        # os.urandom, not secrets: secrets imports hashlib, which maps libcrypto (about 3 MB of RSS).
        name = f"unitmgr-{os.getpid()}-{os.urandom(3).hex()}-{pid_namespace()}"
        self.base = support.own_dir / name
        self.enabled: list[str] = []

    def setup(self) -> None:
        """Create the base cgroup and enable what controllers the parent offers; raise OSError on failure."""
        wanted = self.support.controllers
        if wanted and self.support.own_path != "/":
            self._move_manager_to_leaf()
        self.base.mkdir(exist_ok=True)
        # The root cgroup has no cgroup.kill, so look for it where units live.
        self.support.has_kill = (self.base / "cgroup.kill").exists()
        parent = self.support.own_dir
        self.enabled = [c for c in wanted if self._enable(parent, c) and self._enable(self.base, c)]

    def _move_manager_to_leaf(self) -> None:
        leaf = self.support.own_dir / "manager"
        leaf.mkdir(exist_ok=True)
        (leaf / "cgroup.procs").write_text(str(os.getpid()))

    @staticmethod
    def _enable(directory: Path, controller: str) -> bool:
        try:
            current = (directory / "cgroup.subtree_control").read_text().split()
            if controller not in current:
                (directory / "cgroup.subtree_control").write_text(f"+{controller}")
        except OSError as exc:
            log.warning("could not enable the %s controller in %s: %s", controller, directory, exc)
            return False
        return True

    def path(self, unit: str) -> Path:
        return self.base / unit_dir_name(unit)

    def create(self, unit: str) -> Path:
        directory = self.path(unit)
        directory.mkdir(exist_ok=True)
        return directory

    def write(self, unit: str, name: str, value: str) -> bool:
        """Write one control file of the unit's cgroup; log and return False when the kernel rejects it."""
        try:
            (self.path(unit) / name).write_text(value)
        except OSError as exc:
            log.warning("%s: could not write %s=%s to its cgroup: %s", unit, name, value, exc)
            return False
        return True

    def read(self, unit: str, name: str) -> str | None:
        try:
            return (self.path(unit) / name).read_text()
        except OSError:
            return None

    def pids(self, unit: str) -> set[int]:
        text = self.read(unit, "cgroup.procs")
        return {int(word) for word in text.split()} if text else set()

    def read_keyed(self, unit: str, name: str) -> dict[str, int]:
        """Parse a flat keyed file such as memory.events or cpu.stat."""
        values = {}
        for line in (self.read(unit, name) or "").splitlines():
            key, _, number = line.partition(" ")
            if number.strip().isdigit():
                values[key] = int(number)
        return values

    def kill(self, unit: str) -> None:
        """SIGKILL every process of the unit's cgroup.

        `cgroup.kill` (Linux 5.14+) does it at once, also for processes that
        fork meanwhile. Without it each listed pid gets SIGKILL, which a
        process that forks during the loop can escape.
        """
        if not self.path(unit).exists():
            return
        if self.support.has_kill and self.write(unit, "cgroup.kill", "1"):
            return
        for pid in self.pids(unit):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self, unit: str) -> bool:
        """Remove the unit's cgroup; the kernel refuses while processes are still inside."""
        try:
            self.path(unit).rmdir()
        except FileNotFoundError:
            return True
        except OSError as exc:
            log.debug("%s: cgroup not removed yet: %s", unit, exc)
            return False
        return True

    def cleanup(self) -> None:
        if not self.base.exists():
            return
        for child in self.base.iterdir():
            if child.is_dir():
                if self.support.has_kill:
                    with contextlib.suppress(OSError):
                        (child / "cgroup.kill").write_text("1")
                with contextlib.suppress(OSError):
                    child.rmdir()
        try:
            self.base.rmdir()
        except OSError as exc:
            log.warning("could not remove the manager's cgroup %s: %s", self.base, exc)
