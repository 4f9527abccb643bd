"""pipecat's eval harness in place of a phone line: its transport and serializer, and no Twilio."""

import asyncio
import base64
import binascii
import json
from typing import Any

from fastapi import WebSocket
from loguru import logger
from pipecat.audio.utils import create_stream_resampler
from pipecat.evals.fastapi_transport import EvalFastAPIWebsocketTransport
from pipecat.evals.serializer import EvalConnectionFlags, EvalSerializer
from pipecat.evals.transport import EvalTransportParams
from pipecat.frames.frames import (
    Frame,
    InputAudioRawFrame,
    OutputTransportMessageFrame,
    OutputTransportMessageUrgentFrame,
)
from pipecat.processors.frame_processor import FrameProcessorSetup

from bot_runtime.call.ending import CallEnding
from bot_runtime.config.twilio import TwilioSettings
from bot_runtime.phone_line import PHONE_SAMPLE_RATE
from bot_runtime.phone_numbers import mask
from bot_runtime.turns.speech_hold import SpeechHold

# The key of the mark messages the call puts after its last words (see EvalLineSerializer).
_MARK_KEY = "eval_line_mark"


class EvalLineSerializer(EvalSerializer):
    """pipecat's eval serializer, with what a call asks of its line besides.

    A call's endings wait until its last words were heard: on Twilio, for the echo
    of a mark sent after them. The harness echoes nothing, but pipecat's output
    writes frames in order, each piece of audio at the pace it plays, so a mark
    reaching the serializer comes after the words before it were sent to the
    harness as they played: that is taken as heard, and the mark goes no further.
    There is no phone call to hang up or let go of (``release_call``). In an audio
    scenario the harness's voice comes as RTVI ``raw-audio`` at its own rate: it is
    resampled to the phone line's, as the Twilio serializer does with a caller's,
    and the barge-in rules' speech hold pauses the bot's audio here as there.

    Once the call has begun to end, the bot's ``bot-interrupted`` reports stay here:
    the harness takes one as "what the bot produced so far is stale" and drops the
    events it has not matched yet, and a transfer interrupts the bot to play its
    notice just after the ``transfer_call`` that began it, which would be dropped.
    """

    def __init__(self, *, ending: CallEnding, speech_hold: SpeechHold | None = None) -> None:
        super().__init__()
        self._ending = ending
        self._speech_hold = speech_hold
        self._marks: dict[str, asyncio.Event] = {}
        self._resampler = create_stream_resampler()
        self._pipeline_rate = PHONE_SAMPLE_RATE

    async def setup(self, setup: FrameProcessorSetup) -> None:
        await super().setup(setup)
        self._pipeline_rate = setup.audio_in_sample_rate

    def mark_message(self, name: str) -> dict[str, Any]:
        """A mark to send after some audio; ``wait_for_mark(name)`` then waits for it to pass."""
        self._marks[name] = asyncio.Event()
        return {_MARK_KEY: name}

    async def wait_for_mark(self, name: str, *, timeout_secs: float) -> bool:
        """Wait until mark ``name`` has been written after the audio before it."""
        try:
            await asyncio.wait_for(self._marks[name].wait(), timeout_secs)
        except TimeoutError:
            return False
        finally:
            self._marks.pop(name, None)
        return True

    def release_call(self) -> None:
        """Nothing to let go of: an eval is no phone call, and ending it hangs nothing up."""

    async def serialize(self, frame: Frame) -> str | bytes | None:
        if isinstance(frame, OutputTransportMessageFrame | OutputTransportMessageUrgentFrame):
            if self._kept_back(frame.message):
                return None
        elif self._speech_hold and not await self._speech_hold.passes(frame):
            return None
        return await super().serialize(frame)

    def _kept_back(self, message: Any) -> bool:
        """Whether a message stays here: a mark (noted as passed), or, once the call is
        ending, a ``bot-interrupted`` report (see the class's docstring)."""
        if not isinstance(message, dict):
            return False
        if _MARK_KEY in message:
            waiter = self._marks.get(message[_MARK_KEY])
            if waiter:
                waiter.set()
            return True
        return self._ending.begun and message.get("type") == "bot-interrupted"

    async def deserialize(self, data: str | bytes) -> Frame | None:
        try:
            message = json.loads(data)
        except (ValueError, TypeError, RecursionError):
            message = None
        if isinstance(message, dict) and message.get("type") == "raw-audio":
            return await self._harness_audio(message.get("data"))
        return await super().deserialize(data)

    async def _harness_audio(self, data: Any) -> InputAudioRawFrame | None:
        """The harness's voice (mono PCM16 at its rate) at the pipeline's rate."""
        try:
            pcm = base64.b64decode(data["base64Audio"], validate=True)
            rate = int(data["sampleRate"])
        except (KeyError, TypeError, ValueError, binascii.Error):
            logger.warning("Dropped a raw-audio message without base64 audio and a sample rate")
            return None
        audio = await self._resampler.resample(pcm, rate, self._pipeline_rate)
        if not audio:  # The resampler holds the start of a stream back.
            return None
        return InputAudioRawFrame(audio=audio, num_channels=1, sample_rate=self._pipeline_rate)


def eval_transport(
    websocket: WebSocket,
    flags: EvalConnectionFlags,
    serializer: EvalLineSerializer,
    *,
    params: dict[str, Any],
) -> EvalFastAPIWebsocketTransport:
    """pipecat's eval transport on the accepted socket, with the phone transport's ``params``."""
    return EvalFastAPIWebsocketTransport(
        websocket, EvalTransportParams(**params, serializer=serializer), flags
    )


async def no_redirect(
    _twilio: TwilioSettings, _call_sid: str, *, number: str, whisper_url: str | None = None
) -> None:
    """Stands in for the transfer's redirect: an eval has no phone call to send anywhere."""
    logger.info(f"Eval: the call would now go to {mask(number)}; no request to Twilio")
