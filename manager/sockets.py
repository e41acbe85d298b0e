"""Socket units: listening in the manager, activation on traffic, passing to services.

A socket unit's runtime opens its `Listen*=` sockets (listen.py) and is then
`active (listening)`. The manager keeps every listening socket open for as
long as the socket unit is active, so a service that stops or restarts never
closes the listener: new connections wait in the kernel's backlog until a
process accepts them.

Which service gets which sockets (systemd's rules):

- `Accept=no` (the default): the socket triggers `Service=`, by default the
  service of the same name (`web.socket` -> `web.service`). While that
  service is not running, the manager watches the sockets with the event
  loop; the first connection or datagram starts it. While it runs, the
  manager stops watching (the sub-state shows `running`).
- A service receives the sockets named in its `Sockets=`, or else the socket
  unit of its own name plus every socket whose `Service=` names it. So all
  instances of `web@.service` share one listener with `Sockets=web.socket`
  (see docs/sockets.md); a socket with no service to trigger just listens.
- `Accept=yes`: the manager accepts each connection and starts a new
  instance `PREFIX@N.service` of the template `PREFIX@.service` with only
  that connection, named `connection`, and REMOTE_ADDR/REMOTE_PORT.

Sockets go to the main process as fds 3, 4, ... with LISTEN_FDS,
LISTEN_FDNAMES and LISTEN_PID (set by the exec helper to the pid that
execs, see spawn.py). `StandardInput=socket` puts a single socket on stdin
(and on stdout and stderr unless they are set) instead, without LISTEN_*.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import weakref
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unitmgr.manager.listen import (
    ListenAddress,
    Listener,
    ListenError,
    ListenOptions,
    open_listener,
    unit_addresses,
)
from unitmgr.manager.states import ActiveState
from unitmgr.manager.unitbase import UnitRuntime
from unitmgr.units.model import Unit

if TYPE_CHECKING:
    from unitmgr.manager.daemon import Manager
    from unitmgr.manager.service import ServiceRuntime
    from unitmgr.manager.spawn import SpawnSpec

log = logging.getLogger(__name__)

LISTEN_VARIABLES = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "REMOTE_ADDR", "REMOTE_PORT")
DOWN = (ActiveState.INACTIVE, ActiveState.FAILED)
TRIGGER_INTERVAL = 2.0
TRIGGER_BURST = 20
TRIGGER_BURST_ACCEPT = 200
MAX_CONNECTIONS = 64


@dataclass
class Connection:
    """An accepted connection waiting to be handed to its Accept=yes instance."""

    sock: socket.socket
    peer: Any
    owner: SocketRuntime

    def environment(self) -> dict[str, str]:
        if isinstance(self.peer, tuple) and len(self.peer) >= 2:
            return {"REMOTE_ADDR": str(self.peer[0]), "REMOTE_PORT": str(self.peer[1])}
        return {}


class SocketRegistry:
    """Per-manager bookkeeping: pending connections and service state changes."""

    def __init__(self, manager: Manager):
        self.manager = manager
        self.connections: dict[str, Connection] = {}
        self.units: dict[str, SocketRuntime] = {}
        manager.listeners.append(self.on_state_change)

    def add(self, runtime: SocketRuntime) -> None:
        self.units[runtime.name] = runtime

    def sockets(self) -> list[SocketRuntime]:
        """Return the socket runtimes the manager still has (daemon-reload may drop some)."""
        runtimes = self.manager.runtimes
        return [sock for name, sock in self.units.items() if runtimes.get(name) is sock]

    def on_state_change(self, runtime: UnitRuntime) -> None:
        if isinstance(runtime, SocketRuntime) or not self.units:
            return
        for sock in self.sockets():
            sock.service_changed(runtime)


_REGISTRIES: weakref.WeakKeyDictionary[Any, SocketRegistry] = weakref.WeakKeyDictionary()


def registry(manager: Manager) -> SocketRegistry:
    found = _REGISTRIES.get(manager)
    if found is None:
        found = _REGISTRIES[manager] = SocketRegistry(manager)
    return found


class SocketRuntime(UnitRuntime):
    def __init__(self, manager: Manager, unit: Unit):
        super().__init__(manager, unit)
        self.listeners: list[Listener] = []
        self.watching = False
        self.n_accepted = 0
        self.instances: set[str] = set()
        self.error = ""
        self._triggers: deque[float] = deque()
        self._passive_logged = False
        self.registry = registry(manager)
        self.registry.add(self)

    # -- settings ---------------------------------------------------------

    def setting(self, key: str) -> Any:
        return self.unit.get("Socket", key)

    @property
    def accept(self) -> bool:
        return bool(self.setting("Accept"))

    @property
    def fd_name(self) -> str:
        return self.setting("FileDescriptorName") or ("connection" if self.accept else self.name)

    def service_name(self) -> str:
        """Return the unit this socket activates: Service=, or the template for Accept=yes."""
        stem = self.name.rsplit(".", 1)[0]
        if self.accept:
            return f"{stem.split('@', 1)[0]}@.service"
        return self.setting("Service") or f"{stem}.service"

    def _service(self) -> UnitRuntime | None:
        if self.accept:
            return None
        service = self.manager.runtime(self.service_name())
        if service is None or service.unit.load_state != "loaded":
            return None
        return service

    # -- jobs -------------------------------------------------------------

    async def run_start(self, automatic: bool = False) -> str:
        if self.active_state is ActiveState.ACTIVE:
            return "done"
        skipped = self.check_conditions()
        if skipped:
            return skipped
        return "done" if self.start_listening() else "failed"

    async def run_stop(self) -> str:
        self.stop_listening()
        self.set_state(ActiveState.INACTIVE, "dead")
        return "done"

    def reset_failed(self) -> None:
        self._triggers.clear()
        super().reset_failed()

    # -- listening --------------------------------------------------------

    def start_listening(self) -> bool:
        """Open every socket of the unit (synchronous, so a service can ask at spawn time)."""
        if self.listeners:
            return True
        if self.unit.load_state != "loaded":
            return False
        opened: list[Listener] = []
        try:
            options = ListenOptions.from_unit(self.unit)
            addresses = unit_addresses(self.unit)
            self._check_accept(addresses)
            for address in addresses:
                opened.append(open_listener(address, options))
        except ListenError as exc:
            for listener in opened:
                listener.close(remove_node=True)
            self.error = str(exc)
            log.error("%s: failed to listen: %s", self.name, exc)
            self.set_state(ActiveState.FAILED, "failed", result="resources")
            return False
        self.error = ""
        self.listeners = opened
        log.info("%s: listening on %s", self.name, ", ".join(str(li.address) for li in opened))
        self.set_state(ActiveState.ACTIVE, "listening", result="success")
        self.update_watch()
        return True

    def _check_accept(self, addresses: list[ListenAddress]) -> None:
        if not self.accept:
            return
        for address in addresses:
            if address.sock_type not in (socket.SOCK_STREAM, socket.SOCK_SEQPACKET):
                raise ListenError(f"{address}: Accept=yes needs connection sockets (ListenStream= or "
                                  "ListenSequentialPacket=); remove Accept=yes or this setting")

    def stop_listening(self) -> None:
        self._unwatch()
        remove = bool(self.setting("RemoveOnStop"))
        for listener in self.listeners:
            listener.close(remove_node=remove)
        self.listeners = []

    def _fail(self, result: str, message: str) -> None:
        log.error("%s: %s", self.name, message)
        self.error = message
        self.stop_listening()
        self.set_state(ActiveState.FAILED, "failed", result=result)

    # -- activation -------------------------------------------------------

    def update_watch(self) -> None:
        """Watch the sockets exactly while traffic should start something."""
        if self.active_state is not ActiveState.ACTIVE or not self.listeners or self._shutting_down():
            # While the manager shuts down, traffic must not start what it stops.
            self._unwatch()
            return
        if self.accept:
            self._watch()
            return
        service = self._service()
        if service is None:
            if not self._passive_logged:
                log.info("%s: no %s to start on traffic; the sockets go to services that name "
                         "this socket in Sockets=", self.name, self.service_name())
                self._passive_logged = True
            self._unwatch()
            return
        if service.active_state in DOWN:
            self._watch()
            self.set_state(ActiveState.ACTIVE, "listening")
        else:
            self._unwatch()
            self.set_state(ActiveState.ACTIVE, "running")

    def _watch(self) -> None:
        if self.watching:
            return
        for listener in self.listeners:
            self.manager.loop.add_reader(listener.fd, self._on_readable, listener)
        self.watching = True

    def _unwatch(self) -> None:
        if not self.watching:
            return
        for listener in self.listeners:
            if listener.fd >= 0:
                self.manager.loop.remove_reader(listener.fd)
        self.watching = False

    def _trigger_allowed(self) -> bool:
        interval = self.setting("TriggerLimitIntervalSec")
        interval = TRIGGER_INTERVAL if interval is None else interval
        burst = self.setting("TriggerLimitBurst")
        if burst is None:
            burst = TRIGGER_BURST_ACCEPT if self.accept else TRIGGER_BURST
        if not interval or not burst:
            return True
        now = time.monotonic()
        while self._triggers and now - self._triggers[0] > interval:
            self._triggers.popleft()
        self._triggers.append(now)
        return len(self._triggers) <= burst

    def _shutting_down(self) -> bool:
        return self.manager.shutdown_requested.is_set()

    def _on_readable(self, listener: Listener) -> None:
        if self._shutting_down():
            self._unwatch()
            return
        if not self._trigger_allowed():
            self._fail("trigger-limit-hit", "trigger limit hit (TriggerLimitBurst= within "
                       "TriggerLimitIntervalSec=), refusing further activation; reset-failed and start it again")
            return
        if self.accept:
            self._accept(listener)
            return
        self._unwatch()
        service = self.service_name()
        log.info("%s: incoming traffic, starting %s", self.name, service)
        self.set_state(ActiveState.ACTIVE, "running")
        asyncio.ensure_future(self._activate(service))

    async def _activate(self, service: str) -> None:
        results = await self.manager.transactions.start([service])
        if results.get(service) not in ("done", None):
            log.warning("%s: activating %s: %s", self.name, service, results.get(service))
        self.update_watch()

    def service_changed(self, runtime: UnitRuntime) -> None:
        """Re-arm or pause activation after a service changed state, and count finished connections."""
        if runtime.name in self.instances and runtime.active_state in DOWN:
            self.instances.discard(runtime.name)
            if runtime.active_state is ActiveState.INACTIVE:
                # Connection instances are collected once they end (CollectMode=inactive).
                self.manager.loop.call_soon(self._collect, runtime)
        if not self.accept and runtime.name == self.service_name():
            if runtime.result == "start-limit-hit" and runtime.active_state is ActiveState.FAILED:
                self._fail("service-start-limit-hit", f"{runtime.name} hit its start limit")
                return
            self.update_watch()

    def _collect(self, runtime: UnitRuntime) -> None:
        if runtime.active_state is ActiveState.INACTIVE and self.manager.runtimes.get(runtime.name) is runtime:
            del self.manager.runtimes[runtime.name]

    # -- Accept=yes -------------------------------------------------------

    def _accept(self, listener: Listener) -> None:
        assert listener.sock is not None
        try:
            conn, peer = listener.sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.warning("%s: accept failed: %s", self.name, exc)
            return
        if len(self.instances) >= self._max_connections():
            log.warning("%s: too many incoming connections (%d), dropping connection (MaxConnections=)",
                        self.name, len(self.instances))
            conn.close()
            return
        self.n_accepted += 1
        prefix = self.name.rsplit(".", 1)[0].split("@", 1)[0]
        name = f"{prefix}@{self.n_accepted}.service"
        runtime = self.manager.runtime(name)
        if runtime is None or runtime.unit.load_state != "loaded":
            log.error("%s: cannot start %s for a connection: the template %s@.service is missing or "
                      "broken; add it", self.name, name, prefix)
            conn.close()
            return
        self.instances.add(name)
        self.registry.connections[name] = Connection(conn, peer, self)
        asyncio.ensure_future(self._start_instance(name))

    def _max_connections(self) -> int:
        value = self.setting("MaxConnections")
        try:
            return MAX_CONNECTIONS if value in (None, "") else int(value)
        except ValueError:
            log.warning("%s: MaxConnections=%s is not a number; using %d", self.name, value, MAX_CONNECTIONS)
            return MAX_CONNECTIONS

    async def _start_instance(self, name: str) -> None:
        try:
            await self.manager.transactions.start([name])
        finally:
            # The instance's main process has its own copy by now.
            connection = self.registry.connections.pop(name, None)
            if connection is not None:
                connection.sock.close()

    # -- status -----------------------------------------------------------

    def listen_info(self) -> list[dict[str, str]]:
        try:
            addresses = unit_addresses(self.unit)
        except ListenError:
            return []
        return [{"type": a.type_name, "listen": a.text} for a in addresses]

    def status(self) -> dict[str, Any]:
        data = super().status()
        data.update(
            listen=self.listen_info(),
            triggers=[self.service_name()],
            accept=self.accept,
            accepted=self.n_accepted,
            connections=len(self.instances),
            socket_error=self.error,
        )
        return data


# -- handing sockets to services ----------------------------------------------


def sockets_for_service(service: UnitRuntime) -> list[SocketRuntime]:
    """Return the socket units whose listeners `service` receives, in order (Accept=no only)."""
    manager = service.manager
    names = list(service.unit.get("Service", "Sockets") or [])
    if not names:
        # The socket of the same name comes from the unit directories as last
        # listed. Checking them for changes at every start cost a stat per
        # directory, and a full listing while they were less than a second old.
        implicit = service.name.rsplit(".", 1)[0] + ".socket"
        if implicit in manager.runtimes or manager.loader.listed(implicit):
            names.append(implicit)
        for sock in registry(manager).sockets():
            if not sock.accept and sock.service_name() == service.name and sock.name not in names:
                names.append(sock.name)
    found: list[SocketRuntime] = []
    for name in names:
        runtime = manager.runtime(name if name.endswith(".socket") else f"{name}.socket")
        if isinstance(runtime, SocketRuntime) and runtime.unit.load_state == "loaded" and not runtime.accept:
            found.append(runtime)
    return found


def collect_fds(service: UnitRuntime) -> tuple[list[int], list[str], dict[str, str]]:
    """(fds, names, extra environment) to pass to the main process of `service`."""
    connection = registry(service.manager).connections.get(service.name)
    if connection is not None:
        return [connection.sock.fileno()], [connection.owner.fd_name], connection.environment()
    fds: list[int] = []
    names: list[str] = []
    for sock in sockets_for_service(service):
        if not sock.start_listening():
            log.warning("%s: socket %s is not listening: %s", service.name, sock.name, sock.error)
            continue
        for listener in sock.listeners:
            fds.append(listener.fd)
            names.append(sock.fd_name)
    return fds, names, {}


def attach_sockets(service: ServiceRuntime, spec: SpawnSpec) -> None:
    """Add the service's sockets to the spawn of its main process (called by service.py)."""
    for key in LISTEN_VARIABLES:
        spec.env.pop(key, None)
    fds, names, extra_env = collect_fds(service)
    if not fds:
        return
    spec.env.update(extra_env)
    if service.setting("NonBlocking"):
        for fd in fds:
            os.set_blocking(fd, False)
    if service.setting("StandardInput") == "socket":
        _attach_as_stdio(service, spec, fds)
        return
    spec.pass_fds = fds
    spec.env["LISTEN_FDS"] = str(len(fds))
    spec.env["LISTEN_FDNAMES"] = ":".join(names)
    spec.listen_pid = True


