"""The manager-wide defaults a unit falls back to when it does not set a directive.

systemd reads them from `[Manager] DefaultRestartSec=` and friends in
user.conf; unitmgr reads them from `unitmgr.conf` (manager/config.py). The
manager passes one `ManagerDefaults` to its `UnitLoader`, which stores it in
every `Unit` it builds (`Unit.defaults`); `directives.default_value()` reads it
there. A unit built without one (as `unitmgr verify` does) gets systemd's
built-in values below. This module stays a leaf so `units.model` can use it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ManagerDefaults:
    restart_sec: float = 0.1
    timeout_start_sec: float = 90.0
    timeout_stop_sec: float = 90.0
    start_limit_burst: int = 5
    start_limit_interval_sec: float = 10.0


BUILTIN_DEFAULTS = ManagerDefaults()

# The directive each field is the default of.
DEFAULTED_DIRECTIVES: dict[tuple[str, str], str] = {
    ("Service", "RestartSec"): "restart_sec",
    ("Service", "TimeoutStopSec"): "timeout_stop_sec",
    ("Unit", "StartLimitBurst"): "start_limit_burst",
    ("Unit", "StartLimitIntervalSec"): "start_limit_interval_sec",
}
