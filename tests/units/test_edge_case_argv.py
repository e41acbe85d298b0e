"""The argv unitmgr would exec for the hand-written edge cases in tests/data/units.

The parsed words (before `$VAR` expansion) of these files are compared with
systemd 252's own `systemd --user --test` dump in test_systemd_dump.py.
systemd expands variables only when it spawns a process, which no offline
tool shows, so the expanded argv here follows its documented rules.
"""

from pathlib import Path

import pytest
from unit_text import CONTEXT
from unitmgr.units.execline import expand_command
from unitmgr.units.loader import load_file

EDGE_CASES = Path(__file__).resolve().parents[1] / "data" / "units"
ENV = {"A": "x y", "B": "b", "C": "c", "HOME": "/home/ann"}

EXPECTED_ARGV = {
    "quote-double.service": [["/bin/echo", "a b", "c"]],
    "quote-single.service": [["/bin/echo", "a b", "c"]],
    "quote-mid-word.service": [["/bin/echo", "xa by"]],
    "escape-known.service": [["/bin/echo", "A", "A", "\t", " ", "é"]],
    "escape-unknown.service": [["/bin/echo", "a\\qb"]],
    "escape-semicolon.service": [["/bin/echo", "a", ";", "b"]],
    "spec-percent.service": [["/bin/echo", "%", "spec-percent.service", "spec-percent",
                              "spec-percent", "", "ann", "1000", "/home/ann", "/run/user/1000"]],
    "spec-trailing-percent.service": [["/bin/echo", "100%"]],
    "cont-simple.service": [["/bin/echo", "a", "b", "c"]],
    "cont-comments.service": [["/bin/echo", "a", "b"]],
    "cont-escaped-backslash.service": [["/bin/echo", "a\\"]],
    "semicolon-oneshot.service": [["/bin/echo", "a"], ["/bin/echo", "b"]],
    "two-execstart-oneshot.service": [["/bin/true"], ["/bin/false"]],
    "reset-exec.service": [["/bin/true"]],
    "dollar-args.service": [["/bin/echo", "$", "x yx", "b", "c d"]],
    "prefix-all.service": [["myname", "$HOME"]],
    "spec-unknown-ignored.service": [["/bin/true"]],
    "dropin-reset.service": [["/bin/true"]],
}


@pytest.mark.parametrize("file_name", sorted(EXPECTED_ARGV))
def test_edge_case_argv(file_name):
    unit = load_file(EDGE_CASES / file_name, CONTEXT)
    assert unit.load_state == "loaded", unit.load_error
    commands = unit.get("Service", "ExecStart")
    argvs = [expand_command(c, ENV, "/usr/bin:/bin")[1] for c in commands]
    assert argvs == EXPECTED_ARGV[file_name]
