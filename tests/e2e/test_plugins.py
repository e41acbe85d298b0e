"""The Prometheus exporter and the HTTP health check, as real processes against a real manager."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from support import free_port, stop_process, wait_for, write_unit

HANGING_SERVER = """\
import http.server, os, sys, time
flag = sys.argv[2]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        while os.path.exists(flag):
            time.sleep(0.05)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


class Plugin:
    def __init__(self, manager, *args: str):
        self.log = open(manager.home / f"plugin-{args[0]}.log", "w+")
        self.proc = subprocess.Popen([sys.executable, "-m", "unitmgr.manager.cli", *args], env=manager.env,
                                     stdout=self.log, stderr=subprocess.STDOUT, text=True)

    def output(self) -> str:
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self) -> None:
        stop_process(self.proc)
        self.log.close()


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        return response.read().decode()


def test_exporter_matches_status(make_manager, tmp_path: Path) -> None:
    parser = pytest.importorskip("prometheus_client.parser")
    units = tmp_path / "units"
    port = free_port()
    write_unit(units, "steady.service", "[Service]\nExecStart=/bin/sleep 1000\n", enable=True)
    write_unit(units, "bouncy.service", "[Service]\nExecStart=/bin/sh -c 'sleep 0.2; exit 1'\n"
               "Restart=on-failure\nRestartSec=0.1\n", enable=True)
    # The exporter runs as a unit of the manager it watches, and finds it through the
    # environment it inherits.
    write_unit(units, "exporter.service", f"[Service]\nExecStart={sys.executable} -m unitmgr.manager.cli "
               f"exporter --listen 127.0.0.1:{port}\n", enable=True)
    manager = make_manager(units)
    wait_for(lambda: manager.status("bouncy")["n_restarts"] >= 2, message="bouncy to restart twice")
    text = wait_for(lambda: _try_scrape(port), message="the exporter to answer")
    families = {f.name: f for f in parser.text_string_to_metric_families(text)}
    steady = manager.status("steady")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("unitmgr_up", ())] == 1
    assert samples[("unitmgr_unit_state", (("state", "active"), ("unit", "steady.service")))] == 1
    assert samples[("unitmgr_unit_state", (("state", "failed"), ("unit", "steady.service")))] == 0
    assert samples[("unitmgr_unit_state", (("state", "active"), ("unit", "exporter.service")))] == 1
    assert samples[("unitmgr_unit_tasks", (("unit", "steady.service"),))] == steady["tasks"]
    memory = samples[("unitmgr_unit_memory_bytes", (("unit", "steady.service"),))]
    assert abs(memory - steady["memory_bytes"]) <= 0.2 * steady["memory_bytes"]
    restarts_now = manager.status("bouncy")["n_restarts"]
    exported = samples[("unitmgr_unit_restarts_total", (("unit", "bouncy.service"),))]
    assert restarts_now - 1 <= exported <= restarts_now
    assert ("unitmgr_unit_log_dropped_bytes_total", (("unit", "steady.service"),)) in samples
    assert ("unitmgr_unit_log_bytes_total", (("unit", "steady.service"),)) in samples


def _try_scrape(port: int) -> str | None:
    try:
        return scrape(port)
    except OSError:
        return None


def test_healthcheck_restarts_hanging_server(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    port = free_port()
    flag = tmp_path / "hang"
    script = tmp_path / "server.py"
    script.write_text(HANGING_SERVER)
    write_unit(units, "site.service", f"[Service]\nExecStart={sys.executable} {script} {port} {flag}\n"
               "TimeoutStopSec=2\n", enable=True)
    manager = make_manager(units)
    first = wait_for(lambda: manager.status("site")["main_pid"], message="site running")
    check = Plugin(manager, "healthcheck", "--unit", "site", "--url", f"http://127.0.0.1:{port}/",
                   "--interval", "0.2", "--timeout", "0.5", "--failures", "2", "--grace", "1")
    try:
        wait_for(lambda: _try_scrape_site(port), message="the site to answer")
        flag.write_text("hang")
        second = wait_for(lambda: (pid := manager.status("site")["main_pid"]) not in (0, first) and pid,
                          timeout=20, message="the health check to restart the hanging site")
        assert second != first
        assert "restarting the unit" in check.output()
        assert "timed out after 0.5s" in check.output()
    finally:
        flag.unlink(missing_ok=True)
        check.stop()


def _try_scrape_site(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
