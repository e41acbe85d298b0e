"""Differential tests against systemd 252's own `systemd-analyze verify`.

The compared verdict is whether the unit itself is refused (bad setting,
fatal parse error, masked). `systemd-analyze verify` also fails a unit whose
executable is missing on this machine or whose Requires= names a unit it
cannot find; those are facts about the host, not about the file, so they are
not part of the verdict.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest
from corpus_support import CORPUS, installed_name, manifest, substitute
from systemd_oracle import SYSTEMD_ANALYZE, systemd_verify
from unit_text import CONTEXT
from unitmgr.units.execline import parse_exec
from unitmgr.units.loader import build_unit, load_file
from unitmgr.units.specifiers import SpecifierContext, UnitIdentity
from unitmgr.units.values import UnitValueError

pytestmark = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")

EDGE_CASES = Path(__file__).resolve().parents[1] / "data" / "units"

# Edge cases where unitmgr deliberately differs from systemd 252, and why.
KNOWN_DIFFERENCES: dict[str, str] = {}


@pytest.fixture(scope="module")
def runtime_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("xdg-runtime")


def _compare(path: Path, runtime_dir: Path, our_state: str) -> str | None:
    refused, output = systemd_verify(path, runtime_dir)
    ours = our_state != "loaded"
    if ours == refused:
        return None
    return f"{path.name}: systemd refused={refused}, unitmgr load_state={our_state}\n{output}"


def test_edge_cases_match_systemd(runtime_dir):
    files = sorted(p for p in EDGE_CASES.iterdir() if p.is_file())
    assert len(files) >= 40
    context = SpecifierContext.from_environment()
    mismatches = []
    for path in files:
        if path.name in KNOWN_DIFFERENCES:
            continue
        unit = load_file(path, context)
        mismatch = _compare(path, runtime_dir, unit.load_state)
        if mismatch:
            mismatches.append(mismatch)
    assert mismatches == []


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")
@pytest.mark.parametrize("substituted", [False, True], ids=["raw", "placeholders-filled"])
def test_corpus_matches_systemd(runtime_dir, tmp_path, substituted):
    mismatches = []
    for row in manifest():
        name = installed_name(row["saved_name"])
        if name.endswith(".conf"):
            continue  # drop-ins are not units on their own
        text = (CORPUS / row["saved_name"]).read_text()
        if substituted:
            text = substitute(text)
        folder = tmp_path / row["saved_name"]
        folder.mkdir()
        path = folder / name
        path.write_text(text)
        unit = build_unit(name, (str(path), text), [], CONTEXT)
        mismatch = _compare(path, runtime_dir, unit.load_state)
        if mismatch:
            mismatches.append(mismatch)
        shutil.rmtree(folder)
    assert mismatches == []


# Executable words whose unquoting, escapes and specifiers systemd shows in
# its "Command X is not executable" message.
EXECUTABLE_WORDS = [
    "/tmp/unitmgr-probe/x\"a b\"c",
    "\"/tmp/unitmgr-probe/a b\"c",
    "/tmp/unitmgr-probe/o'n'e",
    "/tmp/unitmgr-probe/\\x41\\101\\u00e9",
    "/tmp/unitmgr-probe/%%x%n-%N-%p-%i-%I-%j-%f",
    "/tmp/unitmgr-probe/%%x-%p-%I-%j-%J-%f-%P",
    "/tmp/unitmgr-probe/./a//b",
    "/tmp/unitmgr-probe/%Z",
    "/tmp/unitmgr-probe/%t",
    "/tmp/unitmgr-probe/%u-%U-%g-%G",
    "/tmp/unitmgr-probe/%h",
    "/tmp/unitmgr-probe/50%",
    "-@/tmp/unitmgr-probe/argv0 name",
]


@pytest.mark.parametrize("word", EXECUTABLE_WORDS)
def test_executable_word_matches_systemd(runtime_dir, tmp_path, word):
    name = "probe-a-b@inst\\x2dx.service"
    path = tmp_path / name
    path.write_text(f"[Service]\nExecStart={word}\n")
    refused, output = systemd_verify(path, runtime_dir)
    context = SpecifierContext.from_environment({**os.environ, "XDG_RUNTIME_DIR": str(runtime_dir)})
    try:
        (command,), _ = parse_exec(word, UnitIdentity(name, str(path)), context)
    except UnitValueError as error:
        assert refused, f"unitmgr refused ({error}) but systemd accepted:\n{output}"
        return
    assert not refused, output
    if command.ignore_failure:
        # With "-" systemd does not report the missing file.
        assert "not executable" not in output
        return
    match = re.search(r"Command (.*) is not executable", output)
    assert match, output
    assert command.executable == match.group(1)


# Values of the resource-control and process-attribute settings, valid and invalid.
# systemd 252 warns about an invalid one and ignores it; unitmgr must warn about the
# same lines when it loads the unit.
SETTING_VALUES: dict[str, list[str]] = {
    "CPUQuota": ["20%", "150%", "1.5%", "1.55%", "0.01%", "+5%", "-0.5%", "0x10%", "5‰", "5.5‰",
                 "5‱", "100000%", "21474836%", "20", "0%", "-5%", "1.555%", "abc%", "%", "20 %",
                 "infinity", "0.001%", "1e2%", "5.%", ".5%", "5.55‰", "1.5‱", "21474837%", "20%%"],
    "CPUWeight": ["idle", "1", "10000", "+5", "0x10", "010", "0b1", "0", "10001", "abc", "-1",
                  "1.5", "08", "-0", "infinity"],
    "StartupCPUWeight": ["idle", "1", "0", "10001"],
    "IOWeight": ["1", "10000", "0x10", "idle", "0", "10001", "08"],
    "StartupIOWeight": ["1", "idle", "10001"],
    "CPUShares": ["2", "262144", "1", "262145", "idle"],
    "StartupCPUShares": ["2", "1"],
    "AllowedCPUs": ["0", "0-1,3", "0 1", "0,,1", "0x1", "8191", ",", "3-1", "a", "0-", "-1",
                    "8192", "numa", "0-1-2", "0 - 1"],
    "StartupAllowedCPUs": ["0", "a"],
    "CPUAffinity": ["0-1,3", "numa", "1-+2", "3-1", "numa 0", "NUMA", "65536"],
    "Nice": ["-20", "19", "+5", "0x5", "010", "-0x5", "20", "-21", "abc", "1.5", "08", "- 5"],
    "IOSchedulingClass": ["realtime", "best-effort", "idle", "none", "0", "3", "8", "0b1", "9",
                          "-1", "Idle", "be", "08"],
    "IOSchedulingPriority": ["0", "7", "+3", "07", "0x7", "-0", "8", "-1", "abc", "010"],
    "OOMScoreAdjust": ["-1000", "1000", "+5", "0x10", "-0x10", "1001", "-1001", "abc", "08"],
    "UMask": ["0022", "22", "0", "07777", "00022", "0000007777", "17777", "8", "abc", "0o22",
              "-1", "0x12", "+22", "-0", "0 22"],
    "CPUSchedulingPolicy": ["other", "batch", "idle", "fifo", "rr", "0", "7", "0x1", "2147483647",
                            "deadline", "FIFO", "-1", "08", "2147483648"],
    "CPUSchedulingPriority": ["0", "99", "+5", "0x10", "-0", "100", "-1", "abc", "08"],
    "LimitNOFILE": ["1024", "infinity", "1024:2048", "1024:infinity", "0x10", "010", "0b1", "+5",
                    "-0", "0:0", "18446744073709551614", "2048:1024", "infinity:1024", "1K",
                    "abc", "-1", ":", "1024:", "1:2:3", "08", "1e3", "18446744073709551615"],
    "LimitCPU": ["10", "10s", "1min", "1.5", "0", "1h 30min", "5:infinity", "5000000000000",
                 "10:5", "infinity:5", "abc", "18446744073709"],
    "LimitAS": ["1G", "1.5G", "1 G", "1.K", "1G 512M", "1G512M", "1K1", "+5", "010", "15E",
                "18446744073709551614", "1GB", "1g", "2G:1G", "-1", "16E", "1KiB", ".5K",
                "512M 1G", "0x10", "-0", "5 5", "18446744073709551615"],
    "LimitNICE": ["+5", "-5", "0", "40", "+19", "-20", "0x5", "010", "-0", "+5:-5", "41", "+20",
                  "-21", "infinity", "-5:+5", "40:0"],
    "LimitRTPRIO": ["0", "100", "infinity", "abc", "08"],
    "LimitRTTIME": ["1000", "1s", "1ms:1s", "1.5", "1s:1ms", "abc", "18446744073709551614"],
    "LimitCORE": ["0", "infinity", "unlimited"],
}
# Warnings that are not about the value: systemd's deprecation notice and unitmgr's
# notice about a directive it does not implement.
_NOTICES = ("Unit uses ", "is not supported by unitmgr")


def _warned_lines(lines: list[str], path: Path) -> set[int]:
    warned = set()
    for line in lines:
        match = re.match(re.escape(str(path)) + r":(\d+): (.*)", line)
        if match and not any(notice in match.group(2) for notice in _NOTICES):
            warned.add(int(match.group(1)))
    return warned


def test_setting_values_match_systemd(runtime_dir, tmp_path):
    cases = [(key, value) for key, values in SETTING_VALUES.items() for value in values]
    path = tmp_path / "values.service"
    body = "".join(f"{key}={value}\n" for key, value in cases)
    path.write_text("[Service]\nExecStart=/bin/true\n" + body)
    first_line = 3

    refused, output = systemd_verify(path, runtime_dir)
    unit = load_file(path, SpecifierContext.from_environment())
    assert not refused, output
    assert unit.load_state == "loaded"

    systemd_warned = _warned_lines(output.splitlines(), path)
    our_warned = _warned_lines([str(d) for d in unit.diagnostics], path)
    mismatches = [
        f"{key}={value}: systemd {'rejects' if line in systemd_warned else 'accepts'}"
        for line, (key, value) in enumerate(cases, start=first_line)
        if (line in systemd_warned) != (line in our_warned)
    ]
    assert mismatches == []
    assert len(systemd_warned) > 100
