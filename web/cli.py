"""`unitmgr web`: start the console, print its URL with the access token, serve until stopped."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys
import threading

from unitmgr.manager import paths as paths_module
from unitmgr.web.server import Console, ConsoleServer

log = logging.getLogger(__name__)

DEFAULT_LISTEN = "127.0.0.1:8765"


def parse_listen(text: str) -> tuple[str, int]:
    """Split `HOST:PORT` (IPv6 in brackets) and check the port."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"invalid listen address '{text}': use HOST:PORT, e.g. {DEFAULT_LISTEN}")
    return host.strip("[]") or "127.0.0.1", int(port)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", dest="web_listen", type=parse_listen, default=parse_listen(DEFAULT_LISTEN),
                        metavar="HOST:PORT", help=f"address to serve on (default {DEFAULT_LISTEN}; port 0 picks one)")
    parser.add_argument("--endpoint", dest="web_endpoint", metavar="ENDPOINT",
                        help="manager control endpoint (default: the local manager)")
    parser.add_argument("--server-key", dest="web_server_key", metavar="KEY",
                        help="the manager's public key, with --endpoint")
    parser.add_argument("--interval", dest="web_interval", type=float, default=1.0, metavar="SECONDS",
                        help="how often graphs gain a point (default 1)")


def connector(args: argparse.Namespace):
    from unitmgr.manager.keys import load_client_keys
    from unitmgr.shell.client import Client

    paths = paths_module.resolve()
    if args.web_endpoint:
        keys = load_client_keys(paths)
        server_key = (args.web_server_key or "").encode()
        return lambda: Client(args.web_endpoint, server_key, keys.public, keys.secret, timeout=10)
    return lambda: Client.local(paths, timeout=10)


def run_web(args: argparse.Namespace) -> int:
    host, port = args.web_listen
    console = Console(connector(args), interval=args.web_interval)
    try:
        server = ConsoleServer((host, port), console)
    except OSError as exc:
        print(f"unitmgr web: could not listen on {host}:{port}: {exc.strerror}; choose another --listen",
              file=sys.stderr)
        return 1
    if not is_loopback(host):
        print(f"unitmgr web: warning: serving on {host}, which other hosts can reach; the access token is "
              "required for every request, but traffic is not encrypted: put a TLS proxy in front or "
              "use an SSH port forward", file=sys.stderr)
    bound_host, bound_port = server.server_address[:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    print(f"unitmgr web: http://{shown}:{bound_port}/?token={console.tokens.access}", flush=True)
    console.history.start()
    stop = threading.Event()

    def on_signal(signum, frame) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, name="http", daemon=True)
    thread.start()
    stop.wait()
    server.shutdown()
    server.server_close()
    console.history.stop()
    return 0
