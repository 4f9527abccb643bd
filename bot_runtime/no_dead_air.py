"""No dead air: a caller owed a reply hears one, or the recorded fallback, within seconds."""

import asyncio

from loguru import logger
from pipecat.frames.frames import ErrorFrame, LLMRunFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor

from bot_runtime.call_ending import CallEnding
from bot_runtime.endings import Endings
from bot_runtime.side_tasks import SideTasks

# After a failed reply is retried, how long the retry may take to be heard: the caller
# must hear something (the reply, or the fallback message) within 3 s of a failure.
RETRY_WINDOW_SECS = 1.5
STT = "speech-to-text"


class NoDeadAir:
    """Watches for replies that do not come and services that fail, and falls back.

    A caller's turn with words starts a deadline (RESPONSE_TIMEOUT_SECS); the bot
    being heard clears it. A failed LLM or TTS gets one immediate retry; a second
    failure, a missed deadline or a failed speech-to-text plays the fallback.
    """

    def __init__(
        self,
        *,
        services: dict[FrameProcessor, str],
        worker: PipelineWorker,
        ending: CallEnding,
        endings: Endings,
        response_timeout_secs: float,
        tasks: SideTasks,
    ) -> None:
        self._services = services
        self._worker = worker
        self._ending = ending
        self._endings = endings
        self._response_timeout_secs = response_timeout_secs
        self._tasks = tasks
        self._watchdog: asyncio.Task | None = None
        self._failures = 0

    def caller_spoke(self) -> None:
        self._stop_watchdog()

    def caller_finished_a_turn(self) -> None:
        self._start_watchdog(self._response_timeout_secs)

    def bot_was_heard(self) -> None:
        self._stop_watchdog()
        self._failures = 0  # Whatever failed has recovered.

    async def service_failed(self, frame: ErrorFrame) -> None:
        service = self._services.get(frame.processor)
        if service is None or self._ending.begun:
            return
        self._failures += 1
        logger.warning(f"{service} failed: {frame.error}")
        if service == STT:
            # Deepgram waits at least 4 s before reconnecting: too long to leave a caller
            # unheard, and without it nothing the caller says gets through.
            self._endings.fall_back(f"{service} failed: {frame.error}")
        elif self._failures > 1:
            self._endings.fall_back(f"{service} failed twice: {frame.error}")
        else:
            # A dropped connection or an error reply is often transient: ask for the reply
            # again, once, and fall back if it is not heard soon.
            logger.info("Retrying the reply once")
            await self._worker.queue_frame(LLMRunFrame())
            self._start_watchdog(RETRY_WINDOW_SECS)

    def _start_watchdog(self, secs: float) -> None:
        self._stop_watchdog()
        self._watchdog = self._tasks.start(self._expect_reply_within(secs))

    def _stop_watchdog(self) -> None:
        if self._watchdog and not self._watchdog.done():
            self._watchdog.cancel()

    async def _expect_reply_within(self, secs: float) -> None:
        await asyncio.sleep(secs)
        self._endings.fall_back(f"no reply within {secs:g} s")
