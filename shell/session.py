"""A lazily opened, reopenable connection to one manager.

The shell opens the connection on the first command that needs it, so
`help` works without a manager, and drops it after a connection error or an
interrupted request so that the next command starts clean. A lock makes the
session usable from the interactive shell's background unit-name refresh,
because a Client is not thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from unitmgr.manager.lazylog import LazyLogger

if TYPE_CHECKING:
    from unitmgr.shell.client import Client

log = LazyLogger(__name__)


class Session:
    def __init__(self, connect: Callable[[], Client], label: str = ""):
        """`connect` opens a Client and raises ClientError when it cannot;
        `label` names a remote host for prompts (empty for the local manager)."""
        self._connect = connect
        self.label = label
        self._client: Client | None = None
        self._lock = threading.Lock()
        self._host: str | None = None

    def request(self, cmd: str, args: dict[str, Any] | None = None,
                timeout: float | None = None) -> dict[str, Any]:
        """Send one control command and return its result.

        Raises RemoteError for an error reply and ClientError when the manager
        cannot be reached; after a ClientError the next request reconnects.
        """
        from unitmgr.shell.client import ClientError

        with self._lock:
            try:
                if self._client is None:
                    self._client = self._connect()
                return self._client.request(cmd, args, timeout=timeout)
            except (ClientError, KeyboardInterrupt):
                # A reply to an abandoned request could arrive later; start clean.
                self._drop()
                raise

    def open_client(self) -> Client:
        """Open a connection of its own, for a command that reads events (`logs -f`);
        the caller closes it."""
        return self._connect()

    @property
    def host(self) -> str:
        """The manager's host name (from `hello`), for log lines."""
        if self._host is None:
            from unitmgr.shell.client import ClientError, RemoteError

            try:
                self._host = str(self.request("hello").get("host") or "")
            except (ClientError, RemoteError) as exc:
                log.debug("hello failed, using the local host name: %s", exc)
                self._host = ""
            if not self._host:
                import socket

                self._host = socket.gethostname()
        return self._host

    def _drop(self) -> None:
        if self._client is not None:
            try:
                self._client.close()
            finally:
                self._client = None

    def close(self) -> None:
        with self._lock:
            self._drop()
