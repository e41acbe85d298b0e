"""`unitmgr`: run the manager, and the helper commands around it."""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from unitmgr.manager import paths as paths_module
from unitmgr.manager.lock import AlreadyRunning, LockHolder, ManagerLock

if TYPE_CHECKING:
    from unitmgr.manager.preload import Preload

log = logging.getLogger("unitmgr")

SYSTEMD_USER_DIRS = ("systemd/user",)


# Subcommands whose options come from modules that import http.server, urllib and
# ssl. The manager process builds its parser without them, which keeps about 3 MB
# of RSS off an idle manager (measured with no units, CPython 3.11).
PLUGIN_COMMANDS = frozenset({"web", "exporter", "healthcheck"})


def build_parser(with_plugins: bool = True) -> argparse.ArgumentParser:
    """Build the command line parser; without `with_plugins` the plugin subcommands take no options."""
    parser = argparse.ArgumentParser(
        prog="unitmgr",
        description="A per-user service manager that runs systemd unit files.",
    )
    parser.add_argument("--user", action="store_true", help="run the manager for this user (the default)")
    parser.add_argument("--units", action="append", type=Path, default=[], metavar="DIR",
                        help="unit directory; repeat for several, the first has the highest priority")
    parser.add_argument("--listen", action="append", default=[], metavar="ENDPOINT",
                        help="extra control endpoint, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--daemon", action="store_true",
                        help="run in the background; return once the manager is ready (log in the state dir)")
    parser.add_argument("--container", action="store_true",
                        help="behave as a container's init (automatic when running as PID 1)")
    parser.add_argument("--exit-code", type=int, default=0, metavar="N",
                        help="exit status when the manager stops without a unit's own status (default 0)")
    stdout_copy = parser.add_mutually_exclusive_group()
    stdout_copy.add_argument("--log-to-stdout", dest="log_to_stdout", action="store_true", default=None,
                             help="also copy every unit's output, prefixed, to stdout (default in container mode)")
    stdout_copy.add_argument("--no-log-to-stdout", dest="log_to_stdout", action="store_false",
                             help="do not copy unit output to stdout")
    parser.add_argument("--systemd-dirs", action="store_true",
                        help="also read ~/.config/systemd/user and the other systemd user unit dirs")
    parser.add_argument("--no-cgroups", action="store_true",
                        help="do not put units in cgroups even where cgroup v2 is writable; "
                             "the manager then enforces MemoryMax= and TasksMax= itself")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="manager log level (default: info)")
    sub = parser.add_subparsers(dest="command")
    verify = sub.add_parser("verify", help="check unit files, systemd-analyze style")
    verify.add_argument("files", nargs="+", type=Path)
    endpoint = sub.add_parser("endpoint", help="print the control endpoints and the server key")
    endpoint.add_argument("--json", action="store_true", help="print JSON")
    sub.add_parser("bridge", help="copy bytes between stdio and the local control socket (for SSH)")
    web = sub.add_parser("web", help="serve the web console, a client of the manager")
    exporter = sub.add_parser("exporter", help="serve Prometheus metrics of every unit")
    healthcheck = sub.add_parser("healthcheck", help="restart a unit whose URL stops responding")
    if with_plugins:
        from unitmgr.plugins.exporter import add_arguments as add_exporter_arguments
        from unitmgr.plugins.healthcheck import add_arguments as add_healthcheck_arguments
        from unitmgr.web.cli import add_arguments as add_web_arguments

        add_web_arguments(web)
        add_exporter_arguments(exporter)
        add_healthcheck_arguments(healthcheck)
    authorize = sub.add_parser("authorize-key", help="add a client public key to authorized_keys")
    authorize.add_argument("key", nargs="?", default="-", help="Z85 public key, or - to read stdin")
    authorize.add_argument("--label", default="", help="a comment stored with the key")
    return parser


