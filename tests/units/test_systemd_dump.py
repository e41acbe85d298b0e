"""Units as systemd 252 itself loads them: `systemd --user --test` dumps every command's
argv and the effective settings, and unitmgr's must be the same.

The dump shows the argv before variable expansion, because systemd expands
`$A`, `${A}` and `$$` only when it spawns a process. `ExecCommand.words`
holds the same form. The expansion is compared with the documented rules in
test_edge_case_argv.py. systemd refuses test mode as
root, so as root the oracle runs as the user nobody. The settings are
compared in the text `show` prints for them (time spans, signals, limits).
"""

from __future__ import annotations

import dataclasses
import grp
import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from corpus_support import CORPUS, installed_name, manifest, substitute
from systemd_oracle import NOBODY, SETPRIV, SYSTEMD, systemd_test_dump
from unitmgr.units.loader import UnitLoader
from unitmgr.units.showformat import unit_properties
from unitmgr.units.specifiers import SpecifierContext
from unitmgr.units.values import signal_name

EDGE_CASES = Path(__file__).resolve().parents[1] / "data" / "units"
# An instance with an escaped dash, so %i and %I differ.
INSTANCE = "web\\x2d1-a"

pytestmark = pytest.mark.skipif(
    SYSTEMD is None or (os.getuid() == 0 and SETPRIV is None),
    reason="systemd (and setpriv, as root) needed")


@pytest.fixture
def oracle_dirs() -> Iterator[tuple[Path, Path, Path]]:
    """(unit dir, runtime dir, home) that the user running systemd can read."""
    root = Path(tempfile.mkdtemp(prefix="argv-"))
    units, runtime = root / "units", root / "runtime"
    units.mkdir()
    runtime.mkdir()
    if os.getuid() == 0:
        os.chown(runtime, NOBODY, NOBODY)
    yield units, runtime, root
    shutil.rmtree(root, ignore_errors=True)


def _context(runtime: Path, home: Path) -> SpecifierContext:
    """Return the specifier values of systemd's test manager: its user, $HOME and $XDG_RUNTIME_DIR."""
    uid = NOBODY if os.getuid() == 0 else os.getuid()
    entry = pwd.getpwuid(uid)
    base = SpecifierContext.from_environment({**os.environ, "HOME": str(home),
                                              "XDG_RUNTIME_DIR": str(runtime)})
    return dataclasses.replace(base, user=entry.pw_name, uid=uid, gid=entry.pw_gid,
                               group=grp.getgrgid(entry.pw_gid).gr_name, shell=entry.pw_shell)


def _install(units: Path, files: dict[str, str]) -> None:
    """Write `files` and a default.target that pulls them in (templates as one instance)."""
    wanted = []
    for name, text in files.items():
        (units / name).write_text(text)
        wanted.append(name.replace("@.", f"@{INSTANCE}."))
    (units / "default.target").write_text("[Unit]\nWants=" + " ".join(sorted(wanted)) + "\n")
    for path in [units.parent, units, *units.iterdir()]:
        path.chmod(0o755)


def _compare(units: Path, runtime: Path, home: Path) -> tuple[int, int, list[str]]:
    """Return (command lines compared, settings compared, differences)."""
    dump = systemd_test_dump(units, runtime, home)
    loader = UnitLoader([units], _context(runtime, home))
    compared, properties, mismatches = 0, 0, []
    for name, theirs in sorted(dump.items()):
        if not name.endswith(".service") or theirs.get("load") != ["loaded"]:
            continue
        unit = loader.load(name)
        if unit.load_state != "loaded":
            mismatches.append(f"{name}: systemd loaded it, unitmgr: {unit.load_error}")
            continue
        count, problems = _compare_properties(name, unit, theirs.get("properties", {}))
        properties += count
        mismatches += problems
        for key, their_argvs in theirs.items():
            if key in ("load", "properties"):
                continue
            ours = [list(c.words[1:] if c.argv0_given else c.words)
                    for c in unit.get("Service", key)]
            compared += len(ours)
            if ours != their_argvs:
                mismatches.append(f"{name} {key}=: unitmgr {ours} / systemd {their_argvs}")
    return compared, properties, mismatches


