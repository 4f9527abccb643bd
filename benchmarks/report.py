"""The benchmark's results: headline figures per bot, ratios, a table, JSON and a plot."""

import os
import platform
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

from benchmarks.load import StepResult, ms, percentile

# Headline rows: (key, label, unit, better) where better says which way is good (None: no
# ratio, the row only explains another).
ROWS = [
    ("greeting_ms", "greeting: start -> first bot media", "ms", "lower"),
    ("first_call_greeting_ms", "  first call after start-up", "ms", "lower"),
    ("turn_p50_ms", "turn latency p50", "ms", "lower"),
    ("turn_p95_ms", "turn latency p95", "ms", "lower"),
    ("first_call_turn_p50_ms", "  first call after start-up, p50", "ms", "lower"),
    ("barge_in_p50_ms", "barge-in: speech onset -> bot quiet, p50", "ms", "lower"),
    ("barge_in_p95_ms", "barge-in p95", "ms", "lower"),
    ("underruns", "underruns (gaps > 100 ms), calls one at a time", "", "lower"),
    ("loop_lag_max_ms", "longest event-loop block in a call, all steps", "ms", "lower"),
    ("llm_requests_per_turn", "LLM requests per caller turn", "", "lower"),
    ("failed_calls", "failed calls, all steps", "", "lower"),
    ("cpu_secs_per_call_minute", "CPU seconds per call-minute", "s", "lower"),
    ("cpu_compared_at_calls", "  measured at concurrent calls", "", None),
    ("peak_rss_mib", "peak RSS", "MiB", "lower"),
    ("capacity", "capacity: concurrent calls", "", "higher"),
    # A fresh process's first call, its caller looked up (no from_number), against the next
    # two (median over --fresh-starts processes), for each way the bot is started.
    (
        "fresh_dev_runner_first_greeting_ms",
        "fresh process, dev runner: 1st call's greeting",
        "ms",
        "lower",
    ),
    ("fresh_dev_runner_later_greeting_ms", "  2nd and 3rd calls' greeting", "ms", None),
    ("fresh_dev_runner_first_loop_lag_ms", "  1st call's longest loop block (worst)", "ms", None),
    (
        "fresh_cloud_first_greeting_ms",
        "fresh process, Pipecat Cloud entry: 1st call's greeting",
        "ms",
        "lower",
    ),
    ("fresh_cloud_later_greeting_ms", "  2nd and 3rd calls' greeting", "ms", None),
    ("fresh_cloud_first_loop_lag_ms", "  1st call's longest loop block (worst)", "ms", None),
]
# The rows a run of calls one after another (the real-timing run) can fill.
SEQUENTIAL_ROWS = {
    "greeting_ms",
    "first_call_greeting_ms",
    "turn_p50_ms",
    "turn_p95_ms",
    "first_call_turn_p50_ms",
    "barge_in_p50_ms",
    "barge_in_p95_ms",
    "underruns",
    "loop_lag_max_ms",
    "llm_requests_per_turn",
    "failed_calls",
}
TITLES = {
    "instant": "The bots themselves: fakes that answer at once",
    "real": "What callers feel: fakes on the services' published timing (Deepgram's final "
    "0.1-0.15 s after the words, LLM first token 350 ms then 80 tokens/s, voice's first audio "
    "135 ms then 1.5x real time)",
}


def machine_facts() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was when the run began."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line),
        platform.processor(),
    )
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "pipecat_ai": version("pipecat-ai"),
    }


