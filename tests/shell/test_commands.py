"""Parsing commands, sending them, exit statuses and --json, with a fake session."""

from __future__ import annotations

import json

import pytest
from shellfixtures import make_context, remote_error, unit_status
from unitmgr.shell import runner
from unitmgr.shell.commands import COMMANDS, REGISTRY
from unitmgr.shell.commandspec import UsageError, parse_words

MISSING = {"name": "nope.service", "load_state": "not-found", "active_state": "inactive",
           "sub_state": "dead", "description": ""}
FAILED = unit_status(name="flaky.service", active_state="failed", sub_state="failed",
                     result="start-limit-hit", main_pid=0, log=[])
INACTIVE = unit_status(name="idle.service", active_state="inactive", sub_state="dead",
                       main_pid=0, log=[])


def run_text(text, replies, json_mode=False):
    ctx, stdout, stderr = make_context(replies, json_mode)
    status = runner.run_text(ctx, text)
    return status, stdout.getvalue(), stderr.getvalue(), ctx.session.requests


def test_split_commands_quotes_and_comments():
    assert runner.split_commands('status web; logs "a;b" -n 3;;list # note') == [
        ["status", "web"], ["logs", "a;b", "-n", "3"], ["list"]]
    with pytest.raises(UsageError, match="No closing quotation"):
        runner.split_commands('status "web')


def test_parse_options_and_aliases():
    inv = parse_words(REGISTRY, ["list-units", "--all", "--state=failed,active",
                                 "--state", "running", "-t", "service"])
    assert inv.command.name == "list"
    assert inv.option("all") is True
    assert inv.command.build_args(inv) == {"all": True, "types": ["service"], "table": True,
                                           "states": ["failed", "active", "running"]}
    logs = parse_words(REGISTRY, ["logs", "-n", "5", "-o", "cat", "web", "api"])
    assert logs.command.build_args(logs) == {"units": ["web", "api"], "lines": 5, "raw": False}
    logs = parse_words(REGISTRY, ["logs", "--since=-1h", "-U", "now", "-g", "err", "web"])
    assert logs.command.build_args(logs) == {"units": ["web"], "lines": 0, "raw": False,
                                             "since": "-1h", "until": "now", "grep": "err"}


@pytest.mark.parametrize(("words", "message"), [
    (["frobnicate"], "unknown command 'frobnicate'"),
    (["start"], "the following arguments are required: UNIT"),
    (["logs", "-n", "x", "web"], "invalid line count 'x'"),
    (["logs", "-o", "pretty", "web"], "invalid choice: 'pretty'"),
    (["list", "--state=sleepy"], "unknown state 'sleepy'"),
    (["list", "--type=service,unit"], "unknown unit type 'unit'"),
    (["status", "--bogus"], "unrecognized arguments: --bogus"),
])
def test_usage_errors(words, message):
    with pytest.raises(UsageError, match=message) as info:
        parse_words(REGISTRY, words)
    assert info.value.status == 2


def test_follow_and_stream_parse():
    inv = parse_words(REGISTRY, ["logs", "-f", "--stream", "stderr", "web"])
    assert (inv.option("follow"), inv.option("stream"), inv.args) == (True, "stderr", ["web"])
    with pytest.raises(UsageError, match="stdin"):
        parse_words(REGISTRY, ["logs", "--stream", "stdin", "web"])


def test_help_flag_becomes_help_command():
    inv = parse_words(REGISTRY, ["restart", "--help"])
    assert (inv.command.name, inv.args) == ("help", ["restart"])


def test_registry_words_unique():
    words = [word for command in COMMANDS for word in command.words]
    assert len(words) == len(set(words))


@pytest.mark.parametrize(("units", "expected"), [
    ([unit_status()], 0),
    ([INACTIVE], 3),
    ([FAILED], 3),
    ([MISSING], 4),
    ([unit_status(), MISSING], 4),
])
def test_status_exit_codes(units, expected):
    status, _, _, requests = run_text("status web", {"status": {"units": units}})
    assert status == expected
    assert requests[0] == ("status", {"units": ["web"], "lines": 10})


@pytest.mark.parametrize(("command", "units", "expected", "printed"), [
    ("is-active", [unit_status()], 0, "active\n"),
    ("is-active", [INACTIVE, unit_status()], 0, "inactive\nactive\n"),
    ("is-active", [FAILED], 3, "failed\n"),
    ("is-active", [MISSING], 3, "inactive\n"),
    ("is-failed", [FAILED], 0, "failed\n"),
    ("is-failed", [unit_status()], 1, "active\n"),
])
def test_state_queries(command, units, expected, printed):
    status, stdout, _, requests = run_text(f"{command} a b", {"status": {"units": units}})
    assert status == expected
    assert stdout == printed
    assert requests[0] == ("status", {"units": ["a", "b"], "lines": 0})


def test_is_active_quiet():
    status, stdout, _, _ = run_text("is-active -q web", {"status": {"units": [INACTIVE]}})
    assert (status, stdout) == (3, "")


def test_start_success_is_silent():
    jobs = {"jobs": [{"unit": "web.service", "job": "start", "result": "done"}]}
    status, stdout, stderr, requests = run_text("start --no-block web", {"start": jobs})
    assert (status, stdout, stderr) == (0, "", "")
    assert requests == [("start", {"units": ["web"], "no_block": True})]


