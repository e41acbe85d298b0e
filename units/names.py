"""Unit names: validation, templates and instances, and systemd-escape rules."""

from __future__ import annotations

import re

UNIT_TYPES = ("service", "socket", "target", "timer", "slice", "path", "scope",
              "mount", "automount", "swap", "device")  # fmt: skip
# Types a user manager can load; the others are accepted as dependency names only.
LOADABLE_TYPES = ("service", "socket", "target", "timer", "slice", "path")
MAX_NAME_LENGTH = 255

_PREFIX_CHARS = r"[A-Za-z0-9:_.\\-]"
_NAME = re.compile(
    rf"({_PREFIX_CHARS}+)(?:@({_PREFIX_CHARS}*))?\.({'|'.join(UNIT_TYPES)})"
)
_ESCAPE_KEEP = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789:_.")


def is_valid_name(name: str) -> bool:
    """Return whether `name` is a valid plain, template or instance unit name."""
    return len(name) <= MAX_NAME_LENGTH and _NAME.fullmatch(name) is not None


def split_name(name: str) -> tuple[str, str | None, str]:
    """Split `name` into (prefix, instance, type); instance is None for a plain name.

    A template gives an empty instance. Raises ValueError for an invalid name.
    """
    match = _NAME.fullmatch(name)
    if match is None or len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"invalid unit name '{name}'; use PREFIX.TYPE or PREFIX@INSTANCE.TYPE with letters, "
            "digits and ':_.\\-' and a type such as .service"
        )
    prefix, instance, kind = match.groups()
    if instance is None and "@" in name:
        instance = ""
    return prefix, instance, kind


def unit_type(name: str) -> str:
    return name.rsplit(".", 1)[-1] if "." in name else ""


def is_template(name: str) -> bool:
    return is_valid_name(name) and split_name(name)[1] == ""


def is_instance(name: str) -> bool:
    return is_valid_name(name) and bool(split_name(name)[1])


def template_of(name: str) -> str | None:
    """Return `foo@.service` for `foo@bar.service`, or None when `name` is not an instance."""
    if not is_instance(name):
        return None
    prefix, _, kind = split_name(name)
    return f"{prefix}@.{kind}"


def instance_name(template: str, instance: str) -> str:
    """Return the name of `instance` of `template` (`foo@.service`, `a` gives `foo@a.service`)."""
    prefix, existing, kind = split_name(template)
    if existing != "":
        raise ValueError(f"'{template}' is not a template; a template name ends in '@.{kind}'")
    return f"{prefix}@{instance}.{kind}"


def complete_name(text: str) -> str:
    """Return `text` with `.service` appended unless it already ends in a unit type."""
    if unit_type(text) in UNIT_TYPES:
        return text
    return text + ".service"


def escape(text: str, path: bool = False) -> str:
    """Escape `text` for use in a unit name, like `systemd-escape [--path]`."""
    if path:
        parts = [p for p in text.split("/") if p and p != "."]
        if not parts:
            return "-"
        text = "/".join(parts)
    out: list[str] = []
    for index, byte in enumerate(text.encode("utf-8", "surrogateescape")):
        char = chr(byte)
        if char == "/":
            out.append("-")
        elif char in _ESCAPE_KEEP and not (index == 0 and char == "."):
            out.append(char)
        else:
            out.append(f"\\x{byte:02x}")
    return "".join(out)


def unescape(text: str, path: bool = False) -> str:
    """Reverse `escape()`: `-` becomes `/` and `\\xHH` the byte HH; malformed escapes stay."""
    data = bytearray()
    index = 0
    while index < len(text):
        char = text[index]
        hex_digits = text[index + 2 : index + 4]
        if char == "\\" and text[index + 1 : index + 2] == "x" and _is_hex(hex_digits):
            data.append(int(hex_digits, 16))
            index += 4
            continue
        data.extend(b"/" if char == "-" else char.encode("utf-8", "surrogateescape"))
        index += 1
    result = data.decode("utf-8", "surrogateescape")
    if path:
        return "/" if result == "/" else "/" + result.strip("/")
    return result


def _is_hex(digits: str) -> bool:
    return len(digits) == 2 and all(c in "0123456789abcdefABCDEF" for c in digits)
