"""Listen*= address forms, binding errors and the descriptor order of spawn's file actions."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest
from unitmgr.manager.listen import ListenError, ListenOptions, open_listener, parse_address, unit_addresses
from unitmgr.manager.spawn import SpawnSpec, _file_actions


@pytest.mark.parametrize(
    ("setting", "value", "family", "address"),
    [
        ("ListenStream", "127.0.0.1:8080", socket.AF_INET, ("127.0.0.1", 8080)),
        ("ListenStream", "[::1]:8080", socket.AF_INET6, ("::1", 8080, 0, 0)),
        ("ListenStream", "8080", socket.AF_INET6, ("::", 8080, 0, 0)),
        ("ListenStream", "/run/app.sock", socket.AF_UNIX, "/run/app.sock"),
        ("ListenStream", "@app", socket.AF_UNIX, "\0app"),
        ("ListenDatagram", "127.0.0.1:53", socket.AF_INET, ("127.0.0.1", 53)),
        ("ListenSequentialPacket", "/run/seq", socket.AF_UNIX, "/run/seq"),
        ("ListenFIFO", "/run/fifo", 0, "/run/fifo"),
    ],
)
def test_address_forms(setting: str, value: str, family: int, address: object) -> None:
    parsed = parse_address(setting, value)
    assert parsed.family == family
    assert parsed.address == address
    assert str(parsed) == f"{setting}={value}"


@pytest.mark.parametrize(
    ("setting", "value", "fragment"),
    [
        ("ListenStream", "127.0.0.1:99999", "1 to 65535"),
        ("ListenStream", "localhost:80", "not an IPv4 address"),
        ("ListenStream", "::1:80", "brackets"),
        ("ListenStream", "[::1]", "[ADDRESS]:PORT"),
        ("ListenStream", "[zz]:80", "not an IPv6 address"),
        ("ListenStream", "/" + "x" * 120, "107 bytes"),
        ("ListenSequentialPacket", "127.0.0.1:80", "only unix sockets"),
        ("ListenFIFO", "relative/fifo", "absolute path"),
        ("ListenStream", "vsock:2:80", "not supported"),
    ],
)
def test_bad_addresses_name_value_and_fix(setting: str, value: str, fragment: str) -> None:
    with pytest.raises(ListenError) as caught:
        parse_address(setting, value)
    assert fragment in str(caught.value)
    assert value[:20] in str(caught.value)


def test_taken_port_reports_address() -> None:
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        with pytest.raises(ListenError) as caught:
            open_listener(parse_address("ListenStream", f"127.0.0.1:{port}"), ListenOptions())
    finally:
        holder.close()
    assert f"ListenStream=127.0.0.1:{port}: address already in use" in str(caught.value)


def test_unix_socket_stale_live_and_mode(tmp_path: Path) -> None:
    path = tmp_path / "app.sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()  # leaves the file behind with no listener
    address = parse_address("ListenStream", str(path))
    listener = open_listener(address, ListenOptions(socket_mode=0o600))
    try:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert not os.get_inheritable(listener.fd)
        with pytest.raises(ListenError) as caught:
            open_listener(address, ListenOptions())
        assert "a program is listening" in str(caught.value)
    finally:
        listener.close(remove_node=True)
    assert not path.exists()


def test_fifo_created_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ctl.fifo"
    listener = open_listener(parse_address("ListenFIFO", str(path)), ListenOptions(socket_mode=0o620))
    try:
        assert stat.S_ISFIFO(os.stat(path).st_mode)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o620
    finally:
        listener.close(remove_node=False)
    assert path.exists()


def test_passed_fds_survive_overlapping_numbers() -> None:
    """Sources that are themselves targets (fd 4 -> 3, fd 3 -> 4) must not overwrite each other."""
    spec = SpawnSpec(path="/bin/true", argv=["true"], env={}, stdout_fd=10, stderr_fd=11, pass_fds=[4, 3])
    actions = _file_actions(spec, devnull=12, extra=[5])
    copies: dict[int, int] = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 10: 10, 11: 11, 12: 12}
    for action in actions:
        if action[0] == os.POSIX_SPAWN_DUP2:
            copies[action[2]] = copies[action[1]]
        elif action[0] == os.POSIX_SPAWN_CLOSE:
            copies.pop(action[1])
    assert copies[3] == 4
    assert copies[4] == 3
    assert copies[5] == 5
    assert all(action[1] != action[2] for action in actions if action[0] == os.POSIX_SPAWN_DUP2)


CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "units"


@pytest.mark.skipif(not CORPUS.is_dir(), reason="corpus not present")
def test_corpus_sockets_bind(tmp_path: Path) -> None:
    """Every real socket unit of the corpus loads, and its sockets bind under a private runtime dir."""
    from unitmgr.units.loader import UnitLoader
    from unitmgr.units.specifiers import SpecifierContext

    units = tmp_path / "units"
    units.mkdir()
    names = []
    for path in sorted(CORPUS.glob("*.socket")):
        name = path.name.rsplit("__", 1)[-1]
        (units / name).write_text(path.read_text())
        names.append(name)
    assert names, "the corpus has socket units"
    runtime = tmp_path / "rt"
    loader = UnitLoader([units], SpecifierContext.from_environment({**os.environ, "XDG_RUNTIME_DIR": str(runtime)}))
    for name in names:
        unit = loader.load(name)
        assert unit.load_state == "loaded", (name, unit.load_error)
        opened = []
        try:
            for address in unit_addresses(unit):
                assert address.node is None or address.node.startswith(str(runtime)), address
                opened.append(open_listener(address, ListenOptions.from_unit(unit)))
        finally:
            for listener in opened:
                listener.close(remove_node=True)
        assert opened, name


def test_addresses_keep_file_order(tmp_path: Path) -> None:
    """Kinds interleave as written; an empty assignment in a drop-in resets its key."""
    from unitmgr.units.loader import UnitLoader
    from unitmgr.units.specifiers import SpecifierContext

    units = tmp_path / "units"
    (units / "mix.socket.d").mkdir(parents=True)
    (units / "mix.socket").write_text(
        "[Socket]\nListenFIFO=/run/a.fifo\nListenStream=127.0.0.1:1001\nListenDatagram=127.0.0.1:1002\n"
        "ListenStream=127.0.0.1:1003\n")
    (units / "mix.socket.d" / "override.conf").write_text(
        "[Socket]\nListenDatagram=\nListenDatagram=127.0.0.1:1004\nListenStream=/run/b.sock\n")
    unit = UnitLoader([units], SpecifierContext.from_environment()).load("mix.socket")
    assert [str(a) for a in unit_addresses(unit)] == [
        "ListenFIFO=/run/a.fifo",
        "ListenStream=127.0.0.1:1001",
        "ListenStream=127.0.0.1:1003",
        "ListenDatagram=127.0.0.1:1004",
        "ListenStream=/run/b.sock",
    ]
