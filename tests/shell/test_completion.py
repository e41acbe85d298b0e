"""Tab completion from the registry, with an injected unit-name source."""

from __future__ import annotations

import threading

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from unitmgr.shell.commands import COMMANDS
from unitmgr.shell.completion import ShellCompleter
from unitmgr.shell.interactive import UnitNameCache, prompt_text

UNITS = ("web.service", "worker@1.service", "worker@2.service", "flaky.service")


def complete(text, units=UNITS):
    completer = ShellCompleter(COMMANDS, lambda: units)
    document = Document(text, len(text))
    return [(c.text, c.start_position)
            for c in completer.get_completions(document, CompleteEvent(completion_requested=True))]


def test_command_names():
    assert complete("sta") == [("status", -3), ("start", -3)]
    assert ("list-units", -1) in complete("l")
    assert complete("") == [(word, 0) for c in COMMANDS for word in c.words]


def test_unit_names_after_command():
    assert complete("restart wo") == [("worker@1.service", -2), ("worker@2.service", -2)]
    assert complete("status ") == [(name, 0) for name in sorted(UNITS)]
    assert complete("status web w") == [("web.service", -1), ("worker@1.service", -1),
                                        ("worker@2.service", -1)]


def test_no_unit_names_for_commands_without_units():
    assert complete("list ") == []
    assert complete("help st") == [("status", -2), ("start", -2), ("stop", -2)]


def test_options_and_values():
    assert complete("logs -") == [("-n", -1), ("--lines", -1), ("-o", -1), ("--output", -1),
                                  ("-S", -1), ("--since", -1), ("-U", -1), ("--until", -1),
                                  ("-g", -1), ("--grep", -1), ("-f", -1), ("--follow", -1),
                                  ("-u", -1), ("--unit", -1), ("--stream", -1)]
    assert complete("logs -o s") == [("short", -1), ("short-precise", -1)]
    assert complete("logs --output=j") == [("--output=json", -len("--output=j"))]
    assert complete("list --a") == [("--all", -3)]
    assert complete("list --state=fa") == [("--state=failed", -len("--state=fa"))]
    assert complete("list -t se") == [("service", -2)]


def test_signal_names_after_kill_signal():
    assert complete("kill -s SIGTE") == [("SIGTERM", -5)]
    assert complete("kill web --signal SIGH") == [("SIGHUP", -4)]
    assert complete("kill --signal=SIGKI") == [("--signal=SIGKILL", -len("--signal=SIGKI"))]
    several = [text for text, _ in complete("kill -s SIGT")]
    assert several == ["SIGTERM", "SIGTRAP", "SIGTSTP", "SIGTTIN", "SIGTTOU"]


def test_signal_names_without_sig_prefix():
    assert complete("kill -s TE") == [("TERM", -2)]
    assert complete("kill --signal=US") == [("--signal=USR1", -len("--signal=US")),
                                            ("--signal=USR2", -len("--signal=US"))]
    # A prefix of "SIG" offers the full names only.
    assert [text for text, _ in complete("kill -s S")][:2] == ["SIGABRT", "SIGALRM"]
    assert "STOP" not in [text for text, _ in complete("kill -s S")]


def test_unit_names_after_kill_signal_value():
    assert complete("kill -s TERM we") == [("web.service", -2)]


def test_after_semicolon_starts_new_command():
    assert complete("status web; sto") == [("stop", -3)]


def test_unknown_command_completes_nothing():
    assert complete("frob we") == []


def test_unit_name_cache_refreshes_in_background():
    release = threading.Event()
    calls = []

    def fetch():
        calls.append(1)
        assert release.wait(5)
        return ["web.service"]

    cache = UnitNameCache(fetch)
    thread = cache.refresh()
    assert cache.names() == ()  # completion does not wait for the fetch
    assert cache.refresh() is thread  # one fetch at a time
    release.set()
    thread.join(5)
    assert cache.names() == ("web.service",)
    assert len(calls) == 1


def test_prompt_shows_remote_host():
    assert prompt_text("") == "unitsh> "
    assert prompt_text("build-3") == "unitsh@build-3> "
