"""unitmgr.conf: the [Manager] keys, their defaults, and the problems reported with file:line."""

from __future__ import annotations

from pathlib import Path

from unitmgr.manager.config import (
    DECLARATIONS,
    ManagerConfig,
    load_manager_config,
    parse_manager_config,
    reference_table,
)
from unitmgr.manager.crashloop import CrashLoopPolicy
from unitmgr.manager.logconfig import LogDefaults, read_manager_config
from unitmgr.manager.logstore import DEFAULT_KEEP_FILES, DEFAULT_MAX_BYTES
from unitmgr.units.defaults import ManagerDefaults

PATH = "/c/unitmgr.conf"


def test_declared_defaults_are_the_built_in_ones() -> None:
    config = ManagerConfig()
    assert config.defaults == ManagerDefaults()
    assert (config.log_max_bytes, config.log_keep_files) == (DEFAULT_MAX_BYTES, DEFAULT_KEEP_FILES)
    assert config.environment == {}
    assert config.listen == []
    assert config.diagnostics == []


def test_every_key_is_read() -> None:
    config = parse_manager_config(
        "# comment\n[Manager]\nDefaultRestartSec=2s\nDefaultTimeoutStartSec=0\n"
        "DefaultTimeoutStopSec=1min \\\n 30s\nDefaultStartLimitBurst=9\n"
        "DefaultStartLimitIntervalSec=1h\nDefaultEnvironment=A=1 \"B=x y\"\n"
        "DefaultEnvironment=C=3\nLogMaxBytes=1M\nLogKeepFiles=2\n"
        "Listen=tcp://127.0.0.1:5555 ipc:///tmp/x.sock\n", PATH)
    assert config.diagnostics == []
    assert config.defaults == ManagerDefaults(restart_sec=2.0, timeout_start_sec=float("inf"),
                                              timeout_stop_sec=90.0, start_limit_burst=9,
                                              start_limit_interval_sec=3600.0)
    assert config.environment == {"A": "1", "B": "x y", "C": "3"}
    assert (config.log_max_bytes, config.log_keep_files) == (1024 * 1024, 2)
    assert config.listen == ["tcp://127.0.0.1:5555", "ipc:///tmp/x.sock"]
    assert set(DECLARATIONS) == set(config.values)


def test_empty_assignment_resets_lists() -> None:
    config = parse_manager_config("[Manager]\nDefaultEnvironment=A=1\nDefaultEnvironment=\n"
                                  "DefaultEnvironment=B=2\nListen=ipc:///a\nListen=\n", PATH)
    assert config.environment == {"B": "2"}
    assert config.listen == []


def test_problems_name_the_line_key_and_fix() -> None:
    config = parse_manager_config(
        "[Manager]\nDefaultRestartSec=soon\nDefaultStartLimitBurst=-1\nLogMaxBytes=10\n"
        "Listen=http://x\nDefaultEnvironment=1A=x\nFrobnicate=1\n[Other]\nKey=1\n", PATH)
    lines = [str(d) for d in config.diagnostics]
    assert lines[0].startswith(f"{PATH}:2: [Manager] DefaultRestartSec=: ")
    assert "soon" in lines[0]
    assert lines[0].endswith("keeping DefaultRestartSec=100ms")
    assert lines[1].startswith(f"{PATH}:3: [Manager] DefaultStartLimitBurst=: ")
    assert lines[2].startswith(f"{PATH}:4: [Manager] LogMaxBytes=: LogMaxBytes=10 is below")
    assert lines[3].startswith(f"{PATH}:5: [Manager] Listen=: invalid listen endpoint 'http://x'")
    assert lines[4].startswith(f"{PATH}:6: [Manager] DefaultEnvironment=: Invalid environment")
    assert lines[5].startswith(f"{PATH}:7: [Manager] Frobnicate=: Unknown key 'Frobnicate'")
    assert "DefaultRestartSec=" in lines[5]  # lists the keys there are
    assert lines[6] == f"{PATH}:8: [Other]: Unknown section 'Other'. Ignoring."
    assert config.defaults == ManagerDefaults()
    assert config.log_max_bytes == DEFAULT_MAX_BYTES


def test_missing_and_bad_header_files(tmp_path: Path) -> None:
    assert load_manager_config(tmp_path / "none.conf").diagnostics == []
    bad = tmp_path / "bad.conf"
    bad.write_text("[Manager\nDefaultRestartSec=1\n")
    config = load_manager_config(bad)
    assert config.defaults == ManagerDefaults()
    assert "Invalid section header" in str(config.diagnostics[0])


def test_log_settings_come_from_the_same_loader(tmp_path: Path) -> None:
    path = tmp_path / "unitmgr.conf"
    path.write_text("[Manager]\nLogMaxBytes=64K\nLogKeepFiles=3\nDefaultRestartSec=1\n")
    assert read_manager_config(path) == LogDefaults(64 * 1024, 3)


def test_configuration_doc_lists_the_declared_keys() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    start = doc.index("<!-- keys: generated")
    block = doc[doc.index("\n", start) + 1: doc.index("<!-- end of keys -->")]
    assert block.strip().splitlines() == reference_table()


def test_crash_loop_keys() -> None:
    assert ManagerConfig().crash_loop == CrashLoopPolicy(quick_exit_sec=1.0, burst=5, max_delay=2.0)
    config = parse_manager_config("[Manager]\nCrashLoopQuickExitSec=500ms\nCrashLoopBurst=3\n"
                                  "CrashLoopMaxDelaySec=1min\n", PATH)
    assert config.diagnostics == []
    assert config.crash_loop == CrashLoopPolicy(quick_exit_sec=0.5, burst=3, max_delay=60.0)
    off = parse_manager_config("[Manager]\nCrashLoopMaxDelaySec=0\n", PATH)
    assert not off.crash_loop.enabled


def test_bad_crash_loop_values_keep_defaults() -> None:
    config = parse_manager_config("[Manager]\nCrashLoopBurst=-1\nCrashLoopMaxDelaySec=often\n", PATH)
    lines = [str(d) for d in config.diagnostics]
    assert lines[0].startswith(f"{PATH}:2: [Manager] CrashLoopBurst=: ")
    assert lines[0].endswith("keeping CrashLoopBurst=5")
    assert lines[1].startswith(f"{PATH}:3: [Manager] CrashLoopMaxDelaySec=: ")
    assert "often" in lines[1]
    assert config.crash_loop == CrashLoopPolicy()
