"""Applying lexed assignments to a `Unit`, directive by directive.

`UnitAssigner.apply()` is called for every assignment of the fragment and
then of each drop-in, in order, so append, reset and last-wins rules span
files exactly as in systemd. Invalid values become warnings and the
assignment is dropped; the few errors systemd treats as fatal are recorded
with severity "error" and the loader then marks the unit "bad-setting".
"""

from __future__ import annotations

import re
from typing import Any

from unitmgr.units import conditions, directives
from unitmgr.units.directives import Directive
from unitmgr.units.execline import parse_exec
from unitmgr.units.limitvalues import LIMIT_PARSERS, check_limit
from unitmgr.units.model import Diagnostic, ExitStatusSet, Unit
from unitmgr.units.names import is_valid_name
from unitmgr.units.quoting import split_words
from unitmgr.units.specifiers import SpecifierContext, UnitIdentity, expand
from unitmgr.units.syntax import Assignment
from unitmgr.units.values import (
    UnitValueError,
    merge_exit_status,
    parse_exit_status_word,
    parse_scalar,
)

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_DOC_SCHEMES = ("http://", "https://", "file:", "info:", "man:")
_OUTPUT_WORDS = ("inherit", "null", "tty", "journal", "kmsg", "journal+console",
                 "kmsg+console", "socket", "syslog", "syslog+console")  # fmt: skip
_INPUT_WORDS = ("null", "tty", "tty-force", "tty-fail", "data", "socket")
_FILE_PREFIXES = ("file:", "append:", "truncate:", "fd:")

# Old spellings that systemd 252 still reads, mapped to the key they set.
LEGACY_KEYS: dict[tuple[str, str], tuple[str, str]] = {
    ("Unit", "StartLimitInterval"): ("Unit", "StartLimitIntervalSec"),
    ("Service", "StartLimitInterval"): ("Unit", "StartLimitIntervalSec"),
    ("Service", "StartLimitBurst"): ("Unit", "StartLimitBurst"),
    ("Service", "StartLimitAction"): ("Unit", "StartLimitAction"),
    ("Service", "FailureAction"): ("Unit", "FailureAction"),
    ("Unit", "BindTo"): ("Unit", "BindsTo"),
    ("Unit", "RequiresOverridable"): ("Unit", "Requires"),
    ("Unit", "RequisiteOverridable"): ("Unit", "Requisite"),
    ("Unit", "PropagateReloadTo"): ("Unit", "PropagatesReloadTo"),
    ("Unit", "PropagateReloadFrom"): ("Unit", "ReloadPropagatedFrom"),
}


