"""Habits of systemctl users: commands typed as hosts, --json after a command,
list --no-legend/--plain, show -P, job warnings and hints, verify, scale, --version."""

from __future__ import annotations

import io
import json
import shlex
from contextlib import redirect_stderr, redirect_stdout

import pytest
from shellfixtures import make_context
from unitmgr.shell import cli, hostcheck, runner
from unitmgr.shell.client import RemoteError
from unitmgr.shell.commands import REGISTRY
from unitmgr.shell.commandspec import parse_words

LIST_REPLY = {"units": [
    {"name": "flaky.service", "load_state": "loaded", "active_state": "failed",
     "sub_state": "failed", "description": "Exits", "main_pid": 0},
    {"name": "web.service", "load_state": "loaded", "active_state": "active",
     "sub_state": "running", "description": "Web", "main_pid": 1234},
]}


def run_text(text, replies, json_mode=False):
    ctx, stdout, stderr = make_context(replies, json_mode)
    status = runner.run_text(ctx, text)
    return status, stdout.getvalue(), stderr.getvalue(), ctx.session.requests


def run_cli(*argv: str) -> tuple[int, str, str]:
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        status = cli.main(list(argv))
    return status, stdout.getvalue(), stderr.getvalue()


# -- command names given as HOST arguments -------------------------------------

@pytest.mark.parametrize(("argv", "word", "fix"), [
    (["is-active", "worker@2"], "is-active", 'unitsh -c "is-active worker@2"'),
    (["status", "web"], "status", 'unitsh -c "status web"'),
    (["list"], "list", 'unitsh -c "list"'),
    (["web1", "status"], "status", 'unitsh web1 -c "status"'),
    (["--json", "status", "-n", "5", "web"], "status", 'unitsh --json -c "status -n 5 web"'),
])
def test_command_as_host_names_fix(argv, word, fix):
    message = hostcheck.command_as_host(argv)
    assert message.startswith(f"'{word}' is a command, not a host; run it with: {fix}\n")


def test_command_as_host_fix_survives_quotes():
    argv = ["--timeout", "3", "logs", "--grep", 'say "hi" it\'s $HOME']
    message = hostcheck.command_as_host(argv)
    fix = message.split("run it with: ", 1)[1].split("\n", 1)[0]
    words = shlex.split(fix)
    assert words[:4] == ["unitsh", "--timeout", "3", "-c"]
    assert runner.split_commands(words[4]) == [argv[2:]]


def test_command_as_host_exits_2():
    status, stdout, stderr = run_cli("is-active", "worker@2")
    assert status == 2
    assert stdout == ""
    assert stderr.startswith("unitsh: 'is-active' is a command, not a host; run it with: "
                             'unitsh -c "is-active worker@2"\n')
    assert "user@is-active or is-active:22" in stderr


@pytest.mark.parametrize("argv", [
    ["user@status"], ["status:22"], ["web1", "web2"], ["-c", "status", "web1"],
    ["--help"], ["--remote-command", "list", "web1"],
])
def test_real_hosts_pass_host_check(argv):
    assert hostcheck.command_as_host(argv) == ""


# -- --json and -o json after a command ----------------------------------------

@pytest.mark.parametrize("text", ["list --json", "list -o json", "list --output=json",
                                  "list --output json", "list -ojson"])
def test_json_after_command(text):
    status, stdout, stderr, requests = run_text(text, {"list": LIST_REPLY})
    assert status == 0, stderr
    assert json.loads(stdout) == LIST_REPLY
    assert requests == [("list", {"all": False, "table": True})]


def test_json_after_one_command_only():
    status, stdout, _, _ = run_text("list --json; list", {"list": LIST_REPLY})
    assert status == 0
    first, rest = stdout.split("\n", 1)
    assert json.loads(first) == LIST_REPLY
    assert rest.startswith("  UNIT")


def test_logs_keeps_its_own_output_option():
    inv = parse_words(REGISTRY, ["logs", "-o", "json", "web"])
    assert inv.option("output") == "json"
    assert inv.option("json") is None
    assert parse_words(REGISTRY, ["logs", "--json", "web"]).option("json") is True


def test_json_error_after_command():
    error = RemoteError("unit-not-found", "Unit nope.service not found.", {"unit": "nope.service"})
    status, stdout, _, _ = run_text("start nope --json", {"start": error,
                                                          "list-unit-files": {"units": []}})
    assert status == 5
    assert json.loads(stdout)["error"]["code"] == "unit-not-found"


