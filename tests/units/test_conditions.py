import pytest
from unit_text import unit_from
from unitmgr.units.conditions import (
    Condition,
    HostProbe,
    evaluate,
    parse_condition,
    unit_conditions,
)
from unitmgr.units.values import UnitValueError


def probe(**overrides) -> HostProbe:
    settings = {"environment": {"WAYLAND_DISPLAY": "wayland-0", "MODE": "x"}, "user": "ann",
                "uid": 1000, "hostname": "box.example.org", "machine_id": "a" * 32,
                "architecture": "x86-64", "kernel_release": "6.1.0-13-amd64",
                "os_release": {"ID": "debian", "VERSION_ID": "12"}, "groups": ("ann", "audio")}
    settings.update(overrides)
    return HostProbe(**settings)


def test_parse_markers():
    assert parse_condition("ConditionPathExists", "|!/x") == Condition(
        "PathExists", "/x", trigger=True, negate=True)
    assert parse_condition("AssertUser", "ann").is_assert
    with pytest.raises(UnitValueError, match="not absolute"):
        parse_condition("AssertPathIsDirectory", '"/home/ann"')


def test_normal_conditions_are_anded(tmp_path):
    conditions = [parse_condition("ConditionPathExists", str(tmp_path)),
                  parse_condition("ConditionEnvironment", "WAYLAND_DISPLAY"),
                  parse_condition("ConditionUser", "ann")]
    assert evaluate(conditions, probe()) == (True, [])
    conditions.append(parse_condition("ConditionEnvironment", "MODE=y"))
    assert evaluate(conditions, probe()) == (False, ["ConditionEnvironment=MODE=y"])


def test_triggering_conditions_need_one(tmp_path):
    missing = str(tmp_path / "missing")
    conditions = [parse_condition("ConditionPathExists", f"|{missing}"),
                  parse_condition("ConditionPathExists", f"|{tmp_path}")]
    assert evaluate(conditions, probe())[0] is True
    only_missing = conditions[:1]
    assert evaluate(only_missing, probe()) == (False, [f"ConditionPathExists=|{missing}"])


def test_negation(tmp_path):
    assert evaluate([parse_condition("ConditionPathExists", f"!{tmp_path}")], probe())[0] is False
    assert evaluate([parse_condition("ConditionUser", "!root")], probe())[0] is True


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [("ConditionHost", "box.*", True), ("ConditionHost", "a" * 32, True),
     ("ConditionHost", "other", False), ("ConditionUser", "1000", True),
     ("ConditionUser", "@system", False), ("ConditionGroup", "audio", True),
     ("ConditionArchitecture", "x86-64", True), ("ConditionArchitecture", "arm64", False),
     ("ConditionKernelVersion", ">=6.0", True), ("ConditionKernelVersion", "<5", False),
     ("ConditionKernelVersion", "6.1*", True), ("ConditionOSRelease", "ID=debian", True),
     ("ConditionOSRelease", "VERSION_ID>=13", False), ("ConditionEnvironment", "!NOPE", True)],
)
def test_host_checks(key, value, expected):
    assert evaluate([parse_condition(key, value)], probe())[0] is expected


def test_unit_conditions_and_reset():
    unit = unit_from("[Unit]\nConditionUser=ann\nConditionPathExists=/a\nAssertUser=ann\n"
                     "[Service]\nExecStart=/bin/true\n")
    conditions, asserts = unit_conditions(unit)
    assert [str(c) for c in conditions] == ["ConditionUser=ann", "ConditionPathExists=/a"]
    assert [str(c) for c in asserts] == ["AssertUser=ann"]
    reset = unit_from("[Unit]\nConditionUser=ann\nConditionPathExists=/a\nAssertUser=x\n"
                      "ConditionHost=\nConditionHost=box\n[Service]\nExecStart=/bin/true\n")
    conditions, asserts = unit_conditions(reset)
    assert [str(c) for c in conditions] == ["ConditionHost=box"]
    assert len(asserts) == 1
