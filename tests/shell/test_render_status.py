"""`status` output: systemctl's layout, line by line."""

from __future__ import annotations

from shellfixtures import STARTED, log_record, make_output, unit_status
from unitmgr.shell import render


def status_text(*units, color=False):
    out, stdout, stderr = make_output(color=color)
    render.status(out, {"units": list(units)}, host="build-3")
    return stdout.getvalue(), stderr.getvalue()


def test_active_unit_layout():
    text, errors = status_text(unit_status())
    assert text.splitlines() == [
        "● web.service - Example web server",
        "     Loaded: loaded (/home/ann/.config/unitmgr/units/web.service; enabled; "
        "preset: disabled)",
        "     Active: active (running) since Fri 2026-12-04 20:00:01 UTC; 5s ago",
        "       Docs: man:python3(1)",
        "    Process: 1190 ExecStartPre=/bin/true (code=exited, status=0/SUCCESS)",
        "   Main PID: 1234 (python3)",
        "      Tasks: 3",
        "     Memory: 21.5M",
        "        CPU: 1.204s",
        "  Processes: web.service",
        "             └─1234 python3 -m http.server",
        "",
        "Dec 04 20:00:01 build-3 web.service[1234]: Serving HTTP on 127.0.0.1 port 8000",
    ]
    assert errors == ""


def test_failed_unit_shows_result_and_exit():
    unit = unit_status(
        active_state="failed", sub_state="failed", result="exit-code",
        main_pid=0, main_comm="", processes=[], tasks=None, memory_bytes=None,
        cpu_seconds=None, control_processes=[], documentation=[],
        exec_main={"pid": 1234, "code": "exited", "status": 1, "status_name": "FAILURE"},
        log=[log_record("boom", offset=0.5)])
    lines = status_text(unit)[0].splitlines()
    assert lines[0] == "× web.service - Example web server"
    assert lines[2] == ("     Active: failed (Result: exit-code) since Fri 2026-12-04 "
                        "20:00:01 UTC; 5s ago")
    assert lines[3] == "   Main PID: 1234 (code=exited, status=1/FAILURE)"
    assert lines[4] == ""
    assert lines[5] == "Dec 04 20:00:01 build-3 web.service[1234]: boom"


def test_auto_restart_shows_sub_state_and_result():
    unit = unit_status(
        active_state="activating", sub_state="auto-restart", result="exit-code",
        main_pid=0, processes=[], log=[],
        exec_main={"pid": 1234, "code": "killed", "status": 9, "status_name": "KILL"})
    lines = status_text(unit)[0].splitlines()
    assert lines[0].startswith("● web.service")
    assert lines[2] == ("     Active: activating (auto-restart) (Result: exit-code) since "
                        "Fri 2026-12-04 20:00:01 UTC; 5s ago")
    assert "   Main PID: 1234 (code=killed, signal=KILL)" in lines


def test_inactive_dead_without_history():
    unit = unit_status(
        active_state="inactive", sub_state="dead", active_enter_time=None,
        state_change_time=STARTED, main_pid=0, exec_main=None, processes=[],
        control_processes=[], tasks=None, memory_bytes=None, cpu_seconds=None, log=[],
        enablement="disabled", documentation=[])
    lines = status_text(unit)[0].splitlines()
    assert lines == [
        "○ web.service - Example web server",
        "     Loaded: loaded (/home/ann/.config/unitmgr/units/web.service; disabled; "
        "preset: disabled)",
        "     Active: inactive (dead)",
    ]


def test_inactive_after_running_shows_since():
    unit = unit_status(active_state="inactive", sub_state="dead", main_pid=0, log=[],
                       state_change_time=STARTED - 125)
    lines = status_text(unit)[0].splitlines()
    assert lines[2] == ("     Active: inactive (dead) since Fri 2026-12-04 19:57:56 UTC; "
                        "2min 10s ago")


def test_not_found_goes_to_stderr():
    missing = {"name": "nope.service", "load_state": "not-found", "active_state": "inactive",
               "sub_state": "dead", "description": ""}
    text, errors = status_text(missing, unit_status())
    assert errors == "Unit nope.service could not be found.\n"
    assert text.startswith("● web.service")


