"""The container example: every file its Dockerfile copies exists and its units verify.

No container engine runs here, so the image itself is not built."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "packaging" / "container"


def copied_sources() -> list[str]:
    sources = []
    for line in (EXAMPLE / "Dockerfile").read_text().splitlines():
        if line.startswith(("COPY ", "ADD ")):
            sources.extend(word for word in line.split()[1:-1] if not word.startswith("--"))
    return sources


def test_dockerfile_sources_exist() -> None:
    sources = copied_sources()
    assert sources, "the Dockerfile copies nothing"
    for source in sources:
        assert (REPO / source).exists(), f"the Dockerfile copies {source}, which does not exist"


def test_example_units_verify() -> None:
    units = sorted((EXAMPLE / "units").glob("*.service"))
    assert len(units) == 2
    result = subprocess.run([sys.executable, "-m", "unitmgr.manager.cli", "verify", *map(str, units)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


def test_example_units_enabled() -> None:
    wants = EXAMPLE / "units" / "default.target.wants"
    assert sorted(p.name for p in wants.iterdir()) == ["web.service", "worker.service"]
    assert all((wants / name).resolve().exists() for name in ("web.service", "worker.service"))
