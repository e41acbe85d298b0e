import math

from unit_text import messages, unit_from
from unitmgr.units.model import ExitStatusSet, RLimit
from unitmgr.units.syntax import logical_lines


def test_continuation_joins_with_space_and_skips_comments():
    lines = logical_lines("A=1 \\\n# comment\n; other\n  2\nB=3")
    assert lines == [(1, "A=1    2"), (5, "B=3")]


def test_escaped_backslash_is_not_continuation():
    assert logical_lines("A=x\\\\\nB=1") == [(1, "A=x\\\\"), (2, "B=1")]


def test_whitespace_around_equals_dropped():
    unit = unit_from("[Service]\nType   =   oneshot\nExecStart  =  /bin/true  \n")
    assert unit.get("Service", "Type") == "oneshot"
    assert unit.get("Service", "ExecStart")[0].words == ("/bin/true",)


def test_comment_after_value_is_part_of_value():
    unit = unit_from("[Unit]\nDescription=web # not a comment\n[Service]\nExecStart=/bin/true\n")
    assert unit.description == "web # not a comment"


def test_assignment_outside_section_warns():
    unit = unit_from("Description=x\n[Service]\nExecStart=/bin/true\n")
    assert unit.load_state == "loaded"
    assert "/u/test.service:1: Assignment outside of section. Ignoring." in messages(unit)


def test_unknown_section_and_key_warn():
    unit = unit_from("[Foo]\nBar=1\n[Service]\nExecStart=/bin/true\nNoSuchKey=1\n")
    text = "\n".join(messages(unit))
    assert "[Foo]: Unknown section 'Foo'. Ignoring." in text
    assert "/u/test.service:5: [Service] NoSuchKey=: Unknown key 'NoSuchKey' in section [Service]" in text


def test_x_sections_and_keys_kept_silently():
    unit = unit_from("[X-Custom]\nA=1\n[Service]\nExecStart=/bin/true\nX-Foo=bar\n")
    assert unit.diagnostics == []
    assert unit.settings["X-Custom"] == {"A": ["1"]}
    assert unit.settings["Service"]["X-Foo"] == ["bar"]


def test_missing_equals_warns():
    unit = unit_from("[Service]\nExecStart=/bin/true\nno equals here\n")
    assert any("Missing '='" in m for m in messages(unit))


def test_section_from_other_unit_type_is_unknown():
    unit = unit_from("[Socket]\nListenStream=1\n[Service]\nExecStart=/bin/true\n")
    assert any("Unknown section 'Socket'" in m for m in messages(unit))


def test_bad_section_header_refuses_unit():
    unit = unit_from("[Service\nExecStart=/bin/true\n")
    assert unit.load_state == "bad-setting"
    assert "Invalid section header" in unit.load_error


def test_repeated_section_continues():
    unit = unit_from("[Service]\nExecStart=/bin/true\n[Unit]\nDescription=x\n[Service]\nType=exec\n")
    assert unit.get("Service", "Type") == "exec"
    assert unit.diagnostics == []


def test_list_append_and_empty_reset():
    unit = unit_from("[Service]\nExecStart=/bin/false\nExecStart=\nExecStart=/bin/true\n"
                     "ExecStartPre=/bin/a\nExecStartPre=/bin/b\n")
    assert [c.words[0] for c in unit.get("Service", "ExecStart")] == ["/bin/true"]
    assert [c.words[0] for c in unit.get("Service", "ExecStartPre")] == ["/bin/a", "/bin/b"]


def test_dependencies_cannot_be_reset():
    unit = unit_from("[Unit]\nWants=a.service\nWants=\nWants=b.service c.service\n"
                     "[Service]\nExecStart=/bin/true\n")
    assert unit.get("Unit", "Wants") == ["a.service", "b.service", "c.service"]


def test_invalid_dependency_name_warns():
    unit = unit_from('[Unit]\nAfter="a.service" b.service\n[Service]\nExecStart=/bin/true\n')
    assert unit.get("Unit", "After") == ["b.service"]
    assert any("Failed to add dependency on \"a.service\"" in m for m in messages(unit))


def test_scalar_last_wins_and_empty_restores_default():
    unit = unit_from("[Service]\nExecStart=/bin/true\nRestart=always\nRestart=on-failure\n"
                     "RestartSec=5\nRestartSec=\n")
    assert unit.get("Service", "Restart") == "on-failure"
    assert unit.get("Service", "RestartSec") == 0.1


