"""`EnvironmentFile=` syntax: shell-like `KEY=value` lines, as systemd reads them.

Rules (systemd 252, `load_env_file()`): blank lines and lines whose first
non-blank character is `#` or `;` are skipped; a line without `=` is
skipped; unquoted values lose leading and trailing whitespace and a
backslash quotes the next character (a trailing backslash joins the next
line); single quotes are verbatim; double quotes decode `\\"`, `\\\\`,
`` \\` `` and `\\$` and may span lines. Keys must be valid variable names;
others (such as `export KEY`) are dropped.
"""

from __future__ import annotations

import re

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOUBLE_QUOTE_ESCAPES = '"\\`$'


def _read_key(text: str, index: int) -> tuple[str | None, int]:
    """Read up to `=` or the end of the line; return (key or None, index after `=`)."""
    end = index
    while end < len(text) and text[end] not in "=\n":
        end += 1
    if end >= len(text) or text[end] == "\n":
        return None, end
    return text[index:end].strip(), end + 1


def _read_value(text: str, index: int) -> tuple[str, int]:
    """Read one value starting after `=`; return (value, index of the next line)."""
    out: list[str] = []
    quote = ""
    kept = 0  # length of `out` up to its last character that is not unquoted whitespace
    while index < len(text) and text[index] in " \t":
        index += 1
    while index < len(text):
        char = text[index]
        if quote == "'":
            if char == "'":
                quote = ""
            else:
                out.append(char)
        elif quote == '"':
            if char == '"':
                quote = ""
            elif char == "\\" and index + 1 < len(text):
                index += 1
                following = text[index]
                if following in _DOUBLE_QUOTE_ESCAPES:
                    out.append(following)
                elif following != "\n":
                    out.extend(("\\", following))
            else:
                out.append(char)
        elif char == "\n":
            index += 1
            break
        elif char in "'\"":
            quote = char
        elif char == "\\":
            index += 1
            if index < len(text) and text[index] != "\n":
                out.append(text[index])
        else:
            out.append(char)
            if char in " \t\r":
                index += 1
                continue
        kept = len(out)
        index += 1
    return "".join(out[:kept]), index


def parse_environment_file(text: str) -> dict[str, str]:
    """Parse the contents of an environment file into an ordered dict; later keys win."""
    result: dict[str, str] = {}
    index = 0
    while index < len(text):
        while index < len(text) and text[index] in " \t\r\n":
            index += 1
        if index >= len(text):
            break
        if text[index] in "#;":
            newline = text.find("\n", index)
            index = len(text) if newline < 0 else newline + 1
            continue
        key, index = _read_key(text, index)
        if key is None:
            continue
        value, index = _read_value(text, index)
        if _NAME.fullmatch(key):
            result[key] = value
    return result
