"""`list`, `logs`, job messages and is-active output."""

from __future__ import annotations

import base64
import io
import json

from shellfixtures import NOW, log_record, make_output
from unitmgr.shell import render
from unitmgr.shell.render import Output

UNITS = [
    {"name": "flaky.service", "load_state": "loaded", "active_state": "failed",
     "sub_state": "failed", "description": "Exits after a few seconds", "main_pid": 0},
    {"name": "web.service", "load_state": "loaded", "active_state": "active",
     "sub_state": "running", "description": "Example web server", "main_pid": 1234},
    {"name": "worker@1.service", "load_state": "loaded", "active_state": "activating",
     "sub_state": "auto-restart", "description": "Worker 1", "main_pid": 0},
]


def test_list_table_columns_sized_to_content():
    out, stdout, _ = make_output()
    render.unit_list(out, {"units": UNITS}, show_all=False)
    assert stdout.getvalue().splitlines() == [
        "  UNIT             LOAD   ACTIVE     SUB          DESCRIPTION",
        "● flaky.service    loaded failed     failed       Exits after a few seconds",
        "  web.service      loaded active     running      Example web server",
        "  worker@1.service loaded activating auto-restart Worker 1",
        "",
        "LOAD   = whether the unit file was loaded without errors",
        "ACTIVE = the high-level state: active, inactive, failed, activating, ...",
        "SUB    = the detailed state, which depends on the unit type",
        "",
        "3 loaded units listed. Pass --all to see inactive units, too.",
    ]


def test_list_all_and_empty():
    out, stdout, _ = make_output()
    render.unit_list(out, {"units": UNITS[1:2]}, show_all=True)
    assert stdout.getvalue().splitlines()[-1] == "1 loaded units listed."
    out, stdout, _ = make_output()
    render.unit_list(out, {"units": []}, show_all=True)
    assert stdout.getvalue() == "0 loaded units listed.\n"


def test_list_colours_failed_rows():
    out, stdout, _ = make_output(color=True)
    render.unit_list(out, {"units": UNITS}, show_all=False)
    failed_row = stdout.getvalue().splitlines()[1]
    assert failed_row.startswith(f"{render.RED}●{render.RESET} flaky.service")
    assert f"{render.RED}failed    {render.RESET}" in failed_row


RECORDS = [
    log_record("first", offset=0.123456),
    log_record("\x1b[1mbold", offset=1.5, pid=0),
]


def logs_text(mode, records=RECORDS):
    out, stdout, _ = make_output()
    render.logs(out, records, mode, host="build-3")
    return stdout.getvalue()


def test_logs_short_and_precise():
    assert logs_text("short").splitlines() == [
        "Dec 04 20:00:01 build-3 web.service[1234]: first",
        "Dec 04 20:00:02 build-3 web.service: \\x1b[1mbold",
    ]
    assert logs_text("short-precise").splitlines()[0] == (
        "Dec 04 20:00:01.123456 build-3 web.service[1234]: first")


def test_logs_cat_json_and_empty():
    assert logs_text("cat") == "first\n\x1b[1mbold\n"
    objects = [json.loads(line) for line in logs_text("json").splitlines()]
    assert objects == RECORDS
    assert logs_text("short", records=[]) == "-- No entries --\n"


def test_logs_raw_writes_exact_bytes():
    records = [
        {**log_record("x\ufffd"), "raw": base64.b64encode(b"x\xff\x00").decode()},
        {**log_record("tail"), "raw": base64.b64encode(b"tail").decode(), "partial": True},
    ]
    buffer = io.BytesIO()
    stdout = io.TextIOWrapper(buffer, encoding="utf-8")
    out = Output(stdout=stdout, stderr=io.StringIO(), clock=lambda: NOW)
    render.logs(out, records, "raw", host="build-3")
    assert buffer.getvalue() == b"x\xff\x00\ntail"


def test_job_failure_messages():
    out, stdout, stderr = make_output()
    result = {"jobs": [
        {"unit": "web.service", "job": "restart", "result": "done"},
        {"unit": "flaky.service", "job": "restart", "result": "failed"},
        {"unit": "slow.service", "job": "start", "result": "timeout"},
    ]}
    render.jobs(out, result, {"flaky.service": "exit-code"})
    assert stdout.getvalue() == ""
    assert stderr.getvalue().splitlines() == [
        "Job for flaky.service failed because the control process exited with error code.",
        "See \"unitsh -c 'status flaky.service'\" and \"unitsh -c 'logs flaky.service'\" "
        "for details.",
        "Job for slow.service timed out.",
        "See \"unitsh -c 'status slow.service'\" and \"unitsh -c 'logs slow.service'\" "
        "for details.",
    ]


def test_ordering_cycles_warned():
    out, _, stderr = make_output()
    result = {"jobs": [{"unit": "a.service", "job": "start", "result": "done"}],
              "cycles": [["a.service", "b.service"]]}
    render.jobs(out, result, {})
    assert stderr.getvalue() == ("Warning: ordering cycle between a.service → b.service; "
                                 "the manager ignored an ordering to break it.\n")


def test_job_failure_reason_by_unit_result():
    job = {"unit": "flaky.service", "result": "failed"}
    assert render.job_failure(job, "start-limit-hit").splitlines()[0] == (
        "Job for flaky.service failed because start of the service was attempted too often.")
    assert render.job_failure(job, "").splitlines()[0] == "Job for flaky.service failed."
    assert render.job_failure({"unit": "a.service", "result": "canceled"}) == (
        "Job for a.service canceled.")


def test_unit_states_prints_inactive_for_missing():
    out, stdout, _ = make_output()
    render.unit_states(out, {"units": [
        {"name": "web.service", "load_state": "loaded", "active_state": "active"},
        {"name": "x.service", "load_state": "not-found", "active_state": "inactive"},
    ]})
    assert stdout.getvalue() == "active\ninactive\n"
