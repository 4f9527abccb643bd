"""Whether one caller line is answered as one: `uv run python -m benchmarks.turn_splits`.

Each line (the recorded ones, and short phrases with a comma spoken by the local voice) is
said on calls of its own to the keyless bot, at several offsets against the 20 ms media
frames. A line is split when the caller hears the bot start a reply before the line is
over, or when the call's record (sent to a loopback webhook) holds it as more than one
caller turn.
"""

import argparse
import asyncio
import tempfile
from collections import Counter
from pathlib import Path

from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from testkit import local_speech
from testkit.bot_server import start_bot_server
from testkit.caller_audio import Line
from testkit.fakes.business_server import Answer, FakeBusinessServer
from testkit.scenario import INBOUND, call_record, hear_greeting, records_env
from testkit.simulated_caller import SimulatedCaller

RECORDED = ("order_status", "order_number", "saturday", "agree", "human", "goodbye", "long")
# Short lines whose comma the voice speaks as a pause, as callers do.
SPOKEN = ("Thanks, goodbye.", "Yes, please.", "Okay, thank you.", "Hmm, maybe Tuesday.")
# A 20 ms frame's worth of offsets: where the words fall against the VAD's 32 ms windows.
OFFSETS_SECS = (0.0, 0.007, 0.013)
REPLY_QUIET_SECS = 1.5


async def lines() -> list[Line]:
    recorded = [Line.recorded(name) for name in RECORDED]
    spoken = [
        Line.speech(text, await local_speech.synthesize(text, sample_rate=PHONE_SAMPLE_RATE))
        for text in SPOKEN
    ]
    return recorded + spoken


async def say_line(
    url: str, records: FakeBusinessServer, line: Line, offset: float
) -> tuple[bool, list[str]]:
    """Say ``line`` after ``offset`` s of silence and hear the reply: whether the bot's
    audio came before the line was over, and the caller turns recorded."""
    silence = bytes(2 * round(offset * PHONE_SAMPLE_RATE))
    async with SimulatedCaller(url, custom_parameters=INBOUND) as caller:
        await hear_greeting(caller, timeout_secs=30)
        await caller.wait_for_bot_silence(quiet_secs=0.5, timeout=30)
        spoken = await caller.say(silence + line.pcm)
        words_end = spoken.started_at + offset + line.words_end_secs
        first_reply = caller.first_media_after(spoken.started_at)
        try:
            await caller.wait_for_bot_audio(after=words_end, timeout=30)
            await caller.wait_for_bot_silence(quiet_secs=REPLY_QUIET_SECS, timeout=60)
        except TimeoutError:
            pass
    record = await call_record(records, caller.call_sid, timeout_secs=30)
    turns = [turn["text"] for turn in record["transcript"] if turn["role"] == "caller"]
    return first_reply is not None and first_reply < words_end, turns


async def measure(offsets: tuple[float, ...]) -> Counter[str]:
    splits: Counter[str] = Counter()
    async with FakeBusinessServer() as records:
        records.script("/calls/local", Answer(status=204, body=b""))
        env = {"SILENCE_TIMEOUT_SECS": "60"} | records_env(records, "local")
        with tempfile.TemporaryDirectory(prefix="splits-") as work:
            bot = await start_bot_server(env, log_path=Path(work) / "bot.log")
            try:
                for line in await lines():
                    for offset in offsets:
                        mid_line, turns = await say_line(bot.url, records, line, offset)
                        splits[line.label] += mid_line or len(turns) > 1
                        print(
                            f"{line.label[:20]:20} offset {offset * 1000:2.0f} ms: "
                            f"{'reply mid-line, ' if mid_line else ''}"
                            f"{len(turns)} caller turn(s): {' | '.join(turns)}",
                            flush=True,
                        )
            finally:
                await bot.stop()
    return splits


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.turn_splits", description=__doc__)
    parser.add_argument(
        "--offsets",
        type=int,
        default=len(OFFSETS_SECS),
        help="offsets per line, up to %(default)s (default: %(default)s)",
    )
    args = parser.parse_args()
    offsets = OFFSETS_SECS[: args.offsets]
    splits = asyncio.run(measure(offsets))
    total = len(RECORDED) + len(SPOKEN)
    print(f"\nSplit lines: {sum(splits.values())} of {total * len(offsets)} calls")
    for label, count in splits.items():
        if count:
            print(f"  {label}: {count} of {len(offsets)}")


if __name__ == "__main__":
    main()