class UnitAssigner:
    """Stores typed values in `unit.settings` for each assignment, warning like systemd."""

    def __init__(self, unit: Unit, context: SpecifierContext) -> None:
        self.unit = unit
        self.context = context
        self.identity = UnitIdentity(unit.name, unit.fragment_path or "")
        self._unsupported_warned: set[str] = set()

    # -- Reporting ------------------------------------------------------------

    def warn(self, item: Assignment, message: str, severity: str = "warning") -> None:
        self.unit.diagnostics.append(
            Diagnostic(item.path, item.line, item.section, item.key, message, severity)
        )

    def _expand(self, item: Assignment, text: str) -> str | None:
        if item.section == "Install":
            bad = install_specifier_problem(text)
            if bad:
                self.warn(item, f'Failed to resolve unit name in {item.key}="{text}": '
                                f"{INSTALL_SPECIFIER_MESSAGE} %{bad}, ignoring; [Install] "
                                f"allows only %{' %'.join(INSTALL_SPECIFIERS)}")
                return None
        try:
            return expand(text, self.identity, self.context)
        except UnitValueError as error:
            self.warn(item, f"{error}, ignoring")
            return None

    # -- Entry point ----------------------------------------------------------

    def apply(self, item: Assignment) -> None:
        directive = directives.lookup(item.section, item.key)
        if directive is None:
            if item.key.startswith("X-"):
                extra = self.unit.settings.setdefault(item.section, {})
                extra.setdefault(item.key, []).append(item.value)
            else:
                self.warn(item, f"Unknown key '{item.key}' in section [{item.section}], ignoring.")
            return
        if not directive.implemented and item.key not in self._unsupported_warned:
            self._unsupported_warned.add(item.key)
            self.warn(item, f"{item.key}= is not supported by unitmgr and was ignored "
                            f"({directive.reason})")
        section, key = LEGACY_KEYS.get((item.section, item.key), (item.section, item.key))
        target = directives.lookup(section, key) or directive
        try:
            self._store(item, target, section, key)
        except UnitValueError as error:
            self.warn(item, str(error), "error" if error.fatal else "warning")

    # -- Storage by kind --------------------------------------------------------

    def _store(self, item: Assignment, directive: Directive, section: str, key: str) -> None:
        values = self.unit.settings.setdefault(section, {})
        value = item.value
        kind = directive.kind
        if value == "" and kind != "units":
            self._reset(values, directive, key)
            return
        handler = getattr(self, f"_store_{kind}", None)
        if handler is not None:
            handler(item, directive, values, key)
            return
        parsed = parse_scalar(kind, key, value, directive.choices)
        values[key] = parsed
        if section == "Service" and key == "TimeoutSec":
            values["TimeoutStartSec"] = parsed
            values["TimeoutStopSec"] = parsed

    def _reset(self, values: dict[str, Any], directive: Directive, key: str) -> None:
        if directive.kind == "condition":
            prefix = "Assert" if key.startswith("Assert") else "Condition"
            for name in [k for k in values if k.startswith(prefix)]:
                del values[name]
            return
        values.pop(key, None)

    def _store_string(self, item: Assignment, d: Directive, values: dict, key: str) -> None:
        if key in LIMIT_PARSERS:
            self._store_checked(item, values, key)
            return
        text = self._expand(item, item.value)
        if text is None:
            return
        if key == "WorkingDirectory":
            bare = text[1:] if text.startswith("-") else text
            if not (bare == "~" or bare.startswith("/")):
                raise UnitValueError(
                    f"WorkingDirectory= path '{text}' is not absolute, ignoring; write an "
                    "absolute path or ~"
                )
        elif key in ("StandardOutput", "StandardError"):
            _check_stdio(text, _OUTPUT_WORDS, key)
        elif key == "StandardInput":
            _check_stdio(text, _INPUT_WORDS, key)
        values[key] = text

    def _store_checked(self, item: Assignment, values: dict, key: str) -> None:
        # systemd expands no specifiers in resource and scheduling values.
        for message in check_limit(key, item.value):
            self.warn(item, message)
        values[key] = item.value

    def _store_strings(self, item: Assignment, d: Directive, values: dict, key: str) -> None:
        text = self._expand(item, item.value)
        if text is not None:
            values.setdefault(key, []).append(text)

    def _store_seclist(self, item: Assignment, d: Directive, values: dict, key: str) -> None:
        values.setdefault(key, []).append(parse_scalar("sec", key, item.value))

    def _store_words(self, item: Assignment, d: Directive, values: dict, key: str) -> None:
        if key in LIMIT_PARSERS:
            # A list such as CPUAffinity= is valid or invalid as a whole.
            for message in check_limit(key, item.value):
                self.warn(item, message)
        words = values.setdefault(key, [])
        for word in split_words(item.value):
            if word.unknown_escape:
                self.warn(item, f"Ignoring unknown escape sequences: \"{item.value}\"")
            text = self._expand(item, word.text)
            if text is None:
                continue
            problem = _word_problem(key, text)
            if problem:
                self.warn(item, problem)
                continue
            words.append(text)

    def _store_units(self, item: Assignment, d: Directive, values: dict, key: str) -> None:
        names = values.setdefault(key, [])
        for word in item.value.split():
            name = self._expand(item, word)
            if name is None:
                continue
            if not is_valid_name(name):
                self.warn(item, f"Failed to add dependency on {name}, ignoring: invalid unit "
                                "name; write a full name such as foo.service")
                continue
            if name not in names:
                names.append(name)

    def _store_environment(self, item: Assignment, d: Directive, values: dict, key: str) -> None:
        env = values.setdefault(key, {})
        for word in split_words(item.value):
            text = self._expand(item, word.text)
            if text is None:
                continue
            name, equals, content = text.partition("=")
            if not equals or not _ENV_NAME.fullmatch(name):
                self.warn(item, f"Invalid environment assignment, ignoring: {text}; write "
                                "NAME=value with NAME made of letters, digits and _")
                continue
            env.pop(name, None)
            env[name] = content

    def _store_envfile(self, item: Assignment, d: Directive, values: dict, key: str) -> None:
        text = self._expand(item, item.value)
        if text is None:
            return
        if not text.lstrip("-").startswith("/"):
            raise UnitValueError(f"Path '{text}' is not absolute, ignoring; write an absolute "
                                 "path, with a leading - if the file may be missing")
        values.setdefault(key, []).append(text)

    def _store_exitstatus(self, item: Assignment, d: Directive, values: dict, key: str) -> None:
        codes: set[int] = set()
        signals: set[int] = set()
        for word in item.value.split():
            try:
                family, number = parse_exit_status_word(word)
            except UnitValueError as error:
                self.warn(item, str(error))
                continue
            (codes if family == "code" else signals).add(number)
        old = values.get(key, ExitStatusSet())
        values[key] = merge_exit_status(old, ExitStatusSet(frozenset(codes), frozenset(signals)))

    def _store_exec(self, item: Assignment, d: Directive, values: dict, key: str) -> None:
        commands, warnings = parse_exec(item.value, self.identity, self.context)
        for message in warnings:
            self.warn(item, message)
        values.setdefault(key, []).extend(commands)

    def _store_condition(self, item: Assignment, d: Directive, values: dict, key: str) -> None:
        text = self._expand(item, item.value)
        if text is None:
            return
        values.setdefault(key, []).append(conditions.parse_condition(key, text))


