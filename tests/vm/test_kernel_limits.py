"""Kernel-enforced and manager-enforced resource limits, run inside a VM whose cgroup v2 has its controllers.

The session boots the VM once (harness.py) and runs there:
- guest_kernel_limits.py: limits written to and enforced by the kernel;
- tests/manager/test_cgroups.py: the cgroup tree on the real hierarchy;
- from tests/e2e/test_limits.py, the MemoryMax= and TasksMax= tests in both
  resource modes: the `--no-cgroups` variants, in which the manager enforces
  the limits although the kernel could, and the cgroup variants, which skip
  there because the kernel enforces them. test_limits.py's other cgroup
  tests run on the host, whose cgroup v2 tree is writable but has no
  controllers, so that the VM, which may be emulated, runs only what needs them.
The tests here check the guest's JUnit XML. They skip where /dev/kvm, QEMU
or the kernel that tests/vm/fetch-kernel unpacks is missing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import harness
import pytest

pytestmark = pytest.mark.timeout(600)

GUEST_TESTS = [
    "tests/vm/guest_kernel_limits.py", "tests/manager/test_cgroups.py", "tests/e2e/test_limits.py",
    "-k", "not test_limits.py or memory_max_kills_and_restarts or tasks_max_holds", "--durations=10",
]
KERNEL_ENFORCES = "the kernel's {} controller enforces this limit here"


@pytest.fixture(scope="session")
def guest_run(tmp_path_factory: pytest.TempPathFactory) -> harness.GuestRun:
    reason = harness.missing_requirement()
    if reason:
        pytest.skip(f"cannot boot the test VM: {reason}")
    return harness.run_pytest_in_vm(GUEST_TESTS, tmp_path_factory.mktemp("vm"))


def outcomes(run: harness.GuestRun) -> dict[str, tuple[str, str]]:
    """Map each guest test's node id to its outcome (passed, skipped, failed, error) and message."""
    results = {}
    for case in ET.parse(run.junit).getroot().iter("testcase"):
        module = case.get("classname", "").replace(".", "/")
        node = f"{module}.py::{case.get('name')}"
        outcome, message = "passed", ""
        for child in case:
            if child.tag in ("skipped", "failure", "error"):
                outcome = "failed" if child.tag == "failure" else child.tag
                message = child.get("message", "")
        results[node] = (outcome, message)
    return results


def describe(run: harness.GuestRun) -> str:
    return (f"guest pytest exit code {run.returncode} after {run.seconds:.0f} s ({run.accel}); manager logs in "
            f"{run.results / 'manager-logs'}\n--- pytest output ---\n{run.output[-6000:]}\n"
            f"--- console ---\n{run.console[-3000:]}")


def test_guest_pytest_passed(guest_run: harness.GuestRun) -> None:
    assert guest_run.returncode == 0, describe(guest_run)


def test_guest_kernel_tests_ran(guest_run: harness.GuestRun) -> None:
    results = {node: outcome for node, outcome in outcomes(guest_run).items()
               if node.startswith("tests/vm/guest_kernel_limits.py::")}
    assert len(results) >= 8, describe(guest_run)
    for node, (outcome, message) in results.items():
        assert outcome == "passed", f"{node}: {outcome} {message}"


def test_guest_cgroup_tests_ran(guest_run: harness.GuestRun) -> None:
    # In the VM the cgroup tree tests run on a hierarchy with controllers. The
    # cgroup variants of the limit tests skip there, because the kernel enforces.
    allowed_skips = {KERNEL_ENFORCES.format(c) for c in ("memory", "pids")}
    results = {node: outcome for node, outcome in outcomes(guest_run).items()
               if node.startswith("tests/manager/test_cgroups.py::") or node.endswith("[cgroup]")}
    passed = [node for node, (outcome, _message) in results.items() if outcome == "passed"]
    assert len(passed) >= 5, describe(guest_run)
    for node, (outcome, message) in results.items():
        if outcome == "skipped":
            assert message.removeprefix("Skipped: ") in allowed_skips, f"{node}: {message}"
        else:
            assert outcome == "passed", f"{node}: {outcome} {message}"


def test_guest_manager_mode_ran(guest_run: harness.GuestRun) -> None:
    # --no-cgroups forces the manager's own enforcement although the kernel could enforce.
    results = {node: outcome for node, outcome in outcomes(guest_run).items() if node.endswith("[process]")}
    assert "tests/e2e/test_limits.py::test_memory_max_kills_and_restarts[process]" in results
    assert "tests/e2e/test_limits.py::test_tasks_max_holds[process]" in results
    for node, (outcome, message) in results.items():
        assert outcome == "passed", f"{node}: {outcome} {message}"
