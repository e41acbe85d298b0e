"""Adversarial event subscribers on a real manager: odd intervals, evicted and abandoned subscriptions."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from support import ManagerProcess, wait_for, write_unit
from unitmgr.manager import paths as paths_module
from unitmgr.shell.client import Client, RemoteError

# The limit of subscriptions per client key (docs/protocol.md). Every local client shares one key.
SUBSCRIPTIONS_PER_KEY = 16


@contextmanager
def client_of(manager: ManagerProcess) -> Iterator[Client]:
    with Client.local(paths_module.resolve(manager.env)) as client:
        yield client


def first_event(client: Client, kinds: set[str], timeout: float) -> dict | None:
    """Return the first event of one of `kinds`, or None after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    for event in client.iter_events(timeout=timeout):
        if event.get("event") in kinds:
            return event
        if time.monotonic() > deadline:
            break
    return None


def test_long_stats_interval_delays_no_one(make_manager, tmp_path: Path) -> None:
    manager = make_manager(tmp_path / "units")
    with client_of(manager) as slow, client_of(manager) as quick:
        slow.subscribe(["stats"], interval=3000.0)
        assert first_event(slow, {"stats"}, timeout=5) is not None, "the first sample comes at once"
        quick.subscribe(["stats"], interval=0.2)
        assert first_event(quick, {"stats"}, timeout=5) is not None, \
            "a later subscriber waited for the interval of an earlier one"


@pytest.mark.parametrize("interval", [float("nan"), float("inf"), 1e12])
def test_stats_interval_rejects_odd_values(make_manager, tmp_path: Path, interval: float) -> None:
    manager = make_manager(tmp_path / "units")
    with client_of(manager) as client:
        with pytest.raises(RemoteError) as bad:
            client.subscribe(["stats"], interval=interval)
        assert bad.value.code == "bad-request"
        assert "interval" in str(bad.value)
        assert manager.request("is-system-running") is not None


def test_evicted_subscriber_gets_ended(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "tick.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
    manager = make_manager(units)
    with ExitStack() as stack:
        first = stack.enter_context(client_of(manager))
        first.subscribe(["state"], ["tick"])
        for _ in range(SUBSCRIPTIONS_PER_KEY):
            other = stack.enter_context(client_of(manager))
            other.subscribe(["state"], ["tick"])
        manager.request("start", {"units": ["tick"]})
        event = first_event(first, {"state", "ended"}, timeout=5)
        assert event is not None, "the evicted subscriber received nothing: not its events, not a notice"
        assert event["event"] == "ended"
        assert "subscriptions" in event["reason"]


def test_abandoned_subscriptions_evicted_first(make_manager, tmp_path: Path) -> None:
    """A subscriber that stopped acknowledging is evicted before one that is up to date."""
    units = tmp_path / "units"
    write_unit(units, "tick.service", "[Service]\nType=oneshot\nExecStart=/bin/true\n")
    manager = make_manager(units)
    with ExitStack() as stack:
        live = stack.enter_context(client_of(manager))
        live.subscribe(["state"], ["tick"])
        for _ in range(SUBSCRIPTIONS_PER_KEY - 1):
            # Closed without unsubscribing, as a killed `unitsh logs -f` leaves it.
            with client_of(manager) as gone:
                gone.subscribe(["state"], ["tick"])
        manager.request("start", {"units": ["tick"]})
        finished = first_event(live, {"state"}, timeout=5)
        while finished is not None and finished["active_state"] != "inactive":
            finished = first_event(live, {"state"}, timeout=5)
        assert finished is not None, "the first run's events did not arrive"
        # Reading on with nothing to read acknowledges, as a running `logs -f` does,
        # while the abandoned subscriptions pass their time to acknowledge.
        assert first_event(live, {"state"}, timeout=3) is None
        for _ in range(3):
            newcomer = stack.enter_context(client_of(manager))
            newcomer.subscribe(["state"], ["tick"])
        manager.request("start", {"units": ["tick"]})
        event = first_event(live, {"state", "ended"}, timeout=5)
        assert event is not None, "the live subscriber was evicted without a notice"
        assert event["event"] == "state", f"the live subscriber was evicted: {event}"
        assert event["seq"] > finished["seq"]
        wait_for(lambda: "more than 16 subscriptions" in manager.log(), message="evictions logged")


def test_follower_reports_eviction(make_manager, tmp_path: Path) -> None:
    import io

    from unitmgr.shell.follow import follow_logs
    from unitmgr.shell.render import Output

    units = tmp_path / "units"
    write_unit(units, "quiet.service", "[Service]\nType=oneshot\nExecStart=/bin/echo quiet\n")
    manager = make_manager(units)
    out = Output(stdout=io.StringIO(), stderr=io.StringIO())
    deadline = time.monotonic() + 30
    others: list[Client] = []

    def stop() -> bool:
        # Once following, fill the key's subscriptions until the follower is evicted.
        if not others:
            for _ in range(SUBSCRIPTIONS_PER_KEY):
                other = Client.local(paths_module.resolve(manager.env))
                others.append(other)
                other.subscribe(["state"])
        return time.monotonic() > deadline

    try:
        with client_of(manager) as client:
            status = follow_logs(client, out, {"units": ["quiet"]}, "cat", "", stop=stop)
    finally:
        for other in others:
            other.close()
    assert status == 1
    assert "the manager ended this subscription" in out.stderr.getvalue()
    assert "subscriptions of one client" in out.stderr.getvalue()


def test_follower_unsubscribes_on_stop(make_manager, tmp_path: Path) -> None:
    import io

    from unitmgr.shell.follow import follow_logs
    from unitmgr.shell.render import Output

    units = tmp_path / "units"
    write_unit(units, "quiet.service", "[Service]\nType=oneshot\nExecStart=/bin/echo quiet\n")
    manager = make_manager(units)
    out = Output(stdout=io.StringIO(), stderr=io.StringIO())
    with client_of(manager) as client:
        status = follow_logs(client, out, {"units": ["quiet"]}, "cat", "", stop=lambda: True)
    assert status == 0
    wait_for(lambda: "removed: unsubscribed" in manager.log(), message="the follower's unsubscribe")
