"""`unitsh --endpoint tcp://HOST:PORT --server-key KEY`: a manager started with --listen, no SSH."""

from __future__ import annotations

import json
from pathlib import Path

from support import free_port, write_unit

SLEEPER = """\
[Service]
ExecStart=/bin/sleep 600
TimeoutStopSec=2
"""


def test_endpoint_and_server_key(make_manager, tmp_path: Path):
    units = tmp_path / "units"
    write_unit(units, "sleeper.service", SLEEPER)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    manager = make_manager(units, "--listen", endpoint)
    info = json.loads((manager.home / "runtime" / "endpoint.json").read_text())
    direct = ["--endpoint", endpoint, "--server-key", info["server_key"]]

    result = manager.unitsh(*direct, "-c", "start sleeper; is-active sleeper")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "active"
    pid = manager.status("sleeper")["main_pid"]
    result = manager.unitsh(*direct, "--json", "-c", "status sleeper")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["units"][0]["main_pid"] == pid


def test_endpoint_with_wrong_server_key(make_manager, tmp_path: Path):
    import zmq

    units = tmp_path / "units"
    write_unit(units, "sleeper.service", SLEEPER)
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    manager = make_manager(units, "--listen", endpoint)
    wrong_key, _ = zmq.curve_keypair()
    result = manager.unitsh("--endpoint", endpoint, "--server-key", wrong_key.decode(), "-c", "list",
                            timeout=30)
    assert result.returncode == 1
    assert "unitmgr endpoint --json" in result.stderr
