"""Benchmark unitmgr side by side with supervisord and Circus, and write bench/RESULTS.md.

    python bench/run.py            # the full run (15 to 25 minutes on 2 cores)
    python bench/run.py --quick    # fewer runs and smaller N, under 3 minutes
    python bench/run.py --smoke    # every scenario once at tiny sizes, for the test suite

See bench/README.md for what each scenario measures.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import pickle
import signal
import sys
import time
from pathlib import Path

import procfs
from anchorenv import AnchorInstallError, VirtualEnv, ensure_anchor_env, ensure_unitmgr_env
from collect import run_all
from managers import all_managers
from report import write_results
from settings import MODES, START_LIMIT, Settings
from targets import evaluate

log = logging.getLogger("bench")

BENCH_DIR = Path(__file__).resolve().parent
EXIT_NO_ANCHORS = 4
NOTES = BENCH_DIR / "notes.md"
_held_locks: list = []


class BenchBusyError(Exception):
    """Another benchmark run is using the unitmgr environment."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Benchmark unitmgr against supervisord and Circus.")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--quick", action="store_const", dest="mode", const="quick",
                       help="fewer runs and smaller N; finishes in under 3 minutes")
    modes.add_argument("--smoke", action="store_const", dest="mode", const="smoke",
                       help="every scenario once at tiny sizes; checks that the benchmark works")
    parser.set_defaults(mode="full")
    parser.add_argument("--output", type=Path, default=BENCH_DIR / "RESULTS.md",
                        help="where to write the results (default: bench/RESULTS.md)")
    parser.add_argument("--workdir", type=Path, default=BENCH_DIR / "work",
                        help="scratch directory for the managers' homes and configuration (default: bench/work)")
    parser.add_argument("--venv", type=Path, default=BENCH_DIR / ".venv",
                        help="directory of the virtual environments: VENV/anchors for supervisor and Circus, "
                             "VENV/unitmgr for unitmgr (default: bench/.venv)")
    parser.add_argument("--dev-unitmgr", action="store_true",
                        help="run unitmgr from this interpreter's (editable) install instead of VENV/unitmgr")
    parser.add_argument("--unitmgr-arg", action="append", default=[], metavar="ARG",
                        help="extra argument for the unitmgr manager, e.g. --unitmgr-arg=--no-cgroups; repeatable")
    parser.add_argument("--only", action="append", choices=["unitmgr", "supervisord", "Circus"], metavar="LABEL",
                        help="measure only this manager (unitmgr, supervisord or Circus); repeatable")
    parser.add_argument("--render-only", action="store_true",
                        help="rewrite the results from the figures of the last run (WORKDIR/figures.pickle), "
                             "e.g. after editing the notes; measures nothing")
    parser.add_argument("--notes", type=Path, default=NOTES,
                        help="Markdown appended to the results: the profile findings (default: bench/notes.md)")
    return parser


def terminate_on_signal(signum: int, _frame: object) -> None:
    # Turned into an exception so the `finally` blocks stop every manager.
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = MODES[args.mode]
    if not procfs.become_subreaper():
        log.warning("could not become a child subreaper; processes orphaned by a crashed manager may survive")
    signal.signal(signal.SIGTERM, terminate_on_signal)
    try:
        anchors = ensure_anchor_env(args.venv.resolve())
        unitmgr_env = None
        if not args.dev_unitmgr and not args.render_only:
            lock_unitmgr_env(args.venv.resolve())
            unitmgr_env = ensure_unitmgr_env(args.venv.resolve(), BENCH_DIR.parent)
    except AnchorInstallError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return EXIT_NO_ANCHORS
    except BenchBusyError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    workdir = args.workdir.resolve()
    saved = workdir / "figures.pickle"
    if args.render_only:
        with open(saved, "rb") as f:
            run = pickle.load(f)
    else:
        run = measure(args, settings, anchors, unitmgr_env, workdir)
        with open(saved, "wb") as f:
            pickle.dump(run, f)
    notes = args.notes.read_text() if args.notes.exists() else ""
    targets = evaluate(run["figures"], START_LIMIT[0])
    write_results(args.output, run["command"], run["settings"], run["figures"], run["versions"], targets, notes,
                  START_LIMIT[0])
    log.info("wrote %s", args.output)
    print("\n".join(targets))
    return 0


def lock_unitmgr_env(root: Path) -> None:
    """Hold VENV/unitmgr.lock until exit: a second run would reinstall unitmgr under the first one's feet."""
    root.mkdir(parents=True, exist_ok=True)
    # Kept open for the life of the process: closing the file would release the lock.
    lock = open(root / "unitmgr.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise BenchBusyError(
            f"another benchmark run is using {root / 'unitmgr'}; wait for it, or pass --dev-unitmgr "
            "or another --venv"
        ) from None
    _held_locks.append(lock)


def measure(args: argparse.Namespace, settings: Settings, anchors: VirtualEnv, unitmgr_env: VirtualEnv | None,
            workdir: Path) -> dict:
    """Run every scenario; return the figures with what is needed to report them again."""
    started = time.monotonic()
    try:
        managers = [manager for manager in all_managers(workdir, anchors, unitmgr_env, args.unitmgr_arg)
                    if not args.only or manager.label in args.only]
        figures = run_all(settings, managers, workdir)
    finally:
        leftovers = procfs.kill_leftovers(keep=set())
        if leftovers:
            log.warning("killed %d processes left behind: %s", len(leftovers), leftovers)
    log.info("measured for %.0f s", time.monotonic() - started)
    unitmgr_python = unitmgr_env or VirtualEnv(Path(sys.executable).parent.parent)
    where = "bench/.venv/unitmgr" if unitmgr_env else f"{sys.executable}, editable install"
    versions = {f"unitmgr ({where})": unitmgr_python.versions("unitmgr", "pyzmq", "psutil"),
                "anchors (bench/.venv/anchors)": anchors.versions("supervisor", "circus", "pyzmq", "tornado")}
    command = " ".join(["python bench/run.py", *sys.argv[1:]])
    return {"figures": figures, "settings": settings, "versions": versions, "command": command}


if __name__ == "__main__":
    sys.exit(main())
