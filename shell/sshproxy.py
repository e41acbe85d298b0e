"""ProxyCommand: an SSH connection carried by the standard input and output of a command.

paramiko.ProxyCommand splits the command without a shell, spins when the
command exits, never reads its stderr and leaves the process unreaped. This
version runs the command the way OpenSSH does (`/bin/sh -c "exec COMMAND"`)
with one end of a socket pair as its stdin and stdout, so paramiko reads a
real socket and gets end of file when the command exits. stderr goes to a
temporary file, shown when the connection fails. `close()` ends the process.
"""

from __future__ import annotations

import logging
import socket
import subprocess
import tempfile
import time

log = logging.getLogger(__name__)

SHELL = "/bin/sh"
STOP_TIMEOUT = 2.0  # seconds between SIGTERM and SIGKILL
EXIT_WAIT = 1.0  # seconds to wait for a failing command's exit status
MAX_STDERR = 2000  # characters of stderr shown in an error


class ProxyProcess:
    """A running ProxyCommand; `sock` is the local end of its stdin and stdout."""

    def __init__(self, command: str, host: str):
        self.command = command
        self.host = host
        self._stderr = tempfile.TemporaryFile()
        self.sock, child = socket.socketpair()
        try:
            # A new session, so that Ctrl-C at the interactive shell does not reach the proxy.
            self.process = subprocess.Popen([SHELL, "-c", f"exec {command}"], stdin=child, stdout=child,
                                            stderr=self._stderr, start_new_session=True)
        except OSError:
            self.sock.close()
            self._stderr.close()
            raise
        finally:
            child.close()
        log.debug("%s: started ProxyCommand %r, pid %d", host, command, self.process.pid)

    def exit_status(self, wait: float = 0.0) -> int | None:
        """Return the exit status, waiting up to `wait` seconds. Return None while the command runs."""
        deadline = time.monotonic() + wait
        while True:
            status = self.process.poll()
            if status is not None or time.monotonic() >= deadline:
                return status
            time.sleep(0.05)

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        text = " ".join(self._stderr.read().decode("utf-8", "replace").split())
        return text[-MAX_STDERR:]

    def describe_failure(self) -> str | None:
        """Return why the command broke the connection, or None while it still runs."""
        status = self.exit_status(wait=EXIT_WAIT)
        if status is None:
            return None
        reason = f"exited with status {status}" if status >= 0 else f"was killed by signal {-status}"
        stderr = self.stderr_text()
        return f"ProxyCommand {self.command!r} {reason}" + (f": {stderr}" if stderr else " and printed nothing")

    def close(self) -> None:
        """Close the socket and end the process: SIGTERM, then SIGKILL after STOP_TIMEOUT."""
        self.sock.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("%s: ProxyCommand pid %d ignored SIGTERM; killing it", self.host, self.process.pid)
                self.process.kill()
                self.process.wait()
        log.debug("%s: ProxyCommand pid %d ended with status %s", self.host, self.process.pid,
                  self.process.returncode)
        self._stderr.close()
