"""Lines of several megabytes through `unitsh logs`: shown in pieces, exact with `-o raw`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support import write_unit
from unitmgr.manager.linecut import LINE_MAX

MB = 1024 * 1024


def cat_unit(units: Path, name: str, payload: bytes, tmp_path: Path) -> None:
    source = tmp_path / f"{name}.bin"
    source.write_bytes(payload)
    write_unit(units, f"{name}.service", f"""\
[Service]
Type=oneshot
ExecStart=/bin/cat {source}
X-Unitmgr-LogMaxBytes=16M
X-Unitmgr-LogKeepFiles=8
""")


def unitsh_bytes(manager, command: str) -> subprocess.CompletedProcess:
    """Run one unitsh command and keep its output as bytes."""
    return subprocess.run([sys.executable, "-m", "unitmgr.shell.cli", "-c", command],
                          env=manager.env, capture_output=True, timeout=120)


def test_three_megabyte_line(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    body = b"begin" + b"x" * (3 * MB) + b"the end"
    cat_unit(units, "wide", b"before\n" + body + b"\n", tmp_path)
    manager = make_manager(units)
    assert manager.request("start", {"units": ["wide"]})["jobs"][0]["result"] == "done"

    tail = manager.unitsh("-c", "logs -n 2 --stream stdout wide")
    assert tail.returncode == 0, tail.stderr
    shown = tail.stdout.splitlines()
    assert len(shown) == 2
    assert shown[-1].endswith("xthe end")
    assert shown[0].endswith("x" * 100)

    raw = manager.unitsh("-c", "logs -o raw wide")
    assert raw.returncode == 0, raw.stderr
    assert raw.stdout == "before\n" + body.decode() + "\n"
    assert "left out" not in raw.stderr


def test_fifty_megabytes_without_newline(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    payload = os.urandom(50 * MB).replace(b"\n", b"n")
    cat_unit(units, "flat", payload, tmp_path)
    manager = make_manager(units)
    assert manager.request("start", {"units": ["flat"]})["jobs"][0]["result"] == "done"

    tail = manager.unitsh("-c", "logs -n 2 --stream stdout flat")
    assert tail.returncode == 0, tail.stderr
    # Counted by "\n": random bytes may decode to U+2028, where str.splitlines() also splits.
    assert tail.stdout.count("\n") == 2

    raw_tail = unitsh_bytes(manager, "logs -o raw -n 2 flat")
    assert raw_tail.returncode == 0, raw_tail.stderr
    assert LINE_MAX < len(raw_tail.stdout) <= 2 * LINE_MAX
    assert payload.endswith(raw_tail.stdout)

    raw = unitsh_bytes(manager, "logs -o raw flat")
    assert raw.returncode == 0, raw.stderr
    assert len(raw.stdout) == len(payload)
    assert raw.stdout == payload
