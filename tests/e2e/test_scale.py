"""`scale`: instances web@1..web@N of web@.service sharing web.socket, kept across manager restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
from socketapps import HTTP_SERVER, PYTHON, LoopClient, http_get, write_script
from support import free_port, wait_for, write_unit
from unitmgr.manager import protocol


def instance_states(manager, prefix: str = "web@") -> dict[str, str]:
    units = protocol.expand_table(manager.request("list", {"all": True}), "units")
    return {u["name"]: u["active_state"] for u in units if u["name"].startswith(prefix)}


def running(manager) -> list[str]:
    return sorted(name for name, state in instance_states(manager).items() if state == "active")


def answering_tags(port: int, wanted: set[str], timeout: float = 30.0) -> set[str]:
    """Send requests until every tag in `wanted` has replied; return every tag seen."""
    seen: set[str] = set()

    def all_seen() -> bool:
        seen.add(http_get(("127.0.0.1", port)).split()[0])
        return wanted <= seen

    wait_for(all_seen, timeout=timeout, interval=0, message=f"answers from {sorted(wanted)}")
    return seen


@pytest.fixture
def web_units(tmp_path: Path) -> tuple[Path, int]:
    units = tmp_path / "units"
    server = write_script(tmp_path, "server.py", HTTP_SERVER)
    port = free_port()
    write_unit(units, "web.socket", f"[Socket]\nListenStream=127.0.0.1:{port}\n", enable=True)
    write_unit(units, "web@.service", f"[Unit]\nDescription=web worker %i\n\n[Service]\nSockets=web.socket\n"
               f"ExecStart={PYTHON} {server} web@%i\nTimeoutStopSec=5\n")
    return units, port


def test_scale_up_down_and_across_restart(make_manager, web_units: tuple[Path, int]) -> None:
    units, port = web_units
    manager = make_manager(units)

    scaled = manager.unitsh("-c", "scale web 4")
    assert scaled.returncode == 0, scaled.stderr
    assert scaled.stdout.strip() == "web@.service: scaled from 0 instances to 4"
    assert running(manager) == [f"web@{k}.service" for k in range(1, 5)]
    pids = {manager.status(f"web@{k}")["main_pid"] for k in range(1, 5)}
    assert len(pids) == 4
    assert 0 not in pids

    result = manager.request("scale", {"unit": "web", "count": 2})
    assert result["previous"] == 4
    assert result["count"] == 2
    assert [(j["unit"], j["job"], j["result"]) for j in result["jobs"]] == [
        ("web@1.service", "start", "done"), ("web@2.service", "start", "done"),
        ("web@3.service", "stop", "done"), ("web@4.service", "stop", "done")]
    assert running(manager) == ["web@1.service", "web@2.service"]
    # Exactly two instances serve: both accept on the one listener, and no other process does.
    seen = answering_tags(port, {"web@1", "web@2"})
    for _ in range(20):
        seen.add(http_get(("127.0.0.1", port)).split()[0])
    assert seen == {"web@1", "web@2"}

    manager.stop()
    manager.start()
    wait_for(lambda: running(manager) == ["web@1.service", "web@2.service"], timeout=30,
             message="the saved count of 2 applied at boot")
    assert answering_tags(port, {"web@1", "web@2"}) == {"web@1", "web@2"}

    stepped = manager.unitsh("-c", "scale web@.service +1")
    assert stepped.returncode == 0, stepped.stderr
    assert running(manager) == ["web@1.service", "web@2.service", "web@3.service"]
    stepped = manager.unitsh("-c", "scale web -1")
    assert stepped.returncode == 0, stepped.stderr
    assert stepped.stdout.strip() == "web@.service: scaled from 3 instances to 2"
    assert running(manager) == ["web@1.service", "web@2.service"]
    # The web console's form of a step.
    assert manager.request("scale", {"template": "web", "delta": 1})["count"] == 3
    assert running(manager) == ["web@1.service", "web@2.service", "web@3.service"]


def test_restart_all_workers_drops_nothing(make_manager, web_units: tuple[Path, int]) -> None:
    """Restarting every instance at once: the listener stays open in the manager, so no request fails."""
    units, port = web_units
    manager = make_manager(units)
    assert manager.request("scale", {"unit": "web", "count": 3})["count"] == 3
    client = LoopClient(("127.0.0.1", port))
    client.start()
    try:
        for _ in range(2):
            served = client.ok
            wait_for(lambda served=served: client.ok > served + 5, timeout=30, message="requests served")
            restarted = manager.unitsh("-c", "restart web@1 web@2 web@3", timeout=60)
            assert restarted.returncode == 0, restarted.stderr
        served = client.ok
        wait_for(lambda: client.ok > served + 5, timeout=30, message="requests after the last restart")
    finally:
        client.done.set()
        client.join(30)
    print(f"restart of 3 workers: {client.ok} requests, {len(client.failures)} failed")
    assert client.failures == [], client.failures[:5]
    assert len(client.pids) >= 6, "answers come from the workers of all three runs"


def test_scale_rejects_bad_input(make_manager, web_units: tuple[Path, int]) -> None:
    from unitmgr.shell.client import RemoteError

    units, _port = web_units
    manager = make_manager(units)
    cases = [
        ({"unit": "nosuch", "count": 2}, "nosuch@.service"),
        ({"unit": "web", "count": "many"}, "'many'"),
        ({"unit": "web", "count": "-1"}, "out of range"),
        ({"unit": "web", "count": 5000}, "out of range"),
    ]
    for args, fragment in cases:
        with pytest.raises(RemoteError) as caught:
            manager.request("scale", args)
        assert fragment in str(caught.value), (args, str(caught.value))
    assert instance_states(manager) == {}
    missing = manager.unitsh("-c", "scale nosuch 2")
    assert missing.returncode == 5
    assert "nosuch@.service not found" in missing.stderr
    usage = manager.unitsh("-c", "scale web")
    assert usage.returncode == 2
    assert "expected TEMPLATE COUNT" in usage.stderr
