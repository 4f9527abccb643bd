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
from testkit.phone_audio import pcm16_bytes, read_wav_8k
from testkit.simulated_caller import JITTER_SECS, SimulatedCaller

# A brisk caller (about 180 words a minute): the fake Deepgram's interim results follow it.
CALLER_WORDS_PER_SEC = 3.0
# About 58 s of the fake voice (0.12 s a word): the bot talks through every noise.
LONG_ANSWER = " ".join(["Here is the whole story of your order, from start to finish."] * 40)
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
    paused_secs: float  # the longest pause in the bot's speech, as heard, while it played


@dataclass(frozen=True)
class BargeInResult:
    """How soon the bot went quiet for a caller who talked over it, from their first word."""

    quiet_secs: float  # until the caller heard the bot stop (a pause or the `clear`)
    clear_secs: float  # until Twilio got the `clear`


def longest_pause(caller: SimulatedCaller, since: float, until: float) -> float:
    """The longest pause in the bot's speech as heard between ``since`` and ``until``."""
    segments = [(a, b) for a, b in caller.bot_segments(JITTER_SECS) if b > since and a < until]
    return max((b[0] - a[1] for a, b in zip(segments, segments[1:], strict=False)), default=0.0)


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
        paused_secs=longest_pause(caller, started, time.monotonic()),
    )


@dataclass(frozen=True)
class BargeIn:
    """A recorded caller line, or the part of it with no pause inside, and its words.

    A pause as long as the VAD's stop time inside a line would end the turn there (the
    turn detector's call), and the rest would cut off the answer to its first part.
    """

    name: str
    heard: str
    from_secs: float = 0.0
    to_secs: float | None = None

    def pcm(self) -> bytes:
        pcm = read_wav_8k(AUDIO / f"{self.name}.wav")
        end = None if self.to_secs is None else pcm16_bytes(self.to_secs)
        return pcm[pcm16_bytes(self.from_secs) : end]


BARGE_INS = [
    BargeIn("saturday", caller_line("saturday")),
    BargeIn("order_number", caller_line("order_number")),
    BargeIn("order_status", "I'm calling to check on the status of my order.", from_secs=0.6),
    BargeIn("human", "Can you put me through to a real person?", to_secs=2.03),
    BargeIn("agree", "That works for me.", from_secs=0.66),
]


async def barge_in(
    caller: SimulatedCaller, fakes: Fakes, line: BargeIn, *, background: Noise | None = None
) -> BargeInResult:
    """Talk over the bot (a background under the words); how soon it went quiet.

    Returns once the bot has started its answer to the line.
    """
    pcm = line.pcm()
    fakes.deepgram.transcripts.clear()
    fakes.deepgram.default_transcript = line.heard
    requests = len(fakes.openai.requests)
    sent = asyncio.ensure_future(caller.say(under(pcm, background) if background else pcm))
    began = time.monotonic()
    deadline = began + WAIT_SECS
    while not (cleared := [t for t in caller.clears if t > began]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no clear after barging in with {line.name}")
        await asyncio.sleep(POLL_SECS)
    spoken = await sent
    # Where the caller's words begin (found in the clean line: the background has no words).
    onset = spoken.started_at + Line.speech(line.name, pcm).words_start_secs
    deadline = time.monotonic() + WAIT_SECS
    while len(fakes.openai.requests) == requests:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer after barging in with {line.name}")
        await asyncio.sleep(POLL_SECS)
    await caller.wait_for_bot_audio(after=spoken.ended_at, timeout=WAIT_SECS)
    await asyncio.sleep(0.5)
    return BargeInResult(
        quiet_secs=caller.bot_quiet_from(onset) - onset, clear_secs=cleared[0] - onset
    )


# Barge-ins short enough to end before Deepgram's next interim result when they start just
# after one: their words reach the bot only in the endpointing final.
SHORT_BARGE_INS = [
    BargeIn("human", "Hold on a second.", to_secs=0.5),
    BargeIn("agree", "Stop there.", from_secs=0.66, to_secs=1.1),
]


async def just_after_an_interim(fakes: Fakes, *, within_secs: float = 0.05) -> None:
    """Wait until the call's speech-to-text stream is just past a whole second of audio, where
    the fake Deepgram's interim results fall (one per second of the stream's audio)."""
    session = fakes.deepgram.sessions[-1]
    rate = int(session.params["sample_rate"])
    every = fakes.deepgram.timing.interim_every_secs
    deadline = time.monotonic() + WAIT_SECS
    while (session.audio_bytes / 2 / rate) % every > within_secs:
        if time.monotonic() > deadline:
            raise TimeoutError("the speech-to-text stream got no audio")
        await asyncio.sleep(POLL_SECS)
