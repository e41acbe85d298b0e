"""unitsh's supervision commands: kill, reload, reset-failed, daemon-reload."""

from __future__ import annotations

import os
import time
from pathlib import Path

from support import write_unit
from unitwait import log_lines, wait_log, wait_state

TRAPPER = """\
[Service]
ExecStart=/bin/sh -c 'trap "echo got HUP" HUP; trap "echo got USR1" USR1; echo ready; \\
    while :; do sleep 0.1; done'
ExecReload=/bin/sh -c 'echo reload for $$MAINPID'
"""


def test_kill_and_reload_from_shell(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "trapper.service", TRAPPER)
    manager = make_manager(units)
    manager.request("start", {"units": ["trapper"]})
    wait_log(manager, "trapper", "ready")

    done = manager.unitsh("-c", "kill --signal=HUP --kill-whom=main trapper")
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    wait_log(manager, "trapper", "got HUP")
    done = manager.unitsh("-c", "kill -s SIGUSR1 trapper")
    assert done.returncode == 0, done.stderr
    wait_log(manager, "trapper", "got USR1")

    bad = manager.unitsh("-c", "kill --kill-whom=everyone trapper")
    assert bad.returncode != 0
    assert "everyone" in bad.stderr

    main = manager.status("trapper")["main_pid"]
    done = manager.unitsh("-c", "reload trapper")
    assert done.returncode == 0, done.stderr
    assert f"reload for {main}" in log_lines(manager, "trapper")


def test_reset_failed_and_daemon_reload_from_shell(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "broken.service", "[Service]\nExecStart=/bin/false\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["broken"]})
    wait_state(manager, "broken", "failed")

    done = manager.unitsh("-c", "reset-failed broken")
    assert done.returncode == 0, done.stderr
    assert manager.status("broken")["active_state"] == "inactive"

    path = write_unit(units, "broken.service", "[Service]\nExecStart=/bin/sleep 1000\n")
    stamp = time.time() + 2
    os.utime(path, (stamp, stamp))
    assert manager.status("broken")["changed_on_disk"] is True
    shown = manager.unitsh("-c", "status broken")
    assert "changed on disk" in shown.stderr
    done = manager.unitsh("-c", "daemon-reload")
    assert done.returncode == 0, done.stderr
    assert manager.status("broken")["changed_on_disk"] is False
    done = manager.unitsh("-c", "start broken")
    assert done.returncode == 0, done.stderr
    assert manager.status("broken")["active_state"] == "active"
