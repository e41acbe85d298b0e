"""Unit output end to end: every byte kept, binary safety, files, targets, `logs` options and `-f`."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import wait_for, write_unit
from unitmgr.manager.linecut import LINE_MAX
from unitmgr.manager.logstore import LogStore

MB = 1024 * 1024


def records(manager, unit: str, **args) -> list[dict]:
    """Return the unit's output lines, without the manager's lines about the unit (stream "manager")."""
    found = manager.request("logs", {"units": [unit], "lines": 0, **args})["records"]
    return [record for record in found if record["stream"] != "manager"]


def texts(manager, unit: str, **args) -> list[str]:
    return [record["text"] for record in records(manager, unit, **args)]


def stored_bytes(log_dir: Path, unit: str) -> bytes:
    """Return a unit's output as the log store rebuilds it: lines joined by newlines."""
    lines = LogStore(log_dir).query(unit, accept=lambda line: line.stream != "manager")
    parts = []
    for line in lines:
        parts.append(line.data if line.partial else line.data + b"\n")
    return b"".join(parts)


def timed_cat(source: Path, target: str, timing: Path) -> str:
    """A unit's command line that copies `source` to `target` and writes the nanoseconds it took to `timing`."""
    return (f"/bin/sh -c 'start=$$(date +%%s%%N); cat {source}{target}; end=$$(date +%%s%%N); "
            f"echo $$((end - start)) > {timing}'")


def copy_directly(source: Path, tmp_path: Path) -> float:
    """Return the seconds `cat` takes to copy `source` into a file, without the manager."""
    timing = tmp_path / "direct.ns"
    command = timed_cat(source, f" > {tmp_path / 'direct.bin'}", timing)
    command = command.replace("$$", "$").replace("%%", "%")
    subprocess.run(["/bin/sh", "-c", command[len("/bin/sh -c '"):-1]], check=True)
    return int(timing.read_text()) / 1e9


def test_fast_writer_loses_nothing(make_manager, tmp_path: Path) -> None:
    payload = os.urandom(100 * MB)
    source = tmp_path / "payload.bin"
    source.write_bytes(payload)
    units = tmp_path / "units"
    timing = tmp_path / "manager.ns"
    write_unit(units, "flood.service", f"""\
[Service]
Type=oneshot
ExecStart={timed_cat(source, "", timing)}
X-Unitmgr-LogMaxBytes=32M
X-Unitmgr-LogKeepFiles=8
""")
    manager = make_manager(units)
    direct_before = copy_directly(source, tmp_path)

    assert manager.request("start", {"units": ["flood"]})["jobs"][0]["result"] == "done"
    direct_after = copy_directly(source, tmp_path)
    stored = stored_bytes(manager.home / "state" / "logs", "flood.service")
    assert len(stored) == len(payload)
    assert hashlib.sha256(stored).hexdigest() == hashlib.sha256(payload).hexdigest()
    status = manager.request("status", {"units": ["flood"], "lines": 1})["units"][0]
    assert status["log_write_errors"] == 0
    assert status["log_bytes"] == len(payload)
    assert (manager.home / "state" / "logs" / "flood.service.log.2").exists(), "the log should have rotated"

    with_manager = int(timing.read_text()) / 1e9
    # The slower of two direct copies, because other tests load these cores too.
    direct = max(direct_before, direct_after)
    ratio = with_manager / direct
    print(f"\n100 MB: {with_manager:.3f} s through the manager, {direct:.3f} s into a file, ratio {ratio:.2f}")
    # Only a gross slowdown fails: 100 MB in 3 s is 33 MB/s, far below any normal run.
    assert ratio < 5 or with_manager < 3.0, f"the writer took {ratio:.1f} times as long"


BINARY = (b"caf\xc3\xa9 \xff\xfe bad utf-8\n\x00nul\x00inside\n\x1b[31mred\x1b[0m\r\n"
          b"carriage\rreturn\nno newline at the end")


