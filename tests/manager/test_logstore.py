"""The per-unit log files: exact bytes, line rebuilding, rotation and a deleted file."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from unitmgr.manager import logstore
from unitmgr.manager.logformat import META_FLAG, RECORD
from unitmgr.manager.logstore import STDERR, STDOUT, LogStore, UnitLogOptions
from unitmgr.manager.splicestage import F_SETPIPE_SZ, SpliceStage


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


def test_rotation_renames_onto_free_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # ext4 writes a file out at once when a rename replaces another file, so rotation must not.
    replaced: list[str] = []
    real_replace = os.replace

    def checked_replace(source: str | os.PathLike, target: str | os.PathLike) -> None:
        if os.path.exists(target):
            replaced.append(str(target))
        real_replace(source, target)

    monkeypatch.setattr(logstore.os, "replace", checked_replace)
    store = LogStore(tmp_path, max_bytes=1000, keep_files=3)
    writer = store.writer("r.service")
    for number in range(2000):  # 22 KB against files of at least 4 KiB: five rotations
        writer.write(f"entry {number:04d}\n".encode(), STDOUT, 1)
    assert replaced == []
    assert sorted(p.name for p in tmp_path.glob("r.service.log*")) == [
        "r.service.log", "r.service.log.1", "r.service.log.2"]
    numbers = [int(line.data.split()[1]) for line in store.tail("r.service", 0)]
    assert numbers == sorted(numbers)
    assert numbers[-1] == 1999


def test_deleted_file_is_recreated(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer("e.service")
    writer.check_interval = 0
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


def test_identifier_records_not_output(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer("g.service")
    writer.identifier = "webapp"
    writer.write(b"one\n", STDOUT, 42)
    writer.identifier = ""
    writer.write(b"two\n", STDOUT, 4194303)
    lines = store.tail("g.service", 0)
    assert [line.data for line in lines] == [b"one", b"two"]
    assert lines[0].identifier == "webapp"
    # pid 4194303 does not exist here, so the unit name stands in for its comm.
    assert lines[1].identifier == "g"


def test_identifier_repeated_after_rotation(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=4096, keep_files=2)
    writer = store.writer("h.service")
    writer.identifier = "named"
    for number in range(2000):
        writer.write(f"entry {number}\n".encode(), STDOUT, 7)
    lines = store.tail("h.service", 0)
    assert lines
    assert {line.identifier for line in lines} == {"named"}


def test_retention_deletes_files_past_keep(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=4096, keep_files=5)
    writer = store.writer("i.service")
    for number in range(3000):
        writer.write(f"entry {number:05d}\n".encode(), STDOUT, 1)
    assert (tmp_path / "i.service.log.4").exists()
    # A lower setting takes effect at the next rotation: older files go.
    store.keep_files = 2
    writer = store.writer("i.service")
    for number in range(3000, 3500):
        writer.write(f"entry {number:05d}\n".encode(), STDOUT, 1)
    assert (tmp_path / "i.service.log.1").exists()
    assert not (tmp_path / "i.service.log.2").exists()
    assert not (tmp_path / "i.service.idx.4").exists()
    numbers = [int(line.data.split()[1]) for line in store.tail("i.service", 0)]
    assert numbers == list(range(numbers[0], 3500))


def test_keep_one_file(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=4096, keep_files=1)
    writer = store.writer("j.service")
    for number in range(1000):
        writer.write(f"entry {number:05d}\n".encode(), STDOUT, 1)
    assert not (tmp_path / "j.service.log.1").exists()
    assert store.tail("j.service", 1)[0].data == b"entry 00999"


def test_write_to_full_disk_counted(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    (tmp_path / "k.service.log").symlink_to("/dev/full")
    writer = store.writer("k.service")
    writer.write(b"x" * 5000, STDOUT, 1)
    writer.write(b"y" * 3000, STDOUT, 1)
    fields = store.status_fields("k.service")
    assert fields["log_write_errors"] == 8000
    assert "space" in str(fields["log_last_error"]).lower()


def test_splice_moves_pipe_bytes(tmp_path: Path) -> None:
    import os

    store = LogStore(tmp_path)
    writer = store.writer("l.service")
    read_fd, write_fd = os.pipe()
    stage = SpliceStage()
    try:
        os.write(write_fd, b"spliced line\npartial")
        moved = writer.splice_from(read_fd, stage, STDERR, 5)
        assert moved == len(b"spliced line\npartial")
        assert stage.staged_bytes == 0
        os.close(write_fd)
        write_fd = -1
        assert writer.splice_from(read_fd, stage, STDERR, 5) == 0
        writer.write(b"", STDERR, 5, eof=True)
    finally:
        stage.close()
        os.close(read_fd)
        if write_fd >= 0:
            os.close(write_fd)
    lines = store.tail("l.service", 0)
    assert [(line.stream, line.data, line.partial) for line in lines] == [
        ("stderr", b"spliced line", False),
        ("stderr", b"partial", True),
    ]


def test_pending_line_marked(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer("m.service")
    writer.write(b"complete\nunfinished", STDOUT, 1)
    lines = store.tail("m.service", 0)
    assert [(line.data, line.partial, line.pending) for line in lines] == [
        (b"complete", False, False),
        (b"unfinished", True, True),
    ]


def test_query_since_and_filter(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=4096, keep_files=10)
    writer = store.writer("n.service")
    for number in range(2000):
        writer.write(f"entry {number:05d}\n".encode(), STDOUT if number % 2 else STDERR, 1)
    everything = store.query("n.service")
    cut = everything[1500].time
    later = store.query("n.service", since=cut, accept=lambda line: line.time >= cut)
    assert [line.data for line in later] == [line.data for line in everything if line.time >= cut]
    odd = store.query("n.service", 3, accept=lambda line: line.stream == "stdout")
    assert [line.data for line in odd] == [b"entry 01995", b"entry 01997", b"entry 01999"]


def _random_log(tmp_path: Path, seed: int) -> LogStore:
    """A log of two streams written in random pieces, with a late identifier change."""
    import random

    generator = random.Random(seed)
    store = LogStore(tmp_path, max_bytes=1 << 30)
    writer = store.writer("r.service")
    writer.identifier = "first"
    for number in range(3000):
        stream = generator.choice((STDOUT, STDERR))
        text = f"{'out' if stream == STDOUT else 'err'} {number}\n".encode()
        cut = generator.randrange(len(text) + 1)
        pid = 100 + number // 1000  # a new process every 1000 pieces
        writer.write(text[:cut], stream, pid)
        writer.write(text[cut:], stream, pid)
    writer.write(b"unfinished", STDOUT, 102)
    return store


def test_tail_matches_full_read(tmp_path: Path) -> None:
    store = _random_log(tmp_path, seed=7)
    everything = store.query("r.service")
    assert len(everything) == 3001
    for count in (1, 2, 10, 100, 1500, 3001, 5000):
        tail = store.query("r.service", count)
        assert [(line.data, line.pid, line.identifier) for line in tail] == \
            [(line.data, line.pid, line.identifier) for line in everything[-count:]]


def test_since_matches_full_read(tmp_path: Path) -> None:
    store = _random_log(tmp_path, seed=11)
    everything = store.query("r.service")
    for position in (0, 1, 500, 2999, 3000):
        cut = everything[position].time
        later = store.query("r.service", since=cut)
        assert [line.data for line in later] == [line.data for line in everything if line.time >= cut]


def test_moved_file_is_replaced(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer("o.service")
    writer.check_interval = 0
    writer.write(b"before\n", STDOUT, 1)
    (tmp_path / "o.service.log").rename(tmp_path / "elsewhere.log")
    writer.write(b"after\n", STDOUT, 1)
    assert writer.reopened == 1
    assert (tmp_path / "elsewhere.log").read_bytes().endswith(b"before\n")
    # The index left behind described the moved data, so it starts again too.
    assert [line.data for line in store.tail("o.service", 0)] == [b"after"]


def joined(lines) -> bytes:
    """Return the bytes that `lines` represent: a newline after each line not marked partial."""
    return b"".join(line.data if line.partial else line.data + b"\n" for line in lines)


def test_long_line_read_in_pieces(tmp_path: Path) -> None:
    from unitmgr.manager.linecut import LINE_MAX

    store = LogStore(tmp_path, max_bytes=1 << 30)
    writer = store.writer("long.service")
    long_line = bytes(byte for byte in range(256) if byte != 0x0A) * (3 * 1024 * 1024 // 255)
    writer.write(b"before\n", STDOUT, 1)
    for start in range(0, len(long_line), 256 * 1024):
        writer.write(long_line[start:start + 256 * 1024], STDOUT, 1)
    writer.write(b"\nafter\n", STDOUT, 1)

    lines = store.tail("long.service", 0)
    pieces = lines[1:-1]
    assert lines[0].data == b"before"
    assert lines[-1].data == b"after"
    assert b"".join(piece.data for piece in pieces) == long_line
    assert [len(piece.data) for piece in pieces[:-1]] == [LINE_MAX] * (len(pieces) - 1)
    assert 0 < len(pieces[-1].data) <= LINE_MAX
    assert all(piece.partial for piece in pieces[:-1])
    assert not pieces[-1].partial
    assert joined(lines) == b"before\n" + long_line + b"\nafter\n"
    # Reading only the end cuts the line into the same pieces.
    assert store.tail("long.service", 3) == lines[-3:]


def test_newline_inside_read_starts_tail(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes=1 << 30)
    writer = store.writer("mid.service")
    writer.write(b"x" * 100_000 + b"\nfirst of many" + b"y" * 200_000, STDOUT, 1)
    for _ in range(20):
        writer.write(b"z" * 100_000, STDOUT, 1)
    writer.write(b"\n", STDERR, 1)
    writer.write(b"end\n", STDOUT, 1)
    full = store.tail("mid.service", 0)
    for count in (1, 2, 5, 40):
        assert store.tail("mid.service", count) == full[-count:], f"the last {count} lines"


def test_unterminated_huge_line_tail(tmp_path: Path) -> None:
    from unitmgr.manager.linecut import LINE_MAX

    store = LogStore(tmp_path, max_bytes=1 << 30)
    writer = store.writer("flat.service")
    chunk = b"0123456789abcdef" * (64 * 1024)  # 1 MiB without a newline
    for _ in range(20):
        writer.write(chunk, STDOUT, 7)
    last_two = store.tail("flat.service", 2)
    assert [len(line.data) for line in last_two] == [LINE_MAX, 20 * len(chunk) % LINE_MAX or LINE_MAX]
    assert last_two[-1].pending
    assert not last_two[0].pending
    writer.write(b"", STDOUT, 7, eof=True)
    full = store.tail("flat.service", 0)
    assert joined(full) == chunk * 20
    assert full[-1].partial
    assert not full[-1].pending


def test_manager_message_own_stream(tmp_path: Path) -> None:
    import os

    store = LogStore(tmp_path)
    writer = store.writer("m.service")
    writer.configure(UnitLogOptions(identifier="webapp"))
    writer.write(b"half a ", STDOUT, 10)
    store.write_message("m.service", "m.service: Failed with result 'exit-code'.")
    writer.write(b"line\n", STDOUT, 10)

    lines = store.tail("m.service", 0)
    assert [(line.stream, line.data) for line in lines] == [
        ("manager", b"m.service: Failed with result 'exit-code'."),
        ("stdout", b"half a line"),
    ]
    # The unit's SyslogIdentifier= names its own lines only; the manager's are "unitmgr".
    assert [(line.identifier, line.pid) for line in lines] == [("unitmgr", os.getpid()), ("webapp", 10)]
    assert writer.stored_bytes == len(b"half a line\n")


def test_spawned_process_named_from_path(tmp_path: Path) -> None:
    # The pid is gone (never existed), so only the name recorded at spawn can identify it.
    writer = LogStore(tmp_path).writer("n.service")
    writer.name_process(999_999_999, "/usr/local/bin/a-very-long-program-name")
    assert writer.identifier_of(999_999_999) == "a-very-long-pro"
    writer.close()


def _output_offsets(directory: Path, unit: str) -> list[tuple[int, int]]:
    """Return (offset, length) of the output records in the unit's current index."""
    data = (directory / f"{unit}.idx").read_bytes()
    return [(offset, length) for offset, _time, length, _pid, flags in logstore.RECORD.iter_unpack(data)
            if length and flags & logstore.STREAM_MASK in (STDOUT, STDERR) and not flags & logstore.META_FLAG]


