"""Turn the collected figures into the RESULTS.md table, the target checks and the run's context."""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from collect import Figures
from settings import Settings

LABELS = ("unitmgr", "supervisord", "Circus")
ANCHORS = ("supervisord", "Circus")


@dataclass
class Row:
    """One table row: a median per manager, or a text where a figure is not a single number."""

    scenario: str
    metric: str
    values: dict[str, float | None]
    texts: dict[str, str] = field(default_factory=dict)
    digits: int = 3

    def cell(self, label: str) -> str:
        if label in self.texts:
            return self.texts[label]
        value = self.values.get(label)
        return "n/a" if value is None else f"{value:.{self.digits}f}"

    def ratio(self, anchor: str) -> str:
        mine, theirs = self.values.get("unitmgr"), self.values.get(anchor)
        if mine is None or theirs is None:
            return "n/a"
        if theirs == 0:
            return "both 0" if mine == 0 else "inf"
        return f"{mine / theirs:.2f}"


def median(values: list[float] | None) -> float | None:
    return statistics.median(values) if values else None


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def startup_rows(figures: Figures) -> list[Row]:
    rows = []
    for size in sorted(figures.cells.get("S1", {}), key=int):
        values = {label: median(figures.get("S1", size, label)) for label in LABELS}
        rows.append(Row("S1", f"start-up, N={size} (s)", values))
    return rows


def idle_rows(figures: Figures) -> list[Row]:
    rows = []
    variants = figures.cells.get("S2", {})
    for size in sorted((v for v in variants if v.isdigit()), key=int):
        idle = {label: figures.get("S2", size, label) for label in LABELS}
        rows.append(Row("S2", f"idle RSS, N={size} (MB)", {k: v and v.rss_mb for k, v in idle.items()}, digits=1))
        rows.append(Row("S2", f"idle CPU, N={size} (%)", {k: v and v.cpu_percent for k, v in idle.items()},
                        digits=2))
    if "fast" in variants:
        idle = {label: figures.get("S2", "fast", label) for label in LABELS}
        rows.append(Row("S2", "idle CPU, fast respawn settings (%)",
                        {k: v and v.cpu_percent for k, v in idle.items()}, digits=2))
    return rows


def respawn_rows(figures: Figures) -> list[Row]:
    rows = []
    for profile in ("fast", "default"):
        samples = {label: figures.get("S3", profile, label) for label in LABELS}
        values = {label: median(v) for label, v in samples.items()}
        texts = {label: f"{median(v):.1f} / {percentile(v, 0.9):.1f}" for label, v in samples.items() if v}
        rows.append(Row("S3", f"respawn, {profile} settings, median / p90 (ms)", values, texts, digits=1))
    return rows


def control_rows(figures: Figures) -> list[Row]:
    process = {label: figures.get("S4", "process", label) or {} for label in LABELS}
    client = {label: figures.get("S4", "client", label) or {} for label in LABELS}
    rows = [
        Row("S4", "ctl status of every service, whole process (ms)",
            {k: median(v.get("status-all")) for k, v in process.items()}, digits=1),
        Row("S4", "status round trip in a running client (ms)",
            {k: median(v.get("list") or v.get("status-all")) for k, v in client.items()}, digits=3),
    ]
    mine_process, mine_client = process["unitmgr"], client["unitmgr"]
    if mine_process.get("status-one"):
        rows.append(Row("S4", "unitmgr only: `unitsh -c \"status UNIT\"`, whole process (ms)",
                        {"unitmgr": median(mine_process["status-one"])}, digits=1))
    for kind, what in (("status-one", "`status` of one unit"), ("status-all", "`status` of every unit")):
        if mine_client.get(kind):
            rows.append(Row("S4", f"unitmgr only: {what}, round trip in a running client (ms)",
                            {"unitmgr": median(mine_client[kind])}, digits=2))
    return rows


def capture_rows(figures: Figures) -> list[Row]:
    captures = {label: figures.get("S5", "capture", label) for label in LABELS}
    ceilings = figures.get("S5", "ceiling", "direct")
    rates = {label: median([c.mb_per_s for c in v]) if v else None for label, v in captures.items()}
    lost = {label: max(c.bytes_lost for c in v) if v else None for label, v in captures.items()}
    texts = {label: f"{lost[label]}; {'identical' if all(c.identical for c in v) else 'DIFFERENT'}"
             for label, v in captures.items() if v}
    rows = [Row("S5", "log capture (MB/s)", rates, digits=0),
            Row("S5", "bytes lost; content compared with what was written", lost, texts, digits=0)]
    if ceilings:
        ceiling = median([c.mb_per_s for c in ceilings])
        rows.append(Row("S5", "ceiling: the writer straight into a file (MB/s)",
                        {label: ceiling for label in LABELS}, digits=0))
    return rows


