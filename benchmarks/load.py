"""Concurrent calls against one bot process: the caller's figures and the server's costs."""

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from benchmarks.calls import CallPlan, run_call
from benchmarks.process_usage import PeakRss, cpu_seconds, machine_busy_seconds
from testkit.call_log import CallLog

# Capacity: the most concurrent calls that all succeed, play without underruns, and answer
# within this at the 95th percentile.
MAX_TURN_P95_SECS = 1.0
# The harness shares the machine with the bot: when its own event loop runs this late, its
# clock readings are too late to trust, and the step says so.
HARNESS_LAG_LIMIT_SECS = 0.02
# Other programs on the machine (not the bot, not this harness) using more than this many
# cores during a step make its figures suspect; the step says so.
BACKGROUND_LIMIT_CORES = 0.25
LAG_TICK_SECS = 0.01
# The bot logs a call's summary (with its longest event-loop block) a moment after the hang-up.
SUMMARY_WAIT_SECS = 10.0
_SUMMARY = re.compile(r"\[(CA\w+)\] Call summary: .*")
_LOOP_LAG = re.compile(r"loop lag max (\d+) ms")


def percentile(values: list[float], fraction: float) -> float | None:
    """The ``fraction`` quantile (nearest rank, so it is always a measured value)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))]


@dataclass
class StepResult:
    """One load level: ``calls`` at once (or one after another when ``sequential``)."""

    calls: int
    sequential: bool
    results: list[CallLog]
    wall_secs: float
    cpu_secs: float
    harness_cpu_secs: float
    background_cpu_secs: float
    peak_rss_bytes: int
    harness_lag_p99_secs: float
    summary: dict[str, float | int | bool | None] = field(init=False)

    def __post_init__(self) -> None:
        self.summary = self._summarise()
        # LLM requests answering the callers' lines during the step (set by the benchmark).
        self.llm_requests = 0

    def _summarise(self) -> dict[str, float | int | bool | None]:
        ok = [r for r in self.results if r.error is None]
        turns = [t for r in ok for t in r.turn_secs]
        greetings = [r.greeting_secs for r in ok if r.greeting_secs is not None]
        barge_ins = [r.barge_in_secs for r in ok if r.barge_in_secs is not None]
        lags = [r.loop_lag_secs for r in self.results if r.loop_lag_secs is not None]
        call_minutes = sum(r.minutes for r in self.results)
        underruns = sum(r.underruns for r in self.results)
        failed = len(self.results) - len(ok)
        turn_p95 = percentile(turns, 0.95)
        return {
            "calls": self.calls,
            "failed_calls": failed,
            "greeting_p50_ms": ms(percentile(greetings, 0.5)),
            "greeting_max_ms": ms(max(greetings, default=None)),
            "turn_p50_ms": ms(percentile(turns, 0.5)),
            "turn_p95_ms": ms(turn_p95),
            "turns": len(turns),
            "barge_in_p50_ms": ms(percentile(barge_ins, 0.5)),
            "barge_in_p95_ms": ms(percentile(barge_ins, 0.95)),
            "underruns": underruns,
            "loop_lag_max_ms": ms(max(lags, default=None)),
            "loop_lag_ms_per_call": [ms(r.loop_lag_secs) for r in self.results],
            "cpu_cores_used": round(self.cpu_secs / self.wall_secs, 3),
            "cpu_secs_per_call_minute": round(self.cpu_secs / call_minutes, 3)
            if call_minutes
            else None,
            "peak_rss_mib": round(self.peak_rss_bytes / 2**20, 1),
            "harness_cpu_cores": round(self.harness_cpu_secs / self.wall_secs, 3),
            "background_cpu_cores": round(self.background_cpu_secs / self.wall_secs, 3),
            "harness_lag_p99_ms": ms(self.harness_lag_p99_secs),
            "undisturbed": self.harness_lag_p99_secs <= HARNESS_LAG_LIMIT_SECS
            and self.background_cpu_secs / self.wall_secs <= BACKGROUND_LIMIT_CORES,
            "within_capacity": failed == 0
            and underruns == 0
            and turn_p95 is not None
            and turn_p95 <= MAX_TURN_P95_SECS,
        }

    @property
    def errors(self) -> list[str]:
        return [r.error for r in self.results if r.error]


def ms(secs: float | None) -> float | None:
    """Seconds as milliseconds to 0.1 ms, for the report."""
    return None if secs is None else round(secs * 1000, 1)


async def run_step(
    url: str,
    *,
    server_pid: int,
    rss: PeakRss,
    plan: CallPlan,
    new_call: Callable[[], str],
    calls: int,
    sequential: bool = False,
    ramp_secs: float = 2.0,
    bot_log: Callable[[], str] | None = None,
) -> StepResult:
    """Place ``calls`` calls and measure the server meanwhile.

    Concurrent calls start spread over ``ramp_secs``, as callers do not all dial
    in the same millisecond; ``sequential`` places them one after another instead.
    ``new_call`` returns the callSid of a call Twilio knows about. ``bot_log``
    reads the bot's log, for each call's longest event-loop block.
    """
    lag = _LagMonitor()
    monitor = asyncio.ensure_future(lag.run())
    rss.reset()
    started, cpu_before = time.monotonic(), cpu_seconds(server_pid)
    harness_before, machine_before = time.process_time(), machine_busy_seconds()
    try:
        if sequential:
            results = [await run_call(url, plan, call_sid=new_call()) for _ in range(calls)]
        else:
            results = await asyncio.gather(
                *(
                    _call_later(url, plan, call_sid=new_call(), delay=i * ramp_secs / calls)
                    for i in range(calls)
                )
            )
    finally:
        monitor.cancel()
    if bot_log is not None:
        lags = await loop_lags_of(bot_log, [r.call_sid for r in results])
        for result in results:
            result.loop_lag_secs = lags.get(result.call_sid or "")
    rss.sample()
    cpu_secs = cpu_seconds(server_pid) - cpu_before
    harness_secs = time.process_time() - harness_before
    return StepResult(
        calls=calls,
        sequential=sequential,
        results=list(results),
        wall_secs=time.monotonic() - started,
        cpu_secs=cpu_secs,
        harness_cpu_secs=harness_secs,
        background_cpu_secs=max(
            0.0, machine_busy_seconds() - machine_before - cpu_secs - harness_secs
        ),
        peak_rss_bytes=rss.peak_bytes,
        harness_lag_p99_secs=percentile(lag.lags, 0.99) or 0.0,
    )


async def loop_lags_of(
    bot_log: Callable[[], str], call_sids: list[str | None]
) -> dict[str, float | None]:
    """Each call's longest event-loop block, from the bot's summary lines once they are logged.

    None for a call the bot logs no summary for in time, or one without the figure.
    """
    wanted = {sid for sid in call_sids if sid is not None}
    found: dict[str, float | None] = {}
    deadline = time.monotonic() + SUMMARY_WAIT_SECS
    while True:
        for summary in _SUMMARY.finditer(bot_log()):
            if summary.group(1) in wanted:
                lag = _LOOP_LAG.search(summary.group())
                found[summary.group(1)] = int(lag.group(1)) / 1000 if lag else None
        if wanted <= found.keys() or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.05)


async def _call_later(url: str, plan: CallPlan, *, call_sid: str, delay: float) -> CallLog:
    await asyncio.sleep(delay)
    return await run_call(url, plan, call_sid=call_sid)


class _LagMonitor:
    """How late the harness's own event loop wakes up: its clock's trustworthiness."""

    def __init__(self) -> None:
        self.lags: list[float] = []

    async def run(self) -> None:
        while True:
            due = time.monotonic() + LAG_TICK_SECS
            await asyncio.sleep(LAG_TICK_SECS)
            self.lags.append(max(0.0, time.monotonic() - due))
