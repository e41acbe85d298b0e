"""The per-unit log files: exact bytes, line rebuilding, rotation and a deleted file."""

from __future__ import annotations

from pathlib import Path

from unitmgr.manager.logstore import STDERR, STDOUT, LogStore


def test_lines_rebuilt_across_reads(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer("a.service")
    writer.write(b"first li", STDOUT, 10)
    writer.write(b"ne\nsecond\nthi", STDOUT, 10)
    writer.write(b"oops\n", STDERR, 10)
    writer.write(b"rd", STDOUT, 10, eof=False)
    writer.write(b"", STDOUT, 10, eof=True)
    lines = store.tail("a.service", 0)
    assert [(line.stream, line.data, line.partial) for line in lines] == [
        ("stdout", b"first line", False),
        ("stdout", b"second", False),
        ("stderr", b"oops", False),
        ("stdout", b"third", True),
    ]


def test_binary_bytes_kept_exactly(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    payload = b"\xff\xfe\x00nul\x1b[31mred\x80\n"
    store.writer("b.service").write(payload, STDOUT, 1)
    [line] = store.tail("b.service", 0)
    assert line.data + b"\n" == payload


def test_tail_returns_last_lines(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer("c.service")
    for number in range(100):
        writer.write(f"line {number}\n".encode(), STDOUT, 1)
    assert [line.data for line in store.tail("c.service", 3)] == [b"line 97", b"line 98", b"line 99"]


def test_rotation_keeps_recent_files(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=1000, keep_files=3)
    writer = store.writer("d.service")
    for number in range(500):
        writer.write(f"entry {number:04d}\n".encode(), STDOUT, 1)
    assert (tmp_path / "d.service.log.1").exists()
    assert not (tmp_path / "d.service.log.3").exists()
    lines = store.tail("d.service", 0)
    assert lines[-1].data == b"entry 0499"
    numbers = [int(line.data.split()[1]) for line in lines]
    assert numbers == sorted(numbers)


def test_deleted_file_is_recreated(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer("e.service")
    writer.write(b"before\n", STDOUT, 1)
    (tmp_path / "e.service.log").unlink()
    (tmp_path / "e.service.idx").unlink()
    writer.write(b"after\n", STDOUT, 1)
    assert writer.reopened == 1
    assert [line.data for line in store.tail("e.service", 0)] == [b"after"]


def test_write_failure_counted(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "missing-parent" / "logs")
    writer = store.writer("f.service")
    (tmp_path / "missing-parent").write_text("a file where the log directory should be")
    writer.write(b"lost line\n", STDOUT, 1)
    assert writer.dropped_bytes == len(b"lost line\n")
