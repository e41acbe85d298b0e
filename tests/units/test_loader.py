import os
from pathlib import Path

import pytest
from unit_text import CONTEXT
from unitmgr.units.loader import UnitLoader, is_mask


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def dirs(tmp_path):
    high, low = tmp_path / "high", tmp_path / "low"
    high.mkdir()
    low.mkdir()
    return high, low


def loader_for(*directories: Path) -> UnitLoader:
    return UnitLoader(list(directories), CONTEXT)


def test_first_directory_wins(dirs):
    high, low = dirs
    write(high / "web.service", "[Unit]\nDescription=high\n[Service]\nExecStart=/bin/true\n")
    write(low / "web.service", "[Unit]\nDescription=low\n[Service]\nExecStart=/bin/true\n")
    unit = loader_for(high, low).load("web.service")
    assert unit.description == "high"
    assert unit.fragment_path == str(high / "web.service")


def test_missing_unit_is_not_found(dirs):
    unit = loader_for(*dirs).load("nope.service")
    assert unit.load_state == "not-found"
    assert "nope.service" in unit.load_error


def test_invalid_name_is_error(dirs):
    unit = loader_for(*dirs).load("no suffix")
    assert unit.load_state == "error"


def test_bad_unit_does_not_raise(dirs):
    high, _ = dirs
    write(high / "bad.service", "[Service]\nExecStart=bin/true\n")
    unit = loader_for(high).load("bad.service")
    assert unit.load_state == "bad-setting"
    assert f"{high}/bad.service:2: [Service] ExecStart=: Neither a valid" in unit.load_error


def test_masks(dirs):
    high, low = dirs
    write(low / "web.service", "[Service]\nExecStart=/bin/true\n")
    os.symlink("/dev/null", high / "web.service")
    write(high / "empty.service", "")
    loader = loader_for(high, low)
    assert loader.load("web.service").load_state == "masked"
    assert loader.load("empty.service").load_state == "masked"


def test_instances_load_from_template(dirs):
    high, _ = dirs
    write(high / "worker@.service", "[Unit]\nDescription=Worker %i (%I)\n"
                                    "[Service]\nExecStart=/bin/echo %i\n")
    write(high / "worker@special.service", "[Unit]\nDescription=own file\n"
                                           "[Service]\nExecStart=/bin/true\n")
    loader = loader_for(high)
    unit = loader.load("worker@a\\x2db.service")
    assert unit.name == "worker@a\\x2db.service"
    assert unit.description == "Worker a\\x2db (a-b)"
    assert unit.get("Service", "ExecStart")[0].words == ("/bin/echo", "a\\x2db")
    assert loader.load("worker@special.service").description == "own file"


def test_dropins_all_levels_in_name_order(dirs):
    high, low = dirs
    write(low / "app-web-main.service", "[Service]\nExecStart=/bin/true\nRestart=no\n"
                                        "Environment=LEVEL=fragment\n")
    write(low / "service.d" / "10-type.conf", "[Service]\nEnvironment=TYPE=1 LEVEL=type\n")
    write(low / "app-.service.d" / "20-prefix.conf", "[Service]\nEnvironment=PREFIX=1 LEVEL=prefix\n")
    write(low / "app-web-.service.d" / "30-prefix2.conf", "[Service]\nRestart=always\n")
    write(high / "app-web-main.service.d" / "40-own.conf", "[Service]\nEnvironment=LEVEL=own\n")
    # Same file name: the higher-priority directory wins.
    write(low / "app-web-main.service.d" / "40-own.conf", "[Service]\nEnvironment=LEVEL=lost\n")
    # Same file name in the same directory: the more specific drop-in folder wins.
    write(low / "service.d" / "30-prefix2.conf", "[Service]\nRestart=on-failure\n")
    unit = loader_for(high, low).load("app-web-main.service")
    assert unit.get("Service", "Environment") == {"TYPE": "1", "PREFIX": "1", "LEVEL": "own"}
    assert unit.get("Service", "Restart") == "always"
    assert [Path(p).name for p in unit.dropin_paths] == [
        "10-type.conf", "20-prefix.conf", "30-prefix2.conf", "40-own.conf"]


def test_masked_dropin_is_skipped(dirs):
    high, low = dirs
    write(low / "web.service", "[Service]\nExecStart=/bin/true\n")
    write(low / "web.service.d" / "10-x.conf", "[Service]\nRestart=always\n")
    (high / "web.service.d").mkdir()
    os.symlink("/dev/null", high / "web.service.d" / "10-x.conf")
    assert loader_for(high, low).load("web.service").get("Service", "Restart") == "no"


def test_template_dropins_apply_to_instances(dirs):
    high, _ = dirs
    write(high / "worker@.service", "[Service]\nExecStart=/bin/true\n")
    write(high / "worker@.service.d" / "a.conf", "[Service]\nRestart=always\n")
    write(high / "worker@2.service.d" / "b.conf", "[Service]\nRestartSec=3\n")
    loader = loader_for(high)
    assert loader.load("worker@1.service").get("Service", "Restart") == "always"
    assert loader.load("worker@1.service").get("Service", "RestartSec") == 0.1
    assert loader.load("worker@2.service").get("Service", "RestartSec") == 3


