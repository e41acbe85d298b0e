"""Where unitmgr keeps its files, following the XDG base directory rules.

| what      | default                                   | override              |
|-----------|-------------------------------------------|-----------------------|
| config    | $XDG_CONFIG_HOME/unitmgr (~/.config/...)  | UNITMGR_CONFIG_DIR    |
| data      | $XDG_DATA_HOME/unitmgr (~/.local/share/.) | UNITMGR_DATA_DIR      |
| state     | $XDG_STATE_HOME/unitmgr (~/.local/state/.)| UNITMGR_STATE_DIR     |
| runtime   | $XDG_RUNTIME_DIR/unitmgr, else /tmp/unitmgr-$UID | UNITMGR_RUNTIME_DIR |

`UNITMGR_HOME=DIR` moves all four under DIR (config/, data/, state/,
runtime/), which is how tests run a manager in a temporary home. This module
is a leaf: the shell imports it to find the manager, so it must stay free of
daemon imports, and `Paths` is a NamedTuple because importing dataclasses
would cost every `unitsh -c` run several milliseconds.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import NamedTuple


class UnsafeDirectoryError(Exception):
    """A private directory exists but is owned by someone else or open to others."""


class Paths(NamedTuple):
    config: Path
    data: Path
    state: Path
    runtime: Path
    home: Path

    @property
    def keys(self) -> Path:
        return self.config / "keys"

    @property
    def authorized_keys(self) -> Path:
        return self.keys / "authorized_keys"

    @property
    def control_socket(self) -> Path:
        return self.runtime / "control.sock"

    @property
    def control_endpoint(self) -> str:
        return f"ipc://{self.control_socket}"

    @property
    def endpoint_file(self) -> Path:
        return self.runtime / "endpoint.json"

    @property
    def notify_socket(self) -> Path:
        return self.runtime / "notify.sock"

    @property
    def lock_file(self) -> Path:
        return self.runtime / "manager.lock"

    @property
    def state_lock_file(self) -> Path:
        """The lock that keeps one manager per state directory (see lock.py)."""
        return self.state / "manager.lock"

    @property
    def log_dir(self) -> Path:
        return self.state / "logs"

    @property
    def manager_log(self) -> Path:
        return self.state / "unitmgr.log"

    @property
    def history_file(self) -> Path:
        return self.state / "unitsh_history"

    @property
    def config_file(self) -> Path:
        return self.config / "unitmgr.conf"

    def default_unit_dirs(self) -> list[Path]:
        """The unit search path when no --units is given, highest priority first."""
        return [self.config / "units", self.data / "units"]


def _xdg(env: dict[str, str], name: str, home: Path, fallback: str) -> Path:
    value = env.get(name, "")
    # The XDG spec says relative paths in these variables are invalid and
    # must be ignored.
    if value and os.path.isabs(value):
        return Path(value)
    return home / fallback


def resolve(env: dict[str, str] | None = None) -> Paths:
    """Compute the paths from an environment (os.environ by default); create nothing."""
    env = dict(os.environ if env is None else env)
    home = Path(env.get("HOME") or os.path.expanduser("~"))
    root = env.get("UNITMGR_HOME")
    if root:
        base = Path(root)
        config, data = base / "config", base / "data"
        state, runtime = base / "state", base / "runtime"
    else:
        config = _xdg(env, "XDG_CONFIG_HOME", home, ".config") / "unitmgr"
        data = _xdg(env, "XDG_DATA_HOME", home, ".local/share") / "unitmgr"
        state = _xdg(env, "XDG_STATE_HOME", home, ".local/state") / "unitmgr"
        xdg_runtime = env.get("XDG_RUNTIME_DIR", "")
        if xdg_runtime and os.path.isabs(xdg_runtime):
            runtime = Path(xdg_runtime) / "unitmgr"
        else:
            runtime = Path(f"/tmp/unitmgr-{os.getuid()}")
    config = Path(env.get("UNITMGR_CONFIG_DIR") or config)
    data = Path(env.get("UNITMGR_DATA_DIR") or data)
    state = Path(env.get("UNITMGR_STATE_DIR") or state)
    runtime = Path(env.get("UNITMGR_RUNTIME_DIR") or runtime)
    return Paths(config=config, data=data, state=state, runtime=runtime, home=home)


def running_control_socket(paths: Paths) -> Path | None:
    """Return the control socket of a manager that holds the state lock, or None.

    A manager started without XDG_RUNTIME_DIR (cron, a login without
    pam_systemd) listens under /tmp/unitmgr-UID, another runtime directory
    than a shell that has the variable, but both share the state directory.
    The lock file there names the socket (lock.py), and a held flock shows
    that the manager still runs."""
    # Imported here: the shell needs lock.py only when the default socket is missing.
    from unitmgr.manager.lock import ManagerLock

    try:
        holder = ManagerLock(paths.state_lock_file).holder()
    except OSError:
        return None
    # A free lock means the file is left from a stopped manager.
    socket = holder.control_socket if holder is not None else ""
    if not socket or not os.path.isabs(socket) or not os.path.exists(socket):
        return None
    return Path(socket)


def ensure_private_dir(path: Path) -> Path:
    """Create `path` with mode 0700 if missing; reject it if another user owns it
    or if group or others can write to it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise UnsafeDirectoryError(f"{path} is not a directory; remove it and start again")
    if info.st_uid != os.getuid():
        raise UnsafeDirectoryError(
            f"{path} is owned by uid {info.st_uid}, not by you (uid {os.getuid()}); "
            "remove it or set UNITMGR_RUNTIME_DIR to a directory of your own"
        )
    if info.st_mode & 0o022:
        raise UnsafeDirectoryError(
            f"{path} is writable by group or others (mode {info.st_mode & 0o777:o}); "
            f"run: chmod 700 {path}"
        )
    return path