def test_several_units_separated_by_blank_line():
    text, _ = status_text(unit_status(log=[]), unit_status(name="api.service", log=[]))
    blocks = text.split("\n\n")
    assert len(blocks) == 2
    assert blocks[1].startswith("● api.service - Example web server")


def test_optional_fields():
    unit = unit_status(
        dropin_paths=["/u/web.service.d/a.conf", "/u/web.service.d/b.conf"],
        status_text="Ready", tasks_max=100, memory_max=512 * 1024 * 1024,
        memory_peak=30 * 1024 * 1024,
        processes=[{"pid": 1234, "ppid": 1, "cmdline": "sh -c serve"},
                   {"pid": 1250, "ppid": 1234, "cmdline": "serve"},
                   {"pid": 1260, "ppid": 1, "cmdline": "helper"}],
        control_processes=[{"pid": 1300, "setting": "ExecStartPost", "command": "/bin/sleep 9",
                            "code": None, "status": None, "status_name": ""}],
        log=[])
    lines = status_text(unit)[0].splitlines()
    assert "    Drop-In: /u/web.service.d" in lines
    assert "             └─a.conf, b.conf" in lines
    assert '     Status: "Ready"' in lines
    assert "      Tasks: 3 (limit: 100)" in lines
    assert "     Memory: 21.5M (max: 512.0M available: 490.5M peak: 30.0M)" in lines
    assert "  Cntrl PID: 1300 (/bin/sleep 9)" in lines
    assert lines[-4:] == [
        "  Processes: web.service",
        "             ├─1234 sh -c serve",
        "             │ └─1250 serve",
        "             └─1260 helper",
    ]


def test_bad_setting_and_masked_reasons():
    bad = unit_status(load_state="bad-setting", load_error="web.service:3: [Service] "
                      "ExecStart=: missing", active_state="inactive", active_enter_time=None,
                      log=[])
    masked = unit_status(load_state="masked", active_state="inactive", log=[])
    lines = status_text(bad, masked)[0].splitlines()
    assert ("     Loaded: bad-setting (Reason: Unit web.service has a bad unit file "
            "setting.)") in lines
    assert "             web.service:3: [Service] ExecStart=: missing" in lines
    assert "     Loaded: masked (Reason: Unit web.service is masked.)" in lines


def test_static_unit_has_no_preset():
    lines = status_text(unit_status(enablement="static", log=[]))[0].splitlines()
    assert lines[1] == "     Loaded: loaded (/home/ann/.config/unitmgr/units/web.service; static)"


def test_warnings_and_lost_log_bytes_on_stderr():
    _, errors = status_text(unit_status(warnings=["unknown key Foo="], log_write_errors=42))
    assert errors.splitlines() == [
        "Warning: unknown key Foo=",
        "Warning: 42 bytes of output of web.service could not be written to its log.",
    ]


def test_colour_only_when_enabled():
    plain, _ = status_text(unit_status())
    coloured, _ = status_text(unit_status(), color=True)
    assert "\x1b[" not in plain
    assert coloured.startswith(f"{render.GREEN}●{render.RESET} web.service")
    failed, _ = status_text(unit_status(active_state="failed", sub_state="failed"), color=True)
    assert failed.startswith(f"{render.RED}×{render.RESET}")


def test_control_characters_escaped():
    unit = unit_status(log=[log_record("\x1b[31mred\x1b[0m\tok")])
    last = status_text(unit)[0].splitlines()[-1]
    assert last.endswith(": \\x1b[31mred\\x1b[0m\tok")


def test_stopped_unit_hides_zero_tasks():
    unit = unit_status(active_state="failed", sub_state="failed", main_pid=0, tasks=0,
                       processes=[], log=[])
    lines = status_text(unit)[0].splitlines()
    assert not any(line.strip().startswith("Tasks:") for line in lines)
    assert "        CPU: 1.204s" in lines
