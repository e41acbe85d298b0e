"""enable, disable and is-enabled against systemd 252's own `systemctl --global --root=DIR`.

`systemctl --user --root` refuses to run offline here ("Invalid argument"),
but `--global --root=DIR` applies the same [Install] rules to
DIR/etc/systemd/user. Each step runs there and in a copy of the same files
with unitmgr's Enablement, and the links, the printed lines, the exit
statuses and the is-enabled words must match.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from unit_text import CONTEXT
from unitmgr.manager.enablement import Enablement, is_enabled_exit

SYSTEMCTL = shutil.which("systemctl")
USER_DIR = Path("etc/systemd/user")

UNITS = {
    "web.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=default.target\n"
                   "RequiredBy=app.target\nAlias=www.service\nAlso=db.service\n",
    "db.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=default.target\n",
    "worker@.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=default.target\n"
                       "DefaultInstance=def\nAlias=wk@.service\n",
    "member@.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=grp@.target\n",
    "tpl@.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=default.target\n"
                    "WantedBy=grp@%i.target\n",
    "spec@.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=grp@%i.target\n"
                     "DefaultInstance=one\n",
    "static.service": "[Service]\nExecStart=/bin/true\n",
    "indirect.service": "[Service]\nExecStart=/bin/true\n[Install]\nAlso=worker@x.service\n",
    "badalias.service": "[Service]\nExecStart=/bin/true\n[Install]\nAlias=other.socket\n",
    "badspec.service": "[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=default.target\n"
                       "Also=%s.service\n",
    "hostspec@.service": "[Service]\nExecStart=/bin/true\n[Install]\n"
                         "WantedBy=app-%i-%p.target\n",
}

# Each step: (verb, unit names). The is-enabled words of QUERIES are compared after each.
STEPS = [
    ("enable", ["web.service"]),
    ("disable", ["web.service"]),
    ("enable", ["worker@.service"]),
    ("enable", ["worker@3.service"]),
    ("disable", ["worker@3.service"]),
    ("enable", ["member@a.service", "member@.service"]),
    ("enable", ["tpl@z.service"]),
    ("enable", ["tpl@.service"]),
    ("enable", ["spec@.service"]),
    ("enable", ["static.service"]),
    ("enable", ["indirect.service"]),
    ("enable", ["masked.service"]),
    ("enable", ["badalias.service"]),
    ("enable", ["badspec.service"]),
    ("enable", ["hostspec@x.service"]),
    ("enable", ["nothing.service"]),
    ("disable", ["nothing.service"]),
    ("enable", ["linked.service"]),
    ("disable", ["worker@.service", "member@.service"]),
    ("disable", ["linked.service", "tpl@.service"]),
]

QUERIES = ["web.service", "www.service", "db.service", "worker@.service", "worker@3.service",
           "worker@def.service", "worker@9.service", "wk@.service", "member@a.service",
           "static.service", "indirect.service", "masked.service", "linked.service",
           "tpl@z.service", "spec@one.service"]

pytestmark = pytest.mark.skipif(SYSTEMCTL is None, reason="systemctl not installed")


def _make_root(root: Path) -> Path:
    units = root / USER_DIR
    units.mkdir(parents=True)
    for name, text in UNITS.items():
        (units / name).write_text(text)
    os.symlink("/dev/null", units / "masked.service")
    (root / "opt").mkdir()
    (root / "opt" / "linked.service").write_text(UNITS["db.service"])
    return units


def _links(root: Path) -> set[tuple[str, str]]:
    found = set()
    for path in (root / USER_DIR).rglob("*"):
        if path.is_symlink():
            found.add((str(path.relative_to(root)), os.path.basename(os.readlink(path))))
    return found


def _systemctl(root: Path, *args: str) -> tuple[int, list[str]]:
    result = subprocess.run([SYSTEMCTL, "--global", f"--root={root}", *args],
                            capture_output=True, text=True, timeout=30)
    lines = [line.replace(str(root), "ROOT").replace(" \u2192 /", " \u2192 ROOT/")
             for line in (result.stdout + result.stderr).splitlines()]
    return result.returncode, lines


def _is_enabled(root: Path, name: str) -> tuple[int, list[str]]:
    status, lines = _systemctl(root, "is-enabled", name)
    if lines and lines[0].startswith("Failed to get unit file state"):
        # systemctl 252 offline; newer versions print "not-found" and exit 4, as unitmgr does.
        return 4, ["not-found"]
    return status, lines


def _link_lines(lines: list[str]) -> set[str]:
    return {line for line in lines if line.startswith(("Created symlink", "Removed"))}


def _ours(enablement: Enablement, root: Path, verb: str, units: list[str]) -> tuple[int, list[str]]:
    report = enablement.enable(units) if verb == "enable" else enablement.disable(units)
    lines = [line.replace(str(root), "ROOT") for line in report.lines()]
    return (0 if report.ok else 1), lines


def test_links_and_words_match_systemctl(tmp_path: Path) -> None:
    theirs_root, ours_root = tmp_path / "systemd", tmp_path / "unitmgr"
    _make_root(theirs_root)
    our_units = _make_root(ours_root)
    # A linked unit file: a link in the search path to a file outside it.
    os.symlink(ours_root / "opt" / "linked.service", our_units / "linked.service")
    os.symlink("/opt/linked.service", theirs_root / USER_DIR / "linked.service")
    enablement = Enablement([our_units], CONTEXT)
    changed = 0
    for verb, units in STEPS:
        their_status, their_lines = _systemctl(theirs_root, verb, *units)
        our_status, our_lines = _ours(enablement, ours_root, verb, units)
        step = f"{verb} {' '.join(units)}"
        assert _links(ours_root) == _links(theirs_root), step
        assert our_status == their_status, f"{step}: {our_lines} / {their_lines}"
        assert _link_lines(our_lines) == _link_lines(their_lines), step
        changed += len(_link_lines(their_lines))
        for query in QUERIES:
            their_status, their_words = _is_enabled(theirs_root, query)
            ours = enablement.state(query)
            assert [ours] == their_words, f"after {step}: is-enabled {query}"
            assert is_enabled_exit(ours) == their_status, f"after {step}: is-enabled {query}"
    assert changed >= 20  # the steps really wrote and removed links


def test_static_enable_explains_and_writes_nothing(tmp_path: Path) -> None:
    units = _make_root(tmp_path)
    report = Enablement([units], CONTEXT).enable(["static"])
    assert report.ok and not report.changes
    assert "no installation config" in report.lines()[0]


def test_not_found_is_enabled_word_and_exit(tmp_path: Path) -> None:
    # systemctl 252 offline prints an error and exits 1 here. Newer versions print
    # "not-found" and exit 4, and unitmgr does the same.
    units = _make_root(tmp_path)
    assert Enablement([units], CONTEXT).state("nothing") == "not-found"
    assert is_enabled_exit("not-found") == 4


def test_existing_foreign_link_is_reported(tmp_path: Path) -> None:
    units = _make_root(tmp_path)
    (units / "default.target.wants").mkdir()
    os.symlink("/elsewhere/db.service", units / "default.target.wants" / "db.service")
    report = Enablement([units], CONTEXT).enable(["db"])
    assert not report.ok
    assert "already exists and is a symlink to /elsewhere/db.service" in report.lines()[-1]


def test_builtin_targets_are_static(tmp_path: Path) -> None:
    units = _make_root(tmp_path)
    assert Enablement([units], CONTEXT).state("default.target") == "static"


def _corpus_units_with_install() -> list[tuple[str, str]]:
    from corpus_support import CORPUS, installed_name, manifest, substitute

    if not CORPUS.is_dir():
        return []
    found = []
    for row in manifest():
        name = installed_name(row["saved_name"])
        text = substitute((CORPUS / row["saved_name"]).read_text())
        if not name.endswith(".conf") and "[Install]" in text:
            found.append((name, text))
    return found


def test_corpus_units_enable_like_systemctl(tmp_path: Path) -> None:
    units = _corpus_units_with_install()
    if not units:
        pytest.skip("corpus not present")
    compared = 0
    for index, (name, text) in enumerate(units):
        roots = []
        for side in ("systemd", "unitmgr"):
            root = tmp_path / f"{index}-{side}"
            (root / USER_DIR).mkdir(parents=True)
            (root / USER_DIR / name).write_text(text)
            roots.append(root)
        their_status, their_lines = _systemctl(roots[0], "enable", name)
        enablement = Enablement([roots[1] / USER_DIR], CONTEXT)
        our_status, our_lines = _ours(enablement, roots[1], "enable", [name])
        assert _links(roots[1]) == _links(roots[0]), name
        assert our_status == their_status, f"{name}: {our_lines} / {their_lines}"
        assert _link_lines(our_lines) == _link_lines(their_lines), name
        their_state = _is_enabled(roots[0], name)
        assert ([enablement.state(name)], is_enabled_exit(enablement.state(name))) == (
            their_state[1], their_state[0]), name
        compared += 1
    assert compared >= 60