def test_restart_failure_names_reason():
    jobs = {"jobs": [{"unit": "flaky.service", "job": "restart", "result": "failed"}]}
    status, stdout, stderr, requests = run_text(
        "restart flaky", {"restart": jobs, "status": {"units": [FAILED]}})
    assert status == 1
    assert stdout == ""
    assert stderr.splitlines()[0] == (
        "Job for flaky.service failed because start of the service was attempted too often.")
    assert requests[1] == ("status", {"units": ["flaky.service"], "lines": 0})


def test_start_unknown_unit_exits_5():
    error = remote_error("unit-not-found", "Unit nope.service not found.")
    status, _, stderr, _ = run_text("start nope", {"start": error})
    assert status == 5
    assert stderr == "Unit nope.service not found.\n"


def test_other_remote_error_exits_1():
    error = remote_error("bad-request", "argument 'lines' of status must be an integer")
    status, _, stderr, _ = run_text("status web", {"status": error})
    assert status == 1
    assert stderr == "status: argument 'lines' of status must be an integer\n"


def test_sequence_runs_all_and_keeps_last_failure():
    replies = {"status": {"units": [MISSING]},
               "start": {"jobs": [{"unit": "a.service", "job": "start", "result": "done"}]}}
    status, _, _, requests = run_text("status nope; start a", replies)
    assert status == 4
    assert [cmd for cmd, _ in requests] == ["status", "start"]


def test_usage_error_runs_nothing():
    status, _, stderr, requests = run_text("start web; bogus", {})
    assert status == 2
    assert requests == []
    assert stderr == "unitsh: unknown command 'bogus'; run 'help' to list the commands\n"


def test_quit_skips_remaining_commands():
    status, _, _, requests = run_text("quit; start web", {})
    assert (status, requests) == (0, [])


def test_exit_stops_the_manager():
    status, _, stderr, requests = run_text("exit", {"exit": {"stopping": True}})
    assert status == 0
    assert [r[0] for r in requests] == ["exit"]
    assert "stopping all units" in stderr


def test_is_system_running_exit_status():
    for state, expected in (("running", 0), ("degraded", 1), ("starting", 1), ("stopping", 1)):
        status, stdout, _, _ = run_text("is-system-running", {"is-system-running": {"state": state}})
        assert stdout == f"{state}\n"
        assert status == expected


def test_run_lines_reports_line_numbers():
    ctx, stdout, stderr = make_context({"list": {"units": []}})
    status = runner.run_lines(ctx, ["# a comment\n", "list\n", "\n", "lsit\n"])
    assert status == 2
    assert stdout.getvalue() == "0 loaded units listed. Pass --all to see inactive units, too.\n"
    assert stderr.getvalue().startswith("unitsh: line 4: unknown command 'lsit'")


def test_json_carries_the_same_facts():
    units = [unit_status(), MISSING]
    status, stdout, stderr, _ = run_text("status web nope", {"status": {"units": units}},
                                         json_mode=True)
    assert status == 4
    assert stderr == ""
    lines = stdout.splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["units"][0]["active_state"] == "active"
    assert data["units"][0]["main_pid"] == 1234
    assert data["units"][1]["load_state"] == "not-found"


def test_json_one_object_per_command_and_errors():
    error = remote_error("unit-not-found", "Unit nope.service not found.")
    replies = {"list": {"units": []}, "start": error}
    status, stdout, _, _ = run_text("list; start nope; help status", replies, json_mode=True)
    assert status == 5
    objects = [json.loads(line) for line in stdout.splitlines()]
    assert objects[0] == {"units": []}
    assert objects[1] == {"error": {"code": "unit-not-found",
                                    "message": "Unit nope.service not found."}}
    assert objects[2]["commands"][0]["name"] == "status"


def test_logs_uses_manager_host():
    records = {"records": [{"unit": "web.service", "time": 1796414401.0, "stream": "stdout",
                            "pid": 7, "text": "hi"}]}
    status, stdout, _, requests = run_text("logs -n 1 web", {"logs": records})
    assert status == 0
    assert stdout == "Dec 04 20:00:01 build-3 web.service[7]: hi\n"
    assert [cmd for cmd, _ in requests] == ["logs", "hello"]


def test_help_lists_every_command():
    status, stdout, _, _ = run_text("help", {})
    assert status == 0
    for command in COMMANDS:
        assert f"  {command.name} " in stdout
    status, stdout, _, _ = run_text("help logs", {})
    assert stdout.startswith("usage: logs [-n N] [-o FORMAT] [-S TIME] [-U TIME] [-g PATTERN] "
                             "[-f] [-u UNIT] [--stream=STREAM] [UNIT...]")
    status, _, stderr, _ = run_text("help nothing", {})
    assert status == 2


@pytest.mark.parametrize("text", ["is-active web", "is-failed web", "status web", "list",
                                  "logs web", "start web"])
def test_json_keeps_exit_status(text):
    replies = {"status": {"units": [INACTIVE]}, "list": {"units": []}, "logs": {"records": []},
               "start": {"jobs": [{"unit": "web.service", "job": "start", "result": "failed"}]}}
    plain = run_text(text, replies)[0]
    status, stdout, _, _ = run_text(text, replies, json_mode=True)
    assert status == plain
    assert len(stdout.splitlines()) == 1
    json.loads(stdout)


def test_logs_takes_journalctl_unit_option():
    status, _, _, requests = run_text("logs -u web -u ticker", {"logs": {"records": []}})
    assert status == 0
    assert requests[0][1]["units"] == ["web", "ticker"]


def test_logs_without_unit_is_usage_error():
    status, _, stderr, requests = run_text("logs -n 5", {})
    assert (status, requests) == (2, [])
    assert "name at least one unit" in stderr
