"""cgroup v2 detection and the per-unit cgroup tree, on the real hierarchy where it is writable."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from support import wait_for
from unitmgr.manager import cgroups

HYBRID_MOUNTS = """\
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
"""
UNIFIED_MOUNTS = "cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n"
PROC_CGROUP = """\
4:memory:/process_api/7543
0::/user.slice/user-1000.slice/user@1000.service/app.slice/unitmgr.service
"""

SUPPORT = cgroups.detect()
needs_cgroups = pytest.mark.skipif(not SUPPORT.usable, reason=f"no writable cgroup v2 hierarchy: {SUPPORT.reason}")


def test_mount_found_on_hybrid_layout() -> None:
    assert cgroups._cgroup2_mount(HYBRID_MOUNTS) == Path("/sys/fs/cgroup/unified")


def test_mount_found_on_unified_layout() -> None:
    assert cgroups._cgroup2_mount(UNIFIED_MOUNTS) == Path("/sys/fs/cgroup")


def test_mount_missing_without_cgroup2() -> None:
    assert cgroups._cgroup2_mount(HYBRID_MOUNTS.replace("cgroup2", "cgroup")) is None


def test_own_path_from_proc_cgroup() -> None:
    expected = "/user.slice/user-1000.slice/user@1000.service/app.slice/unitmgr.service"
    assert cgroups._own_v2_path(PROC_CGROUP) == expected


def test_own_path_missing_on_v1_only() -> None:
    assert cgroups._own_v2_path("4:memory:/x\n1:cpu:/\n") is None


def test_unusable_support_says_why() -> None:
    support = cgroups.CgroupSupport(reason="no cgroup2 file system is mounted")
    assert not support.usable


@pytest.fixture
def tree():
    tree = cgroups.CgroupTree(SUPPORT)
    tree.setup()
    yield tree
    tree.cleanup()


@needs_cgroups
def test_tree_groups_kills_and_removes(tree: cgroups.CgroupTree) -> None:
    directory = tree.create("demo.service")
    assert directory.parent == tree.base
    sleeper = subprocess.Popen(["sleep", "1000"])
    try:
        (directory / "cgroup.procs").write_text(str(sleeper.pid))
        assert tree.pids("demo.service") == {sleeper.pid}
        assert not tree.remove("demo.service"), "a populated cgroup must not be removable"

        tree.kill("demo.service")
        assert sleeper.wait(10) == -9
        wait_for(lambda: not tree.pids("demo.service"), message="the cgroup to empty")
        assert tree.remove("demo.service")
        assert not directory.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


@needs_cgroups
def test_tree_cleanup_removes_base(tree: cgroups.CgroupTree) -> None:
    tree.create("a.service")
    tree.create("b.service")
    tree.cleanup()
    assert not tree.base.exists()


@needs_cgroups
def test_keyed_file_parsed(tree: cgroups.CgroupTree) -> None:
    tree.create("stat.service")
    stat = tree.read_keyed("stat.service", "cpu.stat")
    assert stat["usage_usec"] == 0


def fake_hierarchy(root: Path, controllers: list[str]) -> cgroups.CgroupSupport:
    """Build a directory that looks like a delegated cgroup to the code that writes it.

    The real hierarchy on the test machine may offer no controllers, so this
    is how the kernel-enforcement path (controller set-up, limit files) runs
    at all. The kernel's own checks are of course missing here.
    """
    own = root / "user.slice" / "unitmgr.service"
    own.mkdir(parents=True)
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.controllers").write_text(" ".join(controllers))
    return cgroups.CgroupSupport(mount=root, own_path="/user.slice/unitmgr.service", writable=True,
                                 controllers=controllers)


def fake_tree(root: Path, controllers: list[str]) -> cgroups.CgroupTree:
    tree = cgroups.CgroupTree(fake_hierarchy(root, controllers))
    # The kernel creates these files in every new cgroup.
    tree.base.mkdir()
    (tree.base / "cgroup.subtree_control").write_text("")
    return tree


def test_fake_tree_enables_controllers(tmp_path: Path) -> None:
    tree = fake_tree(tmp_path, ["memory", "pids"])
    tree.setup()

    assert tree.enabled == ["memory", "pids"]
    # The manager left its own cgroup for a leaf before enabling controllers there.
    own = tree.support.own_dir
    assert (own / "manager" / "cgroup.procs").read_text() == str(os.getpid())
    # A regular file keeps only the last write; in cgroupfs each write adds a controller.
    assert (own / "cgroup.subtree_control").read_text() == "+pids"
    assert (tree.base / "cgroup.subtree_control").read_text() == "+pids"