def _attach_as_stdio(service: ServiceRuntime, spec: SpawnSpec, fds: list[int]) -> None:
    if len(fds) != 1:
        log.warning("%s: StandardInput=socket needs exactly one socket, not %d; using /dev/null",
                    service.name, len(fds))
        return
    spec.stdin_fd = fds[0]
    stdout = service.setting("StandardOutput") if service.unit.is_set("Service", "StandardOutput") else "inherit"
    if stdout in ("inherit", "socket"):
        spec.stdout_fd = fds[0]
    stderr = service.setting("StandardError") or "inherit"
    if stderr == "socket" or (stderr == "inherit" and spec.stdout_fd == fds[0]):
        spec.stderr_fd = fds[0]


# -- the list-sockets command ---------------------------------------------------


async def list_sockets(manager: Manager, args: dict[str, Any]) -> dict[str, Any]:
    """`systemctl list-sockets`: one row per listening address of each socket unit."""
    rows = []
    names = {n for n in manager.known_names() if n.endswith(".socket")}
    for name in sorted(names):
        runtime = manager.runtime(name)
        if not isinstance(runtime, SocketRuntime):
            continue
        if not args.get("all") and runtime.active_state is not ActiveState.ACTIVE:
            continue
        for entry in runtime.listen_info():
            rows.append({
                **entry, "unit": name, "activates": runtime.service_name(),
                "active_state": runtime.active_state.value, "sub_state": runtime.sub_state,
            })
    return {"sockets": rows}
