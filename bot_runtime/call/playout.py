"""What the caller hears, and Twilio's proof that they heard it: speech, prompts and marks."""

import itertools
from typing import Any, Protocol

from loguru import logger
from pipecat.frames.frames import Frame, OutputTransportMessageFrame, TTSSpeakFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor

from bot_runtime.call.recorded_prompts import Prompt, PromptPlayer

# How long a goodbye or prompt may take to play before the call moves on anyway.
PLAYOUT_TIMEOUT_SECS = 20.0


class LineSerializer(Protocol):
    """What the call asks of its line's serializer: Twilio's (stream.py) or the eval harness's."""

    def mark_message(self, name: str) -> dict[str, Any]: ...

    async def wait_for_mark(self, name: str, *, timeout_secs: float) -> bool: ...

    def release_call(self) -> None: ...


class Playout:
    """Puts speech and recorded prompts in front of the caller and waits until they are heard.

    pipecat sends audio faster than real time and Twilio buffers it, so "sent" is
    not "heard": only the echo of a Twilio mark queued after the audio says the
    caller heard it. Endings wait for that echo before hanging up or redirecting.
    """

    def __init__(
        self, *, worker: PipelineWorker, serializer: LineSerializer, prompts: PromptPlayer
    ) -> None:
        self._worker = worker
        self._serializer = serializer
        self._prompts = prompts
        self._mark_numbers = itertools.count(1)

    async def say(self, text: str, *, marked_as: str | None = None) -> None:
        """Speak ``text`` through the TTS service; the caller may interrupt it.

        ``marked_as`` sends a Twilio mark so named just before the speech: it tells
        whoever is on the stream what the speech is (Twilio echoes it, and ignores it).
        """
        speech = TTSSpeakFrame(text)
        if marked_as is None:
            await self._worker.queue_frame(speech)
        else:
            await self._worker.queue_frames([self._mark(self._new_mark_name(marked_as)), speech])

    async def say_last_words(self, text: str, *, via: FrameProcessor | None = None) -> None:
        """Speak ``text``, which nothing the caller says may cut short, until it was heard.

        ``via`` sends the speech from that processor instead of the pipeline's start
        (past a voicemail verdict, the detector lets nothing through from upstream).
        """
        mark_name = self._new_mark_name("last-words")
        speech = TTSSpeakFrame(text)
        speech.interruptible = False
        frames = [speech, self._mark(mark_name)]
        if via is None:
            await self._worker.queue_frames(frames)
        else:
            for frame in frames:
                await via.push_frame(frame)
        await self._wait_until_heard(mark_name)

    async def play(self, prompt: Prompt, *, interrupt: bool = False) -> None:
        """Play a recorded prompt to the end; ``interrupt`` first stops what the bot was saying."""
        mark_name = self._new_mark_name(prompt.value)
        await self._prompts.play(prompt, then=self._mark(mark_name), interrupt=interrupt)
        await self._wait_until_heard(mark_name)

    async def start_playing(self, prompt: Prompt) -> None:
        """Play a prompt without waiting for it (a hold tone under a REST request)."""
        await self._prompts.play(prompt)

    def _new_mark_name(self, label: str) -> str:
        return f"{label}-{next(self._mark_numbers)}"

    def _mark(self, name: str) -> Frame:
        frame = OutputTransportMessageFrame(message=self._serializer.mark_message(name))
        frame.interruptible = False
        return frame

    async def _wait_until_heard(self, mark_name: str) -> None:
        heard = await self._serializer.wait_for_mark(mark_name, timeout_secs=PLAYOUT_TIMEOUT_SECS)
        if not heard:
            logger.warning(f"Twilio did not confirm '{mark_name}' was played; going on anyway")
