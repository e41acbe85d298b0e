"""Evaluating a unit's Condition*=/Assert*= against this host before a start."""

from __future__ import annotations

import grp
import os
import platform
import pwd
import socket
from collections.abc import Mapping
from functools import lru_cache

from unitmgr.units.conditions import HostProbe, evaluate, unit_conditions
from unitmgr.units.model import Unit


@lru_cache(maxsize=1)
def _identity() -> tuple[str, tuple[str, ...]]:
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = str(os.getuid())
    groups = []
    for gid in os.getgroups():
        try:
            groups.append(grp.getgrgid(gid).gr_name)
        except KeyError:
            groups.append(str(gid))
    return user, tuple(groups)


def host_probe(environment: Mapping[str, str]) -> HostProbe:
    user, groups = _identity()
    return HostProbe(
        environment=environment,
        user=user,
        uid=os.getuid(),
        groups=groups,
        hostname=socket.gethostname(),
        architecture=platform.machine(),
        kernel_release=platform.release(),
    )


def evaluate_unit_conditions(unit: Unit, environment: Mapping[str, str]) -> tuple[str, list[str]] | None:
    """None when the unit may start; else ("condition" or "assert", the checks that failed)."""
    conditions, asserts = unit_conditions(unit)
    if not conditions and not asserts:
        return None
    probe = host_probe(environment)
    held, failed = evaluate(asserts, probe)
    if not held:
        return "assert", failed
    held, failed = evaluate(conditions, probe)
    if not held:
        return "condition", failed
    return None