def test_aliases(dirs):
    high, _ = dirs
    write(high / "web.service", "[Service]\nExecStart=/bin/true\n")
    os.symlink("web.service", high / "www.service")
    loader = loader_for(high)
    unit = loader.load("www.service")
    assert unit.name == "web.service"
    assert "www.service" in unit.aliases
    assert loader.load("web.service") is unit


def test_linked_unit_outside_search_path(dirs, tmp_path):
    high, _ = dirs
    elsewhere = write(tmp_path / "elsewhere" / "other-name.service",
                      "[Service]\nExecStart=/bin/true\n")
    os.symlink(elsewhere, high / "linked.service")
    unit = loader_for(high).load("linked.service")
    assert unit.name == "linked.service"
    assert unit.load_state == "loaded"


def _link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def test_wants_and_requires_folders(dirs):
    high, low = dirs
    _link(high / "default.target.wants" / "web.service", "../web.service")
    _link(low / "default.target.wants" / "worker@1.service", "../worker@.service")
    _link(low / "default.target.requires" / "db.service", "/elsewhere/db.service")
    write(high / "group@.target", "[Unit]\nDescription=group\n")
    _link(high / "group@.target.wants" / "member@.service", "../member@.service")
    # As in systemd 252: regular files and links to /dev/null add nothing.
    write(high / "default.target.wants" / "plain.service", "")
    _link(low / "default.target.wants" / "masked.service", "/dev/null")
    loader = loader_for(high, low)
    assert loader.wanted_by("default.target") == ["web.service", "worker@1.service", "db.service"]
    target = loader.load("default.target")
    assert target.get("Unit", "Wants") == ["web.service", "worker@1.service"]
    assert "db.service" in target.get("Unit", "Requires")
    assert "basic.target" in target.get("Unit", "Requires")
    assert loader.wanted_by("group@x.target") == ["member@x.service"]


def test_builtin_units_and_override(dirs):
    high, _ = dirs
    loader = loader_for(high)
    for name in ("default.target", "exit.target", "graphical-session.target", "basic.target",
                 "sockets.target", "timers.target", "paths.target", "shutdown.target"):
        assert loader.load(name).load_state == "loaded", name
        assert name in loader.names()
    write(high / "default.target", "[Unit]\nDescription=mine\n")
    loader.invalidate()
    assert loader.load("default.target").description == "mine"


def test_cache_and_invalidate(dirs):
    high, _ = dirs
    path = write(high / "web.service", "[Unit]\nDescription=one\n[Service]\nExecStart=/bin/true\n")
    loader = loader_for(high)
    first = loader.load("web.service")
    path.write_text("[Unit]\nDescription=two\n[Service]\nExecStart=/bin/true\n")
    assert loader.load("web.service") is first
    loader.invalidate()
    assert loader.load("web.service").description == "two"


def test_names_lists_templates(dirs):
    high, low = dirs
    write(high / "worker@.service", "[Service]\nExecStart=/bin/true\n")
    write(low / "web.service", "[Service]\nExecStart=/bin/true\n")
    write(low / "notes.txt", "")
    found = loader_for(high, low).names()
    assert "worker@.service" in found
    assert "web.service" in found
    assert "notes.txt" not in found


def test_aliases_found_from_real_name_and_their_dropins(dirs):
    high, low = dirs
    write(low / "web.service", "[Service]\nExecStart=/bin/true\n")
    os.symlink("web.service", high / "www.service")
    write(high / "www.service.d" / "10-alias.conf", "[Service]\nRestart=always\n")
    unit = loader_for(high, low).load("web.service")
    assert unit.aliases == ["www.service"]
    assert unit.get("Service", "Restart") == "always"


def test_template_alias_maps_instances(dirs):
    high, _ = dirs
    write(high / "worker@.service", "[Service]\nExecStart=/bin/echo %i\n")
    os.symlink("worker@.service", high / "job@.service")
    unit = loader_for(high).load("job@7.service")
    assert unit.name == "worker@7.service"
    assert unit.get("Service", "ExecStart")[0].words == ("/bin/echo", "7")
    assert "job@7.service" in unit.aliases


def test_builtin_units_load_without_warnings(dirs):
    loader = loader_for(*dirs)
    for name in ("default.target", "exit.target", "graphical-session.target", "shutdown.target"):
        assert loader.load(name).diagnostics == [], name


def test_alias_loop_is_an_error_not_a_crash(tmp_path: Path) -> None:
    os.symlink("loopB.service", tmp_path / "loopA.service")
    os.symlink("loopA.service", tmp_path / "loopB.service")
    loader = loader_for(tmp_path)
    for name in ("loopA.service", "loopB.service"):
        unit = loader.load(name)
        assert unit.load_state == "error"
        assert "symbolic links" in unit.load_error


@pytest.mark.parametrize(("make", "masked"), [
    (lambda p: os.symlink("/dev/null", p), True),
    (lambda p: os.symlink("/dev/zero", p), True),  # systemd takes any character device as a mask
    (lambda p: p.write_text(""), True),
    (lambda p: p.write_text("[Service]\n"), False),
    (lambda p: os.symlink("missing.service", p), False),
    (lambda p: p.mkdir(), False),
])
def test_is_mask_file_kinds(tmp_path: Path, make, masked: bool) -> None:
    path = tmp_path / "web.service"
    make(path)

    assert is_mask(path) is masked
