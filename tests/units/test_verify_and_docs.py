from pathlib import Path

from unit_text import CONTEXT
from unitmgr.units.directives import all_directives, default_value, lookup
from unitmgr.units.reference_doc import render_units_doc
from unitmgr.units.verify import verify_files

DOCS = Path(__file__).resolve().parents[2] / "docs" / "units.md"


def test_committed_reference_doc_is_current():
    assert DOCS.read_text() == render_units_doc(), (
        "docs/units.md is out of date; run: python tools/gen_units_doc.py")


def test_declarations_are_complete():
    declared = all_directives()
    # systemd 252's load-fragment table for these sections, plus RestartSteps=,
    # RestartMaxDelaySec= and ReloadSignal= from later versions, which the manager implements.
    assert len(declared) == 714
    for directive in declared:
        assert directive.help, directive.name
        assert directive.implemented or directive.reason, directive.name
    assert lookup("Service", "StartLimitIntervalSec") is None
    assert lookup("Service", "RestartSteps").implemented
    assert lookup("Service", "RestartMode") is None
    assert lookup("Unit", "Wants").implemented


def test_default_value_without_unit_settings():
    from unitmgr.units.model import Unit

    unit = Unit(name="x.service", kind="service")
    assert default_value(unit, "Service", "KillMode") == "control-group"
    assert default_value(unit, "Service", "Type") == "oneshot"
    assert default_value(unit, "Nope", "Nope") is None
    first = default_value(unit, "Unit", "Wants")
    first.append("mutated.service")
    assert default_value(unit, "Unit", "Wants") == []


def test_verify_reports_in_systemd_shape(tmp_path):
    good = tmp_path / "good.service"
    good.write_text("[Service]\nExecStart=/bin/true\nBogus=1\n")
    bad = tmp_path / "bad.service"
    bad.write_text("[Service]\nExecStart=/bin/true\nExecStart=/bin/false\n")
    missing = tmp_path / "missing.service"
    missing.write_text("[Service]\nExecStart=/nonexistent/program\nExecStop=-/nonexistent/x\n")
    lines, has_errors = verify_files([good], CONTEXT)
    assert not has_errors
    assert lines == [f"{good}:3: [Service] Bogus=: Unknown key 'Bogus' in section [Service], "
                     "ignoring."]
    lines, has_errors = verify_files([bad, missing], CONTEXT)
    assert has_errors
    assert "Unit bad.service has a bad unit file setting." in lines
    assert ("missing.service: Command /nonexistent/program is not executable: "
            "No such file or directory") in lines
    assert not any("/nonexistent/x" in line for line in lines)