@dataclass
class Report:
    machine: dict[str, Any]
    options: dict[str, Any]
    steps: dict[str, list[StepResult]] = field(default_factory=dict)
    # Steps run by every bot at the same moment, for CPU per call-minute (see add_cpu_round).
    cpu_rounds: dict[str, list[StepResult]] = field(default_factory=dict)
    startup_rss_mib: dict[str, float] = field(default_factory=dict)
    # First calls of fresh processes against later ones (see first_call.py), per bot.
    fresh: dict[str, dict[str, float | None]] = field(default_factory=dict)
    timing: str = "instant"
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    finished_at: str | None = None
    load_average_at_end: list[float] | None = None

    def add_step(self, bot: str, step: StepResult) -> None:
        self.steps.setdefault(bot, []).append(step)

    def add_cpu_round(self, bot: str, step: StepResult) -> None:
        """A step this bot ran at the same time as every other bot ran the same one.

        The machine's speed drifts by 20-30% within a run (other tenants of the host),
        enough to swing one bot's CPU per call-minute between two of its own steps;
        bots measured side by side meet the same machine, so their ratio holds.
        """
        self.cpu_rounds.setdefault(bot, []).append(step)

    def add_fresh(self, bot: str, figures: dict[str, float | None]) -> None:
        self.fresh.setdefault(bot, {}).update(figures)

    def finish(self) -> None:
        self.finished_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.load_average_at_end = [round(x, 2) for x in os.getloadavg()]

    def title(self) -> str:
        return TITLES[self.timing]

    def rows(self) -> list[tuple[str, str, str, str | None]]:
        if self.timing == "instant":
            return ROWS
        return [row for row in ROWS if row[0] in SEQUENTIAL_ROWS]

    def machine_line(self) -> str:
        m = self.machine
        load = " ".join(f"{x:.2f}" for x in m["load_average_at_start"])
        return (
            f"Machine: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB; "
            f"load average {load}; pipecat-ai {m['pipecat_ai']}, Python {m['python']}"
        )

    @staticmethod
    def step_line(bot: str, step: StepResult) -> str:
        s = step.summary
        how = f"{step.calls} at once"
        if step.sequential:
            how = f"{len(step.results)} one after another"
        verdict = "ok" if s["within_capacity"] else "OVER"
        disturbed = (
            ""
            if s["undisturbed"]
            else f" (disturbed: other programs {s['background_cpu_cores']} cores,"
            f" harness lag p99 {s['harness_lag_p99_ms']} ms)"
        )
        return (
            f"{bot:>9} | {how:>20} | turn p50 {s['turn_p50_ms']} p95 {s['turn_p95_ms']} ms"
            f" | greeting p50 {s['greeting_p50_ms']} | barge-in p50 {s['barge_in_p50_ms']}"
            f" | underruns {s['underruns']} | loop lag max {s['loop_lag_max_ms']} ms"
            f" | failed {s['failed_calls']}"
            f" | CPU {s['cpu_cores_used']} cores, {s['cpu_secs_per_call_minute']} s/call-min"
            f" | RSS {s['peak_rss_mib']} MiB | {verdict}{disturbed}"
        )

    def headline(self, bot: str) -> dict[str, Any]:
        steps = self.steps.get(bot, [])
        sequential = next((s for s in steps if s.sequential), None)
        figures: dict[str, Any] = {}
        if sequential is not None:
            figures |= _latency_figures(sequential)
        paired = self.cpu_rounds.get(bot, [])
        if paired:
            cpu_secs = sum(step.cpu_secs for step in paired)
            call_minutes = sum(r.minutes for step in paired for r in step.results)
            figures["cpu_secs_per_call_minute"] = round(cpu_secs / call_minutes, 3)
            figures["cpu_compared_at_calls"] = paired[0].calls
        if sequential is not None:
            figures["underruns"] = sequential.summary["underruns"]
            turns = sequential.summary["turns"]
            figures["llm_requests_per_turn"] = (
                round(sequential.llm_requests / turns, 2) if turns else None
            )
        figures |= self.fresh.get(bot, {})
        if not steps:  # Only fresh processes' first calls were measured (--fresh-only).
            return figures | {"capacity": None, "capacity_is_lower_bound": False}
        figures["failed_calls"] = sum(s.summary["failed_calls"] for s in steps)
        lags = [s.summary["loop_lag_max_ms"] for s in steps]
        figures["loop_lag_max_ms"] = max((lag for lag in lags if lag is not None), default=None)
        figures["peak_rss_mib"] = max(s.summary["peak_rss_mib"] for s in steps)
        within = [_load(s) for s in steps if s.summary["within_capacity"]]
        figures["capacity"] = max(within, default=0)
        # A capacity equal to the last step tried is a lower bound, not a limit.
        figures["capacity_is_lower_bound"] = all(s.summary["within_capacity"] for s in steps)
        return figures

    def ratios(self) -> dict[str, float | None]:
        """How many times better this bot is (reference / this; this / reference for capacity)."""
        if not {"this", "reference"} <= self.steps.keys():
            return {}
        ours, theirs = self.headline("this"), self.headline("reference")
        ratios: dict[str, float | None] = {}
        for key, _, _, better in self.rows():
            a, b = ours.get(key), theirs.get(key)
            if not a or not b or better is None:
                ratios[key] = None
            else:
                ratios[key] = round(b / a if better == "lower" else a / b, 2)
        return ratios

    def as_json(self) -> dict[str, Any]:
        return {
            "timing": self.timing,
            "title": self.title(),
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "machine": self.machine | {"load_average_at_end": self.load_average_at_end},
            "options": self.options,
            "bots": {
                bot: {
                    "headline": self.headline(bot),
                    "startup_rss_mib": round(self.startup_rss_mib.get(bot, 0.0), 1),
                    "steps": [
                        s.summary | {"sequential": s.sequential} for s in self.steps.get(bot, [])
                    ],
                    "cpu_rounds": [s.summary for s in self.cpu_rounds.get(bot, [])],
                }
                for bot in self.bots()
            },
            "ratios_times_better": self.ratios(),
        }

    def bots(self) -> list[str]:
        """Every bot measured, in the order first measured."""
        return list(dict.fromkeys([*self.fresh, *self.steps]))

    def table(self) -> str:
        bots = self.bots()
        ratios = self.ratios()
        header = ["figure", *bots] + (["times better"] if ratios else [])
        rows = [header]
        for key, label, unit, _ in self.rows():
            if all(self.headline(bot).get(key) is None for bot in bots):
                continue  # Not measured in this run (e.g. --fresh-only, --fresh-starts 0).
            cells = [label]
            for bot in bots:
                value = self.headline(bot).get(key)
                suffix = (
                    "+"
                    if key == "capacity" and self.headline(bot)["capacity_is_lower_bound"]
                    else ""
                )
                cells.append("-" if value is None else f"{value:g}{suffix} {unit}".strip())
            if ratios:
                cells.append("-" if ratios.get(key) is None else f"{ratios[key]:g}x")
            rows.append(cells)
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        lines = [
            "| "
            + " | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            + " |"
            for row in rows
        ]
        lines.insert(1, "|" + "|".join("-" * (width + 2) for width in widths) + "|")
        return "\n".join(lines)