def crash_rows(figures: Figures) -> list[Row]:
    limited = {label: figures.get("S6", "limited", label) for label in LABELS}
    fast = {label: figures.get("S6", "fast", label) for label in LABELS}
    spawn_texts = {label: ", ".join(str(loop.spawns) for loop in v) for label, v in limited.items() if v}
    gave_up = {label: f"in {sum(loop.gave_up for loop in v)} of {len(v)} runs" for label, v in limited.items() if v}
    return [
        Row("S6", "crash loop with a limit: spawns per run", {k: median([x.spawns for x in v]) if v else None
                                                              for k, v in limited.items()}, spawn_texts, digits=0),
        Row("S6", "crash loop with a limit: gave up", {k: None for k in LABELS}, gave_up),
        Row("S6", "crash loop, fast settings, no limit: spawns/s", {k: v and v.spawns_per_s for k, v in fast.items()},
            digits=1),
        Row("S6", "crash loop, fast settings, no limit: manager CPU (%)",
            {k: v and v.cpu_percent for k, v in fast.items()}, digits=1),
    ]


def all_rows(figures: Figures) -> list[Row]:
    return (startup_rows(figures) + idle_rows(figures) + respawn_rows(figures) + control_rows(figures)
            + capture_rows(figures) + crash_rows(figures))


def table(rows: list[Row]) -> str:
    head = "| id | metric | unitmgr | supervisord | Circus | unitmgr/supervisord | unitmgr/Circus |"
    lines = [head, "|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = [row.cell(label) for label in LABELS] + [row.ratio(anchor) for anchor in ANCHORS]
        lines.append(f"| {row.scenario} | {row.metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine() -> str:
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{model}, {os.cpu_count()} cores, {memory:.0f} GiB, Linux {platform.release()}"


def settings_text(settings: Settings, burst: int) -> str:
    return "\n".join([
        f"- mode `{settings.mode}`; S1 N = {', '.join(map(str, settings.startup_sizes))}, "
        f"{settings.startup_runs} runs each" + (f"; growth N = {settings.growth_size}" if settings.growth_size else ""),
        f"- S2: {settings.idle_settle:g} s settle, then a {settings.idle_window:g} s CPU window on the manager "
        "process alone (utime + stime from /proc/PID/stat); RSS from /proc/PID/statm; MB = 10^6 bytes",
        f"- S3: 10 workers, {settings.kills_fast} kills (fast settings) and {settings.kills_default} "
        "(default settings); a replacement counts when a new child of the manager has exec'd /bin/sleep",
        f"- S4: N = {settings.control_size}; {settings.control_runs} timed runs of each one-shot command; "
        f"{settings.round_trips} round trips in one client after one warm-up. \"Every service\" is "
        "`unitsh -c list` / `list` for unitmgr (its `status` needs unit names), `supervisorctl status` / "
        "`getAllProcessInfo` and `circusctl status` / `status`",
        f"- S5: {settings.capture_bytes // 1_000_000} MB of 100-byte lines in 64 KiB writes, "
        f"{settings.capture_runs} run(s); time from the writer's first write until the log file holds every byte",
        f"- S6 with a limit: {settings.crash_runs} run(s) of {settings.crash_window:g} s; unitmgr "
        f"`Restart=on-failure RestartSec=0 StartLimitBurst={burst} StartLimitIntervalSec=10`, anchors on "
        "their defaults; S6 fast: unitmgr `Restart=always RestartSec=0 StartLimitIntervalSec=0`, "
        f"CPU over {settings.crash_fast_window:g} s",
        "- fast settings: unitmgr `RestartSec=0`; supervisord `startsecs=0 autorestart=true`; "
        "Circus `check_delay=0.1 warmup_delay=0 max_retry=-1`",
        "- default settings: unitmgr `Restart=always` (RestartSec=100ms); supervisord and Circus unchanged",
    ])


def versions_text(versions: dict[str, dict[str, str]]) -> str:
    return "\n".join(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in found.items())
                     for name, found in versions.items())


def write_results(path: Path, command: str, settings: Settings, figures: Figures, versions: dict[str, dict[str, str]],
                  targets: list[str], notes: str, burst: int) -> None:
    rows = all_rows(figures)
    parts = [
        "# Benchmark results: unitmgr, supervisord and Circus",
        "",
        f"Written by `{command}` "
        f"on {time.strftime('%Y-%m-%d %H:%M %Z')}. Every figure comes from this one run on one machine; "
        "medians unless noted. A ratio below 1 means unitmgr took less (time, memory, CPU) or, "
        "for MB/s, captured less.",
        "",
        f"Machine: {machine()}.",
        "",
        "Versions:",
        versions_text(versions),
        "",
        "Settings:",
        settings_text(settings, burst),
        "",
        "## Results",
        "",
        table(rows),
        "",
        "## Targets",
        "",
        *targets,
    ]
    if figures.errors:
        parts += ["", "## Errors during the run", "", *[f"- {error}" for error in figures.errors]]
    if notes:
        parts += ["", notes.strip()]
    path.write_text("\n".join(parts) + "\n")
