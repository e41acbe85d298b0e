"""read_limited(): exact bytes under the limit, a clear error above it, sizes that change."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from unitmgr.units import filesize
from unitmgr.units.filesize import FileTooLargeError, read_limited


def test_small_file_read_exactly(tmp_path: Path) -> None:
    path = tmp_path / "web.service"
    path.write_bytes(b"[Service]\nExecStart=/bin/true\n")

    assert read_limited(path) == b"[Service]\nExecStart=/bin/true\n"


def test_file_over_limit_rejected(tmp_path: Path) -> None:
    path = tmp_path / "big.service"
    path.write_bytes(b"#" * 101)

    with pytest.raises(FileTooLargeError) as caught:
        read_limited(path, limit=100)

    assert "unit file is 101 bytes, above the limit of 100 bytes" in str(caught.value)
    assert "shorten it" in str(caught.value)


def test_zero_size_special_file_read() -> None:
    # /proc files report a size of 0 and still have content.
    data = read_limited("/proc/self/status", kind="status file")

    assert data.startswith(b"Name:")


@pytest.mark.parametrize(("content", "limit", "too_large"), [
    (b"x" * 60, 100, False),
    (b"x" * 101, 100, True),
])
def test_file_grown_since_stat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: bytes, limit: int,
                               too_large: bool) -> None:
    path = tmp_path / "growing.service"
    path.write_bytes(content)
    # The size fstat() reported before the file grew.
    monkeypatch.setattr(filesize.os, "fstat", lambda fd: SimpleNamespace(st_size=10))

    if too_large:
        with pytest.raises(FileTooLargeError):
            read_limited(path, limit=limit)
    else:
        assert read_limited(path, limit=limit) == content
