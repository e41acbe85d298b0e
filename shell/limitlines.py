"""The `Limits:` and `Limit hit:` lines of `status`: each resource limit and who enforces it.

systemctl has no such lines, because with systemd the kernel always
enforces them. unitmgr may run without a delegated cgroup, and then a limit
is enforced by the manager's sampling or by nobody, which the user must be
able to see. `Limit*=` rlimits are left out: the kernel always applies them.
"""

from __future__ import annotations

import time
from typing import Any

from unitmgr.shell import humanize

ENFORCER_WORDS = {"kernel": "kernel", "manager": "unitmgr", "none": "not enforced"}
SIZE_LIMITS = ("MemoryMax", "MemoryHigh", "MemorySwapMax")


def limit_value(name: str, value: Any) -> str:
    """Format a limit as it is written in a unit file: `64.0M`, `20%`, `5`."""
    if name in SIZE_LIMITS and isinstance(value, int):
        return humanize.size(value)
    if name == "CPUQuota" and isinstance(value, (int, float)):
        return f"{value * 100:g}%"
    if name == "CPUWeight" and value == 0:
        return "idle"
    return str(value)


def limit_lines(unit: dict[str, Any], label: Any) -> list[str]:
    """Return the status lines for a unit's resource limits; `label(name, text)` aligns them."""
    entries = [entry for entry in unit.get("limits") or [] if not entry["name"].startswith("Limit")]
    lines = []
    if entries:
        parts = [f"{e['name']}={limit_value(e['name'], e['value'])} "
                 f"({ENFORCER_WORDS.get(e['enforced_by'], e['enforced_by'])})" for e in entries]
        lines.append(label("Limits", ", ".join(parts)))
    hit = unit.get("limit_hit")
    if hit:
        when = time.strftime("%H:%M:%S", time.localtime(hit["time"]))
        who = ENFORCER_WORDS.get(hit["enforced_by"], hit["enforced_by"])
        text = f"{hit['name']}={limit_value(hit['name'], hit['value'])} at {when}, by {who}: {hit['action']}"
        lines.append(label("Limit hit", text))
    return lines
