"""The virtual environment that holds the anchors: supervisor and Circus from PyPI.

Both go into bench/.venv with pip. The pins are the newest releases that
install and run on Python 3.11 (checked on 2026-12-04); Circus brings its own
pyzmq and tornado, so nothing is shared with unitmgr's interpreter.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REQUIREMENTS = ["supervisor==4.3.0", "circus==0.19.0"]
VERSION_SCRIPT = """\
import importlib.metadata as m, json, sys
names = ["supervisor", "circus", "pyzmq", "tornado"]
print(json.dumps({"python": sys.version.split()[0], **{n: m.version(n) for n in names}}))
"""


class AnchorInstallError(Exception):
    """supervisor or Circus could not be installed (no network, or no matching release)."""


@dataclass(frozen=True)
class AnchorEnv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def tool(self, name: str) -> Path:
        return self.root / "bin" / name

    def versions(self) -> dict[str, str]:
        result = subprocess.run([str(self.python), "-c", VERSION_SCRIPT], capture_output=True, text=True,
                                check=True, timeout=60)
        return json.loads(result.stdout)


def _installed(env: AnchorEnv) -> bool:
    if not env.python.exists():
        return False
    check = subprocess.run([str(env.python), "-c", "import supervisor, circus, zmq, tornado"],
                           capture_output=True, timeout=60)
    return check.returncode == 0 and env.tool("supervisord").exists() and env.tool("circusd").exists()


def ensure_anchor_env(root: Path) -> AnchorEnv:
    """Create the environment at `root` and install the anchors into it, unless that is done already."""
    env = AnchorEnv(root)
    if _installed(env):
        return env
    log.info("creating %s and installing %s", root, " ".join(REQUIREMENTS))
    venv.EnvBuilder(with_pip=True, clear=root.exists()).create(root)
    command = [str(env.python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *REQUIREMENTS]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not _installed(env):
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise AnchorInstallError(
            f"could not install {' '.join(REQUIREMENTS)} into {root} with pip "
            f"(exit status {result.returncode}); check that PyPI is reachable:\n{tail}"
        )
    return env


def unitmgr_versions() -> dict[str, str]:
    import importlib.metadata as metadata

    return {
        "python": sys.version.split()[0],
        "unitmgr": metadata.version("unitmgr"),
        "pyzmq": metadata.version("pyzmq"),
    }
