"""Rendering of docs/units.md from the directive declarations."""

from __future__ import annotations

from unitmgr.units.directive_table import OWNER_REASONS
from unitmgr.units.directives import all_directives, directives_in, known_sections

_HEADER = """\
# Unit file directives

Generated from the declarations in `units/directive_table.py` by
`python tools/gen_units_doc.py`; do not edit by hand. The list is every
directive systemd 252 defines for the sections a user manager reads. A key
that is not listed here gets systemd's warning "Unknown key". A listed key
that unitmgr does not implement is parsed, stored and warned about once per
unit ("KEY= is not supported by unitmgr and was ignored"), with the reason
given below. The defaults of `RestartSec=`, `TimeoutStartSec=`,
`TimeoutStopSec=`, `StartLimitBurst=` and `StartLimitIntervalSec=` are the
manager's: `DefaultRestartSec=` and friends in unitmgr.conf change them
(docs/configuration.md).

"""


def _default_text(value: object) -> str:
    if value is None or value == [] or value == {}:
        return ""
    if value is True or value is False:
        return "yes" if value else "no"
    return str(value).replace("|", "\\|")


def render_units_doc() -> str:
    """Return the Markdown text of docs/units.md."""
    declared = all_directives()
    implemented = sum(1 for d in declared if d.implemented)
    parts = [_HEADER, f"{implemented} of {len(declared)} directives are implemented.\n"]
    parts.append("\n## Why a directive is not implemented\n\n")
    for owner, reason in OWNER_REASONS.items():
        parts.append(f"- `{owner}`: {reason}\n")
    for section in known_sections():
        parts.append(f"\n## [{section}]\n\n| Directive | Type | Default | Status | Meaning |\n")
        parts.append("|---|---|---|---|---|\n")
        for d in directives_in(section):
            kind = d.kind + (f" ({', '.join(d.choices)})" if d.choices else "")
            status = "implemented" if d.implemented else f"not implemented: {d.reason}"
            parts.append(f"| `{d.name}=` | {kind} | {_default_text(d.default)} | {status} "
                         f"| {d.help} |\n")
    return "".join(parts)
