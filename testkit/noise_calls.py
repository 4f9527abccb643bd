"""A caller with noise on the line while the bot talks: did the bot stop, did it answer, how fast.

Shared by tests/test_noise.py and benchmarks/noise.py. The bot's answers must be long
(``LONG_ANSWER``) so that it is still talking when the noise comes. The fake
Deepgram is told what each sound is heard as just before it plays.
"""

import asyncio
import time
from dataclasses import dataclass

from testkit.caller_audio import AUDIO, Line, caller_line
from testkit.fakes import Fakes, Reply
from testkit.noise_set import Noise, under
from testkit.phone_audio import read_wav_8k
from testkit.simulated_caller import SimulatedCaller

# A brisk caller (about 180 words a minute): the fake Deepgram's interim results follow it.
CALLER_WORDS_PER_SEC = 3.0
# About 70 s of the fake voice (0.12 s a word): the bot talks through every noise.
LONG_ANSWER = " ".join(["Here is the whole story of your order, from start to finish."] * 50)
# After a sound ends: time for its last transcript, a turn end and an LLM request.
SETTLE_SECS = 1.5
WAIT_SECS = 10.0
POLL_SECS = 0.005


def answer_at_length(fakes: Fakes) -> None:
    """Make the fake LLM answer every turn with ``LONG_ANSWER``."""
    fakes.openai.responder = lambda request: Reply(LONG_ANSWER)


@dataclass(frozen=True)
class NoiseResult:
    """What one sound under the bot's speech did."""

    noise: str
    cleared: bool  # the bot stopped talking (Twilio `clear`)
    replied: bool  # the bot ran its LLM on it, as a turn


async def get_the_bot_talking(
    caller: SimulatedCaller, fakes: Fakes, line: str = "saturday"
) -> None:
    """The caller asks something; return once the long answer is playing."""
    fakes.deepgram.transcripts.clear()
    fakes.deepgram.default_transcript = caller_line(line)
    spoken = await caller.say(AUDIO / f"{line}.wav")
    await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=WAIT_SECS)
    await asyncio.sleep(0.5)


async def play_noise(caller: SimulatedCaller, fakes: Fakes, noise: Noise) -> NoiseResult:
    """Play ``noise`` while the bot talks; wait for what it sets off."""
    fakes.deepgram.transcripts.clear()
    fakes.deepgram.default_transcript = noise.heard
    requests = len(fakes.openai.requests)
    started = time.monotonic()
    await caller.say(noise.pcm())
    await asyncio.sleep(SETTLE_SECS)
    fakes.deepgram.default_transcript = ""
    return NoiseResult(
        noise=noise.name,
        cleared=any(t > started for t in caller.clears),
        replied=len(fakes.openai.requests) > requests,
    )


async def barge_in(
    caller: SimulatedCaller, fakes: Fakes, line: str, *, background: Noise | None = None
) -> float:
    """Talk over the bot with a recorded line (a background under it); seconds from words to clear.

    Returns once the bot has started its answer to the line.
    """
    pcm = read_wav_8k(AUDIO / f"{line}.wav")
    spoken_line = Line.speech(line, under(pcm, background) if background else pcm)
    fakes.deepgram.transcripts.clear()
    fakes.deepgram.default_transcript = caller_line(line)
    requests = len(fakes.openai.requests)
    sent = asyncio.ensure_future(caller.say(spoken_line.pcm))
    began = time.monotonic()
    deadline = began + WAIT_SECS
    while not (cleared := [t for t in caller.clears if t > began]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no clear after barging in with {line}")
        await asyncio.sleep(POLL_SECS)
    spoken = await sent
    # Where the caller's words begin (found in the clean line: the background has no words).
    onset = spoken.started_at + Line.speech(line, pcm).words_start_secs
    deadline = time.monotonic() + WAIT_SECS
    while len(fakes.openai.requests) == requests:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer after barging in with {line}")
        await asyncio.sleep(POLL_SECS)
    await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=WAIT_SECS)
    await asyncio.sleep(0.5)
    return cleared[0] - onset
