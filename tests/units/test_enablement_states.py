"""Enablement.states(), which reads the links once for many names, against state() per name."""

from __future__ import annotations

import os
from pathlib import Path

from test_enablement import QUERIES, STEPS, _make_root
from unit_text import CONTEXT
from unitmgr.manager.enablement import Enablement


def test_states_match_state_per_name(tmp_path: Path) -> None:
    units = _make_root(tmp_path)
    os.symlink(tmp_path / "opt" / "linked.service", units / "linked.service")
    enablement = Enablement([units], CONTEXT)
    extra = ["aliasonly.service", "ao.service", "grp@a.target", "default.target", "missing.service",
             "wk@.service", "member@.service", "tpl@.service", "spec@.service", "bad name"]
    # Enabled by its alias link alone, with no .wants/ entry.
    (units / "aliasonly.service").write_text("[Service]\nExecStart=/bin/true\n[Install]\nAlias=ao.service\n")
    steps = [*STEPS, ("enable", ["aliasonly.service"])]
    for verb, step_units in steps:
        if verb == "enable":
            enablement.enable(step_units)
        else:
            enablement.disable(step_units)
        queries = QUERIES + extra + sorted(os.listdir(units))
        one_by_one = [enablement.state(name) for name in queries]

        assert enablement.states(queries) == one_by_one, f"after {verb} {' '.join(step_units)}"