# `systemd --test` name -> `systemctl show` name, for implemented settings; None: same name.
DUMP_PROPERTIES = {
    "Type": None, "Restart": None, "RemainAfterExit": None, "KillMode": None,
    "SendSIGKILL": None, "SendSIGHUP": None, "UMask": None, "Nice": None,
    "StandardInput": None, "StandardOutput": None, "StandardError": None,
    "RestartSec": "RestartUSec", "TimeoutStartSec": "TimeoutStartUSec",
    "TimeoutStopSec": "TimeoutStopUSec", "KillSignal": None, "FinalKillSignal": None,
    **{f"Limit{n}{soft}": None for n in ("CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS",
                                         "NOFILE", "AS", "NPROC", "MEMLOCK", "LOCKS",
                                         "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME")
       for soft in ("", "Soft")},
}  # fmt: skip


def _compare_properties(name: str, unit, theirs: dict[str, list[str]]) -> tuple[int, list[str]]:
    """Compare the effective settings systemd dumps with what `show` prints for them."""
    ours = dict(unit_properties(unit))
    problems = []
    compared = 0
    for dump_key, show_key in DUMP_PROPERTIES.items():
        our_text = ours.get(show_key or dump_key, "")
        their_text = theirs.get(dump_key, [None])[0]
        if their_text is None or our_text == "" or ":" in our_text:
            continue  # not in the dump, inherited, or a file: target dumped in two keys
        if dump_key == "Type" and our_text == "notify-reload":
            continue  # systemd 252 predates Type=notify-reload (253), which unitmgr accepts
        if dump_key.endswith("Signal"):
            our_text = signal_name(int(our_text))
        if their_text == str(2**64 - 1):
            their_text = "infinity"  # the dump prints RLIM_INFINITY as a number, show as infinity
        compared += 1
        if our_text != their_text:
            problems.append(f"{name} {dump_key}: unitmgr {our_text!r} / systemd {their_text!r}")
    return compared, problems


def test_edge_case_command_lines_match_systemd(oracle_dirs) -> None:
    units, runtime, home = oracle_dirs
    files = {p.name: p.read_text() for p in EDGE_CASES.glob("*.service") if p.is_file()}
    _install(units, files)
    commands, properties, mismatches = _compare(units, runtime, home)
    assert mismatches == []
    assert commands >= 30
    assert properties >= 300


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")
def test_corpus_command_lines_match_systemd(oracle_dirs) -> None:
    units, runtime, home = oracle_dirs
    files = {}
    for row in manifest():
        name = installed_name(row["saved_name"])
        if name.endswith(".service"):
            files[name] = substitute((CORPUS / row["saved_name"]).read_text())
    _install(units, files)
    commands, properties, mismatches = _compare(units, runtime, home)
    assert mismatches == []
    assert commands >= 120
    assert properties >= 1000


SERVICE = "[Service]\nExecStart=/bin/true\n"

