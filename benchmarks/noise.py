"""Noise on the line: `uv run python -m benchmarks.noise` prints what each noise and barge-in did.

For each configuration, a bot answers at length and the caller plays every sound of
testkit's noise set under its speech (did the bot stop? did it answer?), then talks
over it with recorded lines, clean and with each background noise under them (time
from the caller's first word until they hear the bot stop, and until Twilio's `clear`).
The fake Deepgram sends interim results as Deepgram does, once per second of audio,
with the words said so far at a speaking rate, so a words minimum costs what it would
on a real call.
"""

import argparse
import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from benchmarks.load import percentile
from testkit.bot_server import REPO, BotServer, start_bot_server
from testkit.fakes import FakeCartesia, FakeDeepgram, FakeOpenAI, Fakes
from testkit.fakes.twilio_rest import FakeTwilio
from testkit.media_stream import TEST_ACCOUNT_SID
from testkit.noise_calls import (
    BARGE_INS,
    CALLER_WORDS_PER_SEC,
    BargeInResult,
    NoiseResult,
    answer_at_length,
    barge_in,
    get_the_bot_talking,
    play_noise,
)
from testkit.noise_set import BACKGROUNDS, NOISES
from testkit.scenario import AUTH_TOKEN, TWILIO_CREDENTIALS, answered_call, hear_greeting
from testkit.simulated_caller import SimulatedCaller

# A pause in the bot's speech shorter than this is not one a caller would notice.
MIN_PAUSE_SECS = 0.1
CONFIGS = {
    "default": {},
    "words-2": {"BARGE_IN_MIN_WORDS": "2"},
    "voice-only": {"BARGE_IN_MIN_WORDS": "0"},
    "no-level-gate": {"BARGE_IN_LEVEL_DB": "100"},
}


async def measure(
    fakes: Fakes, env: dict[str, str], log: Path, *, bot_script: Path
) -> tuple[list[NoiseResult], dict[str, list[BargeInResult | None]]]:
    """One bot: every noise under its speech, then every barge-in; (noise results, latencies).

    A noise that cuts the bot off, or a barge-in that does not, can leave the call in any
    state (answering the noise, or ended by the no-reply fallback): the next one then
    starts on a fresh call.
    """
    bot = await start_bot_server(env, log_path=log, script=bot_script)
    try:
        answer_at_length(fakes)
        results: list[NoiseResult] = []
        noises = list(NOISES)
        while noises:
            async with _talking_bot(bot, fakes) as caller:
                while noises:
                    results.append(await play_noise(caller, fakes, noises.pop(0)))
                    if results[-1].cleared:
                        break
        latencies: dict[str, list[BargeInResult | None]] = {}
        barge_ins = [
            (background, line) for background in [None, *BACKGROUNDS] for line in BARGE_INS
        ]
        while barge_ins:
            async with _talking_bot(bot, fakes) as caller:
                while barge_ins:
                    background, line = barge_ins.pop(0)
                    key = "clean" if background is None else background.name
                    try:
                        result = await barge_in(caller, fakes, line, background=background)
                    except TimeoutError as error:
                        print(f"  missed: {error}", flush=True)
                        latencies.setdefault(key, []).append(None)
                        break
                    latencies.setdefault(key, []).append(result)
        return results, latencies
    finally:
        await bot.stop()


@asynccontextmanager
async def _talking_bot(bot: BotServer, fakes: Fakes) -> AsyncIterator[SimulatedCaller]:
    """A new call in which the bot has been asked a question and is answering at length."""
    async with answered_call(bot, fakes) as caller:
        await hear_greeting(caller)
        await get_the_bot_talking(caller, fakes)
        yield caller


def print_tables(
    name: str, results: list[NoiseResult], latencies: dict[str, list[BargeInResult | None]]
) -> None:
    print(f"\n## {name}\n")
    print("| noise under the bot's speech | bot stopped (`clear`) | bot answered it | bot paused |")
    print("|---|---|---|---|")
    for r in results:
        # A bot that stopped has no pause to go on from (its gap is a new answer's wait).
        paused = f"{r.paused_secs:.2f} s" if r.paused_secs >= MIN_PAUSE_SECS else "no"
        paused = "-" if r.cleared else paused
        print(
            f"| {r.noise} | {'yes' if r.cleared else 'no'} | {'yes' if r.replied else 'no'} "
            f"| {paused} |"
        )
    print(
        f"\n| barge-in ({len(BARGE_INS)} lines) | words to bot quiet p50 | p95 "
        "| words to `clear` p50 | p95 | missed |"
    )
    print("|---|---|---|---|---|---|")
    every = [value for values in latencies.values() for value in values]
    for under, values in [*latencies.items(), ("all", every)]:
        label = {"clean": "clean", "all": "**all**"}.get(under, f"with {under} under")
        timed = [v for v in values if v is not None]
        quiet = _p50_p95([v.quiet_secs for v in timed])
        clear = _p50_p95([v.clear_secs for v in timed])
        print(f"| {label} | {quiet} | {clear} | {len(values) - len(timed)} |", flush=True)


def _p50_p95(values: list[float]) -> str:
    shown = [percentile(values, q) for q in (0.5, 0.95)]
    return " | ".join(f"{v * 1000:.0f} ms" if v is not None else "-" for v in shown)


async def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.noise", description=__doc__)
    parser.add_argument(
        "--configs",
        default="default",
        help=f"comma-separated, of {', '.join(CONFIGS)} (default: %(default)s)",
    )
    parser.add_argument(
        "--bot",
        type=Path,
        default=REPO / "bot.py",
        help="the bot.py to measure (e.g. an older checkout's, to see the behaviour before)",
    )
    parser.add_argument("--logs", type=Path, help="keep each bot's log here (default: discarded)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    async with AsyncExitStack() as stack:
        fakes = Fakes(
            deepgram=await stack.enter_async_context(
                FakeDeepgram(interim_words_per_sec=CALLER_WORDS_PER_SEC)
            ),
            openai=await stack.enter_async_context(FakeOpenAI()),
            cartesia=await stack.enter_async_context(FakeCartesia()),
            twilio=await stack.enter_async_context(
                FakeTwilio(account_sid=TEST_ACCOUNT_SID, auth_token=AUTH_TOKEN)
            ),
        )
        logs = args.logs or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        logs.mkdir(parents=True, exist_ok=True)
        for name in args.configs.split(","):
            env = {**fakes.service_env(), **TWILIO_CREDENTIALS, **CONFIGS[name]}
            results, latencies = await measure(
                fakes, env, logs / f"{name}.log", bot_script=args.bot
            )
            print_tables(name, results, latencies)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    asyncio.run(main())
