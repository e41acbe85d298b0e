"""The virtual environments the benchmark runs the managers from.

- `bench/.venv/anchors`: supervisor and Circus from PyPI, with Circus's own
  pyzmq and tornado. The pins are the newest releases that install and run
  on Python 3.11 (checked on 2026-12-04).
- `bench/.venv/unitmgr`: unitmgr as a user installs it, a regular
  (non-editable) install of this checkout, refreshed at the start of every
  run so it matches the working tree.

Both start from the same base interpreter and see none of its site-packages,
so each tool's start-up cost is its own: an editable install or a `.pth`
hook of the development interpreter does not slow down only one side.
"""

from __future__ import annotations

import json
import logging
import subprocess
import venv
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

REQUIREMENTS = ["supervisor==4.3.0", "circus==0.19.0"]
VERSION_SCRIPT = """\
import importlib.metadata as m, json, sys
found = {"python": sys.version.split()[0]}
for name in sys.argv[1:]:
    try:
        found[name] = m.version(name)
    except m.PackageNotFoundError:
        pass
print(json.dumps(found))
"""


class AnchorInstallError(Exception):
    """A virtual environment could not be set up (no network, or no matching release)."""


@dataclass(frozen=True)
class VirtualEnv:
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def tool(self, name: str) -> Path:
        return self.root / "bin" / name

    def versions(self, *names: str) -> dict[str, str]:
        result = subprocess.run([str(self.python), "-c", VERSION_SCRIPT, *names], capture_output=True, text=True,
                                check=True, timeout=60)
        return json.loads(result.stdout)

    def imports(self, *modules: str) -> bool:
        if not self.python.exists():
            return False
        check = subprocess.run([str(self.python), "-c", f"import {', '.join(modules)}"], capture_output=True,
                               timeout=60)
        return check.returncode == 0

    def create(self) -> None:
        log.info("creating the virtual environment %s", self.root)
        venv.EnvBuilder(with_pip=True, clear=self.root.exists()).create(self.root)

    def pip_install(self, *requirements: str) -> None:
        command = [str(self.python), "-m", "pip", "install", "--disable-pip-version-check", "-q", *requirements]
        result = subprocess.run(command, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
            raise AnchorInstallError(
                f"pip could not install {' '.join(requirements)} into {self.root} "
                f"(exit status {result.returncode}); check that PyPI is reachable:\n{tail}"
            )


def ensure_anchor_env(root: Path) -> VirtualEnv:
    """Return root/anchors with supervisor and Circus installed, creating it on first use."""
    env = VirtualEnv(root / "anchors")
    if env.imports("supervisor", "circus", "zmq", "tornado") and env.tool("circusd").exists():
        return env
    env.create()
    log.info("installing %s", " ".join(REQUIREMENTS))
    env.pip_install(*REQUIREMENTS)
    return env


def ensure_unitmgr_env(root: Path, source: Path) -> VirtualEnv:
    """Return root/unitmgr with the checkout at `source` freshly installed as a regular package."""
    env = VirtualEnv(root / "unitmgr")
    if not env.imports("zmq", "psutil", "prompt_toolkit", "cryptography", "paramiko", "wheel"):
        env.create()
        log.info("installing unitmgr and its dependencies from %s", source)
        # setuptools and wheel let the refresh below build without an isolated build environment.
        env.pip_install("setuptools>=65.5", "wheel", str(source))
    log.info("reinstalling unitmgr from %s into %s", source, env.root)
    env.pip_install("--no-deps", "--force-reinstall", "--no-build-isolation", str(source))
    return env