_INSTALL_NAME_KEYS = frozenset({"WantedBy", "RequiredBy", "Also", "Alias"})

# The specifiers systemd 252 resolves in [Install] (install_name_printf); enable
# refuses a unit that uses any other ("invalid specifier").
INSTALL_SPECIFIERS = "abBgGHijlmnNopuUvwW%"
INSTALL_SPECIFIER_MESSAGE = "invalid specifier in [Install]:"


def install_specifier_problem(text: str) -> str:
    """Return the first specifier letter of `text` that [Install] does not allow, or ""."""
    position = text.find("%")
    while position != -1 and position + 1 < len(text):
        letter = text[position + 1]
        if letter not in INSTALL_SPECIFIERS:
            return letter
        position = text.find("%", position + 2)
    return ""


def _word_problem(key: str, text: str) -> str | None:
    """Return the warning for one invalid word of a word-list directive, or None."""
    if key == "Documentation" and not text.startswith(_DOC_SCHEMES):
        return f"Invalid URL, ignoring: {text}; use http:, https:, file:, info: or man:"
    if key in _INSTALL_NAME_KEYS and not is_valid_name(text):
        return f"Invalid unit name '{text}', ignoring; write a full name such as foo.service"
    if key == "UnsetEnvironment" and not _ENV_NAME.fullmatch(text.split("=", 1)[0]):
        return (f"Invalid environment name or assignment '{text}', ignoring; write NAME or "
                "NAME=value")
    return None


def _check_stdio(text: str, words: tuple[str, ...], key: str) -> None:
    if text in words:
        return
    for prefix in _FILE_PREFIXES:
        if text.startswith(prefix) and len(text) > len(prefix):
            if prefix != "fd:" and not text[len(prefix):].startswith("/"):
                break
            return
    raise UnitValueError(
        f"Failed to parse {key}= value '{text}', ignoring; use one of {', '.join(words)}, "
        "file:/PATH, append:/PATH, truncate:/PATH or fd:NAME"
    )
