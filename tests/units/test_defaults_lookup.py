"""Unit.get() defaults: the precomputed ones match the declarations, and callers get their own lists."""

from __future__ import annotations

import math

from unitmgr.units.defaults import DEFAULTED_DIRECTIVES, ManagerDefaults
from unitmgr.units.directives import all_directives
from unitmgr.units.model import Unit


def test_declared_defaults_returned() -> None:
    unit = Unit(name="a.service", kind="service", settings={"Service": {"ExecStart": ["x"]}})
    for directive in all_directives():
        if (directive.section, directive.name) in DEFAULTED_DIRECTIVES:
            continue
        if directive.section == "Service" and directive.name in ("Type", "TimeoutStartSec"):
            continue
        if directive.name == "ExecStart":
            continue
        assert unit.get(directive.section, directive.name) == directive.default, directive.name


def test_list_default_is_a_copy() -> None:
    unit = Unit(name="b.service", kind="service")
    first = unit.get("Service", "ExecStartPre")
    first.append("changed")

    assert unit.get("Service", "ExecStartPre") == []


def test_computed_defaults_follow_settings() -> None:
    simple = Unit(name="c.service", kind="service", settings={"Service": {"ExecStart": ["x"]}})
    oneshot = Unit(name="d.service", kind="service")
    custom = Unit(name="e.service", kind="service", settings={"Service": {"ExecStart": ["x"]}},
                  defaults=ManagerDefaults(timeout_start_sec=5.0, restart_sec=2.0))

    assert simple.get("Service", "Type") == "simple"
    assert oneshot.get("Service", "Type") == "oneshot"
    assert oneshot.get("Service", "TimeoutStartSec") == math.inf
    assert custom.get("Service", "TimeoutStartSec") == 5.0
    assert custom.get("Service", "RestartSec") == 2.0


def test_unknown_key_has_no_default() -> None:
    unit = Unit(name="f.service", kind="service")

    assert unit.get("Service", "NoSuchKey") is None
    assert unit.get("X-Custom", "Anything") is None
