"""Deepgram streaming speech-to-text: notices when Deepgram stops answering, and when the
words were all in before the Finalize."""

import asyncio
import time

from loguru import logger
from pipecat.frames.frames import Frame, VADUserStartedSpeakingFrame, VADUserStoppedSpeakingFrame
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.deepgram.stt import DeepgramSTTService

from bot_runtime.turns.turn_end import TranscriptCompleteFrame

# When the caller stops speaking the service sends Deepgram a Finalize, which Deepgram answers
# well within a second (an empty result if it had already sent the words; its usual time is in
# docs/performance.md). No answer at all by then is a hung or half-open socket: 1 s leaves
# the reconnect and a spoken "say that again" inside the 3 s within which a caller hears a
# reply.
DEAF_AFTER_SECS = 1.0
# A reconnect that takes longer than this cannot save the turn; the call falls back instead.
RECONNECT_BUDGET_SECS = 0.8


class DeepgramSTT(DeepgramSTTService):
    """pipecat's Deepgram service, watching for a connection that hears but never answers.

    It also says when the words were all in before the turn's end: Deepgram endpoints
    after 10 ms of silence by default, so its final usually comes before the bot's VAD
    stop and the ``Finalize`` that follows, which it then answers with an empty result.
    pipecat marks a transcript final only when a ``Finalize`` answer carries words, and
    the turn would wait out the safety net (0.35 s after the words) for nothing; here
    that empty answer sends a ``TranscriptCompleteFrame`` (see turn_end.py).

    A socket that stays open while Deepgram has stopped (no error, no close) looks
    healthy to the SDK: the caller's words go in and nothing comes out. Here, once
    the caller stops speaking, Deepgram must answer something within
    ``DEAF_AFTER_SECS``. If it does not, the service reconnects (within
    ``RECONNECT_BUDGET_SECS``) and raises ``on_deaf`` with whether that worked; the
    caller's words sent to the dead socket are lost either way.
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._last_answer_at = 0.0
        self._deaf_watch: asyncio.Task | None = None
        # pipecat: private. BaseObject's way for a subclass to declare and raise an event.
        self._register_event_handler("on_deaf")

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, VADUserStartedSpeakingFrame):
            await self._stop_deaf_watch()
        elif isinstance(frame, VADUserStoppedSpeakingFrame) and self._connection:
            await self._stop_deaf_watch()
            self._deaf_watch = self.create_task(self._expect_an_answer(time.monotonic()))

    async def _on_message(self, message) -> None:
        # pipecat: private. Where the SDK hands over each of Deepgram's messages, empty
        # results included: the only sign of life when the words came earlier.
        self._last_answer_at = time.monotonic()
        await super()._on_message(message)
        # pipecat: private. Set when Deepgram answers this turn's Finalize, cleared when a
        # transcript carries it on (or the caller speaks again): still set, the answer was
        # empty and every word of the turn was in an earlier final.
        if self._finalize_pending:
            self._finalize_pending = False
            await self.push_frame(TranscriptCompleteFrame())

    async def cleanup(self) -> None:
        await self._stop_deaf_watch()
        await super().cleanup()

    async def _expect_an_answer(self, asked_at: float) -> None:
        await asyncio.sleep(DEAF_AFTER_SECS)
        if self._last_answer_at >= asked_at:
            return
        logger.warning(f"Deepgram did not answer within {DEAF_AFTER_SECS:g} s: reconnecting")
        try:
            async with asyncio.timeout(RECONNECT_BUDGET_SECS):
                # pipecat: private. Its own reconnect (audio meanwhile is kept and replayed);
                # the public way, a settings change, has nothing to change here.
                await self._reconnect()
        except TimeoutError:
            pass
        await self._call_event_handler("on_deaf", self._connection is not None)

    async def _stop_deaf_watch(self) -> None:
        if self._deaf_watch:
            await self.cancel_task(self._deaf_watch)
            self._deaf_watch = None
