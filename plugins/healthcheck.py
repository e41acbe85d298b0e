"""`unitmgr healthcheck`: restart a unit whose HTTP endpoint stops answering.

Every `--interval` seconds, while the unit is active, it requests `--url`
with a `--timeout`; an answer with a status below 500 counts as healthy.
After `--failures` failed checks in a row it logs why and asks the manager
to restart the unit, then waits `--grace` seconds before checking again.
Run it by hand or as a unit next to the one it watches.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("unitmgr.healthcheck")


@dataclass
class CheckSettings:
    unit: str
    url: str
    interval: float = 5.0
    timeout: float = 2.0
    failures: int = 3
    grace: float = 10.0


def probe(url: str, timeout: float) -> str | None:
    """Request `url`; return None when healthy, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            if response.status >= 500:
                return f"HTTP status {response.status}"
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            return f"HTTP status {exc.code}"
    except TimeoutError:
        return f"timed out after {timeout:g}s"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            return f"timed out after {timeout:g}s"
        return f"request failed: {reason}"
    return None


class HealthCheck:
    def __init__(self, settings: CheckSettings, connect: Callable[[], Any]):
        self.settings = settings
        self.connect = connect
        self.failed = 0
        self.restarts = 0
        self.stop = threading.Event()

    def _unit_active(self, client: Any) -> bool:
        status = client.request("status", {"units": [self.settings.unit], "lines": 0})["units"][0]
        return status.get("active_state") == "active"

    def check_once(self, client: Any) -> None:
        if not self._unit_active(client):
            self.failed = 0
            return
        reason = probe(self.settings.url, self.settings.timeout)
        if reason is None:
            self.failed = 0
            return
        self.failed += 1
        log.warning("%s: check %d/%d of %s failed: %s", self.settings.unit, self.failed,
                    self.settings.failures, self.settings.url, reason)
        if self.failed < self.settings.failures:
            return
        log.error("%s: %s failed %d times in a row (last: %s); restarting the unit",
                  self.settings.unit, self.settings.url, self.failed, reason)
        client.request("restart", {"units": [self.settings.unit]})
        self.restarts += 1
        self.failed = 0
        self.stop.wait(self.settings.grace)

    def run(self) -> None:
        client = None
        while not self.stop.is_set():
            try:
                client = client or self.connect()
                self.check_once(client)
            except Exception as exc:
                log.warning("%s: could not talk to the manager: %s", self.settings.unit, exc)
                if client is not None:
                    client.close()
                client = None
            self.stop.wait(self.settings.interval)
        if client is not None:
            client.close()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--unit", dest="check_unit", required=True, help="the unit to restart")
    parser.add_argument("--url", dest="check_url", required=True, help="the URL that must respond")
    parser.add_argument("--interval", dest="check_interval", type=float, default=5.0, metavar="SECONDS",
                        help="seconds between checks (default 5)")
    parser.add_argument("--timeout", dest="check_timeout", type=float, default=2.0, metavar="SECONDS",
                        help="seconds a request may take (default 2)")
    parser.add_argument("--failures", dest="check_failures", type=int, default=3, metavar="N",
                        help="failed checks in a row before a restart (default 3)")
    parser.add_argument("--grace", dest="check_grace", type=float, default=10.0, metavar="SECONDS",
                        help="seconds to wait after a restart before checking again (default 10)")


def run_healthcheck(args: argparse.Namespace) -> int:
    from unitmgr.manager import paths as paths_module
    from unitmgr.shell.client import Client

    paths = paths_module.resolve()
    settings = CheckSettings(args.check_unit, args.check_url, args.check_interval, args.check_timeout,
                             args.check_failures, args.check_grace)
    check = HealthCheck(settings, lambda: Client.local(paths, timeout=30))
    signal.signal(signal.SIGTERM, lambda *_: check.stop.set())
    signal.signal(signal.SIGINT, lambda *_: check.stop.set())
    log.info("checking %s for %s every %gs", settings.url, settings.unit, settings.interval)
    check.run()
    return 0
