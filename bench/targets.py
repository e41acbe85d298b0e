"""The goals unitmgr has to meet against the anchors, checked on the figures of one run."""

from __future__ import annotations

from collections.abc import Callable

from collect import Figures
from report import median

# One tick of /proc/PID/stat over a 10 s window is 0.1 % CPU: differences below that are noise.
CPU_RESOLUTION = 0.1


def verdict(met: bool | None) -> str:
    return {True: "met", False: "**missed**", None: "not measured in this run"}[met]


def line(text: str, met: bool | None, detail: str) -> str:
    return f"- {text}: {verdict(met)} ({detail})"


def guarded(check: Callable[[], tuple[bool, str]], text: str) -> str:
    """Apply one check; a figure missing from this run makes it "not measured"."""
    try:
        met, detail = check()
    except (TypeError, KeyError, AttributeError, IndexError, ZeroDivisionError):
        return line(text, None, "a figure it needs is missing")
    return line(text, met, detail)


def startup(f: Figures) -> tuple[bool, str]:
    mine, circus = median(f.get("S1", "500", "unitmgr")), median(f.get("S1", "500", "Circus"))
    return mine <= 0.3 * circus, f"{mine:.3f} s vs Circus {circus:.3f} s, ratio {mine / circus:.2f}, goal 0.30"


def idle_cpu(f: Figures) -> tuple[bool, str]:
    mine = f.get("S2", "500", "unitmgr").cpu_percent
    return mine <= 0.1, f"{mine:.2f} %, goal 0.1 %"


def idle_rss(f: Figures) -> tuple[bool, str]:
    mine, theirs = f.get("S2", "500", "unitmgr").rss_mb, f.get("S2", "500", "supervisord").rss_mb
    return mine <= theirs, f"{mine:.1f} MB vs supervisord {theirs:.1f} MB"


def respawn(f: Figures) -> tuple[bool, str]:
    mine, circus = median(f.get("S3", "fast", "unitmgr")), median(f.get("S3", "fast", "Circus"))
    return mine <= 0.05 * circus, f"{mine:.1f} ms vs Circus {circus:.1f} ms, ratio {mine / circus:.3f}, goal 0.05"


def respawn_idle(f: Figures) -> tuple[bool, str]:
    fast = f.get("S2", "fast", "unitmgr").cpu_percent
    sizes = [v for v in f.cells.get("S2", {}) if v.isdigit()]
    size = min(sizes, key=lambda v: abs(int(v) - 100))
    default = f.get("S2", size, "unitmgr").cpu_percent
    return fast - default <= CPU_RESOLUTION, f"{fast:.2f} % with RestartSec=0 vs {default:.2f} % by default"


def control_process(f: Figures) -> tuple[bool, str]:
    mine = median(f.get("S4", "process", "unitmgr")["status-all"])
    theirs = median(f.get("S4", "process", "supervisord")["status-all"])
    return mine <= 0.6 * theirs, f"{mine:.0f} ms vs supervisorctl {theirs:.0f} ms, ratio {mine / theirs:.2f}, goal 0.6"


def control_client(f: Figures) -> tuple[bool, str]:
    mine = median(f.get("S4", "client", "unitmgr")["list"])
    theirs = median(f.get("S4", "client", "Circus")["status-all"])
    return mine <= theirs, f"`list` {mine:.3f} ms vs Circus `status` {theirs:.3f} ms"


def capture(f: Figures) -> tuple[bool, str]:
    mine = f.get("S5", "capture", "unitmgr")
    rate = median([c.mb_per_s for c in mine])
    supervisord = median([c.mb_per_s for c in f.get("S5", "capture", "supervisord")])
    ceiling = median([c.mb_per_s for c in f.get("S5", "ceiling", "direct")])
    lost = max(c.bytes_lost for c in mine)
    identical = all(c.identical for c in mine)
    met = rate >= supervisord and rate >= 0.6 * ceiling and lost == 0 and identical
    return met, (f"{rate:.0f} MB/s vs supervisord {supervisord:.0f} MB/s and ceiling {ceiling:.0f} MB/s "
                 f"(ratio {rate / ceiling:.2f}, goal 0.6); {lost} bytes lost; "
                 f"content {'identical' if identical else 'DIFFERENT'}; a time for every read in UNIT.idx")


def crash_limit(f: Figures, burst: int) -> tuple[bool, str]:
    runs = f.get("S6", "limited", "unitmgr")
    met = all(run.spawns == burst and run.gave_up for run in runs)
    spawns = ", ".join(str(run.spawns) for run in runs)
    failed = sum(run.gave_up for run in runs)
    return met, f"spawns per run: {spawns}; `failed` in {failed} of {len(runs)} runs; StartLimitBurst={burst}"


def crash_cpu(f: Figures) -> tuple[bool, str]:
    mine, circus = f.get("S6", "fast", "unitmgr"), f.get("S6", "fast", "Circus")
    return mine.cpu_percent < circus.cpu_percent, (
        f"{mine.cpu_percent:.1f} % at {mine.spawns_per_s:.0f} spawns/s vs Circus {circus.cpu_percent:.1f} % "
        f"at {circus.spawns_per_s:.0f} spawns/s")


def growth(f: Figures) -> tuple[bool | None, str]:
    startup_by_size = {int(n): median(v.get("unitmgr")) for n, v in f.cells.get("S1", {}).items() if v.get("unitmgr")}
    idle = {int(n): v["unitmgr"] for n, v in f.cells.get("S2", {}).items() if n.isdigit() and v.get("unitmgr")}
    if len(startup_by_size) < 2:
        return None, "needs S1 at two or more sizes"
    parts = [f"N={n}: {s:.2f} s ({1000 * s / n:.1f} ms per unit)" for n, s in sorted(startup_by_size.items())]
    parts += [f"idle N={n}: {i.rss_mb:.1f} MB, {i.cpu_percent:.2f} % CPU" for n, i in sorted(idle.items())]
    return True, "; ".join(parts)


def evaluate(f: Figures, burst: int) -> list[str]:
    checks: list[tuple[Callable[[], tuple[bool | None, str]], str]] = [
        (lambda: startup(f), "S1, N=500: at most 0.3 of Circus's time"),
        (lambda: idle_cpu(f), "S2, 500 units idle: CPU at most 0.1 %"),
        (lambda: idle_rss(f), "S2, 500 units idle: RSS at most supervisord's"),
        (lambda: respawn(f), "S3, RestartSec=0: median at most 0.05 of Circus's fast setting"),
        (lambda: respawn_idle(f), "S3: idle CPU unchanged by RestartSec=0"),
        (lambda: control_process(f), "S4: whole-process status at most 0.6 of supervisorctl's"),
        (lambda: control_client(f), "S4: round trip in a running client, Curve on, no slower than Circus's"),
        (lambda: capture(f), "S5: at least supervisord's rate and 0.6 of the ceiling, 0 bytes lost"),
        (lambda: crash_limit(f, burst), "S6: exactly StartLimitBurst spawns, then `failed`, in every run"),
        (lambda: crash_cpu(f), "S6: RestartSec=0 and no start limit: manager CPU below Circus's"),
    ]
    lines = [guarded(check, text) for check, text in checks]
    measured, detail = growth(f)
    lines.append(f"- Growth of unitmgr's start-up time and idle cost with N: {detail if measured else 'not measured'}")
    return lines