def _splice_all(writer: logstore.UnitLog, payload: bytes, pid: int) -> None:
    read_fd, write_fd = os.pipe()
    stage = SpliceStage()
    try:
        os.write(write_fd, payload)
        moved = 0
        while moved < len(payload):
            moved += writer.splice_from(read_fd, stage, STDOUT, pid)
    finally:
        stage.close()
        os.close(read_fd)
        os.close(write_fd)


def test_bulk_splice_starts_on_page(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer("b.service")
    writer.write_message("Started b.service.")
    bulk = b"".join(b"%07d\n" % number for number in range(8192))  # 64 KiB, one full default pipe

    _splice_all(writer, bulk, 7)

    [(offset, length)] = _output_offsets(tmp_path, "b.service")
    assert offset % logstore.PAGE_BYTES == 0
    assert length == len(bulk)
    lines = store.tail("b.service", 0)
    assert lines[0].data == b"Started b.service."
    assert b"".join(line.data + b"\n" for line in lines[1:]) == bulk


def test_small_splice_leaves_no_gap(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    writer = store.writer("s.service")
    writer.write_message("Started s.service.")

    _splice_all(writer, b"one line\n", 7)

    [(offset, _length)] = _output_offsets(tmp_path, "s.service")
    assert offset % logstore.PAGE_BYTES != 0
    index = (tmp_path / "s.service.idx").read_bytes()
    stored = sum(record[2] for record in logstore.RECORD.iter_unpack(index))
    assert (tmp_path / "s.service.log").stat().st_size == stored, "a gap between records"


def test_splice_stops_near_the_rotation_size(tmp_path: Path) -> None:
    # One fill could move a whole stage (1 MiB); it is held to the room left, so files rotate near LogMaxBytes=.
    store = LogStore(tmp_path, max_bytes=4096, keep_files=64)
    writer = store.writer("z.service")
    payload = b"".join(b"%09d\n" % number for number in range(90_000))  # 900 000 bytes
    read_fd, write_fd = os.pipe()
    stage = SpliceStage()
    try:
        fcntl.fcntl(write_fd, F_SETPIPE_SZ, 1024 * 1024)
        os.write(write_fd, payload)
        moved = 0
        while moved < len(payload):
            moved += writer.splice_from(read_fd, stage, STDOUT, 9)
    finally:
        stage.close()
        os.close(read_fd)
        os.close(write_fd)
    files = sorted(tmp_path.glob("z.service.log*"))
    assert len(files) > 10
    limit = 4096 + logstore.BULK_BYTES + logstore.PAGE_BYTES  # the last fill, after a page alignment at most
    assert all(path.stat().st_size <= limit for path in files), [path.stat().st_size for path in files]
    assert b"".join(line.data + b"\n" for line in store.query("z.service")) == payload


def test_identifier_once_per_pid_many_pids(tmp_path: Path) -> None:
    """Past a few pids the announced pids move from a tuple to a set; each pid still gets one record."""
    store = LogStore(tmp_path)
    writer = store.writer("many.service")
    pids = list(range(1000, 1012))
    for _round in range(3):
        for pid in pids:
            writer.write(b"x\n", STDOUT, pid)
    index = (tmp_path / "many.service.idx").read_bytes()
    records = [RECORD.unpack_from(index, offset) for offset in range(0, len(index), RECORD.size)]
    meta_pids = [pid for _offset, _time, _length, pid, flags in records if flags & META_FLAG]

    assert sorted(meta_pids) == pids
    assert len(store.tail("many.service", 0)) == 3 * len(pids)