# -- list --no-legend and --plain ----------------------------------------------

def test_list_no_legend_prints_rows_only():
    _, stdout, _, _ = run_text("list --no-legend", {"list": LIST_REPLY})
    assert stdout.splitlines() == [
        "● flaky.service loaded failed failed  Exits",
        "  web.service   loaded active running Web",
    ]


def test_list_plain_has_no_marker_column():
    _, stdout, _, _ = run_text("list --plain --no-legend", {"list": LIST_REPLY})
    assert stdout.splitlines() == [
        "flaky.service loaded failed failed  Exits",
        "web.service   loaded active running Web",
    ]
    _, stdout, _, _ = run_text("list --plain", {"list": LIST_REPLY})
    assert stdout.splitlines()[0] == "UNIT          LOAD   ACTIVE SUB     DESCRIPTION"
    assert stdout.splitlines()[-1].startswith("2 loaded units listed.")


def test_list_no_legend_empty_prints_nothing():
    _, stdout, _, _ = run_text("list --no-legend", {"list": {"units": []}})
    assert stdout == ""


# -- show -P --------------------------------------------------------------------

def test_show_capital_p_is_property_value():
    reply = {"units": [{"name": "web.service", "properties": [["MainPID", 1234]]}]}
    status, stdout, _, requests = run_text("show -P MainPID web", {"show": reply})
    assert status == 0
    assert stdout == "1234\n"
    assert requests == [("show", {"units": ["web"], "all": False, "properties": ["MainPID"]})]


# -- job replies: changed on disk, template hint, new verbs ------------------------

def test_job_warns_when_unit_changed_on_disk():
    reply = {"jobs": [{"unit": "web.service", "job": "restart", "result": "done",
                       "changed_on_disk": True}]}
    status, stdout, stderr, _ = run_text("restart web", {"restart": reply})
    assert status == 0
    assert stdout == ""
    assert stderr == ("Warning: The unit file, source configuration file or drop-ins of "
                      "web.service changed on disk. Run 'unitsh -c daemon-reload' to reload units.\n")


@pytest.mark.parametrize("verb", ["try-restart", "reload-or-restart", "try-reload-or-restart"])
def test_conditional_job_verbs_send_their_command(verb):
    reply = {"jobs": [{"unit": "web.service", "job": "restart", "result": "done"}]}
    status, _, stderr, requests = run_text(f"{verb} web", {verb: reply})
    assert status == 0, stderr
    assert requests == [(verb, {"units": ["web"], "no_block": False})]


def test_start_missing_unit_hints_at_template():
    error = RemoteError("unit-not-found", "Unit worker.service not found.",
                        {"unit": "worker.service"})
    files = {"units": [{"name": "worker@.service", "state": "static"}]}
    status, _, stderr, _ = run_text("start worker", {"start": error, "list-unit-files": files})
    assert status == 5
    assert stderr.splitlines() == [
        "Unit worker.service not found.",
        "worker@.service is a template: start an instance such as worker@1, "
        "or use 'scale worker N'",
    ]


def test_start_missing_unit_without_template_has_no_hint():
    error = RemoteError("unit-not-found", "Unit nope.service not found.", {"unit": "nope.service"})
    _, _, stderr, _ = run_text("start nope", {"start": error, "list-unit-files": {"units": []}})
    assert stderr == "Unit nope.service not found.\n"


# -- verify with a unit name, scale wording, --version -----------------------------

def test_verify_unit_name_asks_for_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, _, stderr, requests = run_text("verify broken", {})
    assert status == 1
    assert stderr == ("unitsh: verify: no file 'broken'; give the unit file's path, "
                      "e.g. units/broken.service\n")
    assert requests == []


@pytest.mark.parametrize(("previous", "count", "line"), [
    (2, 1, "worker@.service: scaled from 2 instances to 1"),
    (0, 4, "worker@.service: scaled from 0 instances to 4"),
    (1, 1, "worker@.service: 1 instance, unchanged"),
])
def test_scale_wording(previous, count, line):
    reply = {"unit": "worker@.service", "previous": previous, "count": count, "jobs": []}
    _, stdout, _, _ = run_text("scale worker 1", {"scale": reply})
    assert stdout == line + "\n"


def test_version_prints_package_version():
    from importlib import metadata

    status, stdout, _ = run_cli("--version")
    assert status == 0
    assert stdout == f"unitsh {metadata.version('unitmgr')}\n"