def test_binary_output_exact_through_unitsh(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    payload_file = tmp_path / "payload.bin"
    payload_file.write_bytes(BINARY)
    write_unit(units, "binary.service", f"[Service]\nType=oneshot\nExecStart=/bin/cat {payload_file}\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["binary"]})

    shell = subprocess.run([sys.executable, "-m", "unitmgr.shell.cli", "-c", "logs -o raw binary"],
                           env=manager.env, capture_output=True, timeout=30)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout == BINARY

    found = records(manager, "binary", raw=True)
    assert b"".join(base64.b64decode(r["raw"]) + (b"" if r.get("partial") else b"\n") for r in found) == BINARY
    assert found[-1]["partial"] is True
    # Display text replaces the invalid bytes visibly and keeps the valid ones.
    assert found[0]["text"] == "café \ufffd\ufffd bad utf-8"


def test_line_longer_than_pipe_buffer(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    long_line = b"x" * (1200 * 1024) + b"end"
    source = tmp_path / "long.txt"
    source.write_bytes(b"before\n" + long_line + b"\nafter")
    write_unit(units, "long.service", f"[Service]\nType=oneshot\nExecStart=/bin/cat {source}\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["long"]})

    found = records(manager, "long")
    pieces = found[1:-1]
    assert found[0]["text"] == "before"
    assert found[-1]["text"] == "after"
    # The line comes back in pieces of LINE_MAX bytes, each but the last marked partial.
    assert "".join(piece["text"] for piece in pieces) == long_line.decode()
    assert [len(piece["text"]) for piece in pieces[:-1]] == [LINE_MAX] * (len(pieces) - 1)
    assert [piece.get("partial", False) for piece in pieces] == [True] * (len(pieces) - 1) + [False]


def test_grandchild_holding_pipe(make_manager, tmp_path: Path) -> None:
    """Output is stored as it is read, not at EOF: a grandchild keeping the pipe open holds nothing back."""
    units = tmp_path / "units"
    release = tmp_path / "release"
    write_unit(units, "holder.service", f"""\
[Service]
Type=oneshot
RemainAfterExit=yes
KillMode=process
ExecStart=/bin/sh -c '(while [ ! -e {release} ]; do sleep 0.05; done; echo "grandchild late") & \\
    i=0; while [ $$i -lt 500 ]; do echo "main $$i"; i=$$((i+1)); done'
""")
    manager = make_manager(units)
    manager.request("start", {"units": ["holder"]})

    wait_for(lambda: len(texts(manager, "holder")) == 500, message="the main process's 500 lines")
    release.touch()
    wait_for(lambda: "grandchild late" in texts(manager, "holder"), message="the grandchild's line")
    assert texts(manager, "holder")[:500] == [f"main {i}" for i in range(500)]


@pytest.mark.parametrize("action", ["delete", "move"])
def test_log_file_replaced_under_unit(make_manager, tmp_path: Path, action: str) -> None:
    units = tmp_path / "units"
    write_unit(units, "ticker.service", """\
[Service]
ExecStart=/bin/sh -c 'i=0; while true; do echo "tick $$i"; i=$$((i+1)); sleep 0.02; done'
""")
    manager = make_manager(units)
    manager.request("start", {"units": ["ticker"]})
    log_dir = manager.home / "state" / "logs"
    wait_for(lambda: len(texts(manager, "ticker")) >= 3, message="the first ticks")

    for suffix in ("log", "idx"):
        path = log_dir / f"ticker.service.{suffix}"
        if action == "delete":
            path.unlink()
        else:
            path.rename(tmp_path / f"moved.{suffix}")
    status = wait_for(lambda: (s := manager.status("ticker"))["log_reopened"] >= 1 and s,
                      message="status to report the reopened log")
    assert status["log_write_errors"] == 0
    wait_for(lambda: len(texts(manager, "ticker")) >= 3, message="new ticks in the new file")
    shown = manager.unitsh("-c", "status ticker")
    assert "was deleted or moved 1 time(s)" in shown.stderr
    assert (log_dir / "ticker.service.log").exists()
    assert texts(manager, "ticker")[0].startswith("tick ")


def test_failed_writes_counted_and_drained(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "full.service", """\
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'head -c 3000000 /dev/zero; echo done >&2'
""")
    manager = make_manager(units)
    log_dir = manager.home / "state" / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    # Writes to /dev/full fail with ENOSPC, as on a full disk.
    (log_dir / "full.service.log").symlink_to("/dev/full")

    result = manager.request("start", {"units": ["full"]})
    assert result["jobs"][0]["result"] == "done", "the unit must not block on a pipe nobody drains"
    status = manager.status("full")
    assert status["log_write_errors"] >= 3_000_000
    assert "space" in status["log_last_error"].lower()


TARGETS = """\
[Service]
Type=oneshot
StandardOutput={stdout}
StandardError={stderr}
ExecStart=/bin/sh -c 'echo out-line; echo err-line >&2'
"""


OLD_CONTENT = "old content, longer than what the unit writes\n"


@pytest.mark.parametrize(
    ("stdout", "stderr", "in_log", "in_file"),
    [
        ("journal", "inherit", [("stdout", "out-line"), ("stderr", "err-line")], None),
        ("journal", "journal", [("stdout", "out-line"), ("stderr", "err-line")], None),
        ("null", "journal", [("stderr", "err-line")], None),
        ("journal", "null", [("stdout", "out-line")], None),
        ("null", "inherit", [], None),
        ("inherit", "inherit", [], None),
        # file: writes from offset 0 without truncating; stderr=inherit shares the descriptor.
        ("file:{file}", "inherit", [], "out-line\nerr-line\n" + OLD_CONTENT[18:]),
        ("append:{file}", "journal", [("stderr", "err-line")], OLD_CONTENT + "out-line\n"),
        # The same file for both streams: one descriptor, so neither overwrites the other.
        ("truncate:{file}", "truncate:{file}", [], "out-line\nerr-line\n"),
        ("journal", "file:{file}", [("stdout", "out-line")], "err-line\n" + OLD_CONTENT[9:]),
    ],
)
def test_output_targets(make_manager, tmp_path: Path, stdout: str, stderr: str,
                        in_log: list[tuple[str, str]], in_file: str | None) -> None:
    units = tmp_path / "units"
    target = tmp_path / "out.txt"
    target.write_text(OLD_CONTENT)
    write_unit(units, "targets.service", TARGETS.format(stdout=stdout.format(file=target),
                                                        stderr=stderr.format(file=target)))
    manager = make_manager(units)
    manager.request("start", {"units": ["targets"]})

    found = sorted((r["stream"], r["text"]) for r in records(manager, "targets"))
    assert found == sorted(in_log)
    if in_file is not None:
        assert target.read_text() == in_file


def test_output_file_in_missing_directory(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    missing = tmp_path / "no such dir" / "out.txt"
    write_unit(units, "lost.service", f"[Service]\nType=oneshot\nStandardOutput=file:{missing}\n"
                                      "ExecStart=/bin/echo hi\n")
    manager = make_manager(units)
    assert manager.request("start", {"units": ["lost"]})["jobs"][0]["result"] == "failed"
    status = manager.status("lost")
    assert (status["active_state"], status["result"]) == ("failed", "resources")
    assert str(missing) in manager.log()


def test_stdin_is_null(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "reader.service", """\
[Service]
Type=oneshot
StandardInput=null
ExecStart=/bin/sh -c 'cat; echo "stdin ended"'
""")
    manager = make_manager(units)
    assert manager.request("start", {"units": ["reader"]})["jobs"][0]["result"] == "done"
    assert texts(manager, "reader") == ["stdin ended"]


def test_syslog_identifier_in_records(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "named.service", "[Service]\nType=oneshot\nSyslogIdentifier=webapp\nExecStart=/bin/echo hi\n")
    write_unit(units, "plain.service", "[Service]\nType=oneshot\nExecStart=/bin/echo hi\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["named", "plain"]})

    assert [r["identifier"] for r in records(manager, "named")] == ["webapp"]
    assert [r["identifier"] for r in records(manager, "plain")] == ["echo"]
    shell = manager.unitsh("-c", "logs named")
    assert "webapp[" in shell.stdout


def test_logs_options(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "first.service", """\
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "first Alpha"; echo "first error" >&2; echo "first beta"'
""")
    write_unit(units, "second.service", """\
[Service]
Type=oneshot
ExecStart=/bin/sh -c 'echo "second alpha"; echo "second ERROR" >&2'
""")
    manager = make_manager(units)
    manager.request("start", {"units": ["first"]})
    middle = time.time()
    wait_for(lambda: time.time() > middle, message="the clock to move on")
    manager.request("start", {"units": ["second"]})

    both = {"units": ["first", "second"], "lines": 0}

    def output(args: dict) -> list[dict]:
        # The units' own lines; the manager's lines about them are checked below.
        return [r for r in manager.request("logs", args)["records"] if r["stream"] != "manager"]

    merged = output(both)
    assert [r["unit"] for r in merged] == ["first.service"] * 3 + ["second.service"] * 2
    assert [r["time"] for r in merged] == sorted(r["time"] for r in merged)
    assert [r["text"] for r in output({**both, "lines": 2, "stream": "stdout"})] == \
        ["first beta", "second alpha"]
    # Lower-case patterns ignore case, as journalctl's --grep does.
    assert [r["text"] for r in output({**both, "grep": "alpha"})] == \
        ["first Alpha", "second alpha"]
    assert [r["text"] for r in output({**both, "grep": "ERROR"})] == \
        ["second ERROR"]
    assert [r["text"] for r in manager.request("logs", {**both, "stream": "stderr"})["records"]] == \
        ["first error", "second ERROR"]
    assert [r["unit"] for r in output({**both, "since": middle})] == \
        ["second.service"] * 2
    assert [r["unit"] for r in output({**both, "until": middle})] == \
        ["first.service"] * 3
    assert len(output({**both, "since": "10 min ago", "until": "now"})) == 5
    assert manager.request("logs", {**both, "since": "tomorrow"})["records"] == []
    assert len(output({**both, "since": "today"})) == 5
    from_manager = [r["text"] for r in manager.request("logs", {**both, "stream": "manager"})["records"]]
    assert "Finished first.service." in from_manager
    assert from_manager[-1] == "Finished second.service."

    shell = manager.unitsh("-c", "logs -o cat --stream stderr --grep error first second")
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.splitlines() == ["first error", "second ERROR"]
    shell = manager.unitsh("-c", "logs --since 'last tuesday-ish' first")
    assert shell.returncode != 0
    assert "last tuesday-ish" in shell.stderr

    from unitmgr.shell.client import RemoteError

    with pytest.raises(RemoteError) as bad_time:
        manager.request("logs", {**both, "since": "last tuesday-ish"})
    assert "last tuesday-ish" in bad_time.value.message
    with pytest.raises(RemoteError) as bad_grep:
        manager.request("logs", {**both, "grep": "("})
    assert "regular expression" in bad_grep.value.message
    with pytest.raises(RemoteError) as bad_stream:
        manager.request("logs", {**both, "stream": "stdin"})
    assert "stdin" in bad_stream.value.message


def read_line_until(process: subprocess.Popen, wanted: str, timeout: float) -> str:
    """Read `process`'s stdout until a line contains `wanted`; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    seen = b""
    assert process.stdout is not None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            break
        seen += chunk
        for line in seen.decode(errors="replace").splitlines():
            if wanted in line:
                return line
    raise AssertionError(f"no line with {wanted!r} within {timeout}s; output so far: {seen!r}")


def test_follow_through_client(make_manager, tmp_path: Path) -> None:
    from unitmgr.manager import paths as paths_module
    from unitmgr.shell.client import Client

    units = tmp_path / "units"
    write_unit(units, "once.service", "[Service]\nType=oneshot\nExecStart=/bin/echo 'marker 7f3a'\n")
    manager = make_manager(units)
    with Client.local(paths_module.resolve(manager.env)) as client:
        client.subscribe(["log"], ["once"], lines=10)
        manager.request("start", {"units": ["once"], "no_block": True})
        started = time.monotonic()
        texts_seen = []
        for event in client.iter_events(timeout=15):
            texts_seen += [r["text"] for r in event.get("records", [])]
            if "marker 7f3a" in texts_seen:
                break
        assert "marker 7f3a" in texts_seen
        print(f"\nfollow latency: {time.monotonic() - started:.3f} s from the start request")


def test_follow_through_unitsh(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "once.service", "[Service]\nType=oneshot\nExecStart=/bin/echo 'marker 9c1d'\n")
    write_unit(units, "before.service", "[Service]\nType=oneshot\nExecStart=/bin/echo 'earlier line'\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["before"]})
    follower = subprocess.Popen(
        [sys.executable, "-m", "unitmgr.shell.cli", "-c", "logs -f -o cat once before"],
        env=manager.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        read_line_until(follower, "earlier line", timeout=30)
        manager.request("start", {"units": ["once"]})
        assert read_line_until(follower, "marker 9c1d", timeout=15) == "marker 9c1d"
        follower.send_signal(signal.SIGINT)
        follower.wait(15)
        assert follower.returncode in (0, 130), follower.stderr.read()
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


def test_logs_json_output(make_manager, tmp_path: Path) -> None:
    units = tmp_path / "units"
    write_unit(units, "js.service", "[Service]\nType=oneshot\nExecStart=/bin/echo hello\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["js"]})
    shell = manager.unitsh("-c", "logs -o json js")
    assert shell.returncode == 0, shell.stderr
    [record] = [r for r in map(json.loads, shell.stdout.splitlines()) if r["stream"] != "manager"]
    assert record["text"] == "hello"
    assert record["stream"] == "stdout"


def test_follow_across_rotation(make_manager, tmp_path: Path) -> None:
    import io

    from unitmgr.manager import paths as paths_module
    from unitmgr.shell.client import Client
    from unitmgr.shell.follow import follow_logs
    from unitmgr.shell.render import Output

    count = 4000
    units = tmp_path / "units"
    write_unit(units, "rotating.service", f"""\
[Service]
Type=oneshot
X-Unitmgr-LogMaxBytes=4K
X-Unitmgr-LogKeepFiles=2
ExecStart=/usr/bin/python3 -c 'import time\\nfor i in range({count}): print("n", i, flush=True); time.sleep(0.0002)'
""")
    write_unit(units, "before.service", "[Service]\nType=oneshot\nExecStart=/bin/echo 'earlier line'\n")
    manager = make_manager(units)
    manager.request("start", {"units": ["before"]})
    out = Output(stdout=io.StringIO(), stderr=io.StringIO())
    deadline = time.monotonic() + 60

    def stop() -> bool:
        text = out.stdout.getvalue()
        if "earlier line" in text and "rotating" not in started:
            started.append("rotating")
            manager.request("start", {"units": ["rotating"], "no_block": True})
        return f"n {count - 1}\n" in text or time.monotonic() > deadline

    started: list[str] = []
    with Client.local(paths_module.resolve(manager.env)) as client:
        status = follow_logs(client, out, {"units": ["before", "rotating"], "queue": 10_000,
                                              "stream": "stdout"}, "cat", "",
                             stop=stop)
    assert status == 0
    lines = out.stdout.getvalue().splitlines()
    assert lines == ["earlier line"] + [f"n {i}" for i in range(count)]
    assert out.stderr.getvalue() == ""
    assert (manager.home / "state" / "logs" / "rotating.service.log.1").exists()
