"""Benchmark this bot against pipecat's `pipecat init` Twilio bot: `uv run python -m benchmarks`."""

import argparse
import asyncio
import json
import os
import signal
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from benchmarks.bots import REPO, RunningBot, bot_env, loopback_fakes, new_call, start_bots
from benchmarks.calls import HEARD, CallPlan
from benchmarks.first_call import ENTRIES, measure_fresh_starts
from benchmarks.load import StepResult, run_step
from benchmarks.process_usage import rss_bytes
from benchmarks.report import Report, machine_facts, plot
from testkit.fakes import Fakes, ServiceTiming

# Concurrent calls per step. The first step places a few calls one after another instead, the
# first of them straight after start-up.
DEFAULT_STEPS = (1, 5, 10, 15, 20, 25, 30, 40, 50, 75)
STEP_TIMEOUT_SECS = 180.0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--steps",
        type=lambda text: [int(n) for n in text.split(",")],
        default=list(DEFAULT_STEPS),
        help="concurrent calls per step, comma-separated (default: %(default)s)",
    )
    parser.add_argument(
        "--sequential-calls",
        type=int,
        default=3,
        help="calls one after another at the step of 1 (default: %(default)s)",
    )
    parser.add_argument(
        "--cpu-at",
        type=int,
        default=5,
        help="concurrent calls per bot while all bots run at once for the CPU comparison "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--cpu-rounds",
        type=int,
        default=2,
        help="how many times to run that comparison (default: %(default)s)",
    )
    parser.add_argument(
        "--budget-secs",
        type=float,
        default=420.0,
        help="start no step after this long (default: %(default)s)",
    )
    parser.add_argument(
        "--bots",
        choices=["this", "reference", "both"],
        default="both",
        help="this bot, the `pipecat init` reference bot, or both (default: %(default)s)",
    )
    parser.add_argument(
        "--fresh-starts",
        type=int,
        default=3,
        help="fresh processes per bot and entry (development runner, Pipecat Cloud's) whose "
        "first call, its caller looked up, is timed against the next ones (default: "
        "%(default)s; 0: skip)",
    )
    parser.add_argument(
        "--fresh-without-bytecode",
        action="store_true",
        help="start those fresh processes with no compiled bytecode to read or write, as from "
        "an image built without UV_COMPILE_BYTECODE: every first import compiles its source",
    )
    parser.add_argument(
        "--fresh-only",
        action="store_true",
        help="only time the first call of fresh processes (see --fresh-starts)",
    )
    parser.add_argument(
        "--timing",
        choices=("both", "instant", "real"),
        default="both",
        help="instant: fakes that answer at once, the bots themselves (every step, CPU); "
        "real: fakes on the services' published timing (testkit/fakes/timing.py), what "
        "callers feel (calls one after another only); both (default)",
    )
    parser.add_argument(
        "--real-calls",
        type=int,
        default=4,
        help="calls one after another per bot on real timing (default: %(default)s)",
    )
    parser.add_argument(
        "--this-bot",
        type=Path,
        default=REPO / "bot.py",
        help="the bot.py to measure as 'this' (e.g. an older checkout's; default: this one)",
    )
    parser.add_argument(
        "--baseline-bot",
        type=Path,
        default=None,
        help="also measure this bot.py, as 'baseline', side by side with the others (e.g. "
        "main's checkout, to see what a change did to CPU)",
    )
    parser.add_argument(
        "--baseline-env",
        type=lambda text: dict(pair.split("=", 1) for pair in text.split(",")),
        default={},
        help="extra environment for the baseline bot, KEY=VALUE,... (e.g. "
        "PREEMPTIVE_REPLIES=false with --baseline-bot bot.py: what preemptive replies cost)",
    )
    parser.add_argument(
        "--made-its-own",
        action="store_true",
        help="also measure this bot made a business's own, as 'configured', side by side: "
        "the order-desk agent file and its tools, a backup LLM and voice, call records sent "
        "to a webhook with post-call analysis",
    )
    parser.add_argument(
        "--traced",
        action="store_true",
        help="also measure this bot with tracing on, as 'traced', side by side: each call's "
        "trace exported over OTLP/HTTP to a loopback collector",
    )
    parser.add_argument(
        "--local",
        action="store_true",
        help="measure this bot in keyless mode (local Whisper, SmolLM2, Piper), calls one "
        "after another; writes bench-local.json",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "docs", help="where the JSON and PNG go (default: docs)"
    )
    parser.add_argument(
        "--logs",
        type=Path,
        default=None,
        help="keep each bot's log (and the generated reference bot) here (default: discarded)",
    )
    args = parser.parse_args()
    if args.bots == "both":
        args.bots = "this,reference"
    if args.local:
        # The local models serve calls one at a time: no load steps, no side-by-side CPU.
        args.bots, args.steps, args.cpu_rounds, args.timing = "this", [1], 0, "instant"
        args.fresh_starts = 0  # Each start loads the models: minutes, for a figure of its own.
    else:
        if args.baseline_bot:
            args.bots += ",baseline"
        if args.made_its_own:
            args.bots += ",configured"
        if args.traced:
            args.bots += ",traced"
    return args


