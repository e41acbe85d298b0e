"""ReverseDependencies: who lists a unit, kept in step with the manager's runtimes."""

from __future__ import annotations

from unitmgr.manager.reversedeps import SWEEP_SLACK, ReverseDependencies
from unitmgr.units.loader import build_unit
from unitmgr.units.model import Unit
from unitmgr.units.specifiers import SpecifierContext

CONTEXT = SpecifierContext.from_environment({"HOME": "/home/u"})


def unit(name: str, unit_section: str = "") -> Unit:
    text = f"[Unit]\n{unit_section}\n[Service]\nExecStart=/bin/true\n"
    return build_unit(name, (f"/u/{name}", text), [], CONTEXT)


class Runtime:
    """The two attributes the index reads from a UnitRuntime."""

    def __init__(self, loaded: Unit) -> None:
        self.name = loaded.name
        self.unit = loaded


def add(runtimes: dict[str, Runtime], index: ReverseDependencies, loaded: Unit) -> Runtime:
    runtime = Runtime(loaded)
    runtimes[loaded.name] = runtime
    index.update(runtime, loaded.name)  # type: ignore[arg-type]
    return runtime


def names(found: list) -> list[str]:
    return [runtime.name for runtime in found]


def test_dependents_by_key() -> None:
    runtimes: dict[str, Runtime] = {}
    index = ReverseDependencies(runtimes)  # type: ignore[arg-type]
    add(runtimes, index, unit("db.service"))
    add(runtimes, index, unit("web.service", "BindsTo=db.service"))
    add(runtimes, index, unit("api.service", "Requires=db.service\nPartOf=db.service"))
    add(runtimes, index, unit("cache.service", "Wants=db.service"))

    assert names(index.dependents("db.service", ("BindsTo",))) == ["web.service"]
    # Listed under two of the keys asked for, api comes back once, in creation order.
    assert names(index.dependents("db.service", ("PartOf", "Requires", "BindsTo"))) == \
        ["web.service", "api.service"]
    assert index.dependents("web.service", ("BindsTo",)) == []


def test_implicit_dependencies_indexed() -> None:
    runtimes: dict[str, Runtime] = {}
    index = ReverseDependencies(runtimes)  # type: ignore[arg-type]
    add(runtimes, index, unit("a.service"))
    add(runtimes, index, unit("b.service", "DefaultDependencies=no"))
    # A service's implicit Conflicts=shutdown.target and Requires=basic.target (deps.py).
    assert names(index.dependents("shutdown.target", ("Conflicts",))) == ["a.service"]
    assert names(index.dependents("basic.target", ("Requires",))) == ["a.service"]


def test_old_bind_spelling_indexed() -> None:
    runtimes: dict[str, Runtime] = {}
    index = ReverseDependencies(runtimes)  # type: ignore[arg-type]
    add(runtimes, index, unit("old.service", "BindTo=x.service"))
    assert names(index.dependents("x.service", ("BindsTo",))) == ["old.service"]


def test_update_replaces_definition() -> None:
    runtimes: dict[str, Runtime] = {}
    index = ReverseDependencies(runtimes)  # type: ignore[arg-type]
    first = add(runtimes, index, unit("web.service", "BindsTo=db.service"))
    add(runtimes, index, unit("other.service", "BindsTo=db.service"))

    first.unit = unit("web.service", "BindsTo=cache.service")
    index.update(first)  # type: ignore[arg-type]
    assert names(index.dependents("db.service", ("BindsTo",))) == ["other.service"]
    # The runtime keeps its place in the order across a new definition.
    first.unit = unit("web.service", "BindsTo=db.service")
    index.update(first)  # type: ignore[arg-type]
    assert names(index.dependents("db.service", ("BindsTo",))) == ["web.service", "other.service"]


def test_definition_swapped_without_update() -> None:
    runtimes: dict[str, Runtime] = {}
    index = ReverseDependencies(runtimes)  # type: ignore[arg-type]
    web = add(runtimes, index, unit("web.service", "BindsTo=db.service\nPartOf=db.service"))
    web.unit = unit("web.service", "PartOf=db.service")
    # The lookup notices the new definition and answers from it.
    assert index.dependents("db.service", ("BindsTo",)) == []
    assert names(index.dependents("db.service", ("PartOf",))) == ["web.service"]


def test_removed_runtime_not_returned() -> None:
    runtimes: dict[str, Runtime] = {}
    index = ReverseDependencies(runtimes)  # type: ignore[arg-type]
    add(runtimes, index, unit("web.service", "BindsTo=db.service"))
    del runtimes["web.service"]
    assert index.dependents("db.service", ("BindsTo",)) == []

    # A new runtime under the same name is indexed from its own definition.
    add(runtimes, index, unit("web.service", "Requires=db.service"))
    assert index.dependents("db.service", ("BindsTo",)) == []
    assert names(index.dependents("db.service", ("Requires",))) == ["web.service"]


def test_runtime_under_another_key() -> None:
    runtimes: dict[str, Runtime] = {}
    index = ReverseDependencies(runtimes)  # type: ignore[arg-type]
    # The manager stores a unit loaded through an alias under the alias.
    runtime = Runtime(unit("real.service", "BindsTo=db.service"))
    runtimes["alias.service"] = runtime
    index.update(runtime, "alias.service")  # type: ignore[arg-type]
    assert index.dependents("db.service", ("BindsTo",)) == [runtime]
    runtime.unit = unit("real.service", "BindsTo=other.service")
    index.update(runtime)  # type: ignore[arg-type]
    assert index.dependents("other.service", ("BindsTo",)) == [runtime]


def test_removed_runtimes_swept() -> None:
    runtimes: dict[str, Runtime] = {}
    index = ReverseDependencies(runtimes)  # type: ignore[arg-type]
    add(runtimes, index, unit("keep.service", "Wants=x.service"))
    for number in range(3 * SWEEP_SLACK):
        add(runtimes, index, unit(f"gone{number}.service", "Wants=x.service"))
        del runtimes[f"gone{number}.service"]
    # Removed runtimes never come back, and the sweeps keep them from piling up.
    assert len(index._indexed) <= 2 * len(runtimes) + SWEEP_SLACK
    assert names(index.dependents("x.service", ("Wants",))) == ["keep.service"]
    assert len(index._indexed) == 1
