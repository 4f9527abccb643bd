"""How a call ends: one latch taken by the first way of ending it, and the goodbyes that take it."""

import asyncio
from collections.abc import Awaitable, Callable
from enum import StrEnum

from loguru import logger
from pipecat.frames.frames import EndWorkerFrame
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.frame_processor import FrameProcessor

from bot_runtime.call.playout import Playout
from bot_runtime.call.recorded_prompts import Prompt
from bot_runtime.side_tasks import SideTasks

# How long an ending may take, from its first step to the pipeline's end, before the pipeline
# is stopped whatever the ending is doing. The longest ordinary ending, a fallback whose
# transfer fails, waits for three prompts (PLAYOUT_TIMEOUT_SECS each at most), a redirect
# (the REST client's 10 s) and a hang-up (HANG_UP_TIMEOUT_SECS); this leaves room for all.
ENDING_DEADLINE_SECS = 90.0


class EndedReason(StrEnum):
    """Why a call ended, as the call record names it."""

    CALLER_HUNG_UP = "caller_hung_up"
    END_CALL = "end_call"
    TRANSFER = "transfer"
    VOICEMAIL = "voicemail"
    SILENCE = "silence"
    MAX_DURATION = "max_duration"
    SERVICE_FAILURE = "service_failure"
    NOT_LIVE = "not_live"


# How each reason reads in the log and the call summary; {detail} says more where there is more.
_DESCRIPTIONS = {
    EndedReason.CALLER_HUNG_UP: "caller hung up",
    EndedReason.END_CALL: "end_call tool",
    EndedReason.TRANSFER: "transferred ({detail})",
    EndedReason.VOICEMAIL: "left a voicemail",
    EndedReason.SILENCE: "caller silent",
    EndedReason.MAX_DURATION: "maximum duration {detail}",
    EndedReason.SERVICE_FAILURE: "service failure ({detail})",
    EndedReason.NOT_LIVE: "not a live call ({detail})",
}


class CallEnding:
    """Which ending the call has taken; the first one wins.

    Every way a call ends (goodbye, voicemail, transfer, fallback, the caller
    hanging up, the time limit) takes the latch first; whatever comes second
    leaves the call to the one already under way.
    """

    def __init__(self) -> None:
        self.reason: EndedReason | None = None
        self.detail: str | None = None

    @property
    def begun(self) -> bool:
        return self.reason is not None

    @property
    def description(self) -> str | None:
        """The ending in words, e.g. "transferred (keypad 0)"; None while the call goes on."""
        if self.reason is None:
            return None
        return _DESCRIPTIONS[self.reason].format(detail=self.detail)

    def begin(self, reason: EndedReason, detail: str | None = None) -> bool:
        """Take the latch; False if the call was already ending."""
        if self.reason is not None:
            return False
        self.reason, self.detail = reason, detail
        logger.info(f"Ending call: {self.description}")
        return True


async def run_ending(work: Awaitable[None], *, worker: PipelineWorker, what: str) -> None:
    """Run an ending's steps so that, whatever fails or hangs in them, the call ends.

    The steps end the pipeline themselves. Should one raise, the pipeline is ended at
    once (which hangs up, unless the call was handed over) and one line says what
    failed; should the pipeline still run ``ENDING_DEADLINE_SECS`` after the ending
    began, it is cancelled. The call cancels this task, with its other side tasks,
    once the pipeline has ended.
    """
    loop = asyncio.get_running_loop()
    ends_at = loop.time() + ENDING_DEADLINE_SECS
    deadline = asyncio.timeout_at(ends_at)
    try:
        async with deadline:
            await work
    except Exception as error:  # Last resort: nothing may leave the caller in silence.
        if not deadline.expired():
            logger.error(f"Ending the call at once: {what} failed ({_describe(error)})")
            await end_pipeline(worker, reason=f"{what} failed")
    await asyncio.sleep(ends_at - loop.time())
    logger.error(f"The call had not ended {ENDING_DEADLINE_SECS:g} s into {what}; stopping it")
    await worker.cancel(reason=f"{what} took too long")


async def end_pipeline(worker: PipelineWorker, *, reason: str) -> None:
    """End the pipeline after what it holds (the serializer then hangs up, unless the call
    was handed over); cancel it if even that fails."""
    try:
        await worker.queue_frame(EndWorkerFrame(reason=reason))
    except Exception as error:
        logger.error(f"Could not end the pipeline ({_describe(error)}); cancelling it")
        await worker.cancel(reason=reason)


def _describe(error: BaseException) -> str:
    """The error in one short line: its type and the start of its message, no traceback."""
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:160]}" if lines else type(error).__name__


class Goodbyes:
    """Each ending takes the call's latch, has its last words heard, then ends the pipeline.

    Ending the pipeline makes the serializer hang the call up through Twilio's REST
    API (a transfer lets go instead; see transfer.py, whose hand-over the fallback
    uses). Nothing is cut short: the pipeline ends only once Twilio confirms the
    caller heard the last words. Should an ending fail or hang, ``run_ending`` ends the call anyway.
    """

    def __init__(
        self,
        *,
        ending: CallEnding,
        playout: Playout,
        worker: PipelineWorker,
        hand_over: Callable[[], Awaitable[None]] | None,
        goodbye: Callable[[], str],
        tasks: SideTasks,
    ) -> None:
        self._ending = ending
        self._playout = playout
        self._worker = worker
        self._hand_over = hand_over
        self._goodbye = goodbye
        self._tasks = tasks

    def say_goodbye(self, reason: EndedReason, detail: str | None = None) -> None:
        """Say goodbye, and end the call once the caller has heard it."""
        if self._ending.begin(reason, detail):
            self._start(self._leave_with(self._goodbye(), reason=reason), what="the goodbye")

    def leave_voicemail(self, message: str, *, detector: FrameProcessor) -> None:
        """Leave ``message`` on the answering machine, then hang up.

        The detector waits for the machine's greeting to end before letting the
        message through, and past its verdict it passes nothing from upstream, so
        the message starts from the detector itself.
        """
        if self._ending.begin(EndedReason.VOICEMAIL):
            self._start(
                self._leave_with(message, reason=EndedReason.VOICEMAIL, via=detector),
                what="the voicemail message",
            )

    def fall_back(self, cause: str) -> None:
        """Play the recorded apology, then hand the caller to a person or hang up."""
        if self._ending.begin(EndedReason.SERVICE_FAILURE, cause):
            self._start(self._apologise_and_leave(), what="the fallback")

    async def caller_hung_up(self) -> None:
        """Nobody is listening any more: stop at once (the serializer sends no hang-up, since
        the socket is already closed)."""
        self._ending.begin(EndedReason.CALLER_HUNG_UP)
        await self._worker.cancel(reason="caller hung up")

    def _start(self, ending: Awaitable[None], *, what: str) -> None:
        self._tasks.start(run_ending(ending, worker=self._worker, what=what))

    async def _leave_with(
        self, last_words: str, *, reason: EndedReason, via: FrameProcessor | None = None
    ) -> None:
        await self._playout.say_last_words(last_words, via=via)
        await self._worker.queue_frame(EndWorkerFrame(reason=str(reason)))

    async def _apologise_and_leave(self) -> None:
        # Prompts bypass the speech services: they play when the TTS is what failed.
        await self._playout.play(Prompt.FALLBACK, interrupt=True)
        if self._hand_over is not None:
            await self._hand_over()
        else:
            await self._playout.play(Prompt.CALL_BACK)
            await self._worker.queue_frame(EndWorkerFrame(reason="service failure"))