def test_dropins_apply_after_fragment():
    unit = unit_from("[Service]\nExecStart=/bin/false\nRestart=always\n",
                     dropins=("[Service]\nExecStart=\nExecStart=/bin/true\n",
                              "[Service]\nRestart=no\n"))
    assert [c.words[0] for c in unit.get("Service", "ExecStart")] == ["/bin/true"]
    assert unit.get("Service", "Restart") == "no"


def test_invalid_values_warn_and_keep_default():
    unit = unit_from("[Service]\nExecStart=/bin/true\nRestart=bogus\nType=notify-later\n"
                     "RestartSec=garbage\nKillMode=bogus\nKillSignal=SIGFOO\nSendSIGKILL=maybe\n"
                     "Nice=25\nLimitNPROC=4096:1024\nUMask=999\n")
    assert unit.load_state == "loaded"
    assert unit.get("Service", "Restart") == "no"
    assert unit.get("Service", "Type") == "simple"
    assert unit.get("Service", "KillSignal") == 15
    assert unit.get("Service", "SendSIGKILL") is True
    assert unit.get("Service", "LimitNPROC") is None
    text = "\n".join(messages(unit))
    assert "/u/test.service:3: [Service] Restart=: Failed to parse Restart= value 'bogus'" in text
    assert "use one of: no, on-success, on-failure" in text
    assert "Soft resource limit chosen higher than hard limit" in text
    assert "Nice priority out of range" in text
    assert len(unit.diagnostics) == 9


def test_typed_values_stored():
    unit = unit_from("[Service]\nExecStart=/bin/true\nTimeoutStartSec=5min 20s\nTimeoutStopSec=0\n"
                     "LimitNOFILE=1024:4096\nKillSignal=TERM\nFinalKillSignal=9\nUMask=0077\n"
                     "SuccessExitStatus=TEMPFAIL 250 SIGKILL\nSuccessExitStatus=1\n"
                     "KillMode=mixed\nNice=-5\nRemainAfterExit=yes\n")
    assert unit.diagnostics == []
    assert unit.get("Service", "TimeoutStartSec") == 320
    assert unit.get("Service", "TimeoutStopSec") == math.inf
    assert unit.get("Service", "LimitNOFILE") == RLimit(1024, 4096)
    assert unit.get("Service", "FinalKillSignal") == 9
    assert unit.get("Service", "UMask") == 0o077
    assert unit.get("Service", "SuccessExitStatus") == ExitStatusSet(frozenset({75, 250, 1}),
                                                                   frozenset({9}))
    assert unit.get("Service", "KillMode") == "mixed"
    assert unit.get("Service", "RemainAfterExit") is True


def test_restart_accepts_all_seven_values():
    for value in ("no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort",
                  "always"):
        unit = unit_from(f"[Service]\nExecStart=/bin/true\nRestart={value}\n")
        assert unit.get("Service", "Restart") == value


def test_computed_defaults():
    simple = unit_from("[Service]\nExecStart=/bin/true\n")
    assert simple.get("Service", "Type") == "simple"
    assert simple.get("Service", "TimeoutStartSec") == 90
    assert simple.get("Service", "TimeoutStopSec") == 90
    assert simple.get("Unit", "StartLimitIntervalSec") == 10
    assert simple.get("Unit", "StartLimitBurst") == 5
    oneshot = unit_from("[Service]\nType=oneshot\nExecStart=/bin/true\n")
    assert oneshot.get("Service", "TimeoutStartSec") == math.inf
    implied = unit_from("[Service]\nRemainAfterExit=yes\nExecStop=/bin/true\n")
    assert implied.get("Service", "Type") == "oneshot"


def test_timeout_sec_sets_both_and_later_keys_win():
    unit = unit_from("[Service]\nExecStart=/bin/true\nTimeoutSec=5\nTimeoutStopSec=7\n")
    assert unit.get("Service", "TimeoutStartSec") == 5
    assert unit.get("Service", "TimeoutStopSec") == 7


def test_legacy_start_limit_keys_in_service():
    unit = unit_from("[Service]\nExecStart=/bin/true\nStartLimitInterval=5\nStartLimitBurst=3\n"
                     "StartLimitIntervalSec=9\n")
    assert unit.get("Unit", "StartLimitIntervalSec") == 5
    assert unit.get("Unit", "StartLimitBurst") == 3
    assert any("Unknown key 'StartLimitIntervalSec'" in m for m in messages(unit))


