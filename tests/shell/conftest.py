"""Fixtures of the shell tests; the helpers they use are in shellfixtures.py."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from shellfixtures import FakeManager


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch):
    """Render local times in UTC, whatever the machine's zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def fake_manager(tmp_path: Path):
    manager = FakeManager(tmp_path / "home")
    try:
        yield manager
    finally:
        manager.close()
