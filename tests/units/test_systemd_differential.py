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