def plot(reports: list[Report], path: Path) -> None:
    """Turn latency and CPU against concurrent calls, every bot on the same axes.

    Instant-timing steps are lines; real-timing calls (one at a time) are stars at 1 call.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (latency, cpu) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110)
    colors: dict[str, str] = {}
    for report in reports:
        for bot, steps in report.steps.items():
            calls = [_load(s) for s in steps]
            p50 = [s.summary["turn_p50_ms"] for s in steps]
            p95 = [s.summary["turn_p95_ms"] for s in steps]
            if report.timing == "real":
                latency.plot(
                    calls,
                    p50,
                    marker="*",
                    markersize=12,
                    linestyle="none",
                    color=colors.get(bot),
                    label=f"{bot} p50, real timing",
                )
                continue
            (line,) = latency.plot(calls, p95, marker="o", label=f"{bot} p95")
            colors[bot] = line.get_color()
            latency.plot(
                calls, p50, marker=".", linestyle="--", color=colors[bot], label=f"{bot} p50"
            )
            cpu.plot(calls, [s.summary["cpu_cores_used"] for s in steps], marker="o", label=bot)
    machine = reports[0].machine
    latency.axhline(1000, color="grey", linewidth=0.8, linestyle=":")
    latency.set(xlabel="concurrent calls", ylabel="turn latency (ms)", title="Turn latency")
    cpu.axhline(machine["cores"], color="grey", linewidth=0.8, linestyle=":")
    cpu.set(xlabel="concurrent calls", ylabel="CPU cores used by the bot process", title="CPU")
    for axes in (latency, cpu):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle(
        f"Lines: zero-delay fakes; stars: fakes on real services' timing. "
        f"{machine['cores']} cores ({machine['cpu']})",
        fontsize=9,
    )
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def _load(step: StepResult) -> int:
    """Concurrent calls during the step (calls placed one after another are a load of 1)."""
    return 1 if step.sequential else step.calls


def _latency_figures(step: StepResult) -> dict[str, Any]:
    """Latency headline from calls placed one at a time, the first straight after start-up."""
    summary, first = step.summary, step.results[0]
    return {
        "greeting_ms": summary["greeting_p50_ms"],
        "first_call_greeting_ms": ms(first.greeting_secs),
        "turn_p50_ms": summary["turn_p50_ms"],
        "turn_p95_ms": summary["turn_p95_ms"],
        "first_call_turn_p50_ms": ms(percentile(first.turn_secs, 0.5)),
        "barge_in_p50_ms": summary["barge_in_p50_ms"],
        "barge_in_p95_ms": summary["barge_in_p95_ms"],
    }
