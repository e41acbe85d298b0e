"""Run the same commands on several hosts at once: `unitsh -c CMD host1 host2`.

Each host gets a thread with its own SSH connection and blocking client. Every
line a host's commands print is prefixed with `HOST: ` (whole lines only, so
the output of two hosts never mixes within a line), and a summary line per
host follows once all are done. With --json, each line is instead a JSON
object `{"host": HOST, "output": OBJECT}`, and each summary line is
`{"host": HOST, "exit_status": N, "seconds": S}`. The exit status is 0 only
if every host succeeded; otherwise it is the largest status of any host.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass
from typing import TextIO

from unitmgr.shell import exitcodes, runner
from unitmgr.shell.context import Context
from unitmgr.shell.remote import RemoteOptions, remote_connector
from unitmgr.shell.render import Output
from unitmgr.shell.session import Session


class LabelledStream:
    """A text stream that writes each complete line as `LABEL: line` to `target`."""

    def __init__(self, target: TextIO, label: str, lock: threading.Lock, json_lines: bool = False):
        self._target = target
        self._label = label
        self._lock = lock
        self._json = json_lines
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        if lines:
            self._emit(lines)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            self._emit([line])
        with self._lock:
            self._target.flush()

    def isatty(self) -> bool:
        return False

    @property
    def buffer(self) -> _LabelledBytes:
        return _LabelledBytes(self)

    def _emit(self, lines: list[str]) -> None:
        text = "".join(f"{self._format(line)}\n" for line in lines)
        with self._lock:
            self._target.write(text)
            self._target.flush()

    def _format(self, line: str) -> str:
        if self._json:
            try:
                return json.dumps({"host": self._label, "output": json.loads(line)}, sort_keys=True)
            except ValueError:
                pass  # not JSON: label it as text
        return f"{self._label}: {line}"


class _LabelledBytes:
    """The `.buffer` of a LabelledStream, for raw output such as `logs -o cat` bytes."""

    def __init__(self, stream: LabelledStream):
        self._stream = stream

    def write(self, data: bytes) -> int:
        self._stream.write(data.decode("utf-8", "replace"))
        return len(data)

    def flush(self) -> None:
        self._stream.flush()


@dataclass
class HostResult:
    host: str
    status: int = exitcodes.FAILURE
    seconds: float = 0.0


def run_remote(hosts: list[str], commands: str, options: RemoteOptions, json_output: bool = False,
               stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run `commands` (as for `unitsh -c`) on every host concurrently; return the
    exit status: 0 if all succeeded, else the largest status of a host."""
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    lock = threading.Lock()
    results = [HostResult(host) for host in hosts]
    threads = [
        threading.Thread(target=_run_on_host, name=f"host-{result.host}", daemon=True,
                         args=(result, commands, options, json_output,
                               LabelledStream(stdout, result.host, lock, json_output),
                               LabelledStream(stderr, result.host, lock)))
        for result in results
    ]
    for thread in threads:
        thread.start()
    try:
        for thread in threads:
            thread.join()
    except KeyboardInterrupt:
        # The host threads are daemons: they end with the process.
        print("unitsh: interrupted; the commands may have run on some hosts", file=stderr)
        return 130  # as a shell reports a command ended by SIGINT
    for result in results:
        _print_summary(result, json_output, stdout)
    return max((result.status for result in results), default=exitcodes.SUCCESS)


def _run_on_host(result: HostResult, commands: str, options: RemoteOptions, json_output: bool,
                 out: LabelledStream, err: LabelledStream) -> None:
    started = time.monotonic()
    session = Session(remote_connector(result.host, options), label=result.host)
    ctx = Context(Output(stdout=out, stderr=err, color=False), session, json=json_output)  # type: ignore[arg-type]
    try:
        result.status = runner.run_text(ctx, commands)
    except Exception as exc:  # noqa: BLE001 - one host's bug must not hide the others' results
        err.write(f"unitsh: unexpected error: {exc!r}\n")
        result.status = exitcodes.FAILURE
    finally:
        session.close()
        out.flush()
        err.flush()
        result.seconds = time.monotonic() - started


def _print_summary(result: HostResult, json_output: bool, stdout: TextIO) -> None:
    if json_output:
        line = json.dumps({"host": result.host, "exit_status": result.status,
                           "seconds": round(result.seconds, 3)}, sort_keys=True)
    else:
        verdict = "ok" if result.status == exitcodes.SUCCESS else "FAILED"
        line = f"== {result.host}: {verdict} (exit status {result.status}, {result.seconds:.1f} s)"
    print(line, file=stdout, flush=True)
