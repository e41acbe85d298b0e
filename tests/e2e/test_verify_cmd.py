"""`verify` as a control command: unit files checked on the manager's host."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from support import write_unit
from unitmgr.shell.client import RemoteError


def test_verify_reports_errors_and_warnings(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    manager = make_manager(units)
    checks = tmp_path / "checks"
    good = write_unit(checks, "good.service", "[Service]\nExecStart=/bin/true\n")
    bad = write_unit(checks, "bad.service", "[Service]\nType=simple\n")
    odd = write_unit(checks, "odd.service", "[Service]\nExecStart=/bin/true\nFrobnicate=yes\n"
                     "PrivateTmp=yes\n")

    clean = manager.request("verify", {"files": [str(good)]})
    assert clean == {"lines": [], "errors": False}

    failed = manager.request("verify", {"files": [str(good), str(bad)]})
    assert failed["errors"] is True
    assert failed["lines"][-1] == "Unit bad.service has a bad unit file setting."
    assert any(line.startswith(f"{bad}: Service has no ExecStart=") for line in failed["lines"])

    warned = manager.request("verify", {"files": [str(odd)]})
    assert warned["errors"] is False
    assert (f"{odd}:3: [Service] Frobnicate=: Unknown key 'Frobnicate' in section [Service], "
            "ignoring.") in warned["lines"]
    assert any("PrivateTmp=" in line and "not supported" in line for line in warned["lines"])


def test_verify_missing_file_and_bad_arguments(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    manager = make_manager(units)
    missing = manager.request("verify", {"files": [str(tmp_path / "nope.service")]})
    assert missing["errors"] is True
    assert "No such file or directory" in missing["lines"][-1]
    with pytest.raises(RemoteError) as error:
        manager.request("verify", {"files": []})
    assert error.value.code == "bad-request"


def test_unitmgr_verify_command_line(tmp_path: Path) -> None:
    good = write_unit(tmp_path, "good.service", "[Service]\nExecStart=/bin/true\n")
    bad = write_unit(tmp_path, "bad.service", "[Service]\nExecStart=/bin/true\nRestart=sometimes\n"
                     "Type=forking\nType=\n[Bogus\n")

    def verify(*paths: Path) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "unitmgr.manager.cli", "verify",
                               *map(str, paths)], capture_output=True, text=True, timeout=60)

    clean = verify(good)
    assert (clean.returncode, clean.stdout, clean.stderr) == (0, "", "")
    failed = verify(good, bad)
    assert failed.returncode == 1
    assert failed.stdout == ""
    lines = failed.stderr.splitlines()
    assert lines[0].startswith(f"{bad}:6: Invalid section header '[Bogus'")
    assert lines[-1] == "Unit bad.service has a bad unit file setting."


def test_unitsh_verify(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    units.mkdir()
    manager = make_manager(units)
    checks = tmp_path / "checks"
    good = write_unit(checks, "good.service", "[Service]\nExecStart=/bin/true\n")
    bad = write_unit(checks, "bad.service", "[Service]\nExecStart=/bin/true\nExecStart=/bin/false\n")

    clean = manager.unitsh("-c", f"verify {good}")
    assert (clean.returncode, clean.stdout, clean.stderr) == (0, "", "")
    failed = manager.unitsh("-c", f"verify {good} {bad}")
    assert (failed.returncode, failed.stdout) == (1, "")
    assert failed.stderr.splitlines()[-1] == "Unit bad.service has a bad unit file setting."

    # A relative path is taken from the shell's working directory when the manager is local.
    relative = subprocess.run([sys.executable, "-m", "unitmgr.shell.cli", "-c", "verify bad.service"],
                              cwd=checks, env=manager.env, capture_output=True, text=True, timeout=60)
    assert relative.returncode == 1
    assert relative.stderr.splitlines()[0].startswith(f"{bad}: ")


def test_verify_flags_bad_limits(tmp_path: Path) -> None:
    unit = write_unit(tmp_path, "limits.service", "[Service]\nExecStart=/bin/true\nMemoryMax=lots\n"
                      "TasksMax=-1\nMemoryHigh=200%\nTasksMax=20%\n")
    result = subprocess.run([sys.executable, "-m", "unitmgr.manager.cli", "verify", str(unit)],
                            capture_output=True, text=True, timeout=60)
    lines = result.stderr.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"{unit}:3: [Service] MemoryMax=: Invalid size 'lots', ignoring")
    assert lines[1].startswith(f"{unit}:4: [Service] TasksMax=: Invalid TasksMax= value '-1', ignoring")
    assert lines[2].startswith(f"{unit}:5: [Service] MemoryHigh=: Invalid percentage '200%', ignoring")


# One invalid value per resource-control or process-attribute setting, with the start of the
# expected report line. systemd 252 warns about each and still loads the unit.
BAD_SETTINGS = [
    ("CPUQuota=20", "CPUQuota=: Invalid CPUQuota= value '20', ignoring"),
    ("CPUWeight=0", "CPUWeight=: Invalid CPUWeight= value '0', ignoring"),
    ("IOWeight=idle", "IOWeight=: Invalid IOWeight= value 'idle', ignoring"),
    ("AllowedCPUs=0-", "AllowedCPUs=: Failed to parse AllowedCPUs= value '0-'"),
    ("Nice=20", "Nice=: Nice priority out of range '20', ignoring"),
    ("CPUAffinity=8192", "CPUAffinity=: Invalid CPUAffinity= value '8192'"),
    ("IOSchedulingClass=be", "IOSchedulingClass=: Invalid IOSchedulingClass= value 'be', ignoring"),
    ("IOSchedulingPriority=8", "IOSchedulingPriority=: Invalid IOSchedulingPriority= value '8'"),
    ("OOMScoreAdjust=1001", "OOMScoreAdjust=: Invalid OOMScoreAdjust= value '1001', ignoring"),
    ("UMask=8", "UMask=: Failed to parse mode '8', ignoring"),
    ("CPUSchedulingPriority=100", "CPUSchedulingPriority=: Invalid CPUSchedulingPriority= value '100'"),
    ("LimitNOFILE=2048:1024", "LimitNOFILE=: Soft resource limit chosen higher than hard limit"),
    ("LimitNICE=infinity", "LimitNICE=: Failed to parse resource value 'infinity', ignoring"),
]


def _expected_lines(unit: Path) -> list[str]:
    return [f"{unit}:{line}: [Service] {text}" for line, (_, text) in enumerate(BAD_SETTINGS, start=3)]


def _value_warnings(output: str) -> list[str]:
    return [line for line in output.splitlines() if "not supported by unitmgr" not in line]


def test_verify_flags_bad_process_settings(make_manager, tmp_path: Path) -> None:
    body = "".join(f"{assignment}\n" for assignment, _ in BAD_SETTINGS)
    unit = write_unit(tmp_path / "checks", "attrs.service", "[Service]\nExecStart=/bin/true\n" + body)
    expected = _expected_lines(unit)

    result = subprocess.run([sys.executable, "-m", "unitmgr.manager.cli", "verify", str(unit)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = _value_warnings(result.stderr)
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.startswith(start)

    units = tmp_path / "units"
    units.mkdir()
    manager = make_manager(units)
    shell = manager.unitsh("-c", f"verify {unit}")
    assert shell.returncode == 0, shell.stderr
    shell_lines = _value_warnings(shell.stderr)
    assert len(shell_lines) == len(expected)
    for line, start in zip(shell_lines, expected, strict=True):
        assert line.startswith(start)
