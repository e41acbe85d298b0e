"""Time status round trips inside one running client; print JSON {"milliseconds": {...}}.

Run with the interpreter that has the manager's client library:

    python probe.py unitmgr ITERATIONS UNITMGR_HOME UNIT...   (Curve on, as unitsh uses it)
    python probe.py supervisord ITERATIONS SOCKET_PATH        (XML-RPC over the unix socket)
    python probe.py circus ITERATIONS ENDPOINT                (Circus's ZeroMQ client)

The first call of each kind is a warm-up (connection and handshake) and is
not counted. Each kind of request maps to a list of round-trip times.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable


def timed(call: Callable[[], object], iterations: int) -> list[float]:
    call()
    times = []
    for _ in range(iterations):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return times


def probe_unitmgr(iterations: int, home: str, units: list[str]) -> dict[str, list[float]]:
    from unitmgr.manager import paths as paths_module
    from unitmgr.shell.client import Client

    paths = paths_module.resolve(dict(os.environ, UNITMGR_HOME=home))
    with Client.local(paths) as client:
        return {
            # `status` of every unit is slow enough that a few calls give a stable median.
            "status-all": timed(lambda: client.request("status", {"units": units, "lines": 0}), min(iterations, 10)),
            "status-one": timed(lambda: client.request("status", {"units": units[:1], "lines": 0}), iterations),
            "list": timed(lambda: client.request("list", {"table": True}), iterations),
        }


def probe_supervisord(iterations: int, socket_path: str) -> dict[str, list[float]]:
    import xmlrpc.client

    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, serverurl=f"unix://{socket_path}")
    proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
    return {"status-all": timed(proxy.supervisor.getAllProcessInfo, iterations)}


def probe_circus(iterations: int, endpoint: str) -> dict[str, list[float]]:
    from circus.client import CircusClient, make_message

    client = CircusClient(endpoint=endpoint, timeout=30)
    try:
        return {"status-all": timed(lambda: client.call(make_message("status")), iterations)}
    finally:
        client.stop()


def main(argv: list[str]) -> int:
    kind, iterations, target, *rest = argv
    count = int(iterations)
    if kind == "unitmgr":
        result = probe_unitmgr(count, target, rest)
    elif kind == "supervisord":
        result = probe_supervisord(count, target)
    elif kind == "circus":
        result = probe_circus(count, target)
    else:
        print(f"probe.py: unknown manager {kind!r}; expected unitmgr, supervisord or circus", file=sys.stderr)
        return 2
    print(json.dumps({"milliseconds": result}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
