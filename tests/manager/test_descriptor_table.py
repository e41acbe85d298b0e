"""reserve_table(): the descriptor table grows once, before threads start, and nothing stays open."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = r"""
import json, os, resource, sys
from unitmgr.manager.descriptors import reserve_table

def fd_size():
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith("FDSize:")).split()[1])

soft = int(sys.argv[1])
if soft:
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
before = sorted(os.listdir("/proc/self/fd"))
size_before = fd_size()
reserved = reserve_table(int(sys.argv[2]))
print(json.dumps({"before": size_before, "after": fd_size(), "reserved": reserved,
                  "same_fds": before == sorted(os.listdir("/proc/self/fd"))}))
"""


def probe(count: int, soft: int = 0) -> dict:
    result = subprocess.run([sys.executable, "-c", PROBE, str(soft), str(count)],
                            capture_output=True, text=True, timeout=60, check=True)
    return json.loads(result.stdout)


def test_table_grows_to_the_count() -> None:
    found = probe(3000)

    assert found["before"] < 3000
    assert found["after"] >= 3000
    assert found["reserved"] >= 3000
    assert found["same_fds"]


def test_soft_limit_bounds_the_table() -> None:
    found = probe(5000, soft=400)

    # Held to the soft RLIMIT_NOFILE: the kernel refuses descriptors at or above it.
    assert 0 < found["reserved"] <= 400
    assert found["after"] < 5000
    assert found["same_fds"]


def test_small_count_changes_nothing() -> None:
    found = probe(2)

    assert found["reserved"] == 0
    assert found["after"] == found["before"]