# A two-level search path (high, low): (directory, relative path, file text or "->target").
TREE = [
    ("low", "app-web-x.service", "[Unit]\nDescription=frag %n %p %i %j\n" + SERVICE),
    ("high", "app-web-x.service.d/50-desc.conf", "[Unit]\nDescription=specific %N\n"),
    ("low", "app-web-x.service.d/50-desc.conf", "[Unit]\nDescription=shadowed by high\n"),
    ("low", "app-.service.d/10-prefix.conf", "[Unit]\nWants=from-prefix.service\n"),
    ("high", "app-web-.service.d/20-prefix.conf", "[Unit]\nRequires=from-prefix2.service\n"),
    ("high", "service.d/05-type.conf", "[Unit]\nDocumentation=man:type(1)\n"),
    ("high", "service.d/99-masked.conf", "->/dev/null"),
    ("low", "service.d/99-masked.conf", "[Unit]\nDescription=masked drop-in applied\n"),
    ("high", "alias-x.service", "->app-web-x.service"),
    ("low", "alias-x.service.d/30-alias.conf", "[Unit]\nWants=from-alias.service\n"),
    ("high", "app-web-x.service.wants/linked-want.service", "->../linked-want.service"),
    ("low", "app-web-x.service.wants/masked-want.service", "->/dev/null"),
    ("low", "app-web-x.service.requires/req.service", "->/elsewhere/req.service"),
    ("high", "override.service", "[Unit]\nDescription=high wins\n" + SERVICE),
    ("low", "override.service", "[Unit]\nDescription=low loses\n" + SERVICE),
    ("low", "worker@.service", "[Unit]\nDescription=worker %i/%I\n" + SERVICE),
    ("high", "worker@.service.d/10-template.conf", "[Unit]\nWants=helper@%i.service\n"),
    ("low", "worker@a\\x2db.service.d/20-instance.conf", "[Unit]\nDescription=instance %I\n"),
    ("low", "group@.target", "[Unit]\nDescription=group %i\n"),
    ("high", "group@.target.wants/member@.service", "->../member@.service"),
    ("high", "member@.service", "[Unit]\nDescription=member %i\n" + SERVICE),
    ("high", "hidden.service", "->/dev/null"),
    ("low", "hidden.service", SERVICE),
    ("high", "outside.service", "->OUTSIDE/outside.service"),
]
TREE_UNITS = ["app-web-x.service", "alias-x.service", "override.service", "worker@a\\x2db.service",
              "worker@c.service", "group@x.target", "hidden.service", "outside.service"]


def _write_tree(root: Path) -> list[Path]:
    dirs = [root / "units" / "high", root / "units" / "low"]
    outside = root / "outside"
    outside.mkdir()
    (outside / "outside.service").write_text("[Unit]\nDescription=linked from outside\n" + SERVICE)
    for level, relative, text in TREE:
        path = root / "units" / level / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if text.startswith("->"):
            os.symlink(text[2:].replace("OUTSIDE", str(outside)), path)
        else:
            path.write_text(text)
    (dirs[0] / "default.target").write_text("[Unit]\nWants=" + " ".join(TREE_UNITS) + "\n")
    for path in [root.parent, root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755)
    return dirs


def _dependencies(values: list[str]) -> set[str]:
    """Return the units of dump lines like `foo.service (origin-file)` that a file or folder added."""
    found = set()
    for value in values:
        name, _, origin = value.partition(" ")
        if "origin-file" in origin and not name.endswith(".slice"):  # Slice= is implicit
            found.add(name)
    return found


def test_search_path_tree_matches_systemd(oracle_dirs) -> None:
    units, runtime, home = oracle_dirs
    dirs = _write_tree(units)
    dump = systemd_test_dump(Path(":".join(map(str, dirs))), runtime, home)
    loader = UnitLoader(dirs, _context(runtime, home))
    compared = []
    for name in TREE_UNITS + ["member@x.service"]:
        unit = loader.load(name)
        theirs = dump.get(unit.name) or dump[name]
        props = theirs.get("properties", {})
        state = theirs["load"][0]
        assert unit.load_state == state, name
        compared.append(name)
        if state != "loaded":
            continue
        assert (unit.fragment_path or "") == props.get("Fragment Path", [""])[0], name
        assert unit.dropin_paths == props.get("DropIn Path", []), name
        assert unit.description == props["Description"][0], name
        assert sorted(unit.aliases) == sorted(props.get("Alias", [])), name
        assert set(unit.get("Unit", "Wants")) == _dependencies(props.get("Wants", [])), name
        assert set(unit.get("Unit", "Requires")) == _dependencies(props.get("Requires", [])), name
        assert unit.get("Unit", "Documentation") == (["man:type(1)"] if unit.kind == "service"
                                                     else []), name
    assert len(compared) == len(TREE_UNITS) + 1
