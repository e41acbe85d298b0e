"""unitmgr installs the ways its users install tools: a wheel in a venv, pipx, a Debian package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def run(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env, check=False)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    outdir = tmp_path_factory.mktemp("wheel")
    built = run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                "-w", str(outdir), str(REPO))
    assert built.returncode == 0, built.stderr
    [path] = outdir.glob("unitmgr-*.whl")
    return path


def check_scripts(bindir: Path, env: dict[str, str] | None = None) -> None:
    for script in ("unitmgr", "unitsh"):
        result = run(str(bindir / script), "--help", env=env, timeout=60)
        assert result.returncode == 0, f"{script} --help failed: {result.stderr}"
        assert script in result.stdout


def test_wheel_in_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    assert run(sys.executable, "-m", "venv", str(venv)).returncode == 0
    installed = run(str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel))
    assert installed.returncode == 0, installed.stderr
    check_scripts(venv / "bin")
    verify = run(str(venv / "bin" / "unitmgr"), "verify", str(REPO / "examples" / "units" / "web.service"))
    assert verify.returncode == 0, verify.stderr


@pytest.mark.skipif(shutil.which("pipx") is None, reason="pipx is not installed (it is in the test extra)")
def test_pipx_install(tmp_path: Path) -> None:
    env = dict(os.environ, PIPX_HOME=str(tmp_path / "pipx"), PIPX_BIN_DIR=str(tmp_path / "bin"),
               PIPX_MAN_DIR=str(tmp_path / "man"))
    installed = run("pipx", "install", str(REPO), env=env)
    assert installed.returncode == 0, installed.stderr
    check_scripts(tmp_path / "bin", env)


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")
def test_debian_package_builds(tmp_path: Path) -> None:
    built = run("bash", str(REPO / "packaging" / "build-deb.sh"), str(tmp_path))
    assert built.returncode == 0, built.stderr
    [deb] = tmp_path.glob("unitmgr_*.deb")
    info = run("dpkg-deb", "--info", str(deb)).stdout
    assert "Depends: python3 (>= 3.11), python3-zmq, python3-psutil" in info
    contents = run("dpkg-deb", "--contents", str(deb)).stdout
    if "_clone3.abi3.so" in contents:
        architecture = run("dpkg", "--print-architecture").stdout.strip()
        assert deb.name.endswith(f"_{architecture}.deb")
        assert f"Architecture: {architecture}" in info
    else:
        assert deb.name.endswith("_all.deb")
        assert "Architecture: all" in info
    for path in ("./usr/bin/unitmgr", "./usr/bin/unitsh", "unitmgr/manager/exechelper.py",
                 "unitmgr/units/loader.py", "unitmgr/shell/cli.py", "./etc/xdg/autostart/unitmgr.desktop",
                 "unitmgr/web/static/app.js", "./usr/share/man/man1/unitsh.1.gz"):
        assert path in contents, f"{path} is missing from the package"
    assert "direct_url.json" not in contents
    root = contents.splitlines()[0]
    assert root.startswith("drwxr-xr-x"), root
