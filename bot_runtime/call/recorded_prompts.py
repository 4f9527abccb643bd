"""Pre-recorded audio prompts, played straight to the caller with no TTS service involved."""

import wave
from enum import Enum
from functools import cache
from pathlib import Path

from pipecat.frames.frames import (
    Frame,
    InterruptionFrame,
    OutputAudioRawFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from bot_runtime.phone_line import PHONE_SAMPLE_RATE

PROMPTS_DIR = Path(__file__).resolve().parents[2] / "prompts"


class Prompt(Enum):
    """The prompts shipped in prompts/, each an 8 kHz mono 16-bit WAV."""

    RECORDING_NOTICE = "recording_notice"
    FALLBACK = "fallback"
    CONNECTING = "connecting"
    HOLD_TONE = "hold_tone"
    CALL_BACK = "call_back"


@cache
def prompt_audio(prompt: Prompt) -> bytes:
    """The prompt's PCM, read from disk once per process and kept."""
    path = PROMPTS_DIR / f"{prompt.value}.wav"
    with wave.open(str(path), "rb") as wav:
        if (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) != (
            PHONE_SAMPLE_RATE,
            1,
            2,
        ):
            raise ValueError(f"{path} must be 8 kHz mono 16-bit PCM")
        return wav.readframes(wav.getnframes())


def load_prompts() -> None:
    """Read every prompt now, at start-up: a missing or malformed file stops the bot here,
    not in the middle of a call, and no call reads the disk on the event loop."""
    for prompt in Prompt:
        prompt_audio(prompt)


class PromptPlayer(FrameProcessor):
    """Sits just before the output transport and plays prompts into it.

    Prompts bypass the speech services on purpose: the fallback message must play
    when the TTS service is the thing that failed.
    """

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        await self.push_frame(frame, direction)

    async def play(
        self, prompt: Prompt, *, then: Frame | None = None, interrupt: bool = False
    ) -> None:
        """Queue the prompt's audio for the caller, followed by ``then`` (e.g. a mark).

        With ``interrupt``, whatever the bot was saying stops first: the services
        above are interrupted, and the output drops its queued audio and sends
        Twilio a `clear`, ahead of the prompt so that the clear cannot drop it.
        """
        if interrupt:
            await self.push_frame(InterruptionFrame(), FrameDirection.UPSTREAM)
            await self.push_frame(InterruptionFrame())
        audio = OutputAudioRawFrame(
            audio=prompt_audio(prompt), sample_rate=PHONE_SAMPLE_RATE, num_channels=1
        )
        audio.interruptible = False  # Prompts carry what the caller must hear in full.
        await self.push_frame(audio)
        if then is not None:
            await self.push_frame(then)