def test_unsupported_directive_warned_once_per_unit():
    unit = unit_from("[Service]\nExecStart=/bin/true\nPrivateTmp=yes\nPrivateTmp=no\n")
    warned = [m for m in messages(unit) if "not supported" in m]
    assert warned == ["/u/test.service:3: [Service] PrivateTmp=: PrivateTmp= is not supported by "
                      "unitmgr and was ignored (sandboxing is not implemented: it needs namespaces "
                      "a user manager cannot always set up)"]


def test_environment_several_assignments_per_line():
    unit = unit_from('[Service]\nExecStart=/bin/true\n'
                     'Environment="VAR1=word1 word2" VAR2=word3 "VAR3=$word 5 6"\n'
                     'Environment=1X=bad OK=%n\n')
    assert unit.get("Service", "Environment") == {
        "VAR1": "word1 word2", "VAR2": "word3", "VAR3": "$word 5 6", "OK": "test.service"}
    assert any("Invalid environment assignment, ignoring: 1X=bad" in m for m in messages(unit))


def test_environment_empty_resets():
    unit = unit_from("[Service]\nExecStart=/bin/true\nEnvironment=A=1\nEnvironment=\nEnvironment=B=2\n")
    assert unit.get("Service", "Environment") == {"B": "2"}


def test_environment_file_paths():
    unit = unit_from("[Service]\nExecStart=/bin/true\nEnvironmentFile=relative.env\n"
                     "EnvironmentFile=-%h/x.env\n")
    assert unit.get("Service", "EnvironmentFile") == ["-/home/ann/x.env"]
    assert any("is not absolute" in m for m in messages(unit))


def test_specifier_warning_outside_exec():
    unit = unit_from("[Unit]\nDescription=bad %Z\n[Service]\nExecStart=/bin/true\n")
    assert unit.load_state == "loaded"
    assert unit.description == ""
    assert any("unknown specifier %Z" in m for m in messages(unit))


def test_documentation_urls_checked():
    unit = unit_from("[Unit]\nDocumentation=man:foo(1) https://x.org nonsense\n"
                     "[Service]\nExecStart=/bin/true\n")
    assert unit.get("Unit", "Documentation") == ["man:foo(1)", "https://x.org"]
    assert any("Invalid URL" in m for m in messages(unit))


def test_standard_output_values():
    unit = unit_from("[Service]\nExecStart=/bin/true\nStandardOutput=append:/tmp/x\n"
                     "StandardError=bogus\n")
    assert unit.get("Service", "StandardOutput") == "append:/tmp/x"
    assert unit.get("Service", "StandardError") == "inherit"


def test_fatal_service_checks():
    cases = {
        "[Service]\nType=oneshot\n": "no ExecStart=, ExecStop=",
        "[Service]\nExecStart=/bin/true\nExecStart=/bin/false\n": "more than one ExecStart=",
        "[Service]\nType=oneshot\nExecStart=/bin/true\nRestart=always\n": "isn't allowed",
        "[Service]\nType=simple\nExecStop=/bin/true\n": "only allowed for Type=oneshot",
        "[Service]\nExecStart=/bin/echo %Z\n": "unknown specifier %Z",
        "[Service]\nExecStart=bin/true\n": "Neither a valid executable name",
    }
    for text, fragment in cases.items():
        unit = unit_from(text)
        assert unit.load_state == "bad-setting", text
        assert fragment in unit.load_error, text


def test_socket_timer_path_sections_parse():
    socket = unit_from("[Socket]\nListenStream=%t/s.sock\nAccept=yes\n", name="s.socket")
    assert socket.get("Socket", "ListenStream") == ["/run/user/1000/s.sock"]
    assert socket.get("Socket", "Accept") is True
    timer = unit_from("[Timer]\nOnCalendar=daily\nOnBootSec=5min\n", name="t.timer")
    assert timer.get("Timer", "OnBootSec") == [300]
    assert timer.get("Timer", "AccuracySec") == 60
    assert unit_from("[Timer]\nPersistent=yes\n", name="t.timer").load_state == "bad-setting"
    path = unit_from("[Path]\nPathExists=/tmp/x\n", name="p.path")
    assert path.load_state == "loaded"


def test_byte_order_mark_at_start_ignored():
    unit = unit_from("\ufeff[Service]\nExecStart=/bin/true\n")
    assert unit.load_state == "loaded"
    assert messages(unit) == []
    assert unit.get("Service", "ExecStart")[0].words == ("/bin/true",)


def test_byte_order_mark_in_dropin_ignored():
    unit = unit_from("[Service]\nExecStart=/bin/true\n", dropins=("\ufeff[Unit]\nDescription=bom\n",))
    assert unit.description == "bom"
    assert messages(unit) == []
