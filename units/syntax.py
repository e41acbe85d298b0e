"""Lexing of unit files: lines, sections, comments, continuations and assignments.

The lexer does not look up directives. It yields `Assignment`s for every
`Key=value` inside an accepted section and reports the problems systemd
reports at this level ("Missing '='", "Assignment outside of section",
"Unknown section"). Values are only trimmed; typed parsing happens in
`units.assign`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from unitmgr.units.model import Diagnostic

COMMENT_CHARS = "#;"
# A UTF-8 byte order mark decodes to U+FEFF; systemd skips one at the start of a file.
BYTE_ORDER_MARK = "\ufeff"
WHITESPACE = " \t\r\n"
MAX_LINE = 1024 * 1024


@dataclass(frozen=True)
class Assignment:
    """One `Key=value` line (continuations joined) in a section."""

    path: str
    line: int
    section: str
    key: str
    value: str


@dataclass
class LexResult:
    """The assignments of one file and the problems found while lexing it."""

    assignments: list[Assignment] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)
    fatal: Diagnostic | None = None  # a malformed section header rejects the file
    extra_sections: dict[str, dict[str, list[str]]] = field(default_factory=dict)


def _ends_with_continuation(line: str) -> bool:
    """Return whether `line` ends in an unescaped backslash: an odd number of backslashes at its end."""
    if not line.endswith("\\"):
        return False
    return (len(line) - len(line.rstrip("\\"))) % 2 == 1


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Split `text` into (first line number, line) pairs with continuations joined.

    A trailing backslash becomes a space; comment lines inside a continued
    line are dropped, as systemd does.
    """
    result: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.split("\n"), start=1):
        stripped = raw.lstrip(WHITESPACE)
        if stripped[:1] in ("#", ";"):
            continue
        if not pending:
            start = number
        if _ends_with_continuation(raw):
            pending.append(raw[:-1] + " ")
            continue
        pending.append(raw)
        result.append((start, "".join(pending)))
        pending = []
    if pending:
        result.append((start, "".join(pending)))
    return result


def lex(text: str, path: str, sections: Collection[str]) -> LexResult:
    """Lex unit file `text`; `sections` are the section names valid for this unit type."""
    result = LexResult()
    text = text.removeprefix(BYTE_ORDER_MARK)
    section: str | None = None
    skipping = False  # inside an unknown or X- section
    for number, line in logical_lines(text):
        stripped = line.strip(WHITESPACE)
        if not stripped:
            continue
        if stripped.startswith("["):
            if not stripped.endswith("]") or len(stripped) < 3:
                result.fatal = Diagnostic(
                    path, number, "", "",
                    f"Invalid section header '{stripped}'; write it as [Name] on its own line",
                    "error",
                )
                return result
            section = stripped[1:-1]
            skipping = section not in sections
            if section.startswith("X-"):
                result.extra_sections.setdefault(section, {})
            elif skipping:
                result.diagnostics.append(
                    Diagnostic(path, number, section, "", f"Unknown section '{section}'. Ignoring.")
                )
            continue
        _lex_assignment(result, path, number, section, skipping, stripped)
    return result


def _lex_assignment(
    result: LexResult, path: str, number: int, section: str | None, skipping: bool, line: str
) -> None:
    if section is None:
        result.diagnostics.append(
            Diagnostic(path, number, "", "", "Assignment outside of section. Ignoring.")
        )
        return
    key, equals, value = line.partition("=")
    if skipping and not section.startswith("X-"):
        return
    if not equals:
        result.diagnostics.append(
            Diagnostic(path, number, section, "", f"Missing '=', ignoring line: {line}")
        )
        return
    key = key.strip(WHITESPACE)
    value = value.strip(WHITESPACE)
    if section.startswith("X-"):
        result.extra_sections[section].setdefault(key, []).append(value)
        return
    if len(value) > MAX_LINE:
        result.diagnostics.append(
            Diagnostic(path, number, section, key, "Line too long (over 1 MiB), ignoring")
        )
        return
    result.assignments.append(Assignment(path, number, section, key, value))