def unit_dirs(args: argparse.Namespace, paths: paths_module.Paths) -> list[Path]:
    dirs = [d.resolve() for d in args.units] or paths.default_unit_dirs()
    if args.systemd_dirs:
        config = Path(os.environ.get("XDG_CONFIG_HOME") or paths.home / ".config")
        data = Path(os.environ.get("XDG_DATA_HOME") or paths.home / ".local/share")
        dirs += [config / "systemd/user", Path("/etc/systemd/user"), data / "systemd/user",
                 Path("/usr/local/lib/systemd/user"), Path("/usr/lib/systemd/user")]
    return dirs


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def run_manager(args: argparse.Namespace) -> int:
    # No cyclic collection until the boot has spawned its units (Manager.boot() enables it again).
    # The imports and the unit loading create many objects but few cycles, and collecting them
    # took about 17 ms of a boot of 500 units.
    gc.disable()
    # The manager speaks no TLS, and asyncio imports ssl only if it can: keeping
    # it out saves about 4 MB of RSS (measured by bench/, S2).
    if "ssl" not in sys.modules:
        sys.modules["ssl"] = None  # type: ignore[assignment]
    from unitmgr.manager import preload as preload_module
    from unitmgr.manager.container import container_paths, is_pid1
    from unitmgr.manager.detach import start_detached, take_ready_fd
    from unitmgr.manager.paths import UnsafeDirectoryError, ensure_private_dir

    setup_logging(args.log_level)
    paths = paths_module.resolve()
    container = args.container or is_pid1()
    if container:
        paths, notes = container_paths(paths)
        for note in notes:
            log.info("container mode: %s", note)
    try:
        ensure_private_dir(paths.runtime)
        ensure_private_dir(paths.state)
    except UnsafeDirectoryError as exc:
        print(f"unitmgr: {exc}", file=sys.stderr)
        return 1
    lock = ManagerLock(paths.lock_file)
    state_lock = ManagerLock(paths.state_lock_file)
    if args.daemon:
        holder = lock.peek()
        if holder is not None:
            print(f"unitmgr is already running for this user (pid {holder}); nothing to do", file=sys.stderr)
            return 0
        state_holder = state_lock.holder()
        if state_holder is not None:
            print(shared_state_message(state_holder, paths), file=sys.stderr)
            return 1
        argv = [arg for arg in (sys.argv[1:] if args.raw_argv is None else args.raw_argv) if arg != "--daemon"]
        return start_detached(argv, paths.manager_log)
    ready_fd = take_ready_fd()
    dirs = unit_dirs(args, paths)
    # Before the imports below, so that the child reads the unit files while they load.
    preload = preload_module.start(dirs, paths.config_file)
    try:
        return _run_locked(args, paths, dirs, container, lock, state_lock, ready_fd, preload)
    finally:
        if preload is not None:
            preload.discard()


def _run_locked(args: argparse.Namespace, paths: paths_module.Paths, dirs: list[Path], container: bool,
                lock: ManagerLock, state_lock: ManagerLock, ready_fd: int | None,
                preload: Preload | None) -> int:
    """Take both locks and run the manager until it stops; return its exit status."""
    # Imported here, after run_manager() blocked ssl: asyncio imports ssl as it loads.
    import asyncio

    from unitmgr.manager.container import ExitPolicy, attach_stdout_copy
    from unitmgr.manager.daemon import Manager
    from unitmgr.manager.detach import signal_ready
    from unitmgr.manager.keys import KeyFileError
    from unitmgr.manager.leftovers import stop_leftovers
    from unitmgr.manager.notify import NotifySocketError
    from unitmgr.manager.paths import UnsafeDirectoryError
    from unitmgr.manager.server import ControlServerError

    try:
        lock.acquire(dirs)
    except AlreadyRunning as exc:
        # A manager that --daemon spawned exits 0 here: detach.py reports the race.
        same_units = exc.unit_dirs == tuple(str(d) for d in dirs)
        if ready_fd is not None or same_units:
            holder_text = f" (pid {exc.pid})" if exc.pid else ""
            print(f"unitmgr is already running for this user{holder_text} with the same unit "
                  "directories; nothing to do", file=sys.stderr)
            return 0
        print(already_running_message(exc, dirs, paths), file=sys.stderr)
        return 1
    try:
        state_lock.acquire(dirs, paths.control_socket)
    except AlreadyRunning as exc:
        lock.release()
        print(shared_state_message(exc.holder, paths), file=sys.stderr)
        return 1
    if lock.previous_pid:
        stop_leftovers(lock.previous_pid, str(paths.runtime))

    async def main() -> int:
        manager = Manager(paths, dirs, args.listen, preload=preload)
        manager.use_cgroups = not args.no_cgroups
        manager.exit_code = args.exit_code
        manager.listeners.append(ExitPolicy(manager, args.exit_code))
        if args.log_to_stdout or (container and args.log_to_stdout is None):
            attach_stdout_copy(manager)
        await manager.run(ready=(lambda: signal_ready(ready_fd)) if ready_fd is not None else None)
        return manager.exit_code

    try:
        exit_code = asyncio.run(main())
    except (ControlServerError, KeyFileError, NotifySocketError, UnsafeDirectoryError) as exc:
        print(f"unitmgr: {exc}", file=sys.stderr)
        return 1
    finally:
        state_lock.release()
        lock.release()
    return exit_code