async def measure_step(
    bot: RunningBot, fakes: Fakes, plan: CallPlan, *, calls: int, sequential: bool
) -> StepResult:
    asked_before = len(turn_requests(fakes))
    step = await asyncio.wait_for(
        run_step(
            bot.server.url,
            server_pid=bot.server.process.pid,
            rss=bot.rss,
            plan=plan,
            new_call=lambda: new_call(fakes),
            calls=calls,
            sequential=sequential,
            bot_log=bot.server.logs if bot.logs_call_summaries else None,
        ),
        STEP_TIMEOUT_SECS,
    )
    step.llm_requests = len(turn_requests(fakes)) - asked_before
    return step


def turn_requests(fakes: Fakes) -> list[dict]:
    """The LLM requests that answer a caller's line (speculative ones included), not greetings."""
    return [
        request
        for request in fakes.openai.requests
        if any(
            message.get("role") == "user" and HEARD in str(message.get("content"))
            for message in request["messages"][-1:]
        )
    ]


async def measure_cpu_side_by_side(
    args: argparse.Namespace,
    bots: dict[str, RunningBot],
    fakes: Fakes,
    plan: CallPlan,
    report: Report,
) -> None:
    """Every bot takes ``--cpu-at`` calls at the same moment, ``--cpu-rounds`` times over."""
    for _ in range(args.cpu_rounds):
        steps = await asyncio.gather(
            *(
                measure_step(bot, fakes, plan, calls=args.cpu_at, sequential=False)
                for bot in bots.values()
            )
        )
        for name, step in zip(bots, steps, strict=True):
            report.add_cpu_round(name, step)
            print(report.step_line(name, step) + "  (side by side, for CPU)", flush=True)


async def benchmark(args: argparse.Namespace) -> list[Report]:
    """One report per timing asked for: the bots themselves, then what callers feel."""
    options = vars(args) | {
        "out": str(args.out),
        "logs": str(args.logs) if args.logs else None,
        "this_bot": str(args.this_bot),
        "baseline_bot": str(args.baseline_bot) if args.baseline_bot else None,
    }
    reports = []
    runs = [
        ("instant", "Instant fakes: the bots themselves", measure_load),
        ("real", "Real timing: what callers feel", measure_real_timing),
    ]
    for timing, title, measure in runs:
        if args.timing not in ("both", timing) or (args.fresh_only and timing == "real"):
            continue
        report = Report(machine=machine_facts(), options=options, timing=timing)
        print(report.machine_line(), flush=True)
        print(title, flush=True)
        await measure(args, report)
        reports.append(report)
    return reports


async def measure_fresh_starts_of_each_bot(
    args: argparse.Namespace, fakes: Fakes, report: Report, work: Path
) -> None:
    """The first call of fresh processes against the later ones, for this bot (and baseline)."""
    scripts = {"this": args.this_bot.resolve()}
    if args.baseline_bot:
        scripts["baseline"] = args.baseline_bot.resolve()
    for name, script in scripts.items():
        env = bot_env(fakes, keyless=args.local) | (args.baseline_env if name == "baseline" else {})
        if args.fresh_without_bytecode:
            env |= {
                "PYTHONPYCACHEPREFIX": str(work / "no-bytecode"),
                "PYTHONDONTWRITEBYTECODE": "1",
            }
        for entry in ENTRIES:
            fresh = await measure_fresh_starts(
                script, env, fakes, entry=entry, starts=args.fresh_starts, calls=3, work=work
            )
            report.add_fresh(name, fresh.figures(entry))
            print(f"{name:>9} | {entry}, fresh starts: {args.fresh_starts} | {fresh}", flush=True)


