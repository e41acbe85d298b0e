"""Resource settings are parsed once per unit definition, not once per start."""

from __future__ import annotations

import logging

import pytest
from test_resources import StubRuntime, spawn_spec, tracker_for
from unitmgr.units.model import Unit


def test_settings_kept_across_invocations() -> None:
    tracker = tracker_for(None, [])
    runtime = StubRuntime({"MemoryMax": "64M"})
    tracker.prepare_spawn(runtime, spawn_spec())
    first = tracker.units["limited.service"].settings

    runtime.invocation_id = "5678"
    tracker.prepare_spawn(runtime, spawn_spec())

    entry = tracker.units["limited.service"]
    assert entry.settings is first
    assert entry.enforced_by == {"MemoryMax": "manager"}


def test_new_definition_parsed_again() -> None:
    tracker = tracker_for(None, [])
    runtime = StubRuntime({"MemoryMax": "64M"})
    tracker.prepare_spawn(runtime, spawn_spec())

    runtime.unit = Unit(name="limited.service", kind="service", settings={"Service": {"MemoryMax": "32M"}})
    runtime.invocation_id = "5678"
    tracker.prepare_spawn(runtime, spawn_spec())

    assert tracker.units["limited.service"].settings.memory_max == 32 << 20


def test_warnings_logged_once_per_definition(caplog: pytest.LogCaptureFixture) -> None:
    tracker = tracker_for(None, [])
    runtime = StubRuntime({"CPUQuota": "20%"})
    with caplog.at_level(logging.WARNING, logger="unitmgr.manager.resources"):
        tracker.prepare_spawn(runtime, spawn_spec())
        runtime.invocation_id = "5678"
        tracker.prepare_spawn(runtime, spawn_spec())

    warnings = [record.getMessage() for record in caplog.records if "CPUQuota=" in record.getMessage()]
    assert len(warnings) == 1
