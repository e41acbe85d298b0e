"""`show`'s property names and value text, time spans compared with systemd-analyze itself."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from unit_text import CONTEXT, unit_from
from unitmgr.units.defaults import ManagerDefaults
from unitmgr.units.directives import lookup
from unitmgr.units.loader import build_unit
from unitmgr.units.model import RLimit
from unitmgr.units.showformat import format_timespan, property_name, unit_properties
from unitmgr.units.values import parse_timespan

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")

SPANS = ["0", "1us", "999us", "1ms", "1.5ms", "100ms", "1.5s", "59.999999s", "60s", "61s", "90s",
         "1h 2min 3.5s", "2d", "30min", "1y", "5w", "1month", "3w 2d 1h", "1y 1month 1w 1d",
         "10.25s", "infinity"]


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
def test_timespans_print_as_systemd_prints_them() -> None:
    for text in SPANS:
        output = subprocess.run([SYSTEMD_ANALYZE, "timespan", text], capture_output=True,
                                text=True, timeout=30).stdout
        match = re.search(r"Human: (.*)", output)
        assert match, output
        assert format_timespan(parse_timespan(text)) == match.group(1).strip(), text


def test_property_names() -> None:
    assert property_name(lookup("Service", "TimeoutStopSec")) == "TimeoutStopUSec"
    assert property_name(lookup("Service", "RestartSec")) == "RestartUSec"
    assert property_name(lookup("Unit", "StartLimitIntervalSec")) == "StartLimitIntervalUSec"
    assert property_name(lookup("Service", "EnvironmentFile")) == "EnvironmentFiles"
    assert property_name(lookup("Service", "Restart")) == "Restart"


def _props(text: str, **kwargs) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in unit_properties(unit_from(text), **kwargs):
        found.setdefault(key, []).append(value)
    return found


def test_values_in_show_format() -> None:
    props = _props(
        "[Unit]\nWants=a.service b.service\nConditionPathExists=!/x\n"
        "[Service]\nExecStart=-/bin/echo 'a b' c\nExecStart=/bin/true\nType=oneshot\n"
        "Environment=A=1 'B=x y'\nEnvironmentFile=-/etc/x\nEnvironmentFile=/etc/y\n"
        "UMask=0027\nLimitNOFILE=100:200\nSuccessExitStatus=3 SIGHUP\nKillSignal=SIGINT\n"
        "PrivateTmp=yes\n")
    assert props["Wants"] == ["a.service b.service"]
    assert props["ConditionPathExists"] == ["!/x"]
    assert props["ExecStart"] == [
        '{ path=/bin/echo ; argv[]=/bin/echo "a b" c ; ignore_errors=yes ; start_time=[n/a] ; '
        "stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }",
        "{ path=/bin/true ; argv[]=/bin/true ; ignore_errors=no ; start_time=[n/a] ; "
        "stop_time=[n/a] ; pid=0 ; code=(null) ; status=0/0 }"]
    assert props["Environment"] == ['A=1 "B=x y"']
    assert props["EnvironmentFiles"] == ["/etc/x (ignore_errors=yes)", "/etc/y (ignore_errors=no)"]
    assert props["UMask"] == ["0027"]
    assert (props["LimitNOFILE"], props["LimitNOFILESoft"]) == (["200"], ["100"])
    assert props["SuccessExitStatus"] == ["3 SIGHUP"]
    assert props["KillSignal"] == ["2"]
    assert props["TimeoutStartUSec"] == ["infinity"]  # oneshot
    assert props["RemainAfterExit"] == ["no"]
    assert props["PrivateTmp"] == ["yes"]  # not implemented, but set: shown as written
    assert "ProtectHome" not in props  # not implemented and not set
    assert "WantedBy" not in props
    assert "TimeoutSec" not in props


def test_unset_limits_show_what_is_inherited() -> None:
    props = _props("[Service]\nExecStart=/bin/true\n",
                   inherited=lambda name: RLimit(1024, None) if name == "LimitNOFILE" else None)
    assert (props["LimitNOFILE"], props["LimitNOFILESoft"]) == (["infinity"], ["1024"])
    assert props["LimitCORE"] == [""]


def test_manager_defaults_are_the_effective_values() -> None:
    defaults = ManagerDefaults(restart_sec=0.25, timeout_start_sec=30.0, timeout_stop_sec=7.0,
                               start_limit_burst=9, start_limit_interval_sec=60.0)
    unit = build_unit("d.service", ("/u/d.service", "[Service]\nExecStart=/bin/true\n"), [],
                      CONTEXT, defaults)
    props = dict(unit_properties(unit))
    assert props["RestartUSec"] == "250ms"
    assert props["TimeoutStartUSec"] == "30s"
    assert props["TimeoutStopUSec"] == "7s"
    assert props["StartLimitBurst"] == "9"
    assert props["StartLimitIntervalUSec"] == "1min"
    assert unit.get("Service", "RestartSec") == 0.25
    # A unit's own value wins over the manager's default.
    own = build_unit("o.service", ("/u/o.service", "[Service]\nExecStart=/bin/true\n"
                                   "TimeoutSec=3\nRestartSec=1\n"), [], CONTEXT, defaults)
    assert (own.get("Service", "TimeoutStopSec"), own.get("Service", "RestartSec")) == (3.0, 1.0)


def test_show_completion_offers_real_property_names() -> None:
    from unitmgr.shell.unitfiles import SHOW_PROPERTIES
    from unitmgr.units.directives import all_directives

    header = {"Id", "Names", "Description", "LoadState", "ActiveState", "SubState", "Result",
              "MainPID", "ExecMainPID", "ExecMainStatus", "NRestarts", "InvocationID",
              "FragmentPath", "DropInPaths", "UnitFileState"}
    names = {property_name(d) for d in all_directives()}
    assert set(SHOW_PROPERTIES) <= header | names