async def measure_load(args: argparse.Namespace, report: Report) -> None:
    """Zero-delay fakes: first calls of fresh processes, latency one call at a time, the load
    steps, CPU side by side."""
    plan = CallPlan.default()
    async with loopback_fakes(ServiceTiming.instant()) as fakes, AsyncExitStack() as stack:
        work = work_dir(args, stack, "instant")
        if args.fresh_starts > 0:
            await measure_fresh_starts_of_each_bot(args, fakes, report, work)
        if args.fresh_only:
            report.finish()
            return
        deadline = time.monotonic() + args.budget_secs
        bots = await start_bots(args, fakes, stack, work)
        for name, bot in bots.items():
            report.startup_rss_mib[name] = rss_bytes(bot.server.process.pid) / 2**20
        for index, calls in enumerate(args.steps):
            if time.monotonic() > deadline:
                print(f"Time budget spent: no steps from {calls} calls on", flush=True)
                break
            # Alternate which bot goes first, so neither always meets a machine the other warmed.
            names = list(bots) if index % 2 == 0 else list(bots)[::-1]
            for name in [n for n in names if bots[n].within_capacity]:
                step = await measure_step(
                    bots[name],
                    fakes,
                    plan,
                    calls=args.sequential_calls if calls == 1 else calls,
                    sequential=calls == 1,
                )
                if not step.summary["within_capacity"] and calls > 1:
                    # One bad step could be a neighbour's burst of CPU: try it once more.
                    print(report.step_line(name, step) + "  (trying again)", flush=True)
                    step = await measure_step(
                        bots[name], fakes, plan, calls=calls, sequential=False
                    )
                    bots[name].within_capacity = bool(step.summary["within_capacity"])
                report.add_step(name, step)
                print(report.step_line(name, step), flush=True)
                for error in sorted(set(step.errors))[:3]:
                    print(f"    failed call: {error}", flush=True)
            if not any(bot.within_capacity for bot in bots.values()):
                break
        await measure_cpu_side_by_side(args, bots, fakes, plan, report)
        report.finish()


async def measure_real_timing(args: argparse.Namespace, report: Report) -> None:
    """Fakes on the services' own timing: fresh bots, calls one after another, each bot alone."""
    plan = CallPlan.default()
    async with loopback_fakes(ServiceTiming.real()) as fakes, AsyncExitStack() as stack:
        work = work_dir(args, stack, "real")
        bots = await start_bots(args, fakes, stack, work)
        for name, bot in bots.items():
            report.startup_rss_mib[name] = rss_bytes(bot.server.process.pid) / 2**20
            step = await measure_step(bot, fakes, plan, calls=args.real_calls, sequential=True)
            report.add_step(name, step)
            print(report.step_line(name, step), flush=True)
            for error in sorted(set(step.errors))[:3]:
                print(f"    failed call: {error}", flush=True)
        report.finish()


def work_dir(args: argparse.Namespace, stack: AsyncExitStack, timing: str) -> Path:
    """Where the bots' logs (and the generated reference bot) go for one timing."""
    if args.logs:
        work = args.logs / timing
        work.mkdir(parents=True, exist_ok=True)
        return work
    return Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"bench-{timing}-")))


def main() -> None:
    args = parse_args()

    async def run() -> list[Report]:
        task = asyncio.current_task()
        assert task is not None
        # SIGTERM ends the run like Ctrl-C: through the exit stack that stops every bot.
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await benchmark(args)

    reports = asyncio.run(run())
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "bench-local" if args.local else "bench"
    document = {report.timing: report.as_json() for report in reports}
    (args.out / f"{stem}.json").write_text(json.dumps(document, indent=2) + "\n")
    for report in reports:
        print()
        print(report.title())
        print(report.table())
    written = [args.out / f"{stem}.json"]
    if not args.local:
        plot(reports, args.out / f"{stem}.png")
        written.append(args.out / f"{stem}.png")
    print(f"\nWrote {', '.join(str(path) for path in written)}")
    print(f"Load average now: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