def already_running_message(exc: AlreadyRunning, dirs: list[Path], paths: paths_module.Paths) -> str:
    """Return the error for a foreground start while a manager with other unit directories runs."""
    pid = str(exc.pid) if exc.pid else "unknown"
    running = ", ".join(exc.unit_dirs) if exc.unit_dirs is not None else "unknown"
    requested = " ".join(f"--units {d}" for d in dirs)
    stop = f"'unitsh -c exit' (stops its units too) or 'kill {exc.pid}'" if exc.pid else "'unitsh -c exit'"
    return (
        f"unitmgr: another manager is already running for this home (pid {pid}, lock file "
        f"{paths.lock_file}, runtime directory {paths.runtime}), with unit directories {running}. "
        f"Stop it with {stop} first, or run this one with another home: "
        f"UNITMGR_HOME=/path/to/other/home unitmgr --user {requested}"
    )


def shared_state_message(holder: LockHolder, paths: paths_module.Paths) -> str:
    """Return the error for a start while a manager with another runtime directory uses the same state directory."""
    pid = str(holder.pid) if holder.pid else "unknown"
    socket = holder.control_socket or "unknown"
    stop = "'unitsh -c exit' (stops its units too)" + (f" or 'kill {holder.pid}'" if holder.pid else "")
    return (
        f"unitmgr: another manager is already running with this state directory {paths.state} "
        f"(pid {pid}, control socket {socket}), which holds the unit logs; this start uses the "
        f"runtime directory {paths.runtime} (from XDG_RUNTIME_DIR, or /tmp/unitmgr-UID without it). "
        f"Two managers would run every unit twice and write the same log files. Stop it with "
        f"{stop} first, or run this one with another home: "
        f"UNITMGR_HOME=/path/to/other/home unitmgr --user"
    )


def run_verify(args: argparse.Namespace) -> int:
    from unitmgr.units.specifiers import SpecifierContext
    from unitmgr.units.verify import verify_files

    context = SpecifierContext.from_environment(dict(os.environ))
    lines, has_errors = verify_files([Path(f) for f in args.files], context)
    for line in lines:
        print(line, file=sys.stderr)
    return 1 if has_errors else 0


def run_endpoint(args: argparse.Namespace) -> int:
    paths = paths_module.resolve()
    try:
        data = json.loads(paths.endpoint_file.read_text())
    except FileNotFoundError:
        print(f"unitmgr: no manager is running (no {paths.endpoint_file}); start one with: unitmgr --user",
              file=sys.stderr)
        return 1
    except (OSError, ValueError) as exc:
        print(f"unitmgr: could not read {paths.endpoint_file}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(data))
    else:
        for endpoint in data.get("endpoints", []):
            print(endpoint)
        print(f"server key: {data.get('server_key', '')}")
    return 0


def run_authorize(args: argparse.Namespace) -> int:
    from unitmgr.manager.keys import KeyFileError, authorize_key, parse_public_key_text

    text = sys.stdin.read() if args.key == "-" else args.key
    try:
        added = authorize_key(paths_module.resolve(), parse_public_key_text(text), args.label)
    except (KeyFileError, ValueError) as exc:
        print(f"unitmgr: {exc}", file=sys.stderr)
        return 1
    print("key authorized" if added else "key was already authorized")
    return 0


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    # A word that only looks like a plugin command (a directory named web) just costs the imports.
    args = build_parser(with_plugins=not PLUGIN_COMMANDS.isdisjoint(words)).parse_args(argv)
    args.raw_argv = argv
    if args.command == "verify":
        return run_verify(args)
    if args.command == "endpoint":
        return run_endpoint(args)
    if args.command == "bridge":
        from unitmgr.manager.bridge import run_bridge

        return run_bridge(paths_module.resolve())
    if args.command == "authorize-key":
        return run_authorize(args)
    if args.command == "exporter":
        from unitmgr.plugins.exporter import run_exporter

        setup_logging(args.log_level)
        return run_exporter(args)
    if args.command == "healthcheck":
        from unitmgr.plugins.healthcheck import run_healthcheck

        setup_logging(args.log_level)
        return run_healthcheck(args)
    if args.command == "web":
        from unitmgr.web.cli import run_web

        setup_logging(args.log_level)
        return run_web(args)
    return run_manager(args)


if __name__ == "__main__":
    sys.exit(main())
