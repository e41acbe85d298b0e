"""Routing sd_notify messages to the service whose process sent them.

The sender is the pid in the datagram's kernel credentials. It belongs to a
service when it is that service's main or control process, or when it runs
in a session one of the service's processes started (every spawned process
leads a session of its own). It also belongs to it when an ancestor was
spawned by the service, or when it carries the service's INVOCATION_ID. Messages from other users
are dropped: the socket is private to the manager's user, and root may
send as anyone.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from unitmgr.manager import processes
from unitmgr.manager.notify import NotifyMessage, NotifySocket
from unitmgr.manager.service import ServiceRuntime
from unitmgr.manager.servicenotify import handle_message, notify_access, sender_allowed

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager
    from unitmgr.manager.paths import Paths

log = logging.getLogger(__name__)

# The ppid chain is followed this far up. Deeper trees are still caught by the session rule.
MAX_ANCESTORS = 64
# At most one "rejected" warning per unit in this many seconds.
WARN_INTERVAL = 5.0


# Overrides the notify socket's address; a value starting with "@" is an abstract socket.
ADDRESS_VARIABLE = "UNITMGR_NOTIFY_SOCKET"


def notify_address(paths: Paths, environment: Mapping[str, str]) -> str:
    """Return the notify socket's address: $UNITMGR_NOTIFY_SOCKET if set, else the runtime directory's notify.sock."""
    configured = environment.get(ADDRESS_VARIABLE, "")
    if configured.startswith(("@", "/")):
        return configured
    if configured:
        log.warning("ignoring %s=%r: use an absolute path or @NAME for an abstract socket",
                    ADDRESS_VARIABLE, configured)
    return str(paths.notify_socket)


def _live_stat(pid: int) -> processes.ProcInfo | None:
    """Return the /proc stat of `pid`, or None when it is gone or a zombie."""
    info = processes.read_stat(pid)
    return info if info is not None and info.state != "Z" else None


class NotifyRouter:
    def __init__(self, manager: Manager, address: str):
        self.manager = manager
        self.socket = NotifySocket(manager.loop, address, self.on_message)
        self._last_warning: dict[str, float] = {}
        # pid of a main, control or spawned process to its service; see unit_for_pid().
        self._pid_index: dict[int, ServiceRuntime] = {}

    @property
    def address(self) -> str:
        return self.socket.address

    def open(self) -> None:
        self.socket.open()

    def close(self) -> None:
        self.socket.close()

    def _services(self) -> list[ServiceRuntime]:
        return [r for r in self.manager.runtimes.values() if isinstance(r, ServiceRuntime) and r.invocation_id]

    def _owns(self, service: ServiceRuntime, pid: int) -> bool:
        """Return whether `pid` is still a main, control or spawned process of the running `service`."""
        if not service.invocation_id or self.manager.runtimes.get(service.name) is not service:
            return False
        return pid == service.main_pid or pid in service.control_pids or pid in service.roots

    def _rebuild_index(self) -> list[ServiceRuntime]:
        services = self._services()
        index: dict[int, ServiceRuntime] = {}
        for service in services:
            for pid in (service.main_pid, *service.control_pids, *service.roots):
                if pid:
                    index[pid] = service
        self._pid_index = index
        return services

    def _indexed(self, pid: int) -> ServiceRuntime | None:
        service = self._pid_index.get(pid)
        return service if service is not None and self._owns(service, pid) else None

    def _spawned_root(self, pid: int) -> ServiceRuntime | None:
        """Return the service that spawned the session or an ancestor of `pid`, from the index."""
        info = _live_stat(pid)
        if info is None:
            return None
        service = self._pid_index.get(info.sid)
        if service is not None and info.sid in service.roots and self._owns(service, info.sid):
            return service
        current = info
        for _ in range(MAX_ANCESTORS):
            parent = _live_stat(current.ppid) if current.ppid > 1 else None
            if parent is None:
                break
            service = self._pid_index.get(parent.pid)
            if service is not None and parent.pid in service.roots and self._owns(service, parent.pid):
                return service
            current = parent
        return None

    def unit_for_pid(self, pid: int) -> ServiceRuntime | None:
        """Return the service that `pid` belongs to, or None.

        The pid index is built from the services' main, control and spawned
        pids and checked against the service on every hit, so a message from a
        known process costs a dict lookup. A miss rebuilds the index once, and
        only then are the environments of all services' processes compared.
        """
        found = self._indexed(pid) or self._spawned_root(pid)
        if found is not None:
            return found
        services = self._rebuild_index()
        found = self._indexed(pid) or self._spawned_root(pid)
        if found is not None:
            return found
        for service in services:
            if processes.environ_has(pid, f"INVOCATION_ID={service.invocation_id}".encode()):
                return service
        return None

    def on_message(self, message: NotifyMessage) -> None:
        sender = message.sender
        if sender.uid not in (os.getuid(), 0):
            log.warning("notify: dropping a message from uid %d (pid %d)", sender.uid, sender.pid)
            return
        service = self.unit_for_pid(sender.pid)
        if service is None:
            log.debug("notify: no unit has pid %d; dropping %s", sender.pid, sorted(message.fields))
            return
        if not sender_allowed(service, sender.pid):
            self._warn_rejected(service, sender.pid)
            return
        log.debug("%s: notify from pid %d: %s", service.name, sender.pid, message.fields)
        handle_message(service, message)

    def _warn_rejected(self, service: ServiceRuntime, pid: int) -> None:
        now = time.monotonic()
        if now - self._last_warning.get(service.name, -WARN_INTERVAL) < WARN_INTERVAL:
            return
        self._last_warning[service.name] = now
        access = notify_access(service)
        log.warning("%s: rejecting a notify message from pid %d (NotifyAccess=%s; main PID is %d)",
                    service.name, pid, access, service.main_pid)
