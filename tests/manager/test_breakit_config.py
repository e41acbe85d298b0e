"""Adversarial unitmgr.conf values: warnings name the value the manager keeps."""

from __future__ import annotations

from unitmgr.manager.config import parse_manager_config


def test_warning_names_value_kept() -> None:
    config = parse_manager_config("[Manager]\nCrashLoopBurst=3\nCrashLoopBurst=lots\n", "unitmgr.conf")
    assert config.crash_loop.burst == 3
    [warning] = config.diagnostics
    assert "'lots'" in str(warning)
    assert "keeping CrashLoopBurst=3" in str(warning)


def test_warning_names_default_without_earlier() -> None:
    config = parse_manager_config("[Manager]\nCrashLoopMaxDelaySec=-1\n", "unitmgr.conf")
    assert config.crash_loop.max_delay == 2.0
    [warning] = config.diagnostics
    assert "'-1'" in str(warning)
    assert "keeping CrashLoopMaxDelaySec=2s" in str(warning)
