"""The real-unit corpus: every file parses, the ones systemd 252 accepts load, counts printed."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from corpus_support import CORPUS, installed_name, manifest, substitute
from unit_text import CONTEXT
from unitmgr.units.directives import lookup
from unitmgr.units.loader import build_unit
from unitmgr.units.model import Unit
from unitmgr.units.syntax import lex

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")


def _rows() -> list[dict[str, str]]:
    return manifest() if CORPUS.is_dir() else []


def _load(row: dict[str, str], substituted: bool) -> Unit:
    text = (CORPUS / row["saved_name"]).read_text()
    if substituted:
        text = substitute(text)
    name = installed_name(row["saved_name"])
    if name.endswith(".conf"):
        # A drop-in: apply it to a minimal unit of the type its folder names.
        folder = row["path"].rsplit("/", 2)[-2]
        unit_name = folder[: -len(".d")]
        if unit_name.endswith("-." + unit_name.rsplit(".", 1)[-1]) or "." not in unit_name:
            unit_name = "example." + unit_name.rsplit(".", 1)[-1]
        base = "[Service]\nExecStart=/bin/true\n" if unit_name.endswith(".service") else ""
        return build_unit(unit_name, ("/base", base), [(row["saved_name"], text)], CONTEXT)
    return build_unit(name, (row["saved_name"], text), [], CONTEXT)


def test_every_file_parses_raw_and_substituted():
    for row in _rows():
        for substituted in (False, True):
            unit = _load(row, substituted)
            assert unit.load_state in ("loaded", "bad-setting"), row["saved_name"]


def test_files_systemd_accepts_are_loaded():
    clean = [row for row in _rows() if row.get("verify252") == "clean"]
    assert len(clean) >= 90
    for row in clean:
        unit = _load(row, substituted=True)
        assert unit.load_state == "loaded", f"{row['saved_name']}: {unit.load_error}"


def test_raw_placeholder_files_get_clear_errors():
    refused = 0
    for row in _rows():
        if row.get("placeholders") != "placeholders=yes" and "placeholder_names" not in row:
            continue
        unit = _load(row, substituted=False)
        if unit.load_state == "bad-setting":
            refused += 1
            assert unit.load_error.startswith(row["saved_name"])
            # The message that explains the refusal quotes the placeholder's remains.
            assert any("@" in str(d) for d in unit.diagnostics), unit.load_error
    assert refused >= 50


def test_directive_usage_counts(capsys):
    counts: collections.Counter[str] = collections.Counter()
    undeclared: set[str] = set()
    warned: set[tuple[str, str]] = set()
    for row in _rows():
        text = substitute((CORPUS / row["saved_name"]).read_text())
        result = lex(text, row["saved_name"], ("Unit", "Service", "Socket", "Timer", "Path",
                                               "Slice", "Install"))
        for item in result.assignments:
            directive = lookup(item.section, item.key)
            if directive is None:
                undeclared.add(f"[{item.section}] {item.key}")
                counts["unknown to systemd 252"] += 1
            elif directive.implemented:
                counts["implemented"] += 1
            else:
                counts["warned as not supported"] += 1
                warned.add((item.section, item.key))
    with capsys.disabled():
        print(f"\ncorpus directive occurrences: {dict(counts)}; "
              f"keys systemd 252 does not know either: {sorted(undeclared)}")
    assert counts["implemented"] > counts["warned as not supported"]
    # Only keys newer than systemd 252 may be undeclared (RestartMode= appeared in 254).
    assert undeclared <= {"[Service] RestartMode"}
    # Each of them is in docs/units.md with the reason it is not implemented.
    doc = (Path(__file__).resolve().parents[2] / "docs" / "units.md").read_text()
    for section, key in sorted(warned):
        reason = lookup(section, key).reason
        rows = [line for line in doc.splitlines() if line.startswith(f"| `{key}=` |")]
        assert reason and any(f"not implemented: {reason}" in row for row in rows), key


def test_dependency_lists_match_key_by_key():
    """The manager's lists of every corpus unit equal a computation of each dependency key in turn."""
    from unitmgr.manager import deps

    for row in _rows():
        unit = _load(row, substituted=True)
        default_dependencies = unit.get("Unit", "DefaultDependencies") is not False
        for key in deps.DEPENDENCY_KEYS:
            expected = deps._compute(unit, key, default_dependencies)
            assert deps.dependencies(unit, key) == expected, (row["saved_name"], key)
