"""Pure parts of supervision: implicit dependencies, cycle detection, the start limit window."""

from __future__ import annotations

from unitmgr.manager.deps import dependencies, target_member_order
from unitmgr.manager.jobs import find_cycles
from unitmgr.manager.service import StartLimit
from unitmgr.units.loader import build_unit
from unitmgr.units.specifiers import SpecifierContext


def unit(name: str, text: str):
    return build_unit(name, (f"/u/{name}", text), [], SpecifierContext.from_environment({"HOME": "/home/u"}))


def test_service_default_dependencies() -> None:
    web = unit("web.service", "[Unit]\nAfter=db.service\n[Service]\nExecStart=/bin/true\n")
    assert list(dependencies(web, "Requires")) == ["basic.target"]
    assert list(dependencies(web, "After")) == ["db.service", "basic.target"]
    assert list(dependencies(web, "Conflicts")) == ["shutdown.target"]
    assert list(dependencies(web, "Before")) == ["shutdown.target"]
    bare = unit("bare.service", "[Unit]\nDefaultDependencies=no\n[Service]\nExecStart=/bin/true\n")
    assert list(dependencies(bare, "Requires")) == []
    assert list(dependencies(bare, "After")) == []


def test_target_orders_after_members() -> None:
    group = unit("group.target", "[Unit]\nWants=a.service b.service\nRequires=c.service\n")
    a = unit("a.service", "[Service]\nExecStart=/bin/true\n")
    b = unit("b.service", "[Unit]\nAfter=group.target\n[Service]\nExecStart=/bin/true\n")
    lookup = {u.name: u for u in (group, a, b)}
    # b orders itself after the target, so the target does not wait for b; c is not loaded.
    assert target_member_order(group, lookup) == ["a.service"]
    assert list(dependencies(group, "Conflicts")) == ["shutdown.target"]
    loose = unit("loose.target", "[Unit]\nWants=a.service\nDefaultDependencies=no\n")
    assert target_member_order(loose, lookup | {"loose.target": loose}) == []


def test_old_bind_spelling_merged() -> None:
    old = unit("old.service", "[Unit]\nBindTo=x.service\n[Service]\nExecStart=/bin/true\n")
    assert list(dependencies(old, "BindsTo")) == ["x.service"]


def test_find_cycles_names_every_member() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": set()}
    assert sorted(find_cycles(edges)) == [["a", "b", "c"], ["e"]]
    assert find_cycles({"x": {"y"}, "y": set()}) == []


def test_start_limit_sliding_window() -> None:
    limit = StartLimit(interval=10.0, burst=3)
    assert [limit.allow(t) for t in (0.0, 1.0, 2.0)] == [True, True, True]
    assert limit.allow(9.0) is False
    # A fixed window would have reset at 10 s; the sliding one drops only the start at 0 s.
    assert limit.allow(10.5) is True
    assert limit.allow(10.6) is False
    assert limit.allow(12.1) is True
    limit.reset()
    assert [limit.allow(12.2) for _ in range(3)] == [True, True, True]


def test_start_limit_disabled() -> None:
    for interval, burst in ((0.0, 5), (10.0, 0)):
        limit = StartLimit(interval=interval, burst=burst)
        assert all(limit.allow(float(t) / 100) for t in range(50))


def test_dependencies_computed_once_per_definition() -> None:
    web = unit("web.service", "[Unit]\nAfter=db.service\n")
    first = dependencies(web, "After")
    assert dependencies(web, "After") is first
    # daemon-reload builds a new unit, which computes its own lists.
    reloaded = unit("web.service", "[Unit]\nAfter=cache.service\n")
    assert list(dependencies(reloaded, "After")) == ["cache.service", "basic.target"]


def test_unwritten_keys_empty() -> None:
    web = unit("web.service", "[Unit]\nWants=db.service\n[Service]\nExecStart=/bin/true\n")

    assert dependencies(web, "Wants") == ("db.service",)
    assert dependencies(web, "PartOf") == ()
    assert dependencies(web, "OnFailure") == ()


def test_key_outside_the_known_list() -> None:
    # Not one of DEPENDENCY_KEYS: computed on request, and the same on the next call.
    web = unit("web.service", "[Unit]\nDocumentation=man:web(1)\n[Service]\nExecStart=/bin/true\n")

    assert dependencies(web, "Documentation") == ("man:web(1)",)
    assert dependencies(web, "Documentation") == ("man:web(1)",)


def test_old_spelling_merged() -> None:
    web = unit("web.service", "[Unit]\nBindTo=db.service\n[Service]\nExecStart=/bin/true\n")

    assert dependencies(web, "BindsTo") == ("db.service",)


def brute_force(unit_object) -> dict[str, tuple[str, ...]]:
    """Every dependency list computed key by key, as the lookup did before it skipped unwritten keys."""
    from unitmgr.manager import deps

    default_dependencies = unit_object.get("Unit", "DefaultDependencies") is not False
    computed = {key: deps._compute(unit_object, key, default_dependencies) for key in deps.DEPENDENCY_KEYS}
    return {key: names for key, names in computed.items() if names}


def test_skipped_keys_match_brute_force() -> None:
    cases = [
        unit("web.service", "[Unit]\nWants=db.service\nAfter=db.service\nBindTo=cache.service\n"
                            "OnFailure=alert.service\n[Service]\nExecStart=/bin/true\n"),
        unit("bare.service", "[Unit]\nDefaultDependencies=no\nRequires=x.service\n[Service]\nExecStart=/bin/true\n"),
        unit("group.target", "[Unit]\nWants=a.service\nPartOf=other.target\n"),
        unit("shutdown.target", "[Unit]\nDescription=Shutdown\n"),
        unit("api.socket", "[Unit]\nBefore=sockets.target\n[Socket]\nListenStream=8080\n"),
        unit("tick.timer", "[Unit]\nUpholds=tick.service\n[Timer]\nOnCalendar=daily\n"),
    ]
    for case in cases:
        expected = brute_force(case)
        for key in ("Wants", "Requires", "BindsTo", "After", "Before", "Conflicts", "PartOf", "OnFailure",
                    "Upholds", "Requisite", "PropagatesStopTo"):
            assert dependencies(case, key) == expected.get(key, ()), (case.name, key)
